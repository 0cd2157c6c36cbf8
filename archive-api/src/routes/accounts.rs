//! Accounts and tokens, for administrators (`/v1/accounts`, `/v1/tokens/{id}`), and `GET /v1/me` for
//! anyone signed in.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{JsonBody, PathParams, optional_json};
use super::{ApiError, AppState, Caller};
use crate::access::{Permission, Role, UnitScope, issue_token};
use crate::codes::UnitCode;
use crate::repo::{Account, TokenRecord};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(update_account))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// Who the caller is.
#[derive(Serialize, ToSchema)]
struct Me {
    /// The account's name.
    name: String,
    /// Its role.
    role: Role,
    /// `*` or the unit codes it may see.
    units: Vec<String>,
    /// Signed in with a password an administrator set: change it (`PUT /v1/me/password`) before
    /// anything else.
    must_change_password: bool,
}

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    /// Login or system name: 1-64 letters, digits, `.`, `_`, `-`, `@`.
    name: String,
    /// `clerk`, `archivist`, `system` or `admin`.
    role: Role,
    /// The unit codes it may see; `["*"]` or absent for every unit.
    units: Option<Vec<String>>,
}

/// Changes to an account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    /// New role.
    role: Option<Role>,
    /// New units (`["*"]` for every unit).
    units: Option<Vec<String>>,
    /// Disable (its tokens stop working) or enable.
    disabled: Option<bool>,
}

/// A token to issue.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// What it is for ("scanner desk 3", "land registry system").
    label: Option<String>,
    /// Days until it expires (1-3650); absent: 90.
    days: Option<u32>,
}

/// A new token: shown once, stored only as a hash.
#[derive(Serialize, ToSchema)]
struct IssuedToken {
    /// The bearer token; keep it secret.
    token: String,
    /// Its record.
    record: TokenRecord,
}

fn account_name(name: &str) -> Result<&str, ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(name)
    } else {
        Err(ApiError::invalid(format!(
            "account name '{}' must be 1-64 letters, digits, '.', '_', '-' or '@'",
            name.chars().take(80).collect::<String>()
        )))
    }
}

fn scope_of(units: Option<Vec<String>>) -> Result<UnitScope, ApiError> {
    match units {
        None => Ok(UnitScope::All),
        Some(units) if units.iter().any(|u| u == "*") => Ok(UnitScope::All),
        Some(units) if units.is_empty() => Err(ApiError::invalid(
            "units must list at least one unit code, or [\"*\"] for every unit",
        )),
        Some(units) => Ok(UnitScope::Only(
            units
                .iter()
                .map(|u| UnitCode::parse(u).map(|u| u.as_str().to_owned()))
                .collect::<Result<_, _>>()?,
        )),
    }
}

async fn manage(
    archive: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
) -> Result<(), ApiError> {
    caller
        .require(archive, Permission::Manage, action, target)
        .await
}

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(caller: Caller) -> Json<Me> {
    let units = match &caller.0.scope {
        UnitScope::All => vec!["*".to_owned()],
        UnitScope::Only(units) => units.clone(),
    };
    Json(Me {
        name: caller.0.name,
        role: caller.0.role,
        units,
        must_change_password: caller.0.must_change_password,
    })
}

/// Every account.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts",
    responses((status = 200, body = Vec<Account>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
async fn list_accounts(
    State(archive): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Account>>, ApiError> {
    manage(&archive, &caller, "account.list", "").await?;
    Ok(Json(archive.repo().accounts().await?))
}

/// Creates an account (then issue it a token).
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Account), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn create_account(
    State(archive): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let name = account_name(&body.name)?;
    manage(&archive, &caller, "account.create", name).await?;
    let scope = scope_of(body.units)?;
    let account = archive
        .repo()
        .create_account(name, body.role, &scope)
        .await?;
    caller
        .record(
            &archive,
            "account.create",
            &format!("{name} as {} for {}", body.role, scope.to_stored()),
            None,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(account)))
}

/// Changes an account's role or units, or disables it.
#[utoipa::path(patch, path = "/v1/accounts/{name}", tag = "accounts", request_body = AccountPatch,
    params(("name" = String, Path, description = "account name")),
    responses((status = 200, body = Account), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn update_account(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(patch): JsonBody<AccountPatch>,
) -> Result<Json<Account>, ApiError> {
    let name = account_name(&name)?;
    manage(&archive, &caller, "account.update", name).await?;
    let scope = patch.units.map(|u| scope_of(Some(u))).transpose()?;
    let account = archive
        .repo()
        .update_account(name, patch.role, scope.as_ref(), patch.disabled)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("account-not-found", format!("no account named '{name}'"))
        })?;
    caller
        .record(
            &archive,
            "account.update",
            &format!(
                "{name}: role {}, units {}, disabled {}",
                account.role,
                account.units.join(","),
                account.disabled
            ),
            None,
        )
        .await?;
    Ok(Json(account))
}

/// An account's tokens (never the tokens themselves).
#[utoipa::path(get, path = "/v1/accounts/{name}/tokens", tag = "accounts",
    params(("name" = String, Path, description = "account name")),
    responses((status = 200, body = Vec<TokenRecord>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_tokens(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<Vec<TokenRecord>>, ApiError> {
    let name = account_name(&name)?;
    manage(&archive, &caller, "token.list", name).await?;
    Ok(Json(archive.repo().tokens(name).await?))
}

/// Issues a token for an account; the answer is the only time the token is shown.
#[utoipa::path(post, path = "/v1/accounts/{name}/tokens", tag = "accounts",
    params(("name" = String, Path, description = "account name")),
    request_body(content = Option<NewToken>, content_type = "application/json"),
    responses((status = 201, body = IssuedToken), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn create_token(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let name = account_name(&name)?;
    manage(&archive, &caller, "token.create", name).await?;
    let body: NewToken = optional_json(&body)?;
    let days = body.days.unwrap_or(90);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::invalid("days must be from 1 to 3650"));
    }
    let label: String = body
        .label
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let (token, record) = issue_token(archive.repo(), name, &label, Some(days)).await?;
    caller
        .record(
            &archive,
            "token.create",
            &format!("{name} token {}", record.id),
            None,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(IssuedToken { token, record })))
}

/// Revokes a token at once.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<i64>,
) -> Result<StatusCode, ApiError> {
    manage(&archive, &caller, "token.revoke", &id.to_string()).await?;
    if !archive.repo().revoke_token(id).await? {
        return Err(ApiError::not_found(
            "token-not-found",
            format!("no token {id}"),
        ));
    }
    caller
        .record(&archive, "token.revoke", &id.to_string(), None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
