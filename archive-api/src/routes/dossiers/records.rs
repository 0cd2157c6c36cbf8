//! Dossier records: register (`POST /v1/dossiers`), list (`GET /v1/dossiers`), read
//! (`GET /v1/dossiers/{code}`), change status and details (`PATCH /v1/dossiers/{code}`), and record the
//! reuse of another dossier's digitized result (`POST /v1/dossiers/{code}/reuses`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::Permission;
use crate::codes::{ContentHash, DossierCode, ProcedureCode, UnitCode};
use crate::repo::{
    DocumentSummary, DossierChange, DossierDetails, DossierFilter, DossierRecord, NewDossier,
    PendingPage,
};
use crate::routes::error::ErrorBody;
use crate::routes::extract::{JsonBody, PathParams, QueryParams, time_param};
use crate::routes::{ApiError, AppState, Caller};
use crate::time::received_rfc3339;

/// A dossier to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDossierBody {
    /// Dossier code, `{unit code}-{yymmdd}-{sequence}`: `000.00.15.H27-231128-0042`.
    code: String,
    /// Procedure code, `1.001234` or with a provincial suffix.
    procedure: String,
    /// The unit handling it; defaults to the unit in the dossier code.
    unit: Option<String>,
    /// The applicant's name.
    #[serde(default)]
    applicant: String,
    /// When it was received (RFC 3339 or `YYYY-MM-DD`); defaults to the day in the dossier code.
    received_at: Option<String>,
    /// The legal due time (RFC 3339 or `YYYY-MM-DD`).
    due_at: Option<String>,
    /// When it was resolved, for dossiers registered after the fact.
    resolved_at: Option<String>,
    /// Status 1-10 (default 2, accepted).
    status: Option<u8>,
    /// Channel: 1 in person (default), 2 online, 3 postal.
    channel: Option<u8>,
}

/// Changes to a dossier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DossierPatch {
    /// New status 1-10; 9 (resolved) or 10 (result returned) sets the resolved time to now unless given.
    status: Option<u8>,
    /// Corrected applicant name.
    applicant: Option<String>,
    /// New legal due time.
    due_at: Option<String>,
    /// Resolved time.
    resolved_at: Option<String>,
    /// When the status changed, for a change entered after the fact (RFC 3339, or a day `YYYY-MM-DD`);
    /// absent: now. Not in the future, nor before the dossier's receipt or its last change of status.
    /// The statistics of a period count each dossier by the status it had then.
    status_changed_at: Option<String>,
}

/// A dossier with its documents, their pages, and the pages waiting to be packaged.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DossierView {
    #[serde(flatten)]
    dossier: DossierRecord,
    /// Its documents, oldest first.
    documents: Vec<DocumentSummary>,
    /// Pages uploaded and waiting to be packaged.
    pending: Vec<PendingPage>,
}

/// One page of a dossier list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DossierList {
    /// How many dossiers match.
    total: i64,
    /// These dossiers, newest received first.
    dossiers: Vec<DossierRecord>,
}

/// Which dossiers to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this unit.
    unit: Option<String>,
    /// Only this procedure.
    procedure: Option<String>,
    /// Only this status (1-10).
    status: Option<u8>,
    /// Received on or after this day (`YYYY-MM-DD`) or time.
    from: Option<String>,
    /// Received before this day or time.
    until: Option<String>,
    /// At most this many (default 50, at most 500).
    limit: Option<u32>,
    /// Skip this many.
    offset: Option<u32>,
}

/// A reused result.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReuseBody {
    /// BLAKE3 of the result document reused.
    document: String,
}

fn status_code(status: Option<u8>, default: u8) -> Result<u8, ApiError> {
    match status.unwrap_or(default) {
        s @ 1..=10 => Ok(s),
        other => Err(ApiError::invalid(format!(
            "status must be one of the portal's codes 1-10, not {other}"
        ))),
    }
}

fn applicant_name(value: &str) -> Result<String, ApiError> {
    let name = value.trim();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "applicant must be a name of at most 200 characters, without control characters",
        ));
    }
    Ok(unicode_normalization::UnicodeNormalization::nfc(name).collect())
}

/// Registers a dossier. The same registration again answers `200` with the dossier; a different one for
/// the same code is `409`.
#[utoipa::path(post, path = "/v1/dossiers", tag = "dossiers", request_body = NewDossierBody,
    responses(
        (status = 201, description = "registered", body = DossierRecord),
        (status = 200, description = "already registered with these details", body = DossierRecord),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn create_dossier(
    State(archive): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewDossierBody>,
) -> Result<(StatusCode, Json<DossierRecord>), ApiError> {
    let code = DossierCode::parse(&body.code)?;
    let unit = match &body.unit {
        Some(unit) => UnitCode::parse(unit)?,
        None => code.unit().clone(),
    };
    caller
        .require_in_unit(
            &archive,
            Permission::WriteDossiers,
            "dossier.create",
            code.as_str(),
            Some(code.as_str()),
            unit.as_str(),
        )
        .await?;
    let details = DossierDetails {
        received_at: time_param(body.received_at.as_deref(), "received_at")?
            .unwrap_or_else(|| received_rfc3339(&code)),
        due_at: time_param(body.due_at.as_deref(), "due_at")?,
        resolved_at: time_param(body.resolved_at.as_deref(), "resolved_at")?,
        status: status_code(body.status, 2)?,
        channel: match body.channel.unwrap_or(1) {
            c @ 1..=3 => c,
            other => {
                return Err(ApiError::invalid(format!(
                    "channel must be 1 (in person), 2 (online) or 3 (postal), not {other}"
                )));
            }
        },
        applicant: applicant_name(&body.applicant)?,
        dossier: NewDossier {
            procedure: ProcedureCode::parse(&body.procedure)?,
            unit,
            code,
        },
    };
    let (record, created) = archive.repo().create_dossier(&details).await?;
    caller
        .record(&archive, "dossier.create", &record.code, Some(&record.code))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record)))
}

/// Lists the dossiers the caller may see.
#[utoipa::path(get, path = "/v1/dossiers", tag = "dossiers", params(ListParams),
    responses((status = 200, body = DossierList), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list_dossiers(
    State(archive): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<DossierList>, ApiError> {
    caller
        .require(&archive, Permission::ReadMetadata, "dossier.list", "")
        .await?;
    let filter = DossierFilter {
        units: caller.0.scope.units().map(<[String]>::to_vec),
        unit: params.unit,
        procedure: params.procedure,
        status: params.status,
        received_from: time_param(params.from.as_deref(), "from")?,
        received_until: time_param(params.until.as_deref(), "until")?,
        limit: i64::from(params.limit.unwrap_or(50).clamp(1, 500)),
        offset: i64::from(params.offset.unwrap_or(0)),
    };
    let (dossiers, total) = archive.repo().dossiers(&filter).await?;
    Ok(Json(DossierList { total, dossiers }))
}

/// Looks a dossier up and checks the caller may act on it.
pub(super) async fn dossier_in_scope(
    archive: &AppState,
    caller: &Caller,
    permission: Permission,
    action: &str,
    code: &str,
) -> Result<DossierRecord, ApiError> {
    let code = DossierCode::parse(code)?;
    caller
        .require_about(
            archive,
            permission,
            action,
            code.as_str(),
            Some(code.as_str()),
        )
        .await?;
    let record = archive
        .repo()
        .dossier(code.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("dossier-not-found", format!("no dossier {code}")))?;
    caller
        .require_in_unit(
            archive,
            permission,
            action,
            code.as_str(),
            Some(code.as_str()),
            &record.unit,
        )
        .await?;
    Ok(record)
}

/// A dossier's details, documents and pages (with their quality flags). Recorded in the audit log.
#[utoipa::path(get, path = "/v1/dossiers/{code}", tag = "dossiers",
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$")),
    responses((status = 200, body = DossierView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn get_dossier(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
) -> Result<Json<DossierView>, ApiError> {
    let dossier = dossier_in_scope(
        &archive,
        &caller,
        Permission::ReadMetadata,
        "dossier.read",
        &code,
    )
    .await?;
    let documents = archive.repo().dossier_documents(&dossier.code).await?;
    let pending = archive.repo().pending_pages(&dossier.code, None).await?;
    caller
        .record(&archive, "dossier.read", &dossier.code, Some(&dossier.code))
        .await?;
    Ok(Json(DossierView {
        dossier,
        documents,
        pending,
    }))
}

/// Changes a dossier's status or details.
#[utoipa::path(patch, path = "/v1/dossiers/{code}", tag = "dossiers", request_body = DossierPatch,
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$")),
    responses((status = 200, body = DossierRecord), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn update_dossier(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
    JsonBody(patch): JsonBody<DossierPatch>,
) -> Result<Json<DossierRecord>, ApiError> {
    let dossier = dossier_in_scope(
        &archive,
        &caller,
        Permission::WriteDossiers,
        "dossier.update",
        &code,
    )
    .await?;
    let status = patch.status.map(|s| status_code(Some(s), s)).transpose()?;
    let mut resolved_at = time_param(patch.resolved_at.as_deref(), "resolved_at")?;
    if matches!(status, Some(9 | 10)) && resolved_at.is_none() && dossier.resolved_at.is_none() {
        resolved_at = Some(crate::time::now_rfc3339());
    }
    let status_at = time_param(patch.status_changed_at.as_deref(), "status_changed_at")?;
    if let Some(at) = &status_at {
        if status.is_none() {
            return Err(ApiError::invalid(
                "status_changed_at says when the status changed: give the status too",
            ));
        }
        if crate::time::unix_seconds(at) > crate::time::unix_seconds(&crate::time::now_rfc3339()) {
            return Err(ApiError::invalid(format!(
                "status_changed_at {at} is in the future"
            )));
        }
    }
    let change = DossierChange {
        status,
        applicant: patch.applicant.as_deref().map(applicant_name).transpose()?,
        due_at: time_param(patch.due_at.as_deref(), "due_at")?,
        resolved_at,
        status_at,
    };
    let updated = archive
        .repo()
        .update_dossier(&dossier.code, &change)
        .await?
        .ok_or_else(|| ApiError::not_found("dossier-not-found", format!("no dossier {code}")))?;
    let what = match status {
        Some(s) => format!("{} status {} -> {s}", dossier.code, dossier.status),
        None => dossier.code.clone(),
    };
    caller
        .record(&archive, "dossier.update", &what, Some(&dossier.code))
        .await?;
    Ok(Json(updated))
}

/// Records that this dossier reuses the digitized result of another (the national digitization index
/// counts these).
#[utoipa::path(post, path = "/v1/dossiers/{code}/reuses", tag = "dossiers", request_body = ReuseBody,
    params(("code" = String, Path, description = "dossier code", pattern = "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{1,6}$")),
    responses((status = 201, description = "recorded"), (status = 200, description = "already recorded"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub(super) async fn record_reuse(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(code): PathParams<String>,
    JsonBody(body): JsonBody<ReuseBody>,
) -> Result<StatusCode, ApiError> {
    let dossier = dossier_in_scope(
        &archive,
        &caller,
        Permission::WriteDossiers,
        "result.reuse",
        &code,
    )
    .await?;
    let document = ContentHash::parse(&body.document)?.to_hex();
    let new = archive
        .repo()
        .record_reuse(&dossier.code, &document)
        .await?;
    caller
        .record(&archive, "result.reuse", &document, Some(&dossier.code))
        .await?;
    Ok(if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}
