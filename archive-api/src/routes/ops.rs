//! For operators and their monitoring: `GET /healthz` (the process answers), `GET /readyz` (the database
//! and object store answer), `GET /metrics` (Prometheus), and the request-latency middleware behind it.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide metrics recorder (once); `/metrics` renders it.
pub fn install_metrics() {
    RECORDER.get_or_init(|| {
        let seconds = [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
        ];
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &seconds)
            .and_then(PrometheusBuilder::install_recorder)
            .map_err(|e| tracing::warn!(error = %e, "metrics are not recorded"))
            .ok()
    });
}

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
        .route("/v1/health", axum::routing::get(|| async { "ok" }))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "the process answers", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// The database and the object store answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "ready", body = String),
        (status = 503, description = "the database or object store does not answer", body = String)))]
async fn readyz(State(archive): State<AppState>) -> Response {
    match archive.ready().await {
        Ok(()) => "ready".into_response(),
        Err(why) => {
            tracing::warn!(%why, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database or object store does not answer",
            )
                .into_response()
        }
    }
}

/// Prometheus metrics: pages processed and failed, OCR seconds per page, jobs waiting, request latencies.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics_text(State(archive): State<AppState>) -> Response {
    if let Ok(depth) = archive.repo().queue_depth().await {
        metrics::gauge!("sohoa_jobs_waiting").set(depth as f64);
    }
    let body = RECORDER
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Times every request, labelled by route (the pattern, never the raw path), method and status.
pub(super) async fn track_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("sohoa_http_request_seconds", "route" => route, "method" => method, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}
