//! Pages waiting to be packaged: upload (`POST /v1/dossiers/{code}/pages`, multipart or one raw file,
//! streamed, with `Idempotency-Key`), list, reorder (`PATCH .../pages/{id}`), remove, and package them (`POST /v1/dossiers/{code}/finalize`,
//! `202` with a job).

use std::io::Write;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::records::dossier_in_scope;
use crate::access::Permission;
use crate::codes::{ContentHash, DocumentKind};
use crate::repo::{JobRecord, KeptAnswer, ObjectRecord, PendingPage};
use crate::routes::error::ErrorBody;
use crate::routes::extract::{JsonBody, PathParams, QueryParams, optional_json};
use crate::routes::{ApiError, AppState, Caller};

/// Most files one upload may carry.
const MAX_PARTS: usize = 1000;
/// How much of an oversized upload is read (and dropped) before it is refused.
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// How to file the uploaded pages.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadParams {
    /// `submitted` (default) or `result`.
    kind: Option<String>,
    /// For a raw upload: the file's name, shown to the clerk.
    name: Option<String>,
}

/// The pages an upload added.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct UploadedPages {
    /// The pages, in order, now waiting to be packaged.
    pages: Vec<PendingPage>,
}

/// What to package.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinalizeBody {
    /// `submitted` (default) or `result`.
    kind: Option<String>,
}

/// A file of the upload, spooled to disk and hashed as it streamed in.
struct Spooled {
    path: std::path::PathBuf,
    origin: String,
    hash: ContentHash,
    size: u64,
    media_type: &'static str,
}

/// A stored file's media type, by content; `None` for anything that is not a page file.
pub(super) fn media_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"%PDF-") {
        return Some("application/pdf");
    }
    scanner_drivers::PageFormat::sniff(head).map(|format| format.media_type())
}

struct Spool {
    dir: tempfile::TempDir,
    files: Vec<Spooled>,
    total: u64,
    limit: u64,
}

impl Spool {
    fn new(archive: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            dir: tempfile::tempdir_in(archive.tmp_dir()).map_err(ApiError::internal)?,
            files: Vec::new(),
            total: 0,
            limit: archive.max_upload_bytes(),
        })
    }

    /// Streams one file to disk, hashing it, within the upload's size limit.
    async fn take<E: std::fmt::Display>(
        &mut self,
        origin: String,
        mut chunks: impl futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    ) -> Result<(), ApiError> {
        if self.files.len() >= MAX_PARTS {
            return Err(ApiError::invalid(format!(
                "an upload may carry at most {MAX_PARTS} files; send the rest in another"
            )));
        }
        let path = self.dir.path().join(format!("{:05}", self.files.len() + 1));
        let mut file = std::fs::File::create(&path).map_err(ApiError::internal)?;
        let mut hasher = blake3::Hasher::new();
        let mut head = Vec::with_capacity(8);
        let mut size = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-upload",
                    format!("the upload could not be read: {e}"),
                )
            })?;
            size += chunk.len() as u64;
            self.total += chunk.len() as u64;
            if self.total > self.limit {
                // Read on (a little) so a client still sending gets the answer, not a reset connection.
                let mut drained = 0u64;
                while drained < DRAIN_BYTES {
                    match chunks.next().await {
                        Some(Ok(more)) => drained += more.len() as u64,
                        _ => break,
                    }
                }
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "upload-too-large",
                    format!(
                        "the upload is larger than the {} bytes this archive accepts in one request",
                        self.limit
                    ),
                ));
            }
            if head.len() < 8 {
                head.extend(chunk.iter().take(8 - head.len()));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(ApiError::internal)?;
        }
        let media_type = media_type(&head).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-a-page",
                format!("'{origin}' is not a PNG, JPEG, TIFF or PDF file; scan it again or send the right file"),
            )
        })?;
        self.files.push(Spooled {
            path,
            origin,
            hash: ContentHash::from(hasher.finalize()),
            size,
            media_type,
        });
        Ok(())
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| {
            ApiError::invalid("Idempotency-Key must be 1 to 200 visible ASCII characters")
        })
}

pub(in crate::routes) fn kind_of(value: Option<&str>) -> Result<DocumentKind, ApiError> {
    Ok(match value {
        Some(kind) => kind.parse::<DocumentKind>()?,
        None => DocumentKind::default(),
    })
}

/// Uploads page files into a dossier, where they wait to be packaged by `finalize`. The body is either
/// `multipart/form-data` (one file part per page or multi-page file, in order) or one raw file (its name
/// in `?name=`). Each file is stored under its BLAKE3 before it is recorded. With an `Idempotency-Key`
/// header, a retry of the same upload answers as the first did and adds nothing; the same key with a
/// different upload is `422`.
#[utoipa::path(post, path = "/v1/dossiers/{code}/pages", tag = "pages",
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$"), UploadParams,
           ("Idempotency-Key" = Option<String>, Header, description = "makes a retried upload harmless")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
                 description = "a PNG, JPEG, TIFF or PDF file, or multipart/form-data with several"),
    responses((status = 201, body = UploadedPages), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn upload_pages(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
    QueryParams(params): QueryParams<UploadParams>,
    request: Request,
) -> Result<(StatusCode, Json<UploadedPages>), ApiError> {
    let dossier = dossier_in_scope(
        &archive,
        &caller,
        Permission::WriteDossiers,
        "pages.upload",
        &code,
    )
    .await?;
    let kind = kind_of(params.kind.as_deref())?;
    let (status, pages) =
        store_pages(&archive, &caller, &dossier.code, kind, request, params.name).await?;
    Ok((status, Json(UploadedPages { pages })))
}

/// Receives an upload, stores its files (objects first), and records them as pages of `dossier` waiting
/// to be packaged, honouring an `Idempotency-Key` header.
pub(in crate::routes) async fn store_pages(
    archive: &AppState,
    caller: &Caller,
    dossier: &str,
    kind: DocumentKind,
    request: Request,
    name: Option<String>,
) -> Result<(StatusCode, Vec<PendingPage>), ApiError> {
    let key = idempotency_key(request.headers())?;
    let spool = receive(archive, request, name).await?;

    let mut fingerprint = blake3::Hasher::new();
    fingerprint.update(format!("pages\n{dossier}\n{}\n", kind.as_str()).as_bytes());
    for file in &spool.files {
        fingerprint.update(format!("{}\t{}\n", file.hash, file.origin).as_bytes());
    }
    let fingerprint = fingerprint.finalize().to_hex().to_string();
    if let Some(key) = &key
        && let Some(kept) = archive.repo().kept_answer(&caller.0.name, key).await?
    {
        return replay(kept, &fingerprint);
    }

    let mut records = Vec::with_capacity(spool.files.len());
    for file in &spool.files {
        archive
            .blobs()
            .put_file(&file.hash, &file.path)
            .await
            .map_err(ApiError::internal)?;
        records.push((
            ObjectRecord {
                blake3: file.hash.to_hex(),
                size: file.size,
                media_type: file.media_type.to_owned(),
            },
            file.origin.clone(),
        ));
    }
    let idempotency = key
        .as_deref()
        .map(|key| (caller.0.name.as_str(), key, fingerprint.as_str()));
    let added = archive
        .repo()
        .add_pending_pages(dossier, kind.as_str(), &records, idempotency)
        .await?;
    let pages = match added {
        Ok(pages) => pages,
        Err(kept) => return replay(kept, &fingerprint),
    };
    let names: Vec<&str> = pages.iter().map(|p| p.origin.as_str()).collect();
    caller
        .record(
            archive,
            "pages.upload",
            &format!("{dossier} {}: {}", kind.as_str(), names.join(", ")),
            Some(dossier),
        )
        .await?;
    Ok((StatusCode::CREATED, pages))
}

/// The first answer to an idempotency key, if this request is the same one.
fn replay(kept: KeptAnswer, fingerprint: &str) -> Result<(StatusCode, Vec<PendingPage>), ApiError> {
    if kept.fingerprint != fingerprint {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "this Idempotency-Key was used for a different upload; use a new key for a new upload",
        ));
    }
    let pages: Vec<PendingPage> =
        serde_json::from_str(&kept.response).map_err(ApiError::internal)?;
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::CREATED);
    Ok((status, pages))
}

/// Spools the body: every file part of a multipart body, or the body itself as one file.
async fn receive(
    archive: &AppState,
    request: Request,
    name: Option<String>,
) -> Result<Spool, ApiError> {
    let mut spool = Spool::new(archive)?;
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    if is_multipart {
        let mut multipart = axum::extract::Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::invalid(e.body_text()))?;
        let bad = |e: axum::extract::multipart::MultipartError| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-upload",
                format!("the upload could not be read: {}", e.body_text()),
            )
        };
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            let number = spool.files.len() + 1;
            let origin = field
                .file_name()
                .map(super::upload::safe_name)
                .unwrap_or_else(|| format!("part {number}"));
            spool.take(origin, field.boxed()).await?;
        }
    } else {
        let origin = name
            .as_deref()
            .map(super::upload::safe_name)
            .unwrap_or_else(|| "page 1".to_owned());
        let body: Body = request.into_body();
        spool.take(origin, body.into_data_stream()).await?;
    }
    if spool.files.is_empty() || spool.files.iter().all(|f| f.size == 0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no-pages",
            "the upload holds no page files",
        ));
    }
    Ok(spool)
}

use axum::extract::FromRequest;

/// The pages of a dossier waiting to be packaged.
#[utoipa::path(get, path = "/v1/dossiers/{code}/pages", tag = "pages",
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$")),
    responses((status = 200, body = UploadedPages), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn list_pages(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
) -> Result<Json<UploadedPages>, ApiError> {
    let dossier = dossier_in_scope(
        &archive,
        &caller,
        Permission::ReadMetadata,
        "pages.list",
        &code,
    )
    .await?;
    let pages = archive.repo().pending_pages(&dossier.code, None).await?;
    Ok(Json(UploadedPages { pages }))
}

/// Takes a waiting page out (a wrong sheet); its file stays stored.
#[utoipa::path(delete, path = "/v1/dossiers/{code}/pages/{id}", tag = "pages",
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$"),
           ("id" = i64, Path, description = "the waiting page's id")),
    responses((status = 204, description = "removed"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn remove_page(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams((code, id)): PathParams<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let dossier = dossier_in_scope(
        &archive,
        &caller,
        Permission::WriteDossiers,
        "pages.remove",
        &code,
    )
    .await?;
    let removed = archive
        .repo()
        .remove_pending_pages(&dossier.code, &[id])
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found(
            "page-not-found",
            format!("dossier {} has no waiting page {id}", dossier.code),
        ));
    }
    caller
        .record(
            &archive,
            "pages.remove",
            &format!("{} page {id}", dossier.code),
            Some(&dossier.code),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a waiting page goes, and how it is turned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PagePlacement {
    /// Its new place among the waiting pages of its kind, from 1; a place past the end puts it last.
    #[serde(default)]
    position: Option<i64>,
    /// Degrees to turn it clockwise, added to any turn before: 90, 180, 270 (or -90). The scan is kept as
    /// it is; the page is read, and shown in the PDF, turned so, instead of the orientation the OCR
    /// engine would detect.
    #[serde(default)]
    rotate: Option<i64>,
}

/// Moves a waiting page to another place in its document (the pages between shift by one), as a clerk
/// reorders sheets before packaging, and/or turns it a quarter, half or three quarters. Answers the
/// dossier's waiting pages in their new order.
#[utoipa::path(patch, path = "/v1/dossiers/{code}/pages/{id}", tag = "pages", request_body = PagePlacement,
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$"),
           ("id" = i64, Path, description = "the waiting page's id")),
    responses((status = 200, body = UploadedPages), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn move_page(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams((code, id)): PathParams<(String, i64)>,
    JsonBody(placement): JsonBody<PagePlacement>,
) -> Result<Json<UploadedPages>, ApiError> {
    let dossier = dossier_in_scope(
        &archive,
        &caller,
        Permission::WriteDossiers,
        "pages.move",
        &code,
    )
    .await?;
    if placement.position.is_none() && placement.rotate.is_none() {
        return Err(ApiError::invalid(
            "give the page's new `position`, or `rotate` (degrees clockwise), or both",
        ));
    }
    if let Some(position) = placement.position
        && !(1..=i64::from(u32::MAX)).contains(&position)
    {
        return Err(ApiError::invalid(format!(
            "position must be a page number from 1, not {position}"
        )));
    }
    let quarter_turns = match placement.rotate {
        None => None,
        Some(degrees @ (-90 | 90 | 180 | 270)) => Some(degrees / 90),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "rotate must be 90, 180, 270 or -90 degrees, not {other}"
            )));
        }
    };
    let not_found = || {
        ApiError::not_found(
            "page-not-found",
            format!("dossier {} has no waiting page {id}", dossier.code),
        )
    };
    let mut pages = None;
    if let Some(quarter_turns) = quarter_turns {
        pages = Some(
            archive
                .repo()
                .turn_pending_page(&dossier.code, id, quarter_turns)
                .await?
                .ok_or_else(not_found)?,
        );
        caller
            .record(
                &archive,
                "pages.turn",
                &format!(
                    "{} page {id} by {} degrees",
                    dossier.code,
                    quarter_turns * 90
                ),
                Some(&dossier.code),
            )
            .await?;
    }
    if let Some(position) = placement.position {
        pages = Some(
            archive
                .repo()
                .move_pending_page(&dossier.code, id, position)
                .await?
                .ok_or_else(not_found)?,
        );
        caller
            .record(
                &archive,
                "pages.move",
                &format!("{} page {id} to position {position}", dossier.code),
                Some(&dossier.code),
            )
            .await?;
    }
    Ok(Json(UploadedPages {
        pages: pages.unwrap_or_default(),
    }))
}

/// Packages the waiting pages of one kind into a document: `202` with the job, whose progress is at
/// `GET /v1/jobs/{id}` and, live, at `GET /v1/jobs/{id}/events`. Asking again while it runs returns the
/// same job.
#[utoipa::path(post, path = "/v1/dossiers/{code}/finalize", tag = "pages",
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$")),
    request_body(content = Option<FinalizeBody>, content_type = "application/json"),
    responses((status = 202, body = JobRecord), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn finalize(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobRecord>), ApiError> {
    let dossier = dossier_in_scope(
        &archive,
        &caller,
        Permission::WriteDossiers,
        "dossier.finalize",
        &code,
    )
    .await?;
    let body: FinalizeBody = optional_json(&body)?;
    let kind = kind_of(body.kind.as_deref())?;
    let job = crate::jobs::enqueue_package(&archive, &dossier.code, kind, &caller.0.name)
        .await
        .map_err(|e| match e {
            crate::jobs::JobError::NothingToPackage { .. } => {
                ApiError::new(StatusCode::CONFLICT, "nothing-to-package", e.to_string())
            }
            other => ApiError::internal(other),
        })?;
    caller
        .record(
            &archive,
            "dossier.finalize",
            &format!("{} {} job {}", dossier.code, kind.as_str(), job.id),
            Some(&dossier.code),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}
