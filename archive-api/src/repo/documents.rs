//! Documents, their pages and objects, certified copies, and what the search index follows.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    CopyRecord, IndexedPage, NewDocument, NewDossier, ObjectRecord, RepoError, StoredDocument,
    StoredPage, Totals,
};
use crate::time::now_rfc3339;

/// The archive's database.
#[derive(Clone)]
pub struct Repo {
    pub(super) pool: super::backend::Pool,
    pub(super) backend: super::Backend,
    /// The PostgreSQL URL, for listening to other processes' notifications.
    pub(super) postgres_url: Option<std::sync::Arc<str>>,
}

impl Repo {
    /// Fails with [`RepoError::Conflict`] if `dossier`'s code is already registered with another procedure
    /// or unit.
    pub async fn check_dossier(&self, dossier: &NewDossier) -> Result<(), RepoError> {
        let row = sqlx::query("SELECT procedure_code, unit_code FROM dossiers WHERE code = $1")
            .bind(dossier.code.as_str())
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            let procedure: String = row.get(0);
            let unit: String = row.get(1);
            if procedure != dossier.procedure.as_str() || unit != dossier.unit.as_str() {
                return Err(RepoError::Conflict(format!(
                    "dossier {} is already registered with procedure {procedure} and unit {unit}, not \
                     procedure {} and unit {}",
                    dossier.code, dossier.procedure, dossier.unit
                )));
            }
        }
        Ok(())
    }

    /// Records a packaged document, its pages and objects, creating the dossier if it is new, in one
    /// transaction; a document packaged by a job takes the job's pages off the waiting list in the same
    /// transaction. Recording the same document for the same dossier again changes nothing.
    pub async fn record_document(&self, document: &mut NewDocument) -> Result<(), RepoError> {
        let now = now_rfc3339();
        let mut tx = self.begin_followed_write().await?;
        let dossier = &document.dossier;
        sqlx::query(
            "INSERT INTO dossiers (code, procedure_code, unit_code, received_at, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING",
        )
        .bind(dossier.code.as_str())
        .bind(dossier.procedure.as_str())
        .bind(dossier.unit.as_str())
        .bind(crate::time::received_rfc3339(&dossier.code))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT id, procedure_code, unit_code FROM dossiers WHERE code = $1")
            .bind(dossier.code.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let dossier_id: i64 = row.get(0);
        if row.get::<String, _>(1) != dossier.procedure.as_str()
            || row.get::<String, _>(2) != dossier.unit.as_str()
        {
            return Err(RepoError::Conflict(format!(
                "dossier {} is already registered with another procedure or unit",
                dossier.code
            )));
        }
        for object in &document.objects {
            insert_object(&mut tx, object, &now).await?;
        }
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO documents (dossier_id, kind, blake3, page_count, created_at, replaces, job)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (dossier_id, blake3) DO NOTHING RETURNING id",
        )
        .bind(dossier_id)
        .bind(document.kind.as_str())
        .bind(&document.blake3)
        .bind(document.pages.len() as i64)
        .bind(&now)
        .bind(&document.replaces)
        .bind(document.job.as_ref().map(|job| job.id.clone()))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(job) = &document.job {
            let mut taken = 0;
            for id in &job.pending {
                taken += sqlx::query("DELETE FROM pending_pages WHERE id = $1 AND dossier_id = $2")
                    .bind(id)
                    .bind(dossier_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            if taken != job.pending.len() as u64 {
                // Another run packaged some of these pages first: recording them again would make a
                // second document of the same pages.
                tx.rollback().await?;
                return Err(RepoError::Conflict(format!(
                    "{} of the {} waiting pages of job {} were already packaged",
                    job.pending.len() as u64 - taken,
                    job.pending.len(),
                    job.id
                )));
            }
        }
        if let Some(old) = document
            .replaces
            .as_ref()
            .filter(|old| **old != document.blake3)
        {
            sqlx::query(
                "UPDATE documents SET superseded_by = $1 WHERE dossier_id = $2 AND blake3 = $3",
            )
            .bind(&document.blake3)
            .bind(dossier_id)
            .bind(old)
            .execute(&mut *tx)
            .await?;
            // The index follows this log and drops the replaced document's pages.
            sqlx::query("INSERT INTO dossier_changes (dossier) VALUES ($1)")
                .bind(dossier.code.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let Some(document_id) = inserted else {
            // The same document was recorded before: nothing to add.
            tx.commit().await?;
            return Ok(());
        };
        for page in document.pages.read()? {
            let page = page?;
            sqlx::query(
                "INSERT INTO pages (document_id, number, blake3, source_blake3, origin, width, height, dpi,
                                    dpi_assumed, confidence, text, words, quality, flags, geometry,
                                    pdf_page)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(document_id)
            .bind(i64::from(page.number))
            .bind(&page.blake3)
            .bind(&page.source_blake3)
            .bind(&page.origin)
            .bind(i64::from(page.width))
            .bind(i64::from(page.height))
            .bind(f64::from(page.dpi))
            .bind(i64::from(page.dpi_assumed))
            .bind(f64::from(page.confidence))
            .bind(&page.text)
            .bind(&page.words_json)
            .bind(&page.quality_json)
            .bind(&page.flags)
            .bind(&page.geometry_json)
            .bind(page.pdf_page.map(i64::from))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A recorded document by the BLAKE3 of its PDF, with its pages' masters.
    pub async fn stored_document(&self, blake3: &str) -> Result<Option<StoredDocument>, RepoError> {
        let Some(row) = sqlx::query(
            "SELECT doc.id, d.code, d.procedure_code, d.unit_code, doc.kind, doc.superseded_by
             FROM documents doc JOIN dossiers d ON d.id = doc.dossier_id
             WHERE doc.blake3 = $1 ORDER BY doc.id DESC LIMIT 1",
        )
        .bind(blake3)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let document_id: i64 = row.get(0);
        let pages = sqlx::query(
            "SELECT number, blake3, origin, dpi FROM pages WHERE document_id = $1 ORDER BY number",
        )
        .bind(document_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|p| StoredPage {
            number: p.get::<i64, _>(0).try_into().unwrap_or(0),
            blake3: p.get(1),
            origin: p.get(2),
            dpi: p.get::<f64, _>(3) as f32,
        })
        .collect();
        Ok(Some(StoredDocument {
            dossier: row.get(1),
            procedure: row.get(2),
            unit: row.get(3),
            kind: row.get(4),
            superseded_by: row.get(5),
            pages,
        }))
    }

    /// Which of `documents` (BLAKE3 of PDFs) have been replaced by another document.
    pub async fn superseded(
        &self,
        documents: &[&str],
    ) -> Result<std::collections::HashSet<String>, RepoError> {
        let mut superseded = std::collections::HashSet::new();
        for document in documents {
            let replaced: Option<String> = sqlx::query_scalar(
                "SELECT blake3 FROM documents WHERE blake3 = $1 AND superseded_by IS NOT NULL LIMIT 1",
            )
            .bind(document)
            .fetch_optional(&self.pool)
            .await?;
            superseded.extend(replaced);
        }
        Ok(superseded)
    }

    /// The media type of a recorded object, or `None` if no row references such an object.
    pub async fn object_media_type(&self, blake3: &str) -> Result<Option<String>, RepoError> {
        Ok(
            sqlx::query_scalar("SELECT media_type FROM objects WHERE blake3 = $1")
                .bind(blake3)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records why a document is incomplete.
    pub async fn mark_incomplete(&self, document: &str, reason: &str) -> Result<(), RepoError> {
        sqlx::query("UPDATE documents SET incomplete = $1 WHERE blake3 = $2")
            .bind(reason)
            .bind(document)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Why a document is incomplete, if it is.
    pub async fn incomplete(&self, document: &str) -> Result<Option<String>, RepoError> {
        Ok(sqlx::query_scalar(
            "SELECT incomplete FROM documents WHERE blake3 = $1 AND incomplete IS NOT NULL LIMIT 1",
        )
        .bind(document)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The certified copy with this hash, if it is one.
    pub async fn copy(&self, blake3: &str) -> Result<Option<CopyRecord>, RepoError> {
        self.copy_where("blake3 = $1", &[blake3]).await
    }

    /// The newest copy of `document` signed with the certificate whose SHA-256 is `certificate`.
    pub async fn copy_of(
        &self,
        document: &str,
        certificate: &str,
    ) -> Result<Option<CopyRecord>, RepoError> {
        self.copy_where(
            "document = $1 AND certificate = $2 ORDER BY signed_at DESC LIMIT 1",
            &[document, certificate],
        )
        .await
    }

    async fn copy_where(
        &self,
        condition: &str,
        values: &[&str],
    ) -> Result<Option<CopyRecord>, RepoError> {
        let sql = format!("{COPY_COLUMNS} WHERE {condition}");
        let mut query = sqlx::query(&sql);
        for value in values {
            query = query.bind(*value);
        }
        let row = query.fetch_optional(&self.pool).await?;
        Ok(row.map(|r| copy_record(&r)))
    }

    /// Records a new copy (its object already stored) in one transaction.
    pub async fn record_copy(
        &self,
        copy: &CopyRecord,
        object: &ObjectRecord,
    ) -> Result<(), RepoError> {
        let now = now_rfc3339();
        let mut tx = self.begin_write().await?;
        insert_object(&mut tx, object, &now).await?;
        insert_copy(&mut tx, copy, &now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that `copy` was given to `issued_to`.
    pub async fn record_copy_issue(
        &self,
        copy: &CopyRecord,
        issued_to: &str,
    ) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO copy_issues (copy, document, issued_to, issued_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&copy.blake3)
        .bind(&copy.document)
        .bind(issued_to)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many times copies of `document` were issued.
    pub async fn copy_issue_count(&self, document: &str) -> Result<i64, RepoError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM copy_issues WHERE document = $1")
                .bind(document)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The highest page id, 0 when there are no pages.
    pub async fn latest_page_id(&self) -> Result<i64, RepoError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM pages")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Up to `limit` pages with ids above `after`, in id order, with what the index needs; pages of
    /// replaced documents are left out.
    pub async fn pages_after(&self, after: i64, limit: i64) -> Result<Vec<IndexedPage>, RepoError> {
        let sql = format!(
            "{INDEXED_PAGE} WHERE p.id > $1 AND doc.superseded_by IS NULL ORDER BY p.id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(indexed_page).collect())
    }

    /// Every current page of a dossier (none of replaced documents), with what the index needs.
    pub async fn dossier_pages(&self, code: &str) -> Result<Vec<IndexedPage>, RepoError> {
        let sql =
            format!("{INDEXED_PAGE} WHERE d.code = $1 AND doc.superseded_by IS NULL ORDER BY p.id");
        let rows = sqlx::query(&sql).bind(code).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(indexed_page).collect())
    }

    /// The last entry of the dossier change log, 0 when empty.
    pub async fn latest_change(&self) -> Result<i64, RepoError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM dossier_changes")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Up to `limit` change-log entries after `after`: (entry, dossier code).
    pub async fn changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, RepoError> {
        let rows = sqlx::query(
            "SELECT seq, dossier FROM dossier_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), RepoError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// How many dossiers, documents and pages are recorded.
    pub async fn totals(&self) -> Result<Totals, RepoError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM dossiers), (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM pages)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Totals {
            dossiers: row.get(0),
            documents: row.get(1),
            pages: row.get(2),
        })
    }
}

const INDEXED_PAGE: &str = "SELECT p.id, d.code, d.procedure_code, d.unit_code, doc.kind, doc.blake3, p.number, \
     p.text, d.applicant, d.status, d.received_at, COALESCE(u.level, ''), COALESCE(pr.field, '') \
     FROM pages p JOIN documents doc ON doc.id = p.document_id JOIN dossiers d ON d.id = doc.dossier_id \
     LEFT JOIN units u ON u.code = d.unit_code LEFT JOIN procedures pr ON pr.code = d.procedure_code";

fn indexed_page(row: &AnyRow) -> IndexedPage {
    IndexedPage {
        id: row.get(0),
        dossier: row.get(1),
        procedure: row.get(2),
        unit: row.get(3),
        kind: row.get(4),
        document: row.get(5),
        number: row.get::<i64, _>(6).try_into().unwrap_or(0),
        text: row.get(7),
        applicant: row.get(8),
        status: row.get::<i64, _>(9).try_into().unwrap_or(0),
        received: crate::time::unix_seconds(&row.get::<String, _>(10)).unwrap_or(0),
        level: row.get(11),
        field: row.get(12),
    }
}

const COPY_COLUMNS: &str = "SELECT blake3, document, unit_code, certificate, subject, development, signed_at \
                            FROM copies";

pub(super) fn copy_record(row: &AnyRow) -> CopyRecord {
    CopyRecord {
        blake3: row.get(0),
        document: row.get(1),
        unit: row.get(2),
        certificate: row.get(3),
        subject: row.get(4),
        development: row.get::<i64, _>(5) != 0,
        signed_at: row.get(6),
    }
}

/// Records a stored object, once.
pub(super) async fn insert_object(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    object: &ObjectRecord,
    now: &str,
) -> Result<(), RepoError> {
    sqlx::query(
        "INSERT INTO objects (blake3, size, media_type, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (blake3) DO NOTHING",
    )
    .bind(&object.blake3)
    .bind(i64::try_from(object.size).unwrap_or(i64::MAX))
    .bind(&object.media_type)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a certified copy made at `created_at` unless it is recorded already; returns whether it was
/// added.
pub(super) async fn insert_copy(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    copy: &CopyRecord,
    created_at: &str,
) -> Result<bool, RepoError> {
    let done = sqlx::query(
        "INSERT INTO copies (blake3, document, unit_code, certificate, subject, development,
                             signed_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (blake3) DO NOTHING",
    )
    .bind(&copy.blake3)
    .bind(&copy.document)
    .bind(&copy.unit)
    .bind(&copy.certificate)
    .bind(&copy.subject)
    .bind(i64::from(copy.development))
    .bind(&copy.signed_at)
    .bind(created_at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
