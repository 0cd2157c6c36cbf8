//! `GET /v1/audit`: the audit log, newest first, for administrators.

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
use crate::repo::{AuditEntry, AuditFilter};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_log))
}

/// Which entries to read.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Params {
    /// Only this account's.
    actor: Option<String>,
    /// Only about this dossier.
    dossier: Option<String>,
    /// Only this action: `dossier.read`, `object.download`, `copy.issue`, `search`...
    action: Option<String>,
    /// At or after (`YYYY-MM-DD` or RFC 3339).
    since: Option<String>,
    /// Before (`YYYY-MM-DD` or RFC 3339).
    until: Option<String>,
    /// Entries older than this id (the `next` of the previous page).
    before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
struct AuditPage {
    /// The entries, newest first.
    entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent at the end.
    next: Option<i64>,
}

/// The audit log: who read, downloaded, was issued or changed what, when, from where.
#[utoipa::path(get, path = "/v1/audit", tag = "accounts", params(Params),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn audit_log(
    State(archive): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<Params>,
) -> Result<Json<AuditPage>, ApiError> {
    caller
        .require(&archive, Permission::ReadAudit, "audit.read", "")
        .await?;
    let limit = i64::from(params.limit.unwrap_or(100).clamp(1, 1000));
    let filter = AuditFilter {
        actor: params.actor,
        dossier: params.dossier,
        action: params.action,
        since: time_param(params.since.as_deref(), "since")?,
        until: time_param(params.until.as_deref(), "until")?,
        before: params.before,
        limit,
    };
    let entries = archive.repo().audit_entries(&filter).await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage { entries, next }))
}
