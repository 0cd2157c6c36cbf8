//! Dossiers as the desk and the portal see them: details, status, documents and pages, pages waiting to be
//! packaged, reused results, units and procedures.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{NewDossier, Repo, RepoError};
use crate::time::now_rfc3339;

/// A dossier's details, as recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DossierRecord {
    /// Dossier code, `000.00.15.H27-231128-0042`.
    pub code: String,
    /// Procedure code.
    pub procedure: String,
    /// Unit code.
    pub unit: String,
    /// The applicant's name.
    pub applicant: String,
    /// When it was received, RFC 3339 +07:00.
    pub received_at: String,
    /// The legal due time.
    pub due_at: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// Status, the national portal's code 1-10.
    pub status: u8,
    /// 1 in person, 2 online, 3 postal.
    pub channel: u8,
    /// When it was first recorded here.
    pub created_at: String,
    /// When its details last changed.
    pub updated_at: Option<String>,
}

/// A new dossier with its details.
#[derive(Debug, Clone)]
pub struct DossierDetails {
    /// Code, procedure, unit.
    pub dossier: NewDossier,
    /// Applicant's name.
    pub applicant: String,
    /// Received time, RFC 3339 +07:00.
    pub received_at: String,
    /// Legal due time.
    pub due_at: Option<String>,
    /// Resolved time.
    pub resolved_at: Option<String>,
    /// Status 1-10.
    pub status: u8,
    /// Channel 1-3.
    pub channel: u8,
}

/// Changes to a dossier; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DossierChange {
    /// New status.
    pub status: Option<u8>,
    /// New applicant name.
    pub applicant: Option<String>,
    /// New due time.
    pub due_at: Option<String>,
    /// New resolved time.
    pub resolved_at: Option<String>,
    /// When the status changed (Vietnam time), when not now.
    pub status_at: Option<String>,
}

/// Which dossiers to list.
#[derive(Debug, Clone, Default)]
pub struct DossierFilter {
    /// Only these units (the caller's scope); `None` for all.
    pub units: Option<Vec<String>>,
    /// Only this unit.
    pub unit: Option<String>,
    /// Only this procedure.
    pub procedure: Option<String>,
    /// Only this status.
    pub status: Option<u8>,
    /// Received at or after (RFC 3339).
    pub received_from: Option<String>,
    /// Received before (RFC 3339).
    pub received_until: Option<String>,
    /// At most this many.
    pub limit: i64,
    /// Skip this many.
    pub offset: i64,
}

/// A document of a dossier, with its pages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentSummary {
    /// BLAKE3 of the packaged PDF.
    pub document: String,
    /// `submitted` or `result`.
    pub kind: String,
    /// Pages.
    pub page_count: i64,
    /// When it was recorded.
    pub created_at: String,
    /// The document it replaces.
    pub replaces: Option<String>,
    /// The document that replaced it.
    pub superseded_by: Option<String>,
    /// Why it is incomplete, when it is.
    pub incomplete: Option<String>,
    /// Its pages.
    pub pages: Vec<PageSummary>,
}

/// A page of a document: where it is and how it read, without its text.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PageSummary {
    /// Page number, from 1.
    pub n: u32,
    /// BLAKE3 of the page master.
    pub blake3: String,
    /// The file it came from.
    pub origin: String,
    /// Resolution.
    pub dpi: f32,
    /// Mean OCR confidence.
    pub confidence: f32,
    /// Quality flags.
    pub flags: Vec<String>,
    /// Its number in the PDF; absent when left out.
    pub pdf_page: Option<u32>,
}

/// A page's OCR text and word boxes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PageText {
    /// Dossier code.
    pub dossier: String,
    /// Unit code (for the scope check).
    #[serde(skip)]
    pub unit: String,
    /// Page number.
    pub n: u32,
    /// BLAKE3 of the master.
    pub blake3: String,
    /// OCR text, NFC.
    pub text: String,
    /// Word boxes as recorded (JSON).
    #[schema(value_type = Object)]
    pub words: serde_json::Value,
    /// How the OCR'd image maps onto the master (JSON).
    #[schema(value_type = Object)]
    pub geometry: serde_json::Value,
}

/// A page uploaded to a dossier and waiting to be packaged.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingPage {
    /// Its id, to remove it by.
    pub id: i64,
    /// `submitted` or `result`.
    pub kind: String,
    /// Its place in the document, from 1.
    pub position: i64,
    /// BLAKE3 of the uploaded file.
    pub blake3: String,
    /// The file name the client gave.
    pub origin: String,
    /// Its size in bytes.
    pub size: i64,
    /// Quarter turns clockwise the clerk gave it (0-3), read instead of the detected orientation.
    #[serde(default)]
    pub turn: i64,
}

/// A unit as registered.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitRecord {
    /// Unit code.
    pub code: String,
    /// Its name, as printed on certified copies.
    pub name: String,
    /// `province`, `district` or `commune`.
    pub level: String,
}

/// A procedure as registered.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProcedureRecord {
    /// Procedure code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its field (lĩnh vực).
    pub field: String,
    /// Its level.
    pub level: String,
}

impl UnitRecord {
    /// A unit as the registry takes it (from the API or an imported bag): a name of 1-300 characters
    /// without control characters, in NFC, and a level of province, district or commune.
    pub fn checked(code: &str, name: &str, level: &str) -> Result<Self, String> {
        Ok(Self {
            code: code.to_owned(),
            name: registry_text(name, "name")?,
            level: registry_level(level, false)?,
        })
    }
}

impl ProcedureRecord {
    /// A procedure as the registry takes it: a name as for units, a field that may be empty, and a level
    /// that may be empty.
    pub fn checked(code: &str, name: &str, field: &str, level: &str) -> Result<Self, String> {
        Ok(Self {
            code: code.to_owned(),
            name: registry_text(name, "name")?,
            field: if field.trim().is_empty() {
                String::new()
            } else {
                registry_text(field, "field")?
            },
            level: registry_level(level, true)?,
        })
    }
}

fn registry_text(value: &str, field: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 300 || value.chars().any(char::is_control) {
        return Err(format!(
            "{field} must be 1-300 characters without control characters"
        ));
    }
    Ok(unicode_normalization::UnicodeNormalization::nfc(value).collect())
}

fn registry_level(value: &str, optional: bool) -> Result<String, String> {
    match value {
        "province" | "district" | "commune" => Ok(value.to_owned()),
        "" if optional => Ok(String::new()),
        other => Err(format!(
            "level must be province, district or commune, not '{}'",
            other.chars().take(40).collect::<String>()
        )),
    }
}

const DOSSIER_COLUMNS: &str = "SELECT code, procedure_code, unit_code, applicant, received_at, due_at, \
                               resolved_at, status, channel, created_at, updated_at FROM dossiers";

fn dossier(row: &sqlx::any::AnyRow) -> DossierRecord {
    DossierRecord {
        code: row.get(0),
        procedure: row.get(1),
        unit: row.get(2),
        applicant: row.get(3),
        received_at: row.get(4),
        due_at: row.get(5),
        resolved_at: row.get(6),
        status: row.get::<i64, _>(7).try_into().unwrap_or(0),
        channel: row.get::<i64, _>(8).try_into().unwrap_or(0),
        created_at: row.get(9),
        updated_at: row.get(10),
    }
}

impl Repo {
    /// Registers a dossier. Registering it again with the same code, procedure, unit and applicant returns
    /// the recorded one (`false`: not new); other details are a [`RepoError::Conflict`].
    pub async fn create_dossier(
        &self,
        details: &DossierDetails,
    ) -> Result<(DossierRecord, bool), RepoError> {
        let d = &details.dossier;
        let inserted = sqlx::query(
            "INSERT INTO dossiers (code, procedure_code, unit_code, received_at, created_at, applicant,
                                   due_at, resolved_at, status, channel)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (code) DO NOTHING",
        )
        .bind(d.code.as_str())
        .bind(d.procedure.as_str())
        .bind(d.unit.as_str())
        .bind(&details.received_at)
        .bind(now_rfc3339())
        .bind(&details.applicant)
        .bind(&details.due_at)
        .bind(&details.resolved_at)
        .bind(i64::from(details.status))
        .bind(i64::from(details.channel))
        .execute(&self.pool)
        .await?;
        let recorded = self
            .dossier(d.code.as_str())
            .await?
            .ok_or_else(|| RepoError::NotFound(format!("dossier {} vanished", d.code)))?;
        if inserted.rows_affected() == 1 {
            return Ok((recorded, true));
        }
        // A dossier first recorded by an ingest has no applicant yet: registering it fills that in.
        let same = recorded.procedure == d.procedure.as_str()
            && recorded.unit == d.unit.as_str()
            && (recorded.applicant == details.applicant || recorded.applicant.is_empty());
        if !same {
            return Err(RepoError::Conflict(format!(
                "dossier {} is already registered with procedure {}, unit {} and applicant '{}'",
                recorded.code, recorded.procedure, recorded.unit, recorded.applicant
            )));
        }
        if recorded.applicant.is_empty() && !details.applicant.is_empty() {
            let change = DossierChange {
                applicant: Some(details.applicant.clone()),
                ..Default::default()
            };
            let updated = self.update_dossier(&recorded.code, &change).await?;
            return Ok((updated.unwrap_or(recorded), false));
        }
        Ok((recorded, false))
    }

    /// A dossier by code.
    pub async fn dossier(&self, code: &str) -> Result<Option<DossierRecord>, RepoError> {
        let sql = format!("{DOSSIER_COLUMNS} WHERE code = $1");
        let row = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(dossier))
    }

    /// Dossiers matching `filter`, newest received first, and how many match in all.
    pub async fn dossiers(
        &self,
        filter: &DossierFilter,
    ) -> Result<(Vec<DossierRecord>, i64), RepoError> {
        // The caller's units go in as one JSON array, bound like every other value.
        let units = filter
            .units
            .as_ref()
            .map(|units| serde_json::to_string(units).unwrap_or_default());
        let condition = format!(
            "($1 IS NULL OR {}) AND ($2 IS NULL OR unit_code = $2)",
            self.backend.in_json_list("unit_code", "$1")
        ) + " AND ($3 IS NULL OR procedure_code = $3)
               AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR received_at >= $5)
               AND ($6 IS NULL OR received_at < $6)";
        let sql = format!(
            "{DOSSIER_COLUMNS} WHERE {condition} ORDER BY received_at DESC, code DESC LIMIT $7 OFFSET $8"
        );
        let bind = |sql| {
            sqlx::query(sql)
                .bind(units.clone())
                .bind(filter.unit.clone())
                .bind(filter.procedure.clone())
                .bind(filter.status.map(i64::from))
                .bind(filter.received_from.clone())
                .bind(filter.received_until.clone())
        };
        let rows = bind(&sql)
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(&self.pool)
            .await?;
        let count_sql = format!("SELECT COUNT(*) FROM dossiers WHERE {condition}");
        let total: i64 = bind(&count_sql).fetch_one(&self.pool).await?.get(0);
        Ok((rows.iter().map(dossier).collect(), total))
    }

    /// Changes a dossier's details and logs the change for the search index (and a change of status in
    /// the dossier's status history, for the statistics of past periods). Returns the dossier as it now
    /// is, or `None` if there is none by that code.
    pub async fn update_dossier(
        &self,
        code: &str,
        change: &DossierChange,
    ) -> Result<Option<DossierRecord>, RepoError> {
        let mut tx = self.begin_followed_write().await?;
        let sql = format!(
            "SELECT id, status, received_at,
                    (SELECT s.at FROM status_changes s WHERE s.dossier_id = dossiers.id
                      ORDER BY s.id DESC LIMIT 1)
             FROM dossiers WHERE code = $1{}",
            self.backend.for_update()
        );
        let Some(before) = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let now = now_rfc3339();
        if let Some(status) = change.status
            && i64::from(status) != before.get::<i64, _>(1)
        {
            let at = change.status_at.clone().unwrap_or_else(|| now.clone());
            let seconds = crate::time::unix_seconds;
            let received: String = before.get(2);
            let last: Option<String> = before.get(3);
            for (earlier, what) in [
                (Some(received), "its receipt"),
                (last, "its last change of status"),
            ] {
                if let Some(earlier) = earlier
                    && seconds(&at) < seconds(&earlier)
                {
                    return Err(RepoError::Conflict(format!(
                        "the status of {code} cannot have changed at {at}, before {what} at {earlier}"
                    )));
                }
            }
            sqlx::query(
                "INSERT INTO status_changes (dossier_id, status_before, status, at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(before.get::<i64, _>(0))
            .bind(before.get::<i64, _>(1))
            .bind(i64::from(status))
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query(
            "UPDATE dossiers SET status = COALESCE($1, status), applicant = COALESCE($2, applicant),
                    due_at = COALESCE($3, due_at), resolved_at = COALESCE($4, resolved_at), updated_at = $5
             WHERE code = $6",
        )
        .bind(change.status.map(i64::from))
        .bind(&change.applicant)
        .bind(&change.due_at)
        .bind(&change.resolved_at)
        .bind(&now)
        .bind(code)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query("INSERT INTO dossier_changes (dossier) VALUES ($1)")
            .bind(code)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.dossier(code).await
    }

    /// A dossier's documents, oldest first, each with its pages.
    pub async fn dossier_documents(&self, code: &str) -> Result<Vec<DocumentSummary>, RepoError> {
        let rows = sqlx::query(
            "SELECT doc.id, doc.blake3, doc.kind, doc.page_count, doc.created_at, doc.replaces,
                    doc.superseded_by, doc.incomplete
             FROM documents doc JOIN dossiers d ON d.id = doc.dossier_id
             WHERE d.code = $1 ORDER BY doc.id",
        )
        .bind(code)
        .fetch_all(&self.pool)
        .await?;
        let mut documents = Vec::with_capacity(rows.len());
        for row in rows {
            let pages = sqlx::query(
                "SELECT number, blake3, origin, dpi, confidence, flags, pdf_page FROM pages
                 WHERE document_id = $1 ORDER BY number",
            )
            .bind(row.get::<i64, _>(0))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|p| PageSummary {
                n: p.get::<i64, _>(0).try_into().unwrap_or(0),
                blake3: p.get(1),
                origin: p.get(2),
                dpi: p.get::<f64, _>(3) as f32,
                confidence: p.get::<f64, _>(4) as f32,
                flags: p
                    .get::<String, _>(5)
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect(),
                pdf_page: p
                    .get::<Option<i64>, _>(6)
                    .and_then(|n| u32::try_from(n).ok()),
            })
            .collect();
            documents.push(DocumentSummary {
                document: row.get(1),
                kind: row.get(2),
                page_count: row.get(3),
                created_at: row.get(4),
                replaces: row.get(5),
                superseded_by: row.get(6),
                incomplete: row.get(7),
                pages,
            });
        }
        Ok(documents)
    }

    /// The text and word boxes of page `number` of `document`.
    pub async fn page_text(
        &self,
        document: &str,
        number: u32,
    ) -> Result<Option<PageText>, RepoError> {
        let row = sqlx::query(
            "SELECT d.code, d.unit_code, p.number, p.blake3, p.text, p.words, p.geometry
             FROM pages p JOIN documents doc ON doc.id = p.document_id
             JOIN dossiers d ON d.id = doc.dossier_id
             WHERE doc.blake3 = $1 AND p.number = $2 ORDER BY doc.id DESC LIMIT 1",
        )
        .bind(document)
        .bind(i64::from(number))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| PageText {
            dossier: r.get(0),
            unit: r.get(1),
            n: r.get::<i64, _>(2).try_into().unwrap_or(0),
            blake3: r.get(3),
            text: r.get(4),
            words: serde_json::from_str(&r.get::<String, _>(5)).unwrap_or_default(),
            geometry: serde_json::from_str(&r.get::<String, _>(6)).unwrap_or_default(),
        }))
    }

    /// The dossiers (code and unit) an object belongs to: as a document's PDF, a page master or source, a
    /// certified copy, or a page waiting to be packaged.
    pub async fn object_dossiers(&self, blake3: &str) -> Result<Vec<(String, String)>, RepoError> {
        let rows = sqlx::query(
            "SELECT d.code, d.unit_code FROM dossiers d WHERE d.id IN (
                 SELECT dossier_id FROM documents WHERE blake3 = $1
                 UNION SELECT doc.dossier_id FROM pages p JOIN documents doc ON doc.id = p.document_id
                       WHERE p.blake3 = $1 OR p.source_blake3 = $1
                 UNION SELECT doc.dossier_id FROM copies c JOIN documents doc ON doc.blake3 = c.document
                       WHERE c.blake3 = $1
                 UNION SELECT dossier_id FROM pending_pages WHERE blake3 = $1)
             ORDER BY d.code",
        )
        .bind(blake3)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Adds uploaded files (already stored as objects) to a dossier's pages waiting to be packaged as
    /// `kind`, after those already waiting, in one transaction with their object rows. With `key` (the
    /// caller, its idempotency key and the request's fingerprint), the pages added are kept as the answer
    /// to that key in the same transaction; if the key already has an answer, nothing is added and that
    /// answer is returned (`Err`), so a retried upload never adds its pages twice.
    pub async fn add_pending_pages(
        &self,
        code: &str,
        kind: &str,
        files: &[(super::ObjectRecord, String)],
        key: Option<(&str, &str, &str)>,
    ) -> Result<Result<Vec<PendingPage>, super::KeptAnswer>, RepoError> {
        let now = now_rfc3339();
        let mut tx = self.begin_write().await?;
        // Locked on PostgreSQL, so two uploads to one dossier at once number their pages in turn.
        let lock = format!(
            "SELECT id FROM dossiers WHERE code = $1{}",
            self.backend.for_update()
        );
        let dossier_id: i64 = sqlx::query_scalar(&lock)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| RepoError::NotFound(format!("no dossier {code}")))?;
        let mut position: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), 0) FROM pending_pages WHERE dossier_id = $1 AND kind = $2",
        )
        .bind(dossier_id)
        .bind(kind)
        .fetch_one(&mut *tx)
        .await?;
        let mut added = Vec::with_capacity(files.len());
        for (object, origin) in files {
            super::documents::insert_object(&mut tx, object, &now).await?;
            position += 1;
            let size = i64::try_from(object.size).unwrap_or(i64::MAX);
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO pending_pages (dossier_id, kind, position, blake3, origin, size, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(dossier_id)
            .bind(kind)
            .bind(position)
            .bind(&object.blake3)
            .bind(origin)
            .bind(size)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await?;
            added.push(PendingPage {
                id,
                kind: kind.to_owned(),
                position,
                blake3: object.blake3.clone(),
                origin: origin.clone(),
                size,
                turn: 0,
            });
        }
        if let Some((actor, key, fingerprint)) = key {
            let response = serde_json::to_string(&added).unwrap_or_default();
            let kept = sqlx::query(
                "INSERT INTO idempotency_keys (actor, key, fingerprint, status, response, created_at)
                 VALUES ($1, $2, $3, 201, $4, $5) ON CONFLICT (actor, key) DO NOTHING",
            )
            .bind(actor)
            .bind(key)
            .bind(fingerprint)
            .bind(&response)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            if kept.rows_affected() == 0 {
                tx.rollback().await?;
                let earlier = self.kept_answer(actor, key).await?;
                return Ok(Err(earlier.unwrap_or(super::KeptAnswer {
                    fingerprint: String::new(),
                    status: 409,
                    response: String::new(),
                })));
            }
        }
        tx.commit().await?;
        Ok(Ok(added))
    }

    /// The pages of a dossier waiting to be packaged (of `kind`, or all), in order.
    pub async fn pending_pages(
        &self,
        code: &str,
        kind: Option<&str>,
    ) -> Result<Vec<PendingPage>, RepoError> {
        let rows = sqlx::query(
            "SELECT p.id, p.kind, p.position, p.blake3, p.origin, p.size, p.turn
             FROM pending_pages p JOIN dossiers d ON d.id = p.dossier_id
             WHERE d.code = $1 AND ($2 IS NULL OR p.kind = $3) ORDER BY p.kind DESC, p.position",
        )
        .bind(code)
        .bind(kind)
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| PendingPage {
                id: r.get(0),
                kind: r.get(1),
                position: r.get(2),
                blake3: r.get(3),
                origin: r.get(4),
                size: r.get(5),
                turn: r.get(6),
            })
            .collect())
    }

    /// Removes waiting pages of a dossier by id (its object stays stored); returns how many went.
    pub async fn remove_pending_pages(&self, code: &str, ids: &[i64]) -> Result<u64, RepoError> {
        let mut removed = 0;
        let mut tx = self.begin_write().await?;
        for id in ids {
            removed += sqlx::query(
                "DELETE FROM pending_pages WHERE id = $1
                 AND dossier_id = (SELECT id FROM dossiers WHERE code = $2)",
            )
            .bind(id)
            .bind(code)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Turns a waiting page of dossier `code` by `quarter_turns` more clockwise. Answers the dossier's
    /// waiting pages, or `None` if it has no such page.
    pub async fn turn_pending_page(
        &self,
        code: &str,
        id: i64,
        quarter_turns: i64,
    ) -> Result<Option<Vec<PendingPage>>, RepoError> {
        let turned = sqlx::query(
            "UPDATE pending_pages SET turn = (turn + $1) % 4
             WHERE id = $2 AND dossier_id = (SELECT id FROM dossiers WHERE code = $3)",
        )
        .bind(quarter_turns.rem_euclid(4))
        .bind(id)
        .bind(code)
        .execute(&self.pool)
        .await?;
        if turned.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(self.pending_pages(code, None).await?))
    }

    /// Moves waiting page `id` of a dossier to `position` (from 1) among the waiting pages of its kind,
    /// shifting the pages between; a position past the end puts it last. Returns the dossier's waiting
    /// pages in their new order, or `None` when the dossier has no waiting page `id`.
    pub async fn move_pending_page(
        &self,
        code: &str,
        id: i64,
        position: i64,
    ) -> Result<Option<Vec<PendingPage>>, RepoError> {
        let mut tx = self.begin_write().await?;
        // Locked as an upload locks it, so a move and an upload to one dossier number pages in turn.
        let lock = format!(
            "SELECT id FROM dossiers WHERE code = $1{}",
            self.backend.for_update()
        );
        let Some(dossier_id) = sqlx::query_scalar::<_, i64>(&lock)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let Some(kind) = sqlx::query_scalar::<_, String>(
            "SELECT kind FROM pending_pages WHERE id = $1 AND dossier_id = $2",
        )
        .bind(id)
        .bind(dossier_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let mut order: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM pending_pages WHERE dossier_id = $1 AND kind = $2 ORDER BY position, id",
        )
        .bind(dossier_id)
        .bind(&kind)
        .fetch_all(&mut *tx)
        .await?;
        order.retain(|&other| other != id);
        let index = usize::try_from(position.max(1) - 1)
            .unwrap_or(usize::MAX)
            .min(order.len());
        order.insert(index, id);
        // Renumbered 1..n, so positions stay dense whatever gaps removals left.
        for (number, page) in (1i64..).zip(&order) {
            sqlx::query("UPDATE pending_pages SET position = $1 WHERE id = $2")
                .bind(number)
                .bind(page)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(self.pending_pages(code, None).await?))
    }

    /// Records that `code` reuses the digitized result `document` of another dossier.
    pub async fn record_reuse(&self, code: &str, document: &str) -> Result<bool, RepoError> {
        let kind: Option<String> =
            sqlx::query_scalar("SELECT kind FROM documents WHERE blake3 = $1 LIMIT 1")
                .bind(document)
                .fetch_optional(&self.pool)
                .await?;
        match kind.as_deref() {
            None => return Err(RepoError::NotFound(format!("no document {document}"))),
            Some("result") => {}
            Some(_) => {
                return Err(RepoError::Conflict(format!(
                    "document {document} is a submitted component, not a result"
                )));
            }
        }
        let done = sqlx::query(
            "INSERT INTO result_reuses (dossier_id, document, created_at)
             SELECT id, $1, $2 FROM dossiers WHERE code = $3
             ON CONFLICT (dossier_id, document) DO NOTHING",
        )
        .bind(document)
        .bind(now_rfc3339())
        .bind(code)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Registers or changes a unit.
    pub async fn put_unit(&self, unit: &UnitRecord) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO units (code, name, level) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level",
        )
        .bind(&unit.code)
        .bind(&unit.name)
        .bind(&unit.level)
        .execute(&self.pool)
        .await?;
        self.log_changes_of("unit_code = $1", &unit.code).await
    }

    /// Every registered unit.
    pub async fn units(&self) -> Result<Vec<UnitRecord>, RepoError> {
        let rows = sqlx::query("SELECT code, name, level FROM units ORDER BY code")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| UnitRecord {
                code: r.get(0),
                name: r.get(1),
                level: r.get(2),
            })
            .collect())
    }

    /// Registers or changes a procedure.
    pub async fn put_procedure(&self, procedure: &ProcedureRecord) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO procedures (code, name, field, level) VALUES ($1, $2, $3, $4)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, field = excluded.field,
                                              level = excluded.level",
        )
        .bind(&procedure.code)
        .bind(&procedure.name)
        .bind(&procedure.field)
        .bind(&procedure.level)
        .execute(&self.pool)
        .await?;
        self.log_changes_of("procedure_code = $1", &procedure.code)
            .await
    }

    /// Registered procedures whose code or name contains `text` (case-insensitive for ASCII), by code.
    pub async fn procedures(
        &self,
        text: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProcedureRecord>, RepoError> {
        let sql = format!(
            "SELECT code, name, field, level FROM procedures WHERE $1 IS NULL OR {} OR {}
             ORDER BY code LIMIT $2",
            self.backend.contains("code", "$1"),
            self.backend.contains("name", "$1"),
        );
        let rows = sqlx::query(&sql)
            .bind(text)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| ProcedureRecord {
                code: r.get(0),
                name: r.get(1),
                field: r.get(2),
                level: r.get(3),
            })
            .collect())
    }

    /// Logs a change of every dossier matching `condition` (one bound value), so the index re-reads them.
    async fn log_changes_of(&self, condition: &str, value: &str) -> Result<(), RepoError> {
        let sql = format!(
            "INSERT INTO dossier_changes (dossier) SELECT code FROM dossiers WHERE {condition}"
        );
        let mut tx = self.begin_followed_write().await?;
        sqlx::query(&sql).bind(value).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
