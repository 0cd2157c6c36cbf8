//! Certified copies: `GET /v1/copies/{blake3}` (by the archived document's hash or the copy's own) and
//! `POST /v1/verify` (is this PDF an intact copy issued by this archive?).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::PathParams;
use super::objects::object_in_scope;
use super::{ApiError, AppState, Caller};
use crate::access::Permission;
use crate::codes::ContentHash;
use crate::copies::Verification;

/// Largest PDF accepted for verification.
const MAX_VERIFY_BYTES: usize = 1024 * 1024 * 1024;

pub(super) fn router() -> OpenApiRouter<AppState> {
    let verify = OpenApiRouter::new()
        .routes(routes!(verify))
        .layer(DefaultBodyLimit::max(MAX_VERIFY_BYTES));
    OpenApiRouter::new().routes(routes!(get_copy)).merge(verify)
}

/// A certified copy (bản sao điện tử có chứng thực) of a document, by the document's hash or the copy's
/// own: the archived PDF with the unit's certification line and digital signature. Every issue is
/// recorded.
#[utoipa::path(get, path = "/v1/copies/{hash}", tag = "copies",
    params(("hash" = String, Path, description = "BLAKE3 of the document or of a copy", pattern = "^[0-9a-f]{64}$")),
    responses((status = 200, description = "the signed PDF", content_type = "application/pdf", body = Vec<u8>),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, description = "the unit's signing certificate is unusable", body = ErrorBody)))]
async fn get_copy(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(hash): PathParams<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let hash = ContentHash::parse(&hash)?;
    let dossier = object_in_scope(
        &archive,
        &caller,
        Permission::IssueCopy,
        "copy.issue",
        &hash,
    )
    .await?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let issued_to = format!("{} via http {} ({agent})", caller.0.name, caller.0.client);
    let copy = archive.certified_copy(&hash, &issued_to).await?;
    let record = copy.record;
    caller
        .record(
            &archive,
            "copy.issue",
            &format!("{} of document {}", record.blake3, record.document),
            dossier.as_deref(),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::ETAG, format!("\"{}\"", record.blake3)),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"ban-sao-{}.pdf\"",
                    &record.blake3[..16]
                ),
            ),
            (
                header::HeaderName::from_static("x-sohoa-copy"),
                record.blake3,
            ),
            (
                header::HeaderName::from_static("x-sohoa-document"),
                record.document,
            ),
            (
                header::HeaderName::from_static("x-sohoa-signed-at"),
                record.signed_at,
            ),
        ],
        copy.bytes,
    ))
}

/// Checks a PDF (the request body) against the copies this archive issued: `200` with the verdict
/// whatever it is; `valid` says whether the copy holds (signature intact over the whole file, and this
/// exact file issued here).
#[utoipa::path(post, path = "/v1/verify", tag = "copies",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the PDF"),
    responses((status = 200, description = "the verdict", body = Object),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn verify(
    State(archive): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    caller
        .require(&archive, Permission::Verify, "copy.verify", "")
        .await?;
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            "send the PDF to check as the request body",
        ));
    }
    let verdict: Verification = archive
        .verify_copy(body)
        .await
        .map_err(ApiError::internal)?;
    let mut json = serde_json::to_value(&verdict).map_err(ApiError::internal)?;
    json["valid"] = verdict.valid().into();
    Ok((StatusCode::OK, Json(json)))
}
