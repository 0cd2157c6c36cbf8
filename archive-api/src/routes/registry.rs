//! Units and procedures: registered by administrators (`PUT`), listed for anyone signed in (the desk picks
//! a procedure by code or name). Their level and field feed search filters and statistics.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{JsonBody, PathParams, QueryParams};
use super::{ApiError, AppState, Caller};
use crate::access::Permission;
use crate::codes::{ProcedureCode, UnitCode};
use crate::repo::{ProcedureRecord, UnitRecord};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_units))
        .routes(routes!(put_unit))
        .routes(routes!(list_procedures))
        .routes(routes!(put_procedure))
}

/// A unit's details.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UnitBody {
    /// Its name, as printed on certified copies.
    name: String,
    /// `province`, `district` or `commune`.
    level: String,
}

/// A procedure's details.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProcedureBody {
    /// Its name.
    name: String,
    /// Its field (lĩnh vực): land, civil status, business...
    #[serde(default)]
    field: String,
    /// `province`, `district` or `commune`.
    #[serde(default)]
    level: String,
}

/// Which procedures to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ProcedureQuery {
    /// Part of the code or name.
    q: Option<String>,
    /// At most this many (default 50, at most 500).
    limit: Option<u32>,
}

/// Every registered unit.
#[utoipa::path(get, path = "/v1/units", tag = "registry",
    responses((status = 200, body = Vec<UnitRecord>), (status = 401, body = ErrorBody)))]
async fn list_units(
    State(archive): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<UnitRecord>>, ApiError> {
    Ok(Json(archive.repo().units().await?))
}

/// Registers or changes a unit.
#[utoipa::path(put, path = "/v1/units/{code}", tag = "registry", request_body = UnitBody,
    params(("code" = String, Path, description = "unit code, 000.00.15.H27", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}$")),
    responses((status = 200, body = UnitRecord), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn put_unit(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
    JsonBody(body): JsonBody<UnitBody>,
) -> Result<Json<UnitRecord>, ApiError> {
    let code = UnitCode::parse(&code)?;
    caller
        .require(&archive, Permission::Manage, "unit.put", code.as_str())
        .await?;
    let unit =
        UnitRecord::checked(code.as_str(), &body.name, &body.level).map_err(ApiError::invalid)?;
    archive.repo().put_unit(&unit).await?;
    caller
        .record(
            &archive,
            "unit.put",
            &format!("{} {} ({})", unit.code, unit.name, unit.level),
            None,
        )
        .await?;
    Ok(Json(unit))
}

/// Registered procedures, by code; `q` finds by part of the code or name.
#[utoipa::path(get, path = "/v1/procedures", tag = "registry", params(ProcedureQuery),
    responses((status = 200, body = Vec<ProcedureRecord>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody)))]
async fn list_procedures(
    State(archive): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<ProcedureQuery>,
) -> Result<Json<Vec<ProcedureRecord>>, ApiError> {
    let limit = i64::from(query.limit.unwrap_or(50).clamp(1, 500));
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    Ok(Json(archive.repo().procedures(q, limit).await?))
}

/// Registers or changes a procedure.
#[utoipa::path(put, path = "/v1/procedures/{code}", tag = "registry", request_body = ProcedureBody,
    params(("code" = String, Path, description = "procedure code, 1.001234", pattern = "^[0-9]{1,2}\\.[0-9]{6}(\\.[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2})?$")),
    responses((status = 200, body = ProcedureRecord), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn put_procedure(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
    JsonBody(body): JsonBody<ProcedureBody>,
) -> Result<Json<ProcedureRecord>, ApiError> {
    let code = ProcedureCode::parse(&code)?;
    caller
        .require(&archive, Permission::Manage, "procedure.put", code.as_str())
        .await?;
    let procedure = ProcedureRecord::checked(code.as_str(), &body.name, &body.field, &body.level)
        .map_err(ApiError::invalid)?;
    archive.repo().put_procedure(&procedure).await?;
    caller
        .record(
            &archive,
            "procedure.put",
            &format!("{} {}", procedure.code, procedure.name),
            None,
        )
        .await?;
    Ok(Json(procedure))
}
