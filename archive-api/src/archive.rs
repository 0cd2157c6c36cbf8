//! The archive service: ingest pages into stored, recorded, indexed documents; search; fetch by hash.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use pipeline::{
    Blob, DocumentInfo, PackageError, PageFailure, PageGeometry, PdfImage, PdfPackager, PdfPage,
    Pipeline, PipelineError, PipelineOptions,
};
use scanner_drivers::{PageFormat, PageSource, ScannedPage, SourceError};
use serde::Serialize;
use tokio::sync::{OnceCell, mpsc};

use crate::blobs::{BlobError, BlobStore};
use crate::codes::{CodeError, ContentHash, DocumentKind, DossierCode, ProcedureCode, UnitCode};
use crate::index::{IndexError, SearchIndex, SearchQuery, SearchResults};
use crate::repo::{
    NewDocument, NewDossier, NewPage, ObjectRecord, PageSpool, Repo, RepoError, StoredPage,
};

/// Where the archive keeps its state and how it processes pages.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// The data directory: `sohoa.db` (SQLite), `objects/` (the object store), `index/` (the search index),
    /// `tmp/` (work files).
    pub data_dir: PathBuf,
    /// Page pipeline settings.
    pub pipeline: PipelineOptions,
    /// Whether blank pages go into the packaged PDF. Default no: they are flagged and their masters kept.
    pub keep_blank_pages: bool,
    /// Units' names and signing certificates for certified copies, by unit code. A unit not listed signs
    /// with the development certificate in `certs/`.
    pub units: std::collections::BTreeMap<String, crate::copies::UnitCertificate>,
    /// Largest HTTP upload accepted, in bytes. Default 1 GiB (several hundred colour pages).
    pub max_upload_bytes: u64,
    /// How often a server re-checks each stored object against its hash, in the background; `None` for
    /// never. Default every 30 days.
    pub fixity_interval: Option<std::time::Duration>,
    /// The database: `None` for SQLite in `sohoa.db` in the data directory (the default), or a URL
    /// (`postgres://USER:PASSWORD@HOST/DB`, `sqlite://PATH`).
    pub database_url: Option<String>,
    /// The object store: `None` for `objects/` in the data directory (the default), or a URL
    /// (`s3://BUCKET/PREFIX`, `file:///PATH`, `memory://`).
    pub objects_url: Option<String>,
    /// Settings for an S3 object store beside the `AWS_*` environment (`endpoint`, `region`,
    /// `allow_http`...). Default none.
    pub objects_options: std::collections::BTreeMap<String, String>,
}

impl ArchiveConfig {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            pipeline: PipelineOptions::default(),
            keep_blank_pages: false,
            units: std::collections::BTreeMap::new(),
            max_upload_bytes: 1024 * 1024 * 1024,
            fixity_interval: Some(std::time::Duration::from_secs(30 * 24 * 3600)),
            database_url: None,
            objects_url: None,
            objects_options: std::collections::BTreeMap::new(),
        }
    }
}

/// Why the archive could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory is unusable.
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The object store could not be opened.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The index could not be opened.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Why an ingest did not produce a document. Nothing partial is recorded: objects already stored stay
/// unreferenced (content-addressed, so a retry reuses them) and no database row points at them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// A code or field is malformed.
    #[error(transparent)]
    Invalid(#[from] CodeError),
    /// The dossier is registered with other details.
    #[error("{0}")]
    Conflict(String),
    /// No pages were given.
    #[error("no pages to ingest")]
    NoPages,
    /// The document to change is not recorded.
    #[error("no document with hash {0}")]
    DocumentNotFound(String),
    /// The page replacement cannot be done as asked.
    #[error("{0}")]
    Replacement(String),
    /// Some pages failed; the document was not recorded.
    #[error("{} of the pages failed; nothing was recorded. {}", .0.len(), describe_failures(.0))]
    PagesFailed(Vec<PageFailure>),
    /// The page pipeline could not start.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The PDF could not be written.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Database(RepoError),
    /// A work file could not be written.
    #[error("work file: {0}")]
    Io(#[from] std::io::Error),
}

impl From<RepoError> for IngestError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Conflict(message) => Self::Conflict(message),
            other => Self::Database(other),
        }
    }
}

fn describe_failures(failures: &[PageFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What to ingest the pages as.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// The dossier the document belongs to.
    pub dossier: NewDossier,
    /// Submitted component or result.
    pub kind: DocumentKind,
    /// The packaging job and the waiting pages it consumes, when a job ingests them.
    pub job: Option<crate::repo::JobPages>,
}

/// Progress of an ingest, reported after every page.
#[derive(Debug, Clone, Serialize)]
pub struct IngestProgress {
    /// Pages finished (including failed ones).
    pub done: usize,
    /// Pages expected, when the source knows.
    pub total: Option<usize>,
    /// Pages that failed so far.
    pub failed: usize,
    /// The page just finished: its master, OCR confidence and flags (or, failed, why), so a clerk sees
    /// each page as it is read.
    pub page: Option<PageReport>,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(IngestProgress) + Send + Sync>;

/// One page of an ingested document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PageReport {
    /// Page number, from 1.
    pub n: u32,
    /// BLAKE3 of the page master.
    pub blake3: String,
    /// Mean OCR confidence, 0-100, one decimal.
    pub confidence: f32,
    /// Resolution, dots per inch.
    pub dpi: f32,
    /// Whether the resolution was assumed (the file did not say).
    pub dpi_assumed: bool,
    /// Where the page came from.
    pub origin: String,
    /// Quality flags: `blank`, `low-confidence`, `low-resolution`, `rotated`, `deskewed`,
    /// `orientation-uncertain`.
    pub flags: Vec<&'static str>,
    /// Degrees the page was turned to put it upright.
    pub rotated: u16,
    /// Degrees the page was turned to straighten it.
    pub deskewed: f32,
    /// The page's number in the PDF; absent when it was left out (blank).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf_page: Option<u32>,
    /// The flags in words, for the clerk.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The result of an ingest.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IngestReport {
    /// Dossier code.
    pub dossier: String,
    /// BLAKE3 of the packaged PDF.
    pub document: String,
    /// Submitted or result.
    pub kind: DocumentKind,
    /// Size of the PDF in bytes.
    pub bytes: u64,
    /// The pages.
    pub pages: Vec<PageReport>,
    /// Why the document is incomplete (a scan that stopped early), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    /// Pages that could not be read: recorded in their place (flag `failed`), what was delivered for them
    /// kept, left out of the PDF; each can be rescanned with `replace-page`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<crate::routes::FailedPage>,
}

/// Why an object could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The archive holds no object with that hash.
    #[error("no document or page with hash {0}")]
    NotFound(ContentHash),
    /// The store failed or the bytes failed their check.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The archive.
pub struct Archive {
    config: ArchiveConfig,
    repo: Repo,
    blobs: BlobStore,
    index: SearchIndex,
    pipeline: OnceCell<Arc<Pipeline>>,
    tmp_dir: PathBuf,
    certifier: crate::copies::Certifier,
    scan_jobs: crate::routes::ScanJobs,
    sign_ins: crate::routes::SignIns,
    jobs: crate::jobs::JobBoard,
}

impl Archive {
    /// Opens the archive in its data directory, creating what is missing.
    pub async fn open(config: ArchiveConfig) -> Result<Self, OpenError> {
        let dir = &config.data_dir;
        let tmp_dir = dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(|source| OpenError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        sweep_stale_work_files(&tmp_dir);
        let repo = match &config.database_url {
            Some(url) => Repo::open(url).await?,
            None => Repo::open_sqlite(&dir.join("sohoa.db")).await?,
        };
        let blobs = match &config.objects_url {
            Some(url) => BlobStore::open(url, &config.objects_options)?,
            None => BlobStore::local(&dir.join("objects"))?,
        };
        let index = SearchIndex::open(&dir.join("index"))?;
        let certifier = crate::copies::Certifier::new(dir.join("certs"), config.units.clone());
        Ok(Self {
            certifier,
            scan_jobs: crate::routes::ScanJobs::default(),
            sign_ins: crate::routes::SignIns::default(),
            jobs: crate::jobs::JobBoard::default(),
            config,
            repo,
            blobs,
            index,
            pipeline: OnceCell::new(),
            tmp_dir,
        })
    }

    /// The database.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The search index.
    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// Records that `document` is incomplete and why (a scan stopped by a jam): its pages are kept, and the
    /// clerk is to add the rest.
    pub async fn mark_incomplete(&self, document: &str, reason: &str) -> Result<(), RepoError> {
        self.repo.mark_incomplete(document, reason).await
    }

    /// How often each stored object is re-checked in the background.
    pub fn fixity_interval(&self) -> Option<std::time::Duration> {
        self.config.fixity_interval
    }

    /// Largest HTTP upload accepted, in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.config.max_upload_bytes
    }

    /// The object store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The processing jobs running in this process.
    pub fn jobs(&self) -> &crate::jobs::JobBoard {
        &self.jobs
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// Whether the database and the object store answer.
    pub async fn ready(&self) -> Result<(), String> {
        self.repo.ping().await.map_err(|e| e.to_string())?;
        self.blobs
            .exists(&ContentHash::of(b"readiness probe"))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The scan jobs started over HTTP.
    pub(crate) fn sign_ins(&self) -> &crate::routes::SignIns {
        &self.sign_ins
    }

    pub(crate) fn scan_jobs(&self) -> &crate::routes::ScanJobs {
        &self.scan_jobs
    }

    /// Who signs certified copies.
    pub(crate) fn certifier(&self) -> &crate::copies::Certifier {
        &self.certifier
    }

    /// The folder for work files, inside the data directory so renames stay on one file system.
    pub fn tmp_dir(&self) -> &std::path::Path {
        &self.tmp_dir
    }

    async fn pipeline(&self) -> Result<Arc<Pipeline>, IngestError> {
        let options = self.config.pipeline.clone();
        let pipeline = self
            .pipeline
            .get_or_try_init(|| async move {
                // Starting OCR engines reads hundreds of megabytes of models: keep it off the async workers.
                tokio::task::spawn_blocking(move || Pipeline::new(options))
                    .await
                    .map_err(|e| IngestError::Io(std::io::Error::other(e)))?
                    .map(Arc::new)
                    .map_err(IngestError::from)
            })
            .await?;
        Ok(Arc::clone(pipeline))
    }

    /// Runs every page of `source` through the pipeline and, if all succeed, stores the page masters and
    /// the packaged PDF (objects first), then records the document in one transaction and indexes it.
    pub async fn ingest(
        &self,
        request: IngestRequest,
        source: Box<dyn PageSource>,
        progress: ProgressFn,
    ) -> Result<IngestReport, IngestError> {
        self.package_and_record(request, source, progress, None)
            .await
    }

    /// Replaces page `number` of `document` with the one page `replacement` yields (a rescan of a flagged
    /// page): the document is packaged again from its stored masters and the new page, recorded as a new
    /// document of the same dossier that replaces the old one. The old document stays stored and
    /// recorded, but leaves search results.
    pub async fn replace_page(
        &self,
        document: &ContentHash,
        number: u32,
        replacement: Box<dyn PageSource>,
        progress: ProgressFn,
    ) -> Result<IngestReport, IngestError> {
        let stored = self
            .repo
            .stored_document(&document.to_hex())
            .await?
            .ok_or_else(|| IngestError::DocumentNotFound(document.to_hex()))?;
        if let Some(newer) = &stored.superseded_by {
            return Err(IngestError::Replacement(format!(
                "document {document} was already replaced by {newer}: replace the page there"
            )));
        }
        let count = stored.pages.len();
        if number == 0 || number as usize > count {
            return Err(IngestError::Replacement(format!(
                "document {document} has pages 1 to {count}, not page {number}"
            )));
        }
        match replacement.expected_pages() {
            Some(1) => {}
            Some(n) => {
                return Err(IngestError::Replacement(format!(
                    "the replacement must be one page, the file given has {n}"
                )));
            }
            None => {}
        }
        let request = IngestRequest {
            dossier: NewDossier {
                code: DossierCode::parse(&stored.dossier)?,
                procedure: ProcedureCode::parse(&stored.procedure)?,
                unit: UnitCode::parse(&stored.unit)?,
            },
            kind: stored.kind.parse()?,
            job: None,
        };
        let source = StoredPages {
            pages: stored.pages.into_iter(),
            replace: number,
            replacement: Some(replacement),
            blobs: self.blobs.clone(),
            runtime: tokio::runtime::Handle::current(),
            total: count,
        };
        self.package_and_record(request, Box::new(source), progress, Some(document.to_hex()))
            .await
    }

    async fn package_and_record(
        &self,
        request: IngestRequest,
        mut source: Box<dyn PageSource>,
        progress: ProgressFn,
        replaces: Option<String>,
    ) -> Result<IngestReport, IngestError> {
        self.repo.check_dossier(&request.dossier).await?;
        let pipeline = self.pipeline().await?;

        // Page masters go to the store while later pages are still being read; the bounded channel keeps
        // memory to a few pages if the store is slower than OCR.
        let (to_store, mut from_pipeline) = mpsc::channel::<Blob>(4);
        let blobs = self.blobs.clone();
        let uploader = tokio::spawn(async move {
            while let Some(blob) = from_pipeline.recv().await {
                blobs
                    .put(&blob.blake3.into(), Bytes::from_owner(blob.bytes))
                    .await?;
            }
            Ok::<_, BlobError>(())
        });

        let pdf_file = tempfile::NamedTempFile::new_in(&self.tmp_dir)?;
        let writer = BufWriter::new(pdf_file.as_file().try_clone()?);
        let info = document_info(&request);
        let keep_blank = self.config.keep_blank_pages;
        let spool = PageSpool::new_in(&self.tmp_dir)?;
        let packaged = tokio::task::spawn_blocking(move || {
            package(
                &pipeline,
                &mut *source,
                Output {
                    pdf: writer,
                    info,
                    keep_blank,
                    pages: spool,
                },
                &to_store,
                &*progress,
            )
        })
        .await
        .map_err(|e| IngestError::Io(std::io::Error::other(e)))?;
        let uploaded = uploader
            .await
            .map_err(|e| IngestError::Io(std::io::Error::other(e)))?;
        let Packaged {
            pages,
            objects,
            reports,
            failed,
        } = packaged?;
        uploaded?;

        let pdf_hash = {
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(std::fs::File::open(pdf_file.path())?)?;
            ContentHash::from(hasher.finalize())
        };
        let pdf_size = pdf_file.as_file().metadata()?.len();
        self.blobs.put_file(&pdf_hash, pdf_file.path()).await?;
        drop(pdf_file);

        let mut objects = objects;
        objects.push(ObjectRecord {
            blake3: pdf_hash.to_hex(),
            size: pdf_size,
            media_type: "application/pdf".to_owned(),
        });
        let report = IngestReport {
            dossier: request.dossier.code.to_string(),
            document: pdf_hash.to_hex(),
            kind: request.kind,
            bytes: pdf_size,
            pages: reports,
            incomplete: None,
            failed,
        };
        self.repo
            .record_document(&mut NewDocument {
                dossier: request.dossier,
                kind: request.kind,
                blake3: pdf_hash.to_hex(),
                pages,
                objects,
                replaces,
                job: request.job,
            })
            .await?;
        // The document is safe in the database; the index catches up later if this fails.
        if let Err(e) = self.index.sync(&self.repo).await {
            tracing::warn!(error = %e, "index not updated after ingest; it will catch up on the next sync");
        }
        Ok(report)
    }

    /// Searches the index, after bringing it up to date with the database. Pages of documents that were
    /// replaced (a page rescanned) are not in the index.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResults, IndexError> {
        self.index.sync(&self.repo).await?;
        self.index.search(query)
    }

    /// The bytes and media type of a stored object (a document PDF or a page master), verified against
    /// the hash.
    pub async fn object(&self, hash: &ContentHash) -> Result<(Bytes, String), ObjectError> {
        let media_type = self
            .repo
            .object_media_type(&hash.to_hex())
            .await?
            .ok_or(ObjectError::NotFound(*hash))?;
        let bytes = self.blobs.get(hash).await.map_err(|e| match e {
            BlobError::NotFound(hash) => {
                tracing::error!(%hash, "object recorded in the database is missing from the store");
                ObjectError::Blob(e)
            }
            other => ObjectError::Blob(other),
        })?;
        Ok((bytes, media_type))
    }
}

/// The pages of a recorded document, read back from the store, with one page replaced by a rescan.
struct StoredPages {
    pages: std::vec::IntoIter<StoredPage>,
    replace: u32,
    replacement: Option<Box<dyn PageSource>>,
    blobs: BlobStore,
    runtime: tokio::runtime::Handle,
    total: usize,
}

impl PageSource for StoredPages {
    fn next_page(&mut self) -> Option<Result<ScannedPage, SourceError>> {
        let page = self.pages.next()?;
        if page.number == self.replace {
            let mut replacement = self.replacement.take()?;
            return Some(replacement.next_page().unwrap_or_else(|| {
                Err(SourceError {
                    origin: page.origin.clone(),
                    reason: "the replacement file has no page".to_owned(),
                })
            }));
        }
        let failed = |reason: String| {
            Some(Err(SourceError {
                origin: page.origin.clone(),
                reason,
            }))
        };
        let hash = match ContentHash::parse(&page.blake3) {
            Ok(hash) => hash,
            Err(e) => return failed(format!("the recorded master hash is damaged: {e}")),
        };
        // The pipeline pulls pages on a blocking thread, so waiting for the store here is allowed.
        let bytes = match self.runtime.block_on(self.blobs.get(&hash)) {
            Ok(bytes) => bytes,
            Err(e) => return failed(format!("cannot read the stored master: {e}")),
        };
        let Some(format) = PageFormat::sniff(&bytes) else {
            return failed("the stored master is not an image".to_owned());
        };
        Some(Ok(ScannedPage {
            origin: page.origin,
            bytes: Arc::from(bytes.as_ref()),
            format,
            frame: 0,
            frames: 1,
            dpi: Some(page.dpi),
            container: None,
            turn: None,
        }))
    }

    fn expected_pages(&self) -> Option<usize> {
        Some(self.total)
    }
}

/// Work files older than this are left over from a crash; younger ones may belong to an ingest running in
/// another process on the same data directory.
const STALE_WORK_FILE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Removes work files (PDFs being written, uploads being spooled) that a crashed process left behind.
fn sweep_stale_work_files(tmp_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(tmp_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_WORK_FILE);
        if stale {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a work file left by an earlier crash")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale work file")
                }
            }
        }
    }
}

fn document_info(request: &IngestRequest) -> DocumentInfo {
    let dossier = &request.dossier;
    DocumentInfo {
        title: format!("{} ({})", dossier.code, request.kind.as_str()),
        author: dossier.unit.to_string(),
        subject: format!(
            "Dossier {}, procedure {}, unit {}",
            dossier.code, dossier.procedure, dossier.unit
        ),
        keywords: format!("{} {} {}", dossier.code, dossier.procedure, dossier.unit),
        identifier: dossier.code.to_string(),
        dossier: pipeline::pdf::DossierMetadata {
            dossier: dossier.code.to_string(),
            procedure: dossier.procedure.to_string(),
            unit: dossier.unit.to_string(),
            kind: request.kind.as_str().to_owned(),
        },
        // The date of receipt belongs to the dossier: the same pages still package to the same bytes.
        created: Some(crate::time::received_rfc3339(&dossier.code)),
    }
}

struct Packaged {
    pages: PageSpool,
    objects: Vec<ObjectRecord>,
    reports: Vec<PageReport>,
    failed: Vec<crate::routes::FailedPage>,
}

/// Where packaging writes: the PDF, what it says about itself, whether blank pages go in, and the page
/// records.
struct Output {
    pdf: BufWriter<std::fs::File>,
    info: DocumentInfo,
    keep_blank: bool,
    pages: PageSpool,
}

/// Runs the pipeline over `source`, writing good pages into the PDF and sending their masters to the
/// store. Runs on a blocking thread.
fn package(
    pipeline: &Pipeline,
    source: &mut dyn PageSource,
    output: Output,
    to_store: &mpsc::Sender<Blob>,
    progress: &(dyn Fn(IngestProgress) + Send + Sync),
) -> Result<Packaged, IngestError> {
    let Output {
        pdf: writer,
        info,
        keep_blank,
        mut pages,
    } = output;
    let total = source.expected_pages();
    let mut packager = PdfPackager::new(writer, info)?;
    let mut reports = Vec::new();
    let mut objects: Vec<ObjectRecord> = Vec::new();
    let mut failures = Vec::new();
    let mut last_source: Option<blake3::Hash> = None;
    let mut pdf_pages = 0u32;
    // A document of nothing but blank pages still needs a PDF: the first blank page waits here in case.
    let mut first_blank: Option<(PdfImage, f32, PageGeometry)> = None;
    let mut done = 0;
    pipeline.run(source, |outcome| {
        done += 1;
        match outcome {
            Err(mut failure) => {
                // The page keeps its place: what was delivered is stored, the page recorded as failed.
                let reason = failure.error.to_string();
                let delivered = failure.delivered.take().map_or_else(
                    || Blob::new(reason.clone().into_bytes().into(), "text/plain"),
                    |blob| *blob,
                );
                objects.push(ObjectRecord {
                    blake3: delivered.blake3.to_hex().to_string(),
                    size: delivered.bytes.len() as u64,
                    media_type: delivered.media_type.to_owned(),
                });
                let blake3 = delivered.blake3.to_hex().to_string();
                to_store.blocking_send(delivered).map_err(|_| {
                    IngestError::Io(std::io::Error::other(
                        "the object store stopped accepting pages",
                    ))
                })?;
                let record = NewPage {
                    number: failure.number,
                    blake3: blake3.clone(),
                    source_blake3: None,
                    origin: failure.origin.clone(),
                    width: 0,
                    height: 0,
                    dpi: 0.0,
                    dpi_assumed: false,
                    confidence: 0.0,
                    words_json: "[]".to_owned(),
                    text: String::new(),
                    quality_json: serde_json::json!({ "failed": reason }).to_string(),
                    flags: "failed".to_owned(),
                    geometry_json: "null".to_owned(),
                    pdf_page: None,
                };
                pages.push(&record)?;
                reports.push(PageReport {
                    n: failure.number,
                    blake3,
                    confidence: 0.0,
                    dpi: 0.0,
                    dpi_assumed: false,
                    origin: failure.origin.clone(),
                    flags: vec!["failed"],
                    rotated: 0,
                    deskewed: 0.0,
                    pdf_page: None,
                    note: reason,
                });
                metrics::counter!("sohoa_pages_failed_total").increment(1);
                failures.push(failure);
            }
            Ok(page) => {
                let pdf_page = if page.quality.blank && !keep_blank {
                    if first_blank.is_none() && pdf_pages == 0 {
                        first_blank = Some((page.pdf_image.clone(), page.dpi, page.geometry));
                    }
                    None
                } else {
                    packager.add_page(PdfPage {
                        image: &page.pdf_image,
                        dpi: page.dpi,
                        words: &page.text.words,
                        geometry: &page.geometry,
                    })?;
                    pdf_pages += 1;
                    Some(pdf_pages)
                };
                let mut blobs = vec![page.master.clone()];
                // The pages of a multi-page file share it: store it with its first page.
                if let Some(file) = page
                    .source_file
                    .as_ref()
                    .filter(|f| last_source != Some(f.blake3))
                {
                    last_source = Some(file.blake3);
                    blobs.push(file.clone());
                }
                for blob in blobs {
                    objects.push(ObjectRecord {
                        blake3: blob.blake3.to_hex().to_string(),
                        size: blob.bytes.len() as u64,
                        media_type: blob.media_type.to_owned(),
                    });
                    to_store.blocking_send(blob).map_err(|_| {
                        IngestError::Io(std::io::Error::other(
                            "the object store stopped accepting pages",
                        ))
                    })?;
                }
                let record = NewPage {
                    number: page.number,
                    blake3: page.master.blake3.to_hex().to_string(),
                    source_blake3: page
                        .source_file
                        .as_ref()
                        .map(|f| f.blake3.to_hex().to_string()),
                    origin: page.origin,
                    width: page.width,
                    height: page.height,
                    dpi: page.dpi,
                    dpi_assumed: page.dpi_assumed,
                    confidence: page.text.confidence,
                    words_json: serde_json::to_string(&page.text.words)
                        .unwrap_or_else(|_| "[]".to_owned()),
                    text: page.text.text,
                    quality_json: serde_json::to_string(&page.quality)
                        .unwrap_or_else(|_| "{}".to_owned()),
                    flags: page.quality.flags().join(","),
                    geometry_json: serde_json::to_string(&page.geometry)
                        .unwrap_or_else(|_| "null".to_owned()),
                    pdf_page,
                };
                pages.push(&record)?;
                metrics::counter!("sohoa_pages_processed_total").increment(1);
                metrics::histogram!("sohoa_ocr_seconds").record(f64::from(page.ocr_seconds));
                reports.push(PageReport {
                    n: record.number,
                    blake3: record.blake3,
                    confidence: (record.confidence * 10.0).round() / 10.0,
                    dpi: record.dpi,
                    dpi_assumed: record.dpi_assumed,
                    origin: record.origin,
                    flags: page.quality.flags(),
                    rotated: page.quality.rotated_degrees,
                    deskewed: page.quality.deskewed_degrees,
                    pdf_page,
                    note: page.quality.describe(),
                });
            }
        }
        progress(IngestProgress {
            done,
            total,
            failed: failures.len(),
            page: reports.last().cloned(),
        });
        Ok::<_, IngestError>(())
    })?;
    // With no page read there is no document to keep: refuse, naming every page.
    if !failures.is_empty() && failures.len() == reports.len() {
        return Err(IngestError::PagesFailed(failures));
    }
    if pages.is_empty() {
        return Err(IngestError::NoPages);
    }
    let failed = failures
        .iter()
        .map(|f| crate::routes::FailedPage {
            n: f.number,
            origin: f.origin.clone(),
            reason: f.error.to_string(),
        })
        .collect();
    if let (0, Some((image, dpi, geometry))) = (pdf_pages, &first_blank) {
        packager.add_page(PdfPage {
            image,
            dpi: *dpi,
            words: &[],
            geometry,
        })?;
        if let Some(first) = reports.first_mut() {
            first.pdf_page = Some(1);
            pages.set_pdf_page(first.n, 1);
        }
    }
    let mut writer = packager.finish()?;
    writer.flush()?;
    writer.get_ref().sync_all()?;
    Ok(Packaged {
        pages,
        objects,
        reports,
        failed,
    })
}
