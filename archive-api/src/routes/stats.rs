//! `GET /v1/stats`: the warehouse figures provinces publish, per unit or level and period, as JSON or CSV.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::QueryParams;
use super::{ApiError, AppState, Caller};
use crate::access::Permission;
use crate::repo::{StatsGroup, StatsQuery, StatsRow};
use crate::time::{format_day, parse_day};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// Which figures.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Params {
    /// First day, `YYYY-MM-DD` (default: 1 January of this year).
    from: Option<String>,
    /// Last day, inclusive (default: today).
    to: Option<String>,
    /// Only this unit.
    unit: Option<String>,
    /// Only units of this level: `province`, `district`, `commune`.
    level: Option<String>,
    /// One row per `unit` (default), per `level`, or only the `total`.
    group: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The figures of a period.
#[derive(Serialize, ToSchema)]
struct Stats {
    /// First day.
    from: String,
    /// Last day, inclusive.
    to: String,
    /// One row per group, then the total.
    rows: Vec<StatsRow>,
}

/// Received (carried over and new, by channel), resolved early, on time and late, in progress, paused,
/// digitized dossiers and pages, electronic results and their reuse, for the units the caller may see.
/// Days are in Vietnam time; "on time" counts a dossier resolved on its due day, or with no due time.
#[utoipa::path(get, path = "/v1/stats", tag = "statistics", params(Params),
    responses((status = 200, body = Stats), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn stats(
    State(archive): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<Params>,
) -> Result<Response, ApiError> {
    caller
        .require(&archive, Permission::ReadStats, "stats.read", "")
        .await?;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(crate::time::VIETNAM)
        .date();
    let day = |value: Option<&str>, default: time::Date, name: &str| match value {
        None => Ok(default),
        Some(v) => parse_day(v).ok_or_else(|| {
            ApiError::invalid(format!("{name} '{v}' is not a day: expected YYYY-MM-DD"))
        }),
    };
    let to = day(params.to.as_deref(), today, "to")?;
    let from = day(
        params.from.as_deref(),
        to.replace_ordinal(1).unwrap_or(to),
        "from",
    )?;
    if from > to {
        return Err(ApiError::invalid("from must not be after to"));
    }
    let group = match params.group.as_deref() {
        None | Some("unit") => StatsGroup::Unit,
        Some("level") => StatsGroup::Level,
        Some("total") => StatsGroup::Total,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "group must be unit, level or total, not '{other}'"
            )));
        }
    };
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "format must be json or csv, not '{other}'"
            )));
        }
    };
    let query = StatsQuery {
        from: format_day(from),
        until: format_day(to.next_day().unwrap_or(to)),
        unit: params.unit,
        level: params.level,
        units: caller.0.scope.units().map(<[String]>::to_vec),
        group,
    };
    let rows = archive.repo().stats(&query).await?;
    caller
        .record(
            &archive,
            "stats.read",
            &format!("{} to {}", format_day(from), format_day(to)),
            None,
        )
        .await?;
    let stats = Stats {
        from: format_day(from),
        to: format_day(to),
        rows,
    };
    if !csv {
        return Ok(Json(stats).into_response());
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in &stats.rows {
        writer.serialize(row).map_err(ApiError::internal)?;
    }
    let body = writer.into_inner().map_err(ApiError::internal)?;
    let name = format!("sohoa-stats-{}-{}.csv", stats.from, stats.to);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}
