//! Signing in with a name and password (people at the desk and in the archive; systems use tokens):
//! `POST /v1/sessions` answers a bearer token that lasts a working day, `DELETE /v1/sessions/current`
//! signs out, `PUT /v1/accounts/{name}/password` lets an administrator set or remove a password.
//!
//! Wrong names and wrong passwords get the same answer after the same work, and an account with
//! [`MAX_FAILURES`] failed sign-ins in [`FAILURE_WINDOW`] is refused (`429`) until the window has passed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{JsonBody, PathParams};
use super::{ApiError, AppState, Caller};
use crate::access::{self, Permission, token_hash};
use crate::repo::{Account, NewAuditEntry};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(set_password))
}

/// Failed sign-ins an account may have in [`FAILURE_WINDOW`] before it is refused for the rest of it.
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Names followed at most; past this, the oldest windows are dropped first.
const MAX_FOLLOWED: usize = 10_000;

/// Failed sign-ins by account name, in this process.
#[derive(Default)]
pub struct SignIns {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl SignIns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `name` must wait, if it has failed too often.
    fn wait(&self, name: &str) -> Option<Duration> {
        let failures = self.lock();
        let (count, since) = failures.get(name)?;
        let left = FAILURE_WINDOW.checked_sub(since.elapsed())?;
        (*count >= MAX_FAILURES).then_some(left)
    }

    fn failed(&self, name: &str) {
        let mut failures = self.lock();
        if failures.len() >= MAX_FOLLOWED {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures
            .entry(name.to_owned())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn succeeded(&self, name: &str) {
        self.lock().remove(name);
    }
}

/// A name and password.
#[derive(Deserialize, ToSchema)]
struct Credentials {
    /// The account's name.
    name: String,
    /// Its password.
    password: String,
}

/// A signed-in session: the token to send as `Authorization: Bearer`, shown this once.
#[derive(Serialize, ToSchema)]
struct Session {
    token: String,
    /// When the token stops working, RFC 3339.
    expires_at: Option<String>,
    account: Account,
}

/// Signs in with a name and password; the answer carries a bearer token valid for 12 hours.
#[utoipa::path(post, path = "/v1/sessions", tag = "accounts", request_body = Credentials,
    responses((status = 201, body = Session), (status = 400, body = ErrorBody),
              (status = 401, description = "wrong name or password", body = ErrorBody),
              (status = 429, description = "too many failed sign-ins; wait", body = ErrorBody)))]
async fn sign_in(
    State(archive): State<AppState>,
    extensions: axum::http::Extensions,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let name = credentials.name.trim().to_owned();
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::invalid("give the account's name and password"));
    }
    let client = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |ConnectInfo(a)| a.to_string());
    let sign_ins = archive.sign_ins();
    if let Some(wait) = sign_ins.wait(&name) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            format!(
                "too many wrong passwords for '{name}': try again in {} minutes, or ask an administrator",
                wait.as_secs().div_ceil(60)
            ),
        ));
    }
    let found = archive.repo().sign_in_account(&name).await?;
    let phc = found.as_ref().map(|(_, phc)| phc.clone());
    let password = credentials.password;
    let matches =
        tokio::task::spawn_blocking(move || access::verify_password(phc.as_deref(), &password))
            .await
            .map_err(ApiError::internal)?;
    let account = match (found, matches) {
        (Some((account, _)), true) => account,
        (found, _) => {
            sign_ins.failed(&name);
            tracing::warn!(account = %name, %client, "failed sign-in");
            // On record for an account that exists (disabled or without a password included).
            let account = match found {
                Some((account, _)) => Some(account),
                None => archive.repo().account(&name).await?,
            };
            if let Some(account) = account {
                record(&archive, &account, &client, true).await?;
            }
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "sign-in-failed",
                "wrong name or password (or the account has no password: ask an administrator)",
            ));
        }
    };
    sign_ins.succeeded(&name);
    let (token, record_of_token) = access::issue_session_token(archive.repo(), &name).await?;
    record(&archive, &account, &client, false).await?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            token,
            expires_at: record_of_token.expires_at,
            account,
        }),
    ))
}

async fn record(
    archive: &AppState,
    account: &Account,
    client: &str,
    denied: bool,
) -> Result<(), ApiError> {
    let entry = NewAuditEntry {
        actor: &account.name,
        role: account.role,
        action: "session.create",
        target: &account.name,
        dossier: None,
        client,
        denied,
    };
    archive
        .repo()
        .audit(&entry)
        .await
        .map_err(ApiError::internal)
}

/// Signs out: the token this request carries stops working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "accounts",
    responses((status = 204, description = "signed out"), (status = 401, body = ErrorBody)))]
async fn sign_out(
    State(archive): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    // The caller is authenticated, so the header is there and well formed.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    archive
        .repo()
        .revoke_token_by_hash(&token_hash(token))
        .await?;
    caller
        .record(&archive, "session.delete", &caller.0.name, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new password; `null` removes the password (the account then signs in with tokens only).
#[derive(Deserialize, ToSchema)]
struct NewPassword {
    password: Option<String>,
}

/// Sets or removes an account's password (administrators).
#[utoipa::path(put, path = "/v1/accounts/{name}/password", tag = "accounts",
    params(("name" = String, Path, description = "account name")),
    request_body = NewPassword,
    responses((status = 204, description = "set"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn set_password(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<NewPassword>,
) -> Result<StatusCode, ApiError> {
    caller
        .require(&archive, Permission::Manage, "account.password", &name)
        .await?;
    let phc = match body.password {
        Some(password) => Some(
            tokio::task::spawn_blocking(move || access::hash_password(&password))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| match e {
                    access::PasswordError::Hash(_) => ApiError::internal(e),
                    _ => ApiError::invalid(e.to_string()),
                })?,
        ),
        None => None,
    };
    if !archive.repo().set_password(&name, phc.as_deref()).await? {
        return Err(ApiError::not_found(
            "account-not-found",
            format!("no account named '{name}'"),
        ));
    }
    caller
        .record(&archive, "account.password", &name, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
