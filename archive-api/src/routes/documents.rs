//! `PUT /v1/documents/{hash}/pages/{n}`: replace a flagged page of a document with its rescan (multipart,
//! one file part). The document is packaged again and recorded as replacing the old one; the answer is the
//! new document, as for an upload.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use scanner_drivers::FileImport;

use super::dossiers::{drained, spool_parts};
use super::{ApiError, AppState};
use crate::archive::IngestReport;
use crate::codes::ContentHash;

pub(super) fn router(max_upload: usize) -> Router<AppState> {
    Router::new().route(
        "/v1/documents/{hash}/pages/{number}",
        put(replace_page).layer(DefaultBodyLimit::max(max_upload)),
    )
}

async fn replace_page(
    State(archive): State<AppState>,
    Path((hash, number)): Path<(String, String)>,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<IngestReport>), ApiError> {
    let target = ContentHash::parse(&hash)
        .map_err(ApiError::from)
        .and_then(|document| {
            let number: u32 = number.parse().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-input",
                    format!("the page number must be a whole number from 1, not '{number}'"),
                )
            })?;
            Ok((document, number))
        });
    let (document, number) = match target {
        Ok(target) => target,
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
    Ok((StatusCode::CREATED, Json(report)))
}
