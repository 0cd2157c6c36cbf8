//! Whole dossiers in and out, for preservation packages: every column of a document's page rows read out,
//! and a packaged dossier recorded back in one transaction.
//!
//! The SQL here is written to run unchanged on SQLite and PostgreSQL: numbered placeholders, `RETURNING`
//! for new ids, `ON CONFLICT ... DO NOTHING`, and only integers, floats and text crossing the boundary
//! (flags as 0/1 integers).

use sqlx::Row;

use serde::{Deserialize, Serialize};

use super::{
    CopyRecord, DossierRecord, ObjectRecord, ProcedureRecord, Repo, RepoError, UnitRecord,
};
use crate::time::now_rfc3339;

/// A page row in full: everything needed to record it again exactly as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRecord {
    /// Number in the document, from 1.
    pub number: i64,
    /// BLAKE3 of the page master.
    pub blake3: String,
    /// BLAKE3 of the multi-page file the page came from, if any.
    pub source_blake3: Option<String>,
    /// The file name the page came from.
    pub origin: String,
    /// Width in pixels.
    pub width: i64,
    /// Height in pixels.
    pub height: i64,
    /// Dots per inch.
    pub dpi: f64,
    /// Whether the dpi was assumed.
    pub dpi_assumed: bool,
    /// Mean OCR confidence.
    pub confidence: f64,
    /// OCR text, NFC.
    pub text: String,
    /// Word boxes, JSON as recorded.
    pub words: String,
    /// Quality flags, JSON as recorded.
    pub quality: String,
    /// Quality flag names, comma-separated.
    pub flags: String,
    /// How the OCR read maps onto the master, JSON as recorded.
    pub geometry: String,
    /// The page's number in the packaged PDF, `None` when left out.
    pub pdf_page: Option<i64>,
}

/// A document row in full, with its pages.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRecord {
    /// `submitted` or `result`.
    pub kind: String,
    /// BLAKE3 of the PDF.
    pub blake3: String,
    /// Pages, as recorded.
    pub page_count: i64,
    /// When it was first recorded.
    pub created_at: String,
    /// The document it replaces.
    pub replaces: Option<String>,
    /// The document that replaced it.
    pub superseded_by: Option<String>,
    /// Why it is incomplete, when it is.
    pub incomplete: Option<String>,
    /// Its pages, in order.
    pub pages: Vec<PageRecord>,
}

/// A certified copy of one of a dossier's documents, with every time it was issued.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyExport {
    /// The copy.
    pub copy: CopyRecord,
    /// When it was first made.
    pub created_at: String,
    /// Who was given it and when, oldest first.
    pub issues: Vec<CopyIssueRecord>,
}

/// One issue of a certified copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyIssueRecord {
    /// Who was given it (a person, or an HTTP client).
    pub issued_to: String,
    /// When, RFC 3339.
    pub issued_at: String,
}

/// What a package says about a dossier beyond its own rows: how the registry names its unit and procedure,
/// and the digitized results of other dossiers it reused.
#[derive(Debug, Clone, Default)]
pub struct DossierContext {
    /// The unit as registered where the package was made.
    pub unit: Option<UnitRecord>,
    /// The procedure as registered there.
    pub procedure: Option<ProcedureRecord>,
    /// Results of other dossiers reused.
    pub reuses: Vec<ReuseRecord>,
    /// Its changes of status, oldest first.
    pub status_changes: Vec<StatusChangeRecord>,
}

/// A change of a dossier's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChangeRecord {
    /// The status before.
    pub status_before: u8,
    /// The status after.
    pub status: u8,
    /// When, RFC 3339.
    pub at: String,
}

/// A digitized result of another dossier that a dossier reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReuseRecord {
    /// BLAKE3 of the reused result document.
    pub document: String,
    /// When the reuse was recorded, RFC 3339.
    pub created_at: String,
}

/// What recording a packaged dossier changed. All zero (and no dossier created) when the archive already
/// held everything the package describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Whether the dossier was new here.
    pub dossier_created: bool,
    /// Object rows added.
    pub objects_added: u64,
    /// Documents added.
    pub documents_added: u64,
    /// Pages added.
    pub pages_added: u64,
    /// Documents already here now marked as replaced, as the package records them.
    pub documents_superseded: u64,
    /// Certified copies added.
    pub copies_added: u64,
    /// Issues of certified copies added.
    pub copy_issues_added: u64,
    /// Units and procedures registered (names this archive did not have).
    pub registry_added: u64,
    /// Reuses of other dossiers' results added.
    pub reuses_added: u64,
    /// Changes of status added (the history of a dossier new here).
    pub status_changes_added: u64,
}

impl ImportOutcome {
    /// Whether anything was recorded.
    pub fn changed(&self) -> bool {
        *self != Self::default()
    }
}

impl Repo {
    /// Every column of the pages of `document` (BLAKE3 of its PDF) in dossier `dossier`, in page order.
    pub async fn document_pages(
        &self,
        dossier: &str,
        document: &str,
    ) -> Result<Vec<PageRecord>, RepoError> {
        let rows = sqlx::query(
            "SELECT p.number, p.blake3, p.source_blake3, p.origin, p.width, p.height, p.dpi,
                    p.dpi_assumed, p.confidence, p.text, p.words, p.quality, p.flags, p.geometry,
                    p.pdf_page
             FROM pages p JOIN documents doc ON doc.id = p.document_id
             JOIN dossiers d ON d.id = doc.dossier_id
             WHERE d.code = $1 AND doc.blake3 = $2 ORDER BY p.number",
        )
        .bind(dossier)
        .bind(document)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| PageRecord {
                number: r.get(0),
                blake3: r.get(1),
                source_blake3: r.get(2),
                origin: r.get(3),
                width: r.get(4),
                height: r.get(5),
                dpi: r.get(6),
                dpi_assumed: r.get::<i64, _>(7) != 0,
                confidence: r.get(8),
                text: r.get(9),
                words: r.get(10),
                quality: r.get(11),
                flags: r.get(12),
                geometry: r.get(13),
                pdf_page: r.get(14),
            })
            .collect())
    }

    /// How the registry names dossier `dossier`'s unit and procedure (each absent when not registered),
    /// and the results of other dossiers it reused, oldest first.
    pub async fn dossier_context(&self, dossier: &str) -> Result<DossierContext, RepoError> {
        let unit = sqlx::query(
            "SELECT u.code, u.name, u.level FROM units u JOIN dossiers d ON d.unit_code = u.code
             WHERE d.code = $1",
        )
        .bind(dossier)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| UnitRecord {
            code: r.get(0),
            name: r.get(1),
            level: r.get(2),
        });
        let procedure = sqlx::query(
            "SELECT p.code, p.name, p.field, p.level FROM procedures p
             JOIN dossiers d ON d.procedure_code = p.code WHERE d.code = $1",
        )
        .bind(dossier)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| ProcedureRecord {
            code: r.get(0),
            name: r.get(1),
            field: r.get(2),
            level: r.get(3),
        });
        let reuses = sqlx::query(
            "SELECT r.document, r.created_at FROM result_reuses r
             JOIN dossiers d ON d.id = r.dossier_id WHERE d.code = $1 ORDER BY r.id",
        )
        .bind(dossier)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| ReuseRecord {
            document: r.get(0),
            created_at: r.get(1),
        })
        .collect();
        let status_changes = sqlx::query(
            "SELECT s.status_before, s.status, s.at FROM status_changes s
             JOIN dossiers d ON d.id = s.dossier_id WHERE d.code = $1 ORDER BY s.id",
        )
        .bind(dossier)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| StatusChangeRecord {
            status_before: r.get::<i64, _>(0).try_into().unwrap_or(0),
            status: r.get::<i64, _>(1).try_into().unwrap_or(0),
            at: r.get(2),
        })
        .collect();
        Ok(DossierContext {
            unit,
            procedure,
            reuses,
            status_changes,
        })
    }

    /// The certified copies of the documents of dossier `dossier`, with their issues, in the order they
    /// were made.
    pub async fn dossier_copies(&self, dossier: &str) -> Result<Vec<CopyExport>, RepoError> {
        let rows = sqlx::query(
            "SELECT c.blake3, c.document, c.unit_code, c.certificate, c.subject, c.development,
                    c.signed_at, c.created_at
             FROM copies c
             WHERE c.document IN (SELECT doc.blake3 FROM documents doc
                                  JOIN dossiers d ON d.id = doc.dossier_id WHERE d.code = $1)
             ORDER BY c.created_at, c.blake3",
        )
        .bind(dossier)
        .fetch_all(&self.pool)
        .await?;
        let mut copies = Vec::with_capacity(rows.len());
        for row in rows {
            let copy = super::documents::copy_record(&row);
            let issues = sqlx::query(
                "SELECT issued_to, issued_at FROM copy_issues WHERE copy = $1 ORDER BY id",
            )
            .bind(&copy.blake3)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| CopyIssueRecord {
                issued_to: r.get(0),
                issued_at: r.get(1),
            })
            .collect();
            copies.push(CopyExport {
                copy,
                created_at: row.get(7),
                issues,
            });
        }
        Ok(copies)
    }

    /// Records a packaged dossier (its objects already stored) in one transaction: the dossier with its
    /// details, every object row, every document and page not yet recorded, and the replacements the
    /// package records, with the unit's and procedure's names where this archive has none yet and the
    /// reuses of other dossiers' results. What is already here is left as it is (this archive's registry
    /// included), so recording the same package twice changes nothing the second time. A dossier
    /// recorded here with another procedure or unit is a [`RepoError::Conflict`], and nothing is recorded.
    pub async fn import_dossier(
        &self,
        dossier: &DossierRecord,
        documents: &[DocumentRecord],
        objects: &[ObjectRecord],
        copies: &[CopyExport],
        context: &DossierContext,
    ) -> Result<ImportOutcome, RepoError> {
        let now = now_rfc3339();
        let mut outcome = ImportOutcome::default();
        let mut tx = self.begin_followed_write().await?;
        outcome.dossier_created = sqlx::query(
            "INSERT INTO dossiers (code, procedure_code, unit_code, received_at, created_at, applicant,
                                   due_at, resolved_at, status, channel, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (code) DO NOTHING",
        )
        .bind(&dossier.code)
        .bind(&dossier.procedure)
        .bind(&dossier.unit)
        .bind(&dossier.received_at)
        .bind(&dossier.created_at)
        .bind(&dossier.applicant)
        .bind(&dossier.due_at)
        .bind(&dossier.resolved_at)
        .bind(i64::from(dossier.status))
        .bind(i64::from(dossier.channel))
        .bind(&dossier.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query("SELECT id, procedure_code, unit_code FROM dossiers WHERE code = $1")
            .bind(&dossier.code)
            .fetch_one(&mut *tx)
            .await?;
        let dossier_id: i64 = row.get(0);
        let (procedure, unit): (String, String) = (row.get(1), row.get(2));
        if procedure != dossier.procedure || unit != dossier.unit {
            return Err(RepoError::Conflict(format!(
                "dossier {} is already recorded here with procedure {procedure} and unit {unit}, not \
                 procedure {} and unit {}",
                dossier.code, dossier.procedure, dossier.unit
            )));
        }
        for object in objects {
            outcome.objects_added += sqlx::query(
                "INSERT INTO objects (blake3, size, media_type, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (blake3) DO NOTHING",
            )
            .bind(&object.blake3)
            .bind(i64::try_from(object.size).unwrap_or(i64::MAX))
            .bind(&object.media_type)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        for document in documents {
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO documents (dossier_id, kind, blake3, page_count, created_at, replaces,
                                        superseded_by, incomplete)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (dossier_id, blake3) DO NOTHING RETURNING id",
            )
            .bind(dossier_id)
            .bind(&document.kind)
            .bind(&document.blake3)
            .bind(document.page_count)
            .bind(&document.created_at)
            .bind(&document.replaces)
            .bind(&document.superseded_by)
            .bind(&document.incomplete)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(document_id) = inserted else {
                // Recorded before; a later package may know that it has since been replaced.
                if let Some(newer) = &document.superseded_by {
                    outcome.documents_superseded += sqlx::query(
                        "UPDATE documents SET superseded_by = $1
                         WHERE dossier_id = $2 AND blake3 = $3 AND superseded_by IS NULL",
                    )
                    .bind(newer)
                    .bind(dossier_id)
                    .bind(&document.blake3)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                continue;
            };
            outcome.documents_added += 1;
            for page in &document.pages {
                sqlx::query(
                    "INSERT INTO pages (document_id, number, blake3, source_blake3, origin, width, height,
                                        dpi, dpi_assumed, confidence, text, words, quality, flags,
                                        geometry, pdf_page)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                )
                .bind(document_id)
                .bind(page.number)
                .bind(&page.blake3)
                .bind(&page.source_blake3)
                .bind(&page.origin)
                .bind(page.width)
                .bind(page.height)
                .bind(page.dpi)
                .bind(i64::from(page.dpi_assumed))
                .bind(page.confidence)
                .bind(&page.text)
                .bind(&page.words)
                .bind(&page.quality)
                .bind(&page.flags)
                .bind(&page.geometry)
                .bind(page.pdf_page)
                .execute(&mut *tx)
                .await?;
                outcome.pages_added += 1;
            }
        }
        for export in copies {
            let copy = &export.copy;
            outcome.copies_added +=
                u64::from(super::documents::insert_copy(&mut tx, copy, &export.created_at).await?);
            // The issues log is append-only and keyless: an issue already here is not added again.
            for issue in &export.issues {
                outcome.copy_issues_added += sqlx::query(
                    "INSERT INTO copy_issues (copy, document, issued_to, issued_at)
                     SELECT $1, $2, $3, $4 WHERE NOT EXISTS
                         (SELECT 1 FROM copy_issues WHERE copy = $5 AND issued_to = $6 AND issued_at = $7)",
                )
                .bind(&copy.blake3)
                .bind(&copy.document)
                .bind(&issue.issued_to)
                .bind(&issue.issued_at)
                .bind(&copy.blake3)
                .bind(&issue.issued_to)
                .bind(&issue.issued_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        // A name registered here reaches every dossier of that unit or procedure in the index.
        if let Some(unit) = &context.unit {
            let added = sqlx::query(
                "INSERT INTO units (code, name, level) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
            )
            .bind(&unit.code)
            .bind(&unit.name)
            .bind(&unit.level)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added > 0 {
                sqlx::query(
                    "INSERT INTO dossier_changes (dossier) SELECT code FROM dossiers WHERE unit_code = $1",
                )
                .bind(&unit.code)
                .execute(&mut *tx)
                .await?;
            }
            outcome.registry_added += added;
        }
        if let Some(procedure) = &context.procedure {
            let added = sqlx::query(
                "INSERT INTO procedures (code, name, field, level) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (code) DO NOTHING",
            )
            .bind(&procedure.code)
            .bind(&procedure.name)
            .bind(&procedure.field)
            .bind(&procedure.level)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added > 0 {
                sqlx::query(
                    "INSERT INTO dossier_changes (dossier)
                     SELECT code FROM dossiers WHERE procedure_code = $1",
                )
                .bind(&procedure.code)
                .execute(&mut *tx)
                .await?;
            }
            outcome.registry_added += added;
        }
        if outcome.dossier_created {
            // A dossier already here keeps its own history.
            for change in &context.status_changes {
                outcome.status_changes_added += sqlx::query(
                    "INSERT INTO status_changes (dossier_id, status_before, status, at)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(dossier_id)
                .bind(i64::from(change.status_before))
                .bind(i64::from(change.status))
                .bind(&change.at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        for reuse in &context.reuses {
            outcome.reuses_added += sqlx::query(
                "INSERT INTO result_reuses (dossier_id, document, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (dossier_id, document) DO NOTHING",
            )
            .bind(dossier_id)
            .bind(&reuse.document)
            .bind(&reuse.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if outcome.documents_superseded > 0 {
            // The index follows this log and drops the replaced documents' pages.
            sqlx::query("INSERT INTO dossier_changes (dossier) VALUES ($1)")
                .bind(&dossier.code)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}
