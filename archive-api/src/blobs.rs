//! The object store port: content-addressed bytes, verified on every read.
//!
//! Objects live under `blake3/{first two hex digits}/{hash}`, so writing the same bytes twice stores them
//! once and a retried write is harmless. Handlers see [`BlobError`], never `object_store::Error`.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::codes::ContentHash;

/// An object stored again after this long has its write time renewed (see [`BlobStore::put`]); garbage
/// collection's grace period must be longer.
pub const REFRESH_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Seconds since `unix` (a write time), 0 for one in the future.
fn chrono_age_seconds(unix: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    (now - unix).max(0)
}

/// Objects larger than this go up in parts.
const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
const PART_SIZE: usize = 8 * 1024 * 1024;

/// What went wrong with the object store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// No object has this hash.
    #[error("no object {0} in the store")]
    NotFound(ContentHash),
    /// The stored bytes do not hash to their address: damage on disk or tampering. The bytes are not
    /// served.
    #[error(
        "object {expected} failed its integrity check (its content hashes to {actual}); it is not served"
    )]
    Corrupt {
        /// The address asked for.
        expected: ContentHash,
        /// What the stored bytes hash to.
        actual: ContentHash,
    },
    /// The store itself failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// The store's URL or settings are wrong.
    #[error("{0}")]
    Config(String),
    /// Reading a local file to upload failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// An object as the store lists it.
#[derive(Debug, Clone, Copy)]
pub struct StoredObject {
    /// Its hash (and address).
    pub hash: ContentHash,
    /// Size in bytes.
    pub size: u64,
    /// When it was written, UNIX seconds.
    pub written: i64,
}

/// Content-addressed storage over any `object_store` backend.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
}

impl BlobStore {
    /// A store in a local folder, created if missing.
    pub fn local(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|source| BlobError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Self::new(Arc::new(LocalFileSystem::new_with_prefix(dir)?)))
    }

    /// The store a URL names: `file:///PATH` (a local folder), `s3://BUCKET[/PREFIX]` (any S3-compatible
    /// service; credentials, region and endpoint from the usual `AWS_*` environment variables, then from
    /// `options`, whose keys are object_store's S3 settings such as `endpoint`, `region`,
    /// `access_key_id`, `secret_access_key`, `allow_http`), or `memory://` (this process only, for tests).
    pub fn open(
        url: &str,
        options: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, BlobError> {
        let invalid = |why: String| BlobError::Config(format!("object store '{url}': {why}"));
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        match parsed.scheme() {
            "memory" => Ok(Self::memory()),
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| invalid("not a local path".to_owned()))?;
                Self::local(&dir)
            }
            "s3" => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
                for (key, value) in options {
                    let key: object_store::aws::AmazonS3ConfigKey = key
                        .parse()
                        .map_err(|_| invalid(format!("unknown S3 setting '{key}'")))?;
                    builder = builder.with_config(key, value);
                }
                let store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
                let prefix = parsed.path().trim_matches('/');
                Ok(Self::new(if prefix.is_empty() {
                    store
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
                }))
            }
            other => Err(invalid(format!(
                "unsupported scheme '{other}': use file://, s3:// or memory://"
            ))),
        }
    }

    /// A store in memory, for tests.
    pub fn memory() -> Self {
        Self::new(Arc::new(InMemory::new()))
    }

    /// A store over any backend.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    fn key(hash: &ContentHash) -> ObjectPath {
        let hex = hash.to_hex();
        ObjectPath::from(format!("blake3/{}/{hex}", &hex[..2]))
    }

    /// Stores `bytes` under `hash` unless an object is already there. One already there but written
    /// over [`REFRESH_AFTER`] ago is written again (the same bytes), so that garbage collection, which
    /// spares objects written within its grace period, never takes an old unrecorded object just as a new
    /// row is about to record it.
    pub async fn put(&self, hash: &ContentHash, bytes: Bytes) -> Result<(), BlobError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&Self::key(hash), PutPayload::from(bytes.clone()), options)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                if !self.is_fresh(hash).await? {
                    self.store
                        .put(&Self::key(hash), PutPayload::from(bytes))
                        .await?;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object with this hash is stored and was written within [`REFRESH_AFTER`].
    async fn is_fresh(&self, hash: &ContentHash) -> Result<bool, BlobError> {
        match self.store.head(&Self::key(hash)).await {
            Ok(meta) => {
                let age = chrono_age_seconds(meta.last_modified.timestamp());
                Ok(age < REFRESH_AFTER.as_secs() as i64)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object with this hash is stored.
    pub async fn exists(&self, hash: &ContentHash) -> Result<bool, BlobError> {
        match self.store.head(&Self::key(hash)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the file at `path`, whose content hashes to `hash`, uploading large files in parts.
    pub async fn put_file(&self, hash: &ContentHash, path: &Path) -> Result<(), BlobError> {
        if self.is_fresh(hash).await? {
            return Ok(());
        }
        let read_error = |source| BlobError::Read {
            path: path.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
        let size = file.metadata().await.map_err(read_error)?.len();
        if size <= MULTIPART_THRESHOLD {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).await.map_err(read_error)?;
            return self.put(hash, bytes.into()).await;
        }
        let upload = self.store.put_multipart(&Self::key(hash)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buffer = vec![0u8; PART_SIZE];
        loop {
            let n = file.read(&mut buffer).await.map_err(read_error)?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buffer[..n]);
        }
        writer.finish().await?;
        Ok(())
    }

    /// Every stored object: its hash, size in bytes and when it was written (UNIX seconds). Keys that are
    /// not content addresses are passed over.
    pub async fn list(&self) -> Result<Vec<StoredObject>, BlobError> {
        use futures::TryStreamExt;
        let mut listing = self.store.list(Some(&ObjectPath::from("blake3")));
        let mut found = Vec::new();
        while let Some(meta) = listing.try_next().await? {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            let Ok(hash) = ContentHash::parse(name) else {
                continue;
            };
            if meta.location != Self::key(&hash) {
                continue;
            }
            found.push(StoredObject {
                hash,
                size: meta.size,
                written: meta.last_modified.timestamp(),
            });
        }
        Ok(found)
    }

    /// Deletes the object `hash` (gone already is fine).
    pub async fn delete(&self, hash: &ContentHash) -> Result<(), BlobError> {
        match self.store.delete(&Self::key(hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the object `hash`, refusing bytes that do not hash to it.
    pub async fn get(&self, hash: &ContentHash) -> Result<Bytes, BlobError> {
        let bytes = match self.store.get(&Self::key(hash)).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound(*hash)),
            Err(e) => return Err(e.into()),
        };
        let actual = ContentHash::of(&bytes);
        if actual != *hash {
            tracing::error!(%hash, %actual, "stored object failed its integrity check");
            return Err(BlobError::Corrupt {
                expected: *hash,
                actual,
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn conformance(store: BlobStore) {
        let bytes = Bytes::from_static(b"trang 1");
        let hash = ContentHash::of(&bytes);
        assert!(!store.exists(&hash).await.unwrap());
        store.put(&hash, bytes.clone()).await.unwrap();
        store
            .put(&hash, bytes.clone())
            .await
            .expect("a second put of the same bytes is harmless");
        assert_eq!(store.get(&hash).await.unwrap(), bytes);
        let missing = ContentHash::of(b"never stored");
        assert!(matches!(
            store.get(&missing).await,
            Err(BlobError::NotFound(_))
        ));

        let big: Vec<u8> = (0..(MULTIPART_THRESHOLD as usize + PART_SIZE + 7))
            .map(|i| (i % 251) as u8)
            .collect();
        let big_hash = ContentHash::of(&big);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.pdf");
        std::fs::write(&file, &big).unwrap();
        store.put_file(&big_hash, &file).await.unwrap();
        assert_eq!(store.get(&big_hash).await.unwrap().len(), big.len());
    }

    #[tokio::test]
    async fn memory_store_conforms() {
        conformance(BlobStore::memory()).await;
    }

    /// Against a real S3 server: `SOHOA_TEST_S3=http://HOST:PORT` with a `sohoa-test` bucket (`.ci/run`
    /// starts one); without it there is nothing to test against here.
    #[tokio::test]
    async fn s3_store_conforms() {
        let Ok(endpoint) = std::env::var("SOHOA_TEST_S3") else {
            eprintln!(
                "SOHOA_TEST_S3 is not set: the S3 conformance test runs where it is (.ci/run)"
            );
            return;
        };
        let options: std::collections::BTreeMap<String, String> = [
            ("endpoint", endpoint.as_str()),
            ("allow_http", "true"),
            ("region", "us-east-1"),
            ("access_key_id", "test"),
            ("secret_access_key", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let prefix = format!(
            "unit-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let store = BlobStore::open(&format!("s3://sohoa-test/{prefix}"), &options).unwrap();
        conformance(store).await;
    }

    #[test]
    fn store_urls_are_checked() {
        let none = std::collections::BTreeMap::new();
        assert!(BlobStore::open("memory://", &none).is_ok());
        assert!(matches!(
            BlobStore::open("ftp://archive/objects", &none),
            Err(BlobError::Config(_))
        ));
        let bad_setting = [("colour".to_owned(), "blue".to_owned())]
            .into_iter()
            .collect();
        assert!(matches!(
            BlobStore::open("s3://bucket", &bad_setting),
            Err(BlobError::Config(_))
        ));
    }

    #[tokio::test]
    async fn local_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        conformance(BlobStore::local(dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn tampered_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let hash = ContentHash::of(b"original");
        store
            .put(&hash, Bytes::from_static(b"original"))
            .await
            .unwrap();
        let hex = hash.to_hex();
        std::fs::write(
            dir.path().join(format!("blake3/{}/{hex}", &hex[..2])),
            b"tampered",
        )
        .unwrap();
        assert!(matches!(
            store.get(&hash).await,
            Err(BlobError::Corrupt { .. })
        ));
    }
}
