//! The HTTP API, split by domain; each module exposes its `router()`, whose handlers carry their own
//! OpenAPI description, so `/openapi.json` is generated from the code that serves the requests. The web
//! UI (`ui`) is served beside it, outside the OpenAPI document.

mod accounts;
mod audit;
mod auth;
mod copies;
mod documents;
mod dossiers;
mod error;
mod extract;
mod jobs;
mod objects;
mod ops;
mod registry;
mod scans;
mod search;
mod sessions;
mod stats;
mod ui;

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use auth::Caller;
pub use error::{ApiError, FailedPage};
pub use ops::install_metrics;
pub use scans::{ScanJobs, ScanStatus};
pub use sessions::{SignIns, forget_old_sign_in_attempts};

use crate::archive::Archive;

/// Shared state of every handler.
pub type AppState = Arc<Archive>;

/// The OpenAPI document's frame: title, version, the bearer scheme every protected path uses.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "sohoa archive API",
        description = "Digitized dossiers of Vietnam's one-stop offices: upload and package pages, search, \
                       fetch and verify certified copies, statistics. Every path but the health checks, \
                       metrics and this document needs `Authorization: Bearer <token>`; an account's role \
                       (clerk, archivist, system, admin) and units decide what it may do, and every read \
                       of dossier content is written to the audit log."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole API and its OpenAPI document.
pub fn router_and_openapi(archive: AppState) -> (Router, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    let max_upload = usize::try_from(archive.max_upload_bytes()).unwrap_or(usize::MAX);
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(dossiers::router(max_upload))
        .merge(documents::router(max_upload))
        .merge(jobs::router())
        .merge(search::router())
        .merge(objects::router())
        .merge(copies::router())
        .merge(scans::router())
        .merge(accounts::router())
        .merge(sessions::router())
        .merge(registry::router())
        .merge(audit::router())
        .merge(stats::router())
        .merge(ops::router())
        .merge(ui::router())
        .split_for_parts();
    let document = openapi.clone();
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document) }
            }),
        )
        .layer(axum::middleware::from_fn(ops::track_request))
        .with_state(archive);
    (router, openapi)
}

/// The whole API.
pub fn router(archive: AppState) -> Router {
    router_and_openapi(archive).0
}
