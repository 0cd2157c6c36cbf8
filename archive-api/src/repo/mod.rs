//! The database port: dossiers, documents, pages and objects. Handlers see [`RepoError`], never
//! `sqlx::Error`. SQLite is the embedded default and PostgreSQL the shared one; the queries are written once
//! for both (see `backend.rs` for the few phrases they spell differently).

mod accounts;
mod backend;
mod documents;
mod dossiers;
mod export;
mod fixity;
mod jobs;
mod sign_ins;
mod spool;
mod stats;

pub use accounts::{Account, AuditEntry, AuditFilter, NewAuditEntry, TokenOwner, TokenRecord};
#[cfg(test)]
pub(crate) use backend::test_repos;
pub use backend::{Backend, redact};
pub use documents::Repo;
pub use dossiers::{
    DocumentSummary, DossierChange, DossierDetails, DossierFilter, DossierRecord, PageSummary,
    PageText, PendingPage, ProcedureRecord, UnitRecord,
};
pub use export::{
    CopyExport, CopyIssueRecord, DocumentRecord, DossierContext, ImportOutcome, PageRecord,
    ReuseRecord, StatusChangeRecord,
};
pub use jobs::{JOB_CHANNEL, JobAnnouncement, JobRecord, KeptAnswer};
pub use sign_ins::SignInLimits;
pub use spool::PageSpool;
pub use stats::{StatsGroup, StatsQuery, StatsRow};

use serde::{Deserialize, Serialize};

use crate::codes::{DocumentKind, DossierCode, ProcedureCode, UnitCode};

/// What went wrong with the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// The write contradicts what is recorded.
    #[error("{0}")]
    Conflict(String),
    /// What was asked for is not recorded.
    #[error("{0}")]
    NotFound(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A work file (page records waiting for the database, a token file) could not be written or read.
    #[error("work file: {0}")]
    Spool(#[from] std::io::Error),
}

/// A dossier as the desk registers it.
#[derive(Debug, Clone)]
pub struct NewDossier {
    /// The dossier code.
    pub code: DossierCode,
    /// The procedure it follows.
    pub procedure: ProcedureCode,
    /// The unit handling it.
    pub unit: UnitCode,
}

/// An object put in the store, to be recorded with the rows that reference it.
#[derive(Debug, Clone)]
pub struct ObjectRecord {
    /// BLAKE3, hexadecimal.
    pub blake3: String,
    /// Size in bytes.
    pub size: u64,
    /// IANA media type.
    pub media_type: String,
}

/// A page to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewPage {
    /// Number in the document, from 1.
    pub number: u32,
    /// BLAKE3 of the page master.
    pub blake3: String,
    /// BLAKE3 of the multi-page file the page came from, if any.
    pub source_blake3: Option<String>,
    /// The file name the page came from.
    pub origin: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Dots per inch.
    pub dpi: f32,
    /// Whether the dpi was assumed.
    pub dpi_assumed: bool,
    /// Mean OCR confidence.
    pub confidence: f32,
    /// OCR text, NFC.
    pub text: String,
    /// Word boxes, JSON.
    pub words_json: String,
    /// Quality flags, JSON.
    pub quality_json: String,
    /// Quality flag names, comma-separated.
    pub flags: String,
    /// How the page OCR read maps onto the master, JSON.
    pub geometry_json: String,
    /// The page's number in the packaged PDF, `None` when left out (blank).
    pub pdf_page: Option<u32>,
}

/// A packaged document to record, with everything it references.
#[derive(Debug)]
pub struct NewDocument {
    /// The dossier, created if new.
    pub dossier: NewDossier,
    /// Submitted component or result.
    pub kind: DocumentKind,
    /// BLAKE3 of the PDF.
    pub blake3: String,
    /// The pages, in order, waiting in a work file so a long document's text and word boxes are not all
    /// held in memory.
    pub pages: PageSpool,
    /// Every object the rows reference (PDF, masters, source files).
    pub objects: Vec<ObjectRecord>,
    /// The document this one replaces (a page rescanned), which leaves search results.
    pub replaces: Option<String>,
    /// The job that packaged it from waiting pages, if one did.
    pub job: Option<JobPages>,
}

/// A packaging job and the waiting pages it packages.
#[derive(Debug, Clone)]
pub struct JobPages {
    /// The job's id.
    pub id: String,
    /// The waiting pages (ids in `pending_pages`) the document is made of.
    pub pending: Vec<i64>,
}

/// A recorded document, with what is needed to package it again.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    /// Dossier code.
    pub dossier: String,
    /// Procedure code.
    pub procedure: String,
    /// Unit code.
    pub unit: String,
    /// `submitted` or `result`.
    pub kind: String,
    /// The document that replaced this one, if any.
    pub superseded_by: Option<String>,
    /// The pages, in order.
    pub pages: Vec<StoredPage>,
}

/// A recorded page's master.
#[derive(Debug, Clone)]
pub struct StoredPage {
    /// Page number, from 1.
    pub number: u32,
    /// BLAKE3 of the master.
    pub blake3: String,
    /// Where it came from.
    pub origin: String,
    /// Its resolution.
    pub dpi: f32,
}

/// A page as the search index needs it.
#[derive(Debug, Clone)]
pub struct IndexedPage {
    /// The page row's id; the index follows pages in id order.
    pub id: i64,
    /// Dossier code.
    pub dossier: String,
    /// Procedure code.
    pub procedure: String,
    /// Unit code.
    pub unit: String,
    /// Document kind.
    pub kind: String,
    /// BLAKE3 of the document's PDF.
    pub document: String,
    /// Page number.
    pub number: u32,
    /// OCR text.
    pub text: String,
    /// The applicant's name.
    pub applicant: String,
    /// The dossier's status code.
    pub status: u8,
    /// When the dossier was received, UNIX time.
    pub received: i64,
    /// The unit's level, empty if the unit is not registered.
    pub level: String,
    /// The procedure's field, empty if the procedure is not registered.
    pub field: String,
}

/// A certified copy as recorded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopyRecord {
    /// BLAKE3 of the certified copy's PDF.
    pub blake3: String,
    /// BLAKE3 of the archived document it certifies.
    pub document: String,
    /// The certifying unit's code.
    pub unit: String,
    /// SHA-256 of the signer's certificate.
    pub certificate: String,
    /// The certificate's subject.
    pub subject: String,
    /// Whether it was signed with the development certificate (no legal value).
    pub development: bool,
    /// Signing time, RFC 3339 in Vietnam time.
    pub signed_at: String,
}

/// Counts of what the archive holds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Dossiers.
    pub dossiers: i64,
    /// Documents.
    pub documents: i64,
    /// Pages.
    pub pages: i64,
}
