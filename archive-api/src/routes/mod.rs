//! The HTTP API, split by domain; each module exposes its `router()`.

mod copies;
mod documents;
mod dossiers;
mod error;
mod objects;
mod scans;
mod search;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use error::{ApiError, FailedPage};
pub use scans::{ScanJobs, ScanStatus};

use crate::archive::Archive;

/// Shared state of every handler.
pub type AppState = Arc<Archive>;

/// The whole API.
pub fn router(archive: AppState) -> Router {
    let max_upload = usize::try_from(archive.max_upload_bytes()).unwrap_or(usize::MAX);
    Router::new()
        .route("/v1/health", get(|| async { "ok" }))
        .merge(dossiers::router(max_upload))
        .merge(documents::router(max_upload))
        .merge(search::router())
        .merge(objects::router())
        .merge(copies::router())
        .merge(scans::router())
        .with_state(archive)
}
