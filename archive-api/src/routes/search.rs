//! `GET /v1/search?q=`: accent-insensitive full-text search over pages.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::index::{SearchHit, SearchQuery};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/search", get(search))
}

#[derive(Deserialize)]
struct Params {
    q: Option<String>,
    unit: Option<String>,
    procedure: Option<String>,
    kind: Option<String>,
    dossier: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct Results {
    query: String,
    hits: Vec<SearchHit>,
}

async fn search(
    State(archive): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Results>, ApiError> {
    let query = SearchQuery {
        text: params.q.unwrap_or_default(),
        unit: params.unit,
        procedure: params.procedure,
        kind: params.kind,
        dossier: params.dossier,
        limit: params.limit.unwrap_or(20),
    };
    // The server's follower keeps the index current; searching never waits on a write.
    let archive_for_search = archive.clone();
    let q = query.clone();
    let hits = tokio::task::spawn_blocking(move || archive_for_search.index().search(&q))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(Results {
        query: query.text,
        hits,
    }))
}
