//! Signing in with a name and password (people at the desk and in the archive; systems use tokens):
//! `POST /v1/sessions` answers a bearer token that lasts a working day, `DELETE /v1/sessions/current`
//! signs out, `PUT /v1/accounts/{name}/password` lets an administrator set or remove a password, and
//! `PUT /v1/me/password` lets a person change their own (so the administrator need not know it).
//!
//! Wrong names and wrong passwords get the same answer after the same work. Guessing is cut short: an
//! account may fail [`MAX_FAILURES`] times from one address and [`MAX_FAILURES_ANYWHERE`] times from all
//! together in [`FAILURE_WINDOW`], counted in this server process, before it is refused (`429`) for the rest
//! of the window; a stranger guessing from one place does not lock a clerk out of their own desk. Each
//! attempt is counted before the password is checked, so requests sent at once get no more tries. Password
//! hashing runs [`HASHING_AT_ONCE`]-per-core at most, so a flood of sign-ins cannot take the server's memory.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{JsonBody, PathParams};
use super::{ApiError, AppState, Caller};
use crate::access::{self, Permission, token_hash};
use crate::repo::Account;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(set_password))
        .routes(routes!(change_own_password))
}

/// Failed sign-ins an account may have from one address in [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 5;
/// Failed sign-ins an account may have from every address together in [`FAILURE_WINDOW`].
const MAX_FAILURES_ANYWHERE: u32 = 50;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Counters kept at most; past this the oldest are dropped first.
const MAX_FOLLOWED: usize = 10_000;
/// Password hashes computed at once, per core (Argon2 takes about 19 MiB and tens of milliseconds each).
const HASHING_AT_ONCE: usize = 1;
/// How long a sign-in waits for its turn to hash before the server says it is busy.
const HASHING_WAIT: Duration = Duration::from_secs(10);

/// Sign-in attempts by account and address, and the turns at password hashing, in this process.
pub struct SignIns {
    attempts: Mutex<HashMap<String, (u32, Instant)>>,
    hashing: Semaphore,
}

impl Default for SignIns {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            attempts: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(cores * HASHING_AT_ONCE),
        }
    }
}

impl SignIns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keys(name: &str, client: Option<IpAddr>) -> [(String, u32); 2] {
        let from = client.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        [
            (format!("{from} {name}"), MAX_FAILURES),
            (format!("* {name}"), MAX_FAILURES_ANYWHERE),
        ]
    }

    /// Counts an attempt by `name` from `client` before its password is checked, or says how long it
    /// must wait when it has failed too often. A success takes the attempt back ([`SignIns::succeeded`]).
    fn attempt(&self, name: &str, client: Option<IpAddr>) -> Result<(), Duration> {
        let keys = Self::keys(name, client);
        let mut attempts = self.lock();
        for (key, limit) in &keys {
            if let Some((count, since)) = attempts.get(key)
                && *count >= *limit
                && let Some(left) = FAILURE_WINDOW.checked_sub(since.elapsed())
            {
                return Err(left);
            }
        }
        if attempts.len() + keys.len() > MAX_FOLLOWED {
            attempts.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
            if attempts.len() + keys.len() > MAX_FOLLOWED {
                // Still full within the window (names sprayed): the oldest tenth goes at once, so the
                // scan is paid once per thousand attempts, not on each.
                let mut by_age: Vec<(Instant, String)> = attempts
                    .iter()
                    .map(|(key, (_, since))| (*since, key.clone()))
                    .collect();
                let drop = (MAX_FOLLOWED / 10).min(by_age.len());
                if drop > 0 {
                    by_age.select_nth_unstable(drop - 1);
                }
                for (_, key) in by_age.into_iter().take(drop) {
                    attempts.remove(&key);
                }
            }
        }
        for (key, _) in keys {
            let entry = attempts.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= FAILURE_WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
        Ok(())
    }

    /// The right password: this address starts afresh, and the attempt no longer counts anywhere.
    fn succeeded(&self, name: &str, client: Option<IpAddr>) {
        let [(here, _), (anywhere, _)] = Self::keys(name, client);
        let mut attempts = self.lock();
        attempts.remove(&here);
        if let Some((count, _)) = attempts.get_mut(&anywhere) {
            *count = count.saturating_sub(1);
        }
    }

    /// Runs the password hashing `work` when a turn is free.
    async fn hash<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let busy = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is busy checking passwords: try again in a few seconds",
            )
            .retry_after(5)
        };
        let _turn = tokio::time::timeout(HASHING_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(ApiError::internal)
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
    let address = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a);
    let client = address.map_or_else(|| "-".to_owned(), |a| a.to_string());
    let ip = address.map(|a| a.ip());
    let sign_ins = archive.sign_ins();
    if let Err(wait) = sign_ins.attempt(&name, ip) {
        let minutes = wait.as_secs().div_ceil(60);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            format!(
                "too many wrong passwords for '{name}': try again in {minutes} minutes, or ask an administrator"
            ),
        )
        .retry_after(wait.as_secs()));
    }
    let found = archive.repo().sign_in_account(&name).await?;
    let phc = found.as_ref().map(|(_, phc)| phc.clone());
    let password = credentials.password;
    let matches = sign_ins
        .hash(move || access::verify_password(phc.as_deref(), &password))
        .await?;
    let account = match (found, matches) {
        (Some((account, _)), true) => account,
        (found, _) => {
            tracing::warn!(account = %name, %client, "failed sign-in");
            // On record for an account that exists (disabled or without a password included).
            let account = match found {
                Some((account, _)) => Some(account),
                None => archive.repo().account(&name).await?,
            };
            if let Some(account) = account {
                as_caller(&account, &client)
                    .refuse(&archive, "session.create", &name)
                    .await?;
            }
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "sign-in-failed",
                "wrong name or password (or the account has no password: ask an administrator)",
            ));
        }
    };
    sign_ins.succeeded(&name, ip);
    let (token, record_of_token) = access::issue_session_token(archive.repo(), &name).await?;
    as_caller(&account, &client)
        .record(&archive, "session.create", &name, None)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            token,
            expires_at: record_of_token.expires_at,
            account,
        }),
    ))
}

/// The account as the caller it becomes by signing in, for the audit log.
fn as_caller(account: &Account, client: &str) -> Caller {
    Caller(access::Principal {
        name: account.name.clone(),
        role: account.role,
        scope: access::UnitScope::parse(&account.units.join(",")),
        client: client.to_owned(),
    })
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

/// Sets or removes an account's password (administrators); the account's signed-in sessions end.
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
            archive
                .sign_ins()
                .hash(move || access::hash_password(&password))
                .await?
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

/// A person's own password change.
#[derive(Deserialize, ToSchema)]
struct PasswordChange {
    /// The password now.
    current: String,
    /// The new one (at least 8 characters).
    password: String,
}

/// Changes the caller's own password, given the current one (counted like a sign-in against guessing).
/// Every session signed in with the old password ends; the answer carries a new one for this tab.
#[utoipa::path(put, path = "/v1/me/password", tag = "accounts", request_body = PasswordChange,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 403, description = "the current password is wrong", body = ErrorBody),
              (status = 429, body = ErrorBody)))]
async fn change_own_password(
    State(archive): State<AppState>,
    caller: Caller,
    extensions: axum::http::Extensions,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Result<Json<Session>, ApiError> {
    let name = caller.0.name.clone();
    let ip = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let sign_ins = archive.sign_ins();
    if let Err(wait) = sign_ins.attempt(&name, ip) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            "too many wrong passwords: try again later, or ask an administrator",
        )
        .retry_after(wait.as_secs()));
    }
    let Some((account, phc)) = archive.repo().sign_in_account(&name).await? else {
        return Err(ApiError::invalid(
            "this account has no password to change: an administrator sets the first one",
        ));
    };
    let current = change.current;
    if !sign_ins
        .hash(move || access::verify_password(Some(&phc), &current))
        .await?
    {
        caller
            .refuse(&archive, "account.password.change", &name)
            .await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong-password",
            "the current password is not right",
        ));
    }
    sign_ins.succeeded(&name, ip);
    let password = change.password;
    let phc = sign_ins
        .hash(move || access::hash_password(&password))
        .await?
        .map_err(|e| match e {
            access::PasswordError::Hash(_) => ApiError::internal(e),
            _ => ApiError::invalid(e.to_string()),
        })?;
    archive.repo().set_password(&name, Some(&phc)).await?;
    let (token, issued) = access::issue_session_token(archive.repo(), &name).await?;
    caller
        .record(&archive, "account.password.change", &name, None)
        .await?;
    Ok(Json(Session {
        token,
        expires_at: issued.expires_at,
        account,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessing_from_one_address_does_not_lock_out_another_and_the_counters_stay_bounded() {
        let sign_ins = SignIns::default();
        let (stranger, desk) = (
            Some(IpAddr::from([203, 0, 113, 9])),
            Some(IpAddr::from([10, 0, 0, 3])),
        );
        for _ in 0..MAX_FAILURES {
            assert!(sign_ins.attempt("lan", stranger).is_ok());
        }
        let wait = sign_ins.attempt("lan", stranger).unwrap_err();
        assert!(wait > FAILURE_WINDOW - Duration::from_secs(60));
        assert!(
            sign_ins.attempt("lan", desk).is_ok(),
            "the clerk's own desk"
        );
        sign_ins.succeeded("lan", desk);

        // Guessing from everywhere at once stops at the account's overall limit.
        let mut allowed = 0;
        for i in 0..=MAX_FAILURES_ANYWHERE {
            let from = Some(IpAddr::from([198, 51, 100, u8::try_from(i % 250).unwrap()]));
            allowed += u32::from(sign_ins.attempt("minh", from).is_ok());
        }
        assert_eq!(allowed, MAX_FAILURES_ANYWHERE);

        // Sprayed names never grow the counters past their bound.
        for i in 0..MAX_FOLLOWED {
            let _ = sign_ins.attempt(&format!("name-{i}"), stranger);
        }
        assert!(sign_ins.lock().len() <= MAX_FOLLOWED);
    }
}
