//! `POST /v1/dossiers/{code}/documents`: upload a document's pages (multipart, one file part per page or
//! multi-page file, in order) and get back the packaged document.

use std::io::Write;

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use scanner_drivers::FileImport;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::archive::{IngestReport, IngestRequest};
use crate::codes::{DocumentKind, DossierCode, ProcedureCode, UnitCode};
use crate::repo::NewDossier;

/// `max_upload`: the largest request body accepted (the `limits.max_upload_bytes` setting); larger ones
/// get `413` before they are read.
pub(super) fn router(max_upload: usize) -> Router<AppState> {
    Router::new().route(
        "/v1/dossiers/{code}/documents",
        post(upload_document).layer(DefaultBodyLimit::max(max_upload)),
    )
}

#[derive(Deserialize)]
struct Params {
    procedure: Option<String>,
    unit: Option<String>,
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

async fn upload_document(
    State(archive): State<AppState>,
    Path(code): Path<String>,
    Query(params): Query<Params>,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<IngestReport>), ApiError> {
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
        Ok::<_, ApiError>(IngestRequest { dossier, kind })
    })();
    let request = match request {
        Ok(request) => request,
        Err(refusal) => return Err(drained(refusal, &mut multipart).await),
    };

    let (spool, files) = spool_parts(&archive, &mut multipart).await?;
    let source = FileImport::labelled(files)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-upload", e.to_string()))?;
    let report = archive
        .ingest(request, Box::new(source), std::sync::Arc::new(|_| {}))
        .await?;
    drop(spool);
    Ok((StatusCode::CREATED, Json(report)))
}

/// Reads the rest of an upload that is refused (within the body limit), so the client, still sending, gets
/// the refusal instead of a reset connection; returns the refusal.
pub(super) async fn drained(refusal: ApiError, multipart: &mut Multipart) -> ApiError {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
    refusal
}

/// Spools every file part of `multipart` to a work folder as it streams in, so memory holds one chunk, not
/// the upload; returns the folder (removed when dropped) and each file with the name the client gave it.
/// Refuses an upload with no file part.
pub(super) async fn spool_parts(
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
fn safe_name(name: &str) -> String {
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
