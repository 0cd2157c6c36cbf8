//! `GET /v1/objects/{blake3}`: any stored document or page master by its hash, verified before serving.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::{ApiError, AppState};
use crate::codes::ContentHash;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/objects/{hash}", get(get_object))
}

async fn get_object(
    State(archive): State<AppState>,
    Path(hash): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let hash = ContentHash::parse(&hash)?;
    let (bytes, media_type) = archive.object(&hash).await?;
    Ok((
        [
            (header::CONTENT_TYPE, media_type),
            (header::ETAG, format!("\"{hash}\"")),
            // Content-addressed: the bytes behind a hash never change.
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_owned(),
            ),
        ],
        bytes,
    ))
}
