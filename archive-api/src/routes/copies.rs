//! Certified copies: `GET /v1/copies/{blake3}` (by the archived document's hash or the copy's own) and
//! `POST /v1/verify` (is this PDF an intact copy issued by this archive?).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{ApiError, AppState};
use crate::codes::ContentHash;
use crate::copies::Verification;

/// Largest PDF accepted for verification.
const MAX_VERIFY_BYTES: usize = 1024 * 1024 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/copies/{hash}", get(get_copy))
        .route(
            "/v1/verify",
            post(verify).layer(DefaultBodyLimit::max(MAX_VERIFY_BYTES)),
        )
}

async fn get_copy(
    State(archive): State<AppState>,
    Path(hash): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let hash = ContentHash::parse(&hash)?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let issued_to = format!("http {client} ({agent})");
    let copy = archive.certified_copy(&hash, &issued_to).await?;
    let record = copy.record;
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

/// The PDF is the request body. `200` with the verdict whatever it is: `valid` says whether the copy holds.
async fn verify(
    State(archive): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
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
