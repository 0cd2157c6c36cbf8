//! `POST /v1/dossiers/{code}/documents`: upload a document's pages (multipart, one file part per page or
//! multi-page file, in order) and get back the packaged document.

use std::io::Write;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scanner_drivers::FileImport;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::access::Permission;
use crate::archive::{IngestReport, IngestRequest};
use crate::codes::{DocumentKind, DossierCode, ProcedureCode, UnitCode};
use crate::repo::{DossierDetails, JobRecord, NewDossier};
use crate::routes::error::ErrorBody;
use crate::routes::extract::{PathParams, QueryParams};
use crate::routes::{ApiError, AppState, Caller};

/// Where the document goes.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Params {
    /// Procedure code (registers the dossier if it is new).
    procedure: Option<String>,
    /// Unit code.
    unit: Option<String>,
    /// `submitted` (default) or `result`.
    kind: Option<String>,
}

fn required(value: Option<String>, name: &str) -> Result<String, ApiError> {
    value.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            format!("the query parameter '{name}' is required"),
        )
    })
}

/// Uploads a document's pages (multipart, one file part per page or multi-page file, in order),
/// registering the dossier if it is new, and answers with the packaged document (`201`; failed pages are
/// listed, `422` when none could be read). With `Prefer: respond-async` the pages are stored and a
/// packaging job started instead: `202` with the job.
#[utoipa::path(post, path = "/v1/dossiers/{code}/documents", tag = "dossiers",
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$"), Params,
           ("Prefer" = Option<String>, Header, description = "`respond-async` for a job instead of waiting"),
           ("Idempotency-Key" = Option<String>, Header, description = "with respond-async: makes a retry harmless")),
    request_body(content = Vec<u8>, content_type = "multipart/form-data"),
    responses((status = 201, body = IngestReport), (status = 202, body = JobRecord),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn upload_document(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
    QueryParams(params): QueryParams<Params>,
    request: Request,
) -> Result<Response, ApiError> {
    let wants_job = request
        .headers()
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "respond-async"));
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid-upload",
            "send the pages as multipart/form-data, one file part per page or multi-page file",
        ));
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::invalid(e.body_text()))?;
    let request = (|| {
        let dossier = NewDossier {
            code: DossierCode::parse(&code)?,
            procedure: ProcedureCode::parse(&required(params.procedure, "procedure")?)?,
            unit: UnitCode::parse(&required(params.unit, "unit")?)?,
        };
        let kind = match params.kind {
            Some(kind) => kind.parse::<DocumentKind>()?,
            None => DocumentKind::default(),
        };
        Ok::<_, ApiError>(IngestRequest {
            dossier,
            kind,
            job: None,
        })
    })();
    let request = match request {
        Ok(request) => request,
        Err(refusal) => return Err(drained(refusal, &mut multipart).await),
    };
    let dossier_code = request.dossier.code.as_str().to_owned();
    if let Err(refusal) = caller
        .require_in_unit(
            &archive,
            Permission::WriteDossiers,
            "document.upload",
            &dossier_code,
            Some(&dossier_code),
            request.dossier.unit.as_str(),
        )
        .await
    {
        return Err(drained(refusal, &mut multipart).await);
    }
    if let Err(conflict) = archive.repo().check_dossier(&request.dossier).await {
        return Err(drained(conflict.into(), &mut multipart).await);
    }

    let (spool, files) = spool_parts(&archive, &mut multipart).await?;
    if wants_job {
        return upload_as_job(&archive, &caller, request, files).await;
    }
    let source = FileImport::labelled(files)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-upload", e.to_string()))?;
    let report = archive
        .ingest(request, Box::new(source), std::sync::Arc::new(|_| {}))
        .await?;
    drop(spool);
    caller
        .record(
            &archive,
            "document.upload",
            &format!("{dossier_code} document {}", report.document),
            Some(&dossier_code),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

/// Stores the spooled files as the dossier's waiting pages and starts the job that packages them.
async fn upload_as_job(
    archive: &AppState,
    caller: &Caller,
    request: IngestRequest,
    files: Vec<(std::path::PathBuf, String)>,
) -> Result<Response, ApiError> {
    let code = request.dossier.code.clone();
    let details = DossierDetails {
        received_at: crate::time::received_rfc3339(&code),
        due_at: None,
        resolved_at: None,
        status: 2,
        channel: 1,
        applicant: String::new(),
        dossier: request.dossier,
    };
    archive.repo().create_dossier(&details).await?;
    let mut records = Vec::with_capacity(files.len());
    for (path, origin) in &files {
        // Hashed as it is read, with the first bytes kept to tell what it is: the file is not held in memory.
        let file = path.clone();
        let (hash, size, head) = tokio::task::spawn_blocking(move || {
            let mut reader = std::fs::File::open(&file)?;
            let mut head = [0u8; 8];
            let n = std::io::Read::read(&mut reader, &mut head)?;
            let mut hasher = blake3::Hasher::new();
            hasher.update(&head[..n]);
            hasher.update_reader(&mut reader)?;
            let size = std::fs::metadata(&file)?.len();
            Ok::<_, std::io::Error>((
                crate::codes::ContentHash::from(hasher.finalize()),
                size,
                head[..n].to_vec(),
            ))
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
        archive
            .blobs()
            .put_file(&hash, path)
            .await
            .map_err(ApiError::internal)?;
        let media_type = super::pages::media_type(&head).unwrap_or("application/octet-stream");
        records.push((
            crate::repo::ObjectRecord {
                blake3: hash.to_hex(),
                size,
                media_type: media_type.to_owned(),
            },
            origin.clone(),
        ));
    }
    archive
        .repo()
        .add_pending_pages(code.as_str(), request.kind.as_str(), &records, None)
        .await?
        .map_err(|_| ApiError::internal("pending pages refused without a key"))?;
    let job = crate::jobs::enqueue_package(archive, code.as_str(), request.kind, &caller.0.name)
        .await
        .map_err(ApiError::internal)?;
    caller
        .record(
            archive,
            "document.upload",
            &format!("{code} job {}", job.id),
            Some(code.as_str()),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// Reads the rest of an upload that is refused (within the body limit), so the client, still sending, gets
/// the refusal instead of a reset connection; returns the refusal.
pub(in crate::routes) async fn drained(refusal: ApiError, multipart: &mut Multipart) -> ApiError {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
    refusal
}

/// Spools every file part of `multipart` to a work folder as it streams in, so memory holds one chunk, not
/// the upload; returns the folder (removed when dropped) and each file with the name the client gave it.
/// Refuses an upload with no file part.
pub(in crate::routes) async fn spool_parts(
    archive: &AppState,
    multipart: &mut Multipart,
) -> Result<(tempfile::TempDir, Vec<(std::path::PathBuf, String)>), ApiError> {
    let spool = tempfile::tempdir_in(archive.tmp_dir()).map_err(ApiError::internal)?;
    let mut files = Vec::new();
    let bad_upload = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(
            e.status(),
            "invalid-upload",
            format!("the upload could not be read: {}", e.body_text()),
        )
    };
    while let Some(mut field) = multipart.next_field().await.map_err(bad_upload)? {
        let number = files.len() + 1;
        let label = field
            .file_name()
            .map(safe_name)
            .unwrap_or_else(|| format!("part {number}"));
        let path = spool.path().join(format!("{number:05}"));
        let mut file = std::fs::File::create(&path).map_err(ApiError::internal)?;
        while let Some(chunk) = field.chunk().await.map_err(bad_upload)? {
            file.write_all(&chunk).map_err(ApiError::internal)?;
        }
        files.push((path, label));
    }
    if files.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no-pages",
            "the upload holds no page files",
        ));
    }
    Ok((spool, files))
}

/// The last component of a client-supplied file name, without control characters: shown to people, never
/// used as a path.
pub(super) fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.is_empty() {
        "unnamed".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn client_file_names_lose_their_paths() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\scans\\trang 1.jpg"), "trang 1.jpg");
        assert_eq!(safe_name("a\u{0}b\nc.png"), "abc.png");
        assert_eq!(safe_name("../"), "unnamed");
    }
}
