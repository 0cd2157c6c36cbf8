//! Dossiers: their records (`records`), the pages waiting to be packaged (`pages`: upload, list, reorder,
//! remove, package), and the one-request document upload (`upload`).

mod pages;
mod records;
mod upload;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::routes) use upload::{drained, spool_parts};

use super::AppState;

/// `max_upload`: the largest request body accepted (the `limits.max_upload_bytes` setting); larger ones
/// get `413`.
pub(super) fn router(max_upload: usize) -> OpenApiRouter<AppState> {
    // Multipart bodies are limited by this layer (axum's default would be 2 MB); raw page bodies are
    // counted as they stream in, against the same limit.
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload::upload_document))
        .routes(routes!(pages::upload_pages, pages::list_pages))
        .layer(DefaultBodyLimit::max(max_upload));
    OpenApiRouter::new()
        .routes(routes!(records::create_dossier, records::list_dossiers))
        .routes(routes!(records::get_dossier, records::update_dossier))
        .routes(routes!(records::record_reuse))
        .routes(routes!(pages::remove_page, pages::move_page))
        .routes(routes!(pages::finalize))
        .merge(uploads)
}
