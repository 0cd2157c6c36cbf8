//! Preservation packages: one dossier as a BagIt bag (RFC 8493) that a person or another system reads
//! without sohoa, and such a bag read back into an archive.
//!
//! A bag of dossier `000.00.15.H27-231128-0042` holds:
//! - `bagit.txt`, `bag-info.txt` (Source-Organization: the unit; External-Identifier: the dossier code;
//!   Bagging-Date, Payload-Oxum, Bag-Software-Agent), `manifest-sha512.txt` and `manifest-sha256.txt`
//!   over the payload, `tagmanifest-sha512.txt` and `tagmanifest-sha256.txt` over the tag files;
//! - `data/documents/<kind>-<blake3>.pdf`: each document's PDF/A;
//! - `data/pages/<first 16 digits of the document's blake3>/<NNNN>-<blake3>.<ext>`: each page master, under
//!   the first document that has it (a document packaged again after a page was rescanned shares the
//!   others);
//! - `data/sources/<blake3>.<ext>`: files pages were taken from (a multi-page TIFF, a scan-to-PDF file);
//! - `data/copies/<blake3>.pdf`: each certified copy made of the dossier's documents (signed PDFs, intact);
//! - `data/metadata/dossier.json`: the dossier's details, every document and every page row in full, the
//!   certified copies with every issue of them, and every object with its file in the bag, media type and
//!   size;
//! - `data/metadata/audit.json`: the audit log's lines about the dossier, oldest first (who read, changed or
//!   was refused what, and when). A record of this archive: import keeps it in the bag and does not add
//!   it to the importing archive's own log.
//!
//! Export reads every object through [`Archive::object`], which checks it against its BLAKE3, and builds
//! the bag in a folder beside its destination, renamed into place at the end: a failure never leaves half
//! a bag under the destination's name. Import believes nothing before it has checked everything (the
//! bag's checksums, the paths in its manifests, every object against the BLAKE3 that `dossier.json` gives
//! it), then stores the objects and records the dossier in one transaction; importing the same bag again
//! changes nothing.
//!
//! ```no_run
//! # async fn demo(archive: &archive_api::Archive) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use archive_api::codes::DossierCode;
//!
//! let code = DossierCode::parse("000.00.15.H27-231128-0042")?;
//! let quiet: archive_api::export::BagProgressFn = Arc::new(|_| {});
//! archive.export_dossier(&code, "bag-0042".as_ref(), "sohoa 0.1.0", quiet.clone()).await?;
//! let report = archive.import_bag("bag-0042".as_ref(), quiet).await?;
//! assert!(!report.outcome.changed(), "it came from this archive");
//! # Ok(()) }
//! ```

mod bagit;
mod import;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use import::{ImportError, ImportReport};

use crate::archive::{Archive, ObjectError};
use crate::codes::{ContentHash, DossierCode};
use crate::repo::{
    AuditEntry, AuditFilter, CopyExport, CopyIssueRecord, CopyRecord, DocumentRecord,
    DossierRecord, PageRecord, ProcedureRecord, RepoError, ReuseRecord, StatusChangeRecord,
    UnitRecord,
};

/// What `data/metadata/dossier.json` declares itself to be.
const FORMAT: &str = "sohoa-dossier/1";
/// Where the description lies in the bag.
const DESCRIPTION: &str = "data/metadata/dossier.json";
/// Where the dossier's audit lines lie in the bag.
const AUDIT: &str = "data/metadata/audit.json";
/// Audit lines read at a time.
const AUDIT_PAGE: i64 = 1000;

/// How far an export or import has come.
#[derive(Debug, Clone, Copy)]
pub struct BagProgress {
    /// `writing` (export: objects written), `checking` (import: bytes of the bag hashed) or `storing`
    /// (import: objects put in the store).
    pub step: &'static str,
    /// Done so far.
    pub done: u64,
    /// To do in this step.
    pub total: u64,
}

/// A progress callback.
pub type BagProgressFn = Arc<dyn Fn(BagProgress) + Send + Sync>;

/// Why a dossier could not be exported. Nothing is left under the destination's name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// No dossier has this code.
    #[error("no dossier {0} in the archive")]
    DossierNotFound(String),
    /// The destination holds something already.
    #[error("{0} already exists and is not an empty directory; give a new or empty directory")]
    Occupied(String),
    /// A file of the bag could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An object could not be read back intact.
    #[error("{what} ({blake3}): {source}")]
    Object {
        /// The object's BLAKE3.
        blake3: String,
        /// What it is to the dossier.
        what: String,
        /// Why.
        source: ObjectError,
    },
    /// A recorded value cannot be written as it is (a hash or JSON column damaged in the database).
    #[error("{0}")]
    Damaged(String),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// Dossier code.
    pub dossier: String,
    /// The bag.
    pub path: PathBuf,
    /// Documents in it.
    pub documents: usize,
    /// Page rows in it.
    pub pages: usize,
    /// Payload files, `dossier.json` included.
    pub files: usize,
    /// Payload bytes.
    pub bytes: u64,
}

/// `data/metadata/dossier.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Package {
    format: String,
    dossier: PackageDossier,
    documents: Vec<PackageDocument>,
    /// Absent from bags written before copies were carried.
    #[serde(default)]
    copies: Vec<PackageCopy>,
    objects: Vec<PackageObject>,
    /// The dossier's unit as the registry names it (`null` when not registered; absent from bags written
    /// before the registry was carried).
    #[serde(default)]
    unit: Option<UnitRecord>,
    /// Its procedure as the registry names it.
    #[serde(default)]
    procedure: Option<ProcedureRecord>,
    /// Digitized results of other dossiers that this dossier reused.
    #[serde(default)]
    reuses: Vec<ReuseRecord>,
    /// The dossier's changes of status, oldest first (the statistics of past periods count by them).
    #[serde(default)]
    status_changes: Vec<StatusChangeRecord>,
}

/// A certified copy, and every issue of it.
#[derive(Debug, Serialize, Deserialize)]
struct PackageCopy {
    blake3: String,
    file: String,
    document: String,
    unit: String,
    certificate: String,
    subject: String,
    development: bool,
    signed_at: String,
    created_at: String,
    issues: Vec<PackageCopyIssue>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PackageCopyIssue {
    issued_to: String,
    issued_at: String,
}

/// `data/metadata/audit.json`.
#[derive(Debug, Serialize)]
struct PackageAudit<'a> {
    format: &'static str,
    dossier: &'a str,
    entries: Vec<AuditEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PackageDossier {
    code: String,
    procedure: String,
    unit: String,
    applicant: String,
    received_at: String,
    due_at: Option<String>,
    resolved_at: Option<String>,
    status: u8,
    channel: u8,
    created_at: String,
    updated_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PackageDocument {
    kind: String,
    blake3: String,
    file: String,
    page_count: i64,
    created_at: String,
    replaces: Option<String>,
    superseded_by: Option<String>,
    incomplete: Option<String>,
    pages: Vec<PackagePage>,
}

/// A page row in full. The JSON columns are carried as written, so they are read back byte for byte.
#[derive(Debug, Serialize, Deserialize)]
struct PackagePage {
    number: i64,
    blake3: String,
    file: String,
    source_blake3: Option<String>,
    source_file: Option<String>,
    origin: String,
    width: i64,
    height: i64,
    dpi: f64,
    dpi_assumed: bool,
    confidence: f64,
    text: String,
    words: Box<RawValue>,
    quality: Box<RawValue>,
    flags: String,
    geometry: Box<RawValue>,
    pdf_page: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PackageObject {
    blake3: String,
    file: String,
    media_type: String,
    size: u64,
}

/// The file name extension for a media type.
fn extension(media_type: &str) -> &'static str {
    match media_type.split(';').next().unwrap_or_default().trim() {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/tiff" => "tif",
        "text/plain" => "txt",
        "application/json" => "json",
        _ => "bin",
    }
}

/// Refuses a destination that exists and is anything but an empty directory.
fn refuse_occupied(target: &Path) -> Result<(), ExportError> {
    let occupied = || ExportError::Occupied(target.display().to_string());
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ExportError::Write {
            path: target.display().to_string(),
            source,
        }),
        Ok(meta) if meta.is_dir() => match std::fs::read_dir(target).map(|mut e| e.next()) {
            Ok(None) => Ok(()),
            _ => Err(occupied()),
        },
        Ok(_) => Err(occupied()),
    }
}

/// An object to write, under the name of its first use.
struct Planned {
    blake3: String,
    stem: String,
    what: String,
}

impl Archive {
    /// Writes dossier `code` as a BagIt bag at `target` (which must not exist, or be an empty directory).
    /// `agent` names the software for `bag-info.txt` (`sohoa 0.1.0`).
    pub async fn export_dossier(
        &self,
        code: &DossierCode,
        target: &Path,
        agent: &str,
        progress: BagProgressFn,
    ) -> Result<ExportReport, ExportError> {
        refuse_occupied(target)?;
        let dossier = self
            .repo()
            .dossier(code.as_str())
            .await?
            .ok_or_else(|| ExportError::DossierNotFound(code.to_string()))?;
        let mut documents = Vec::new();
        for summary in self.repo().dossier_documents(code.as_str()).await? {
            let pages = self
                .repo()
                .document_pages(code.as_str(), &summary.document)
                .await?;
            documents.push((summary, pages));
        }

        // Each object once, named by its first use.
        let mut plan: Vec<Planned> = Vec::new();
        let mut seen = HashSet::new();
        let mut add = |blake3: &str, stem: String, what: String| {
            if seen.insert(blake3.to_owned()) {
                plan.push(Planned {
                    blake3: blake3.to_owned(),
                    stem,
                    what,
                });
            }
        };
        for (document, pages) in &documents {
            let hash = &document.document;
            add(
                hash,
                format!("data/documents/{}-{hash}", document.kind),
                format!("the PDF of document {hash}"),
            );
            let folder = hash.get(..16).unwrap_or(hash);
            for page in pages {
                add(
                    &page.blake3,
                    format!("data/pages/{folder}/{:04}-{}", page.number, page.blake3),
                    format!("the master of page {} of document {hash}", page.number),
                );
                if let Some(source) = &page.source_blake3 {
                    add(
                        source,
                        format!("data/sources/{source}"),
                        format!("the file page {} of document {hash} came from", page.number),
                    );
                }
            }
        }

        let copies = self.repo().dossier_copies(code.as_str()).await?;
        for copy in &copies {
            let hash = &copy.copy.blake3;
            add(
                hash,
                format!("data/copies/{hash}"),
                format!(
                    "the certified copy {hash} of document {}",
                    copy.copy.document
                ),
            );
        }
        let audit = self.dossier_audit(code.as_str()).await?;

        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let write_error = |path: &Path| {
            let path = path.display().to_string();
            move |source| ExportError::Write { path, source }
        };
        std::fs::create_dir_all(parent).map_err(write_error(parent))?;
        let staging = tempfile::Builder::new()
            .prefix(".sohoa-export-")
            .tempdir_in(parent)
            .map_err(write_error(parent))?;
        let root = staging.path().to_owned();

        let mut written = Vec::with_capacity(plan.len() + 1);
        let mut objects = Vec::with_capacity(plan.len());
        let total = plan.len() as u64;
        for (done, planned) in plan.into_iter().enumerate() {
            let hash = ContentHash::parse(&planned.blake3).map_err(|e| {
                ExportError::Damaged(format!(
                    "{}: the recorded hash is damaged: {e}",
                    planned.what
                ))
            })?;
            let (bytes, media_type) =
                self.object(&hash)
                    .await
                    .map_err(|source| ExportError::Object {
                        blake3: planned.blake3.clone(),
                        what: planned.what.clone(),
                        source,
                    })?;
            let file = format!("{}.{}", planned.stem, extension(&media_type));
            let entry = write_payload(&root, &file, bytes).await?;
            objects.push(PackageObject {
                blake3: planned.blake3,
                file,
                media_type,
                size: entry.size,
            });
            written.push(entry);
            progress(BagProgress {
                step: "writing",
                done: done as u64 + 1,
                total,
            });
        }

        let mut package = package(&dossier, &documents, &copies, objects)?;
        let context = self.repo().dossier_context(code.as_str()).await?;
        package.unit = context.unit;
        package.procedure = context.procedure;
        package.reuses = context.reuses;
        package.status_changes = context.status_changes;
        let description = serde_json::to_vec_pretty(&package)
            .map_err(|e| ExportError::Damaged(format!("{DESCRIPTION}: {e}")))?;
        written.push(write_payload(&root, DESCRIPTION, description).await?);
        let audit = serde_json::to_vec_pretty(&PackageAudit {
            format: "sohoa-audit/1",
            dossier: &dossier.code,
            entries: audit,
        })
        .map_err(|e| ExportError::Damaged(format!("{AUDIT}: {e}")))?;
        written.push(write_payload(&root, AUDIT, audit).await?);

        let page_count: usize = documents.iter().map(|(_, pages)| pages.len()).sum();
        let info = vec![
            ("Source-Organization", dossier.unit.clone()),
            ("External-Identifier", dossier.code.clone()),
            (
                "External-Description",
                format!(
                    "Dossier {}, procedure {}, unit {}: {} documents, {page_count} pages",
                    dossier.code,
                    dossier.procedure,
                    dossier.unit,
                    documents.len()
                ),
            ),
            (
                "Bagging-Date",
                crate::time::now_rfc3339().chars().take(10).collect(),
            ),
            ("Bag-Software-Agent", agent.to_owned()),
        ];
        let report = ExportReport {
            dossier: dossier.code.clone(),
            path: target.to_owned(),
            documents: documents.len(),
            pages: page_count,
            files: written.len(),
            bytes: written.iter().map(|w| w.size).sum(),
        };
        {
            let root = root.clone();
            tokio::task::spawn_blocking(move || bagit::write_tag_files(&root, &written, &info))
                .await
                .map_err(|e| ("bag-info.txt".to_owned(), std::io::Error::other(e)))
                .and_then(|written| written)
                .map_err(|(path, source)| ExportError::Write { path, source })?;
        }
        let kept = staging.keep();
        if let Err(source) = std::fs::rename(&kept, target) {
            let _ = std::fs::remove_dir_all(&kept);
            return Err(match source.kind() {
                std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists => {
                    ExportError::Occupied(target.display().to_string())
                }
                _ => ExportError::Write {
                    path: target.display().to_string(),
                    source,
                },
            });
        }
        Ok(report)
    }
}

impl Archive {
    /// Every audit line about dossier `code`, oldest first.
    async fn dossier_audit(&self, code: &str) -> Result<Vec<AuditEntry>, RepoError> {
        let mut entries = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .repo()
                .audit_entries(&AuditFilter {
                    dossier: Some(code.to_owned()),
                    before,
                    limit: AUDIT_PAGE,
                    ..AuditFilter::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            let full = page.len() as i64 == AUDIT_PAGE;
            entries.extend(page);
            if !full {
                break;
            }
        }
        entries.reverse();
        Ok(entries)
    }
}

/// Writes one payload file on a blocking thread.
async fn write_payload(
    root: &Path,
    path: &str,
    bytes: impl AsRef<[u8]> + Send + 'static,
) -> Result<bagit::Written, ExportError> {
    let (root, owned) = (root.to_owned(), path.to_owned());
    tokio::task::spawn_blocking(move || bagit::write_file(&root, &owned, bytes.as_ref()))
        .await
        .map_err(std::io::Error::other)
        .and_then(|written| written)
        .map_err(|source| ExportError::Write {
            path: path.to_owned(),
            source,
        })
}

/// The description of the dossier, its documents, pages and objects.
fn package(
    dossier: &DossierRecord,
    documents: &[(crate::repo::DocumentSummary, Vec<PageRecord>)],
    copies: &[CopyExport],
    objects: Vec<PackageObject>,
) -> Result<Package, ExportError> {
    let file_of = |blake3: &str| {
        objects
            .iter()
            .find(|o| o.blake3 == blake3)
            .map(|o| o.file.clone())
            .unwrap_or_default()
    };
    let mut described = Vec::with_capacity(documents.len());
    for (document, pages) in documents {
        let mut package_pages = Vec::with_capacity(pages.len());
        for page in pages {
            let json = |column: &str, value: &str| {
                RawValue::from_string(value.to_owned()).map_err(|e| {
                    ExportError::Damaged(format!(
                        "page {} of document {}: its {column} are not JSON as recorded: {e}",
                        page.number, document.document
                    ))
                })
            };
            package_pages.push(PackagePage {
                number: page.number,
                blake3: page.blake3.clone(),
                file: file_of(&page.blake3),
                source_blake3: page.source_blake3.clone(),
                source_file: page.source_blake3.as_deref().map(file_of),
                origin: page.origin.clone(),
                width: page.width,
                height: page.height,
                dpi: page.dpi,
                dpi_assumed: page.dpi_assumed,
                confidence: page.confidence,
                text: page.text.clone(),
                words: json("word boxes", &page.words)?,
                quality: json("quality flags", &page.quality)?,
                flags: page.flags.clone(),
                geometry: json("geometry", &page.geometry)?,
                pdf_page: page.pdf_page,
            });
        }
        described.push(PackageDocument {
            kind: document.kind.clone(),
            blake3: document.document.clone(),
            file: file_of(&document.document),
            page_count: document.page_count,
            created_at: document.created_at.clone(),
            replaces: document.replaces.clone(),
            superseded_by: document.superseded_by.clone(),
            incomplete: document.incomplete.clone(),
            pages: package_pages,
        });
    }
    Ok(Package {
        format: FORMAT.to_owned(),
        dossier: PackageDossier {
            code: dossier.code.clone(),
            procedure: dossier.procedure.clone(),
            unit: dossier.unit.clone(),
            applicant: dossier.applicant.clone(),
            received_at: dossier.received_at.clone(),
            due_at: dossier.due_at.clone(),
            resolved_at: dossier.resolved_at.clone(),
            status: dossier.status,
            channel: dossier.channel,
            created_at: dossier.created_at.clone(),
            updated_at: dossier.updated_at.clone(),
        },
        documents: described,
        copies: copies
            .iter()
            .map(|export| PackageCopy {
                blake3: export.copy.blake3.clone(),
                file: file_of(&export.copy.blake3),
                document: export.copy.document.clone(),
                unit: export.copy.unit.clone(),
                certificate: export.copy.certificate.clone(),
                subject: export.copy.subject.clone(),
                development: export.copy.development,
                signed_at: export.copy.signed_at.clone(),
                created_at: export.created_at.clone(),
                issues: export
                    .issues
                    .iter()
                    .map(|issue| PackageCopyIssue {
                        issued_to: issue.issued_to.clone(),
                        issued_at: issue.issued_at.clone(),
                    })
                    .collect(),
            })
            .collect(),
        objects,
        unit: None,
        procedure: None,
        reuses: Vec::new(),
        status_changes: Vec::new(),
    })
}

impl PackageCopy {
    fn record(&self) -> CopyExport {
        CopyExport {
            copy: CopyRecord {
                blake3: self.blake3.clone(),
                document: self.document.clone(),
                unit: self.unit.clone(),
                certificate: self.certificate.clone(),
                subject: self.subject.clone(),
                development: self.development,
                signed_at: self.signed_at.clone(),
            },
            created_at: self.created_at.clone(),
            issues: self
                .issues
                .iter()
                .map(|issue| CopyIssueRecord {
                    issued_to: issue.issued_to.clone(),
                    issued_at: issue.issued_at.clone(),
                })
                .collect(),
        }
    }
}

impl PackagePage {
    fn record(&self) -> PageRecord {
        PageRecord {
            number: self.number,
            blake3: self.blake3.clone(),
            source_blake3: self.source_blake3.clone(),
            origin: self.origin.clone(),
            width: self.width,
            height: self.height,
            dpi: self.dpi,
            dpi_assumed: self.dpi_assumed,
            confidence: self.confidence,
            text: self.text.clone(),
            words: self.words.get().to_owned(),
            quality: self.quality.get().to_owned(),
            flags: self.flags.clone(),
            geometry: self.geometry.get().to_owned(),
            pdf_page: self.pdf_page,
        }
    }
}

impl PackageDocument {
    fn record(&self) -> DocumentRecord {
        DocumentRecord {
            kind: self.kind.clone(),
            blake3: self.blake3.clone(),
            page_count: self.page_count,
            created_at: self.created_at.clone(),
            replaces: self.replaces.clone(),
            superseded_by: self.superseded_by.clone(),
            incomplete: self.incomplete.clone(),
            pages: self.pages.iter().map(PackagePage::record).collect(),
        }
    }
}

impl PackageDossier {
    fn record(&self) -> DossierRecord {
        DossierRecord {
            code: self.code.clone(),
            procedure: self.procedure.clone(),
            unit: self.unit.clone(),
            applicant: self.applicant.clone(),
            received_at: self.received_at.clone(),
            due_at: self.due_at.clone(),
            resolved_at: self.resolved_at.clone(),
            status: self.status,
            channel: self.channel,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }
}
