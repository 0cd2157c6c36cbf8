//! Documents: read a page's text and word boxes (`GET /v1/documents/{hash}/pages/{n}`), and replace a
//! flagged page with its rescan (`PUT`, multipart, one file part): the document is packaged again and
//! recorded as replacing the old one; the answer is the new document, as for an upload.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use scanner_drivers::FileImport;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dossiers::{drained, spool_parts};
use super::error::ErrorBody;
use super::extract::PathParams;
use super::{ApiError, AppState, Caller};
use crate::access::Permission;
use crate::archive::IngestReport;
use crate::codes::ContentHash;
use crate::repo::PageText;

pub(super) fn router(max_upload: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page_text, replace_page))
        .layer(DefaultBodyLimit::max(max_upload))
}

fn page_number(number: &str) -> Result<u32, ApiError> {
    number.parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
        ApiError::invalid(format!(
            "the page number must be a whole number from 1, not '{number}'"
        ))
    })
}

/// A page's OCR text and word boxes (for highlighting matches on the page image). Recorded in the audit
/// log.
#[utoipa::path(get, path = "/v1/documents/{hash}/pages/{number}", tag = "documents",
    params(("hash" = String, Path, description = "BLAKE3 of the document's PDF", pattern = "^[0-9a-f]{64}$"),
           ("number" = u32, Path, description = "page number, from 1")),
    responses((status = 200, body = PageText), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn page_text(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams((hash, number)): PathParams<(String, String)>,
) -> Result<Json<PageText>, ApiError> {
    let document = ContentHash::parse(&hash)?.to_hex();
    let number = page_number(&number)?;
    caller
        .require(&archive, Permission::ReadContent, "page.read", &document)
        .await?;
    let page = archive
        .repo()
        .page_text(&document, number)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "page-not-found",
                format!("document {document} has no page {number}"),
            )
        })?;
    let target = format!("{document} page {number}");
    caller
        .require_in_unit(
            &archive,
            Permission::ReadContent,
            "page.read",
            &target,
            Some(&page.dossier),
            &page.unit,
        )
        .await?;
    caller
        .record(&archive, "page.read", &target, Some(&page.dossier))
        .await?;
    Ok(Json(page))
}

/// Replaces page `number` of a document with its rescan (one file part).
#[utoipa::path(put, path = "/v1/documents/{hash}/pages/{number}", tag = "documents",
    params(("hash" = String, Path, description = "BLAKE3 of the document's PDF", pattern = "^[0-9a-f]{64}$"),
           ("number" = u32, Path, description = "page number, from 1")),
    request_body(content = Vec<u8>, content_type = "multipart/form-data"),
    responses((status = 201, body = IngestReport), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace_page(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams((hash, number)): PathParams<(String, String)>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<IngestReport>), ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-upload",
            format!(
                "send the rescanned page as multipart/form-data: {}",
                e.body_text()
            ),
        )
    })?;
    let target = ContentHash::parse(&hash)
        .map_err(ApiError::from)
        .and_then(|document| Ok((document, page_number(&number)?)));
    let (document, number) = match target {
        Ok(target) => target,
        Err(refusal) => return Err(drained(refusal, &mut multipart).await),
    };
    let label = format!("{document} page {number}");
    let allowed = async {
        caller
            .require(&archive, Permission::WriteDossiers, "page.replace", &label)
            .await?;
        let stored = archive
            .repo()
            .stored_document(&document.to_hex())
            .await?
            .ok_or_else(|| {
                ApiError::not_found("document-not-found", format!("no document {document}"))
            })?;
        caller
            .require_in_unit(
                &archive,
                Permission::WriteDossiers,
                "page.replace",
                &label,
                Some(&stored.dossier),
                &stored.unit,
            )
            .await?;
        Ok::<_, ApiError>(stored.dossier)
    }
    .await;
    let dossier = match allowed {
        Ok(dossier) => dossier,
        Err(refusal) => return Err(drained(refusal, &mut multipart).await),
    };
    let (spool, files) = spool_parts(&archive, &mut multipart).await?;
    if files.len() != 1 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-upload",
            format!(
                "send the rescanned page as one file part, not {}",
                files.len()
            ),
        ));
    }
    let source = FileImport::labelled(files)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-upload", e.to_string()))?;
    let report = archive
        .replace_page(
            &document,
            number,
            Box::new(source),
            std::sync::Arc::new(|_| {}),
        )
        .await?;
    drop(spool);
    caller
        .record(
            &archive,
            "page.replace",
            &format!("{label} -> document {}", report.document),
            Some(&dossier),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(report)))
}
