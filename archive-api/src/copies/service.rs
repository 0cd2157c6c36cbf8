//! Issuing and verifying certified copies against the archive's records.

use bytes::Bytes;
use serde::Serialize;

use super::{KeyError, SignatureCheck, certify, check_signature, rfc3339};
use crate::archive::Archive;
use crate::blobs::BlobError;
use crate::codes::ContentHash;
use crate::repo::{CopyRecord, ObjectRecord, RepoError};

/// Why a certified copy could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// No archived document or certified copy has this hash.
    #[error("no archived document or certified copy has the hash {0}")]
    NotFound(ContentHash),
    /// The unit's certificate or key is unusable.
    #[error("the signing certificate of unit {unit} is unusable: {source}")]
    Key {
        /// The unit.
        unit: String,
        /// Why.
        source: KeyError,
    },
    /// The copy could not be made.
    #[error("cannot make the certified copy: {0}")]
    Certify(String),
    /// The store failed or the bytes failed their check.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A certified copy handed out.
#[derive(Debug, Clone)]
pub struct IssuedCopy {
    /// What the archive records of it.
    pub record: CopyRecord,
    /// The PDF, verified against its hash.
    pub bytes: Bytes,
}

/// The answer to "is this an intact copy issued by this archive?".
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The signature verifies and covers the whole, unchanged file.
    pub intact: bool,
    /// This very file (by its BLAKE3) is a copy this archive issued, signed with a certificate it holds.
    pub issued_by_this_archive: bool,
    /// BLAKE3 of the file checked.
    pub blake3: String,
    /// What the signature says.
    pub signature: SignatureCheck,
    /// The archive's record of the copy, when it issued it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyRecord>,
}

impl Verification {
    /// Intact and issued here.
    pub fn valid(&self) -> bool {
        self.intact && self.issued_by_this_archive
    }
}

impl Archive {
    /// The certified copy of the archived document `hash` (or the copy whose own hash is `hash`), signed by
    /// the document's unit. A copy made before with the same certificate is served again; a new one is
    /// made, stored (object first, then its row) otherwise. Every issue is recorded with `issued_to`.
    pub async fn certified_copy(
        &self,
        hash: &ContentHash,
        issued_to: &str,
    ) -> Result<IssuedCopy, CopyError> {
        let hex = hash.to_hex();
        let record = match self.repo().copy(&hex).await? {
            Some(record) => record,
            None => {
                let document = self
                    .repo()
                    .stored_document(&hex)
                    .await?
                    .ok_or(CopyError::NotFound(*hash))?;
                let certifier = self.certifier();
                let unit = document.unit;
                let signer = certifier.signer(&unit).map_err(|source| CopyError::Key {
                    unit: unit.clone(),
                    source,
                })?;
                match self.repo().copy_of(&hex, &signer.fingerprint()).await? {
                    Some(record) => record,
                    None => {
                        let original = self.blobs().get(hash).await?;
                        let unit_name = certifier.unit_name(&unit).map(str::to_owned);
                        let (copy, signer) = {
                            let unit = unit.clone();
                            tokio::task::spawn_blocking(move || {
                                certify(&original, &unit, unit_name.as_deref(), &signer)
                                    .map(|copy| (copy, signer))
                            })
                            .await
                            .map_err(|e| CopyError::Certify(e.to_string()))?
                            .map_err(CopyError::Certify)?
                        };
                        let copy_hash = ContentHash::of(&copy.bytes);
                        let size = copy.bytes.len() as u64;
                        self.blobs()
                            .put(&copy_hash, Bytes::from(copy.bytes))
                            .await?;
                        let record = CopyRecord {
                            blake3: copy_hash.to_hex(),
                            document: hex.clone(),
                            unit,
                            certificate: signer.fingerprint(),
                            subject: signer.subject(),
                            development: signer.development,
                            signed_at: rfc3339(copy.signed_at),
                        };
                        self.repo()
                            .record_copy(
                                &record,
                                &ObjectRecord {
                                    blake3: record.blake3.clone(),
                                    size,
                                    media_type: "application/pdf".into(),
                                },
                            )
                            .await?;
                        record
                    }
                }
            }
        };
        let copy_hash =
            ContentHash::parse(&record.blake3).map_err(|e| CopyError::Certify(e.to_string()))?;
        let bytes = self.blobs().get(&copy_hash).await?;
        self.repo().record_copy_issue(&record, issued_to).await?;
        tracing::info!(copy = %record.blake3, document = %record.document, unit = %record.unit, issued_to, "certified copy issued");
        Ok(IssuedCopy { record, bytes })
    }

    /// Whether `pdf` is an intact certified copy issued by this archive: its signature verifies over the
    /// whole file, and the archive recorded this exact file as a copy it issued.
    pub async fn verify_copy(&self, pdf: Bytes) -> Result<Verification, RepoError> {
        let blake3 = ContentHash::of(&pdf).to_hex();
        let signature = tokio::task::spawn_blocking(move || check_signature(&pdf))
            .await
            .unwrap_or_else(|_| SignatureCheck {
                intact: false,
                problem: Some("the PDF could not be checked".into()),
                signer: None,
                certificate: None,
                signed_at: None,
            });
        let copy = self.repo().copy(&blake3).await?;
        let issued_by_this_archive = match (&copy, &signature.certificate) {
            (Some(copy), Some(certificate)) => &copy.certificate == certificate,
            _ => false,
        };
        let mut signature = signature;
        if signature.intact && !issued_by_this_archive && signature.problem.is_none() {
            signature.problem = Some(
                "the signature is intact, but this archive has no record of issuing this file"
                    .into(),
            );
        }
        Ok(Verification {
            intact: signature.intact,
            issued_by_this_archive,
            blake3,
            signature,
            copy,
        })
    }
}
