//! `GET /v1/search`: accent-insensitive full-text search over page text and dossier metadata, with
//! filters, ordering and pagination, limited to the caller's units.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{QueryParams, time_param};
use super::{ApiError, AppState, Caller};
use crate::access::Permission;
use crate::index::{SearchHit, SearchOrder, SearchQuery};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// What to search for.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Params {
    /// The words; accents and đ optional ("nguyen thi huong" finds "Nguyễn Thị Hương", and ranks an exact
    /// spelling first); `"..."` for a phrase; `-word` to leave a word out.
    q: Option<String>,
    /// Only this unit's dossiers.
    unit: Option<String>,
    /// Only units of this level: `province`, `district`, `commune`.
    level: Option<String>,
    /// Only this procedure.
    procedure: Option<String>,
    /// Only procedures of this field.
    field: Option<String>,
    /// Only dossiers in this status (1-10).
    status: Option<u8>,
    /// Only `submitted` components or `result` documents.
    kind: Option<String>,
    /// Only this dossier.
    dossier: Option<String>,
    /// Received on or after (`YYYY-MM-DD` or RFC 3339).
    from: Option<String>,
    /// Received before (`YYYY-MM-DD` or RFC 3339).
    until: Option<String>,
    /// `relevance` (default), `newest` or `oldest`.
    sort: Option<String>,
    /// Hits per page (default 20, at most 200).
    limit: Option<usize>,
    /// Skip this many hits (at most 10,000).
    offset: Option<usize>,
}

/// A page of search results.
#[derive(Serialize, ToSchema)]
struct Results {
    /// The words searched for.
    query: String,
    /// How many pages match in all.
    total: usize,
    /// The offset of the first hit.
    offset: usize,
    /// The hits: dossier, document, page, highlighted snippet.
    hits: Vec<SearchHit>,
}

fn unix_of(value: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    Ok(time_param(value, name)?.and_then(|at| crate::time::unix_seconds(&at)))
}

/// Searches the pages the caller may see. Malformed parameters are `400`; the search itself is recorded
/// in the audit log.
#[utoipa::path(get, path = "/v1/search", tag = "search", params(Params),
    responses((status = 200, body = Results), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn search(
    State(archive): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<Params>,
) -> Result<Json<Results>, ApiError> {
    let text = params.q.unwrap_or_default();
    caller
        .require(&archive, Permission::Search, "search", &text)
        .await?;
    let order = match params.sort.as_deref() {
        None | Some("relevance") => SearchOrder::Relevance,
        Some("newest") => SearchOrder::Newest,
        Some("oldest") => SearchOrder::Oldest,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "sort must be relevance, newest or oldest, not '{other}'"
            )));
        }
    };
    if let Some(kind) = &params.kind {
        kind.parse::<crate::codes::DocumentKind>()?;
    }
    let query = SearchQuery {
        text,
        units: caller.0.scope.units().map(<[String]>::to_vec),
        unit: params.unit,
        level: params.level,
        procedure: params.procedure,
        field: params.field,
        status: params.status,
        kind: params.kind,
        dossier: params.dossier,
        received_from: unix_of(params.from.as_deref(), "from")?,
        received_until: unix_of(params.until.as_deref(), "until")?,
        order,
        offset: params.offset.unwrap_or(0),
        limit: params.limit.unwrap_or(20),
    };
    // The server's follower keeps the index current; searching never waits on a write.
    let searcher = archive.clone();
    let q = query.clone();
    let results = tokio::task::spawn_blocking(move || searcher.index().search(&q))
        .await
        .map_err(ApiError::internal)??;
    caller.record(&archive, "search", &query.text, None).await?;
    Ok(Json(Results {
        query: query.text,
        total: results.total,
        offset: query.offset,
        hits: results.hits,
    }))
}
