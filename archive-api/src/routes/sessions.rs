//! Signing in with a name and password (people at the desk and in the archive; systems use tokens):
//! `POST /v1/sessions` answers a bearer token that lasts a working day, `DELETE /v1/sessions/current`
//! signs out, `PUT /v1/accounts/{name}/password` lets an administrator set or remove a password, and
//! `PUT /v1/me/password` lets a person change their own (so the administrator need not know it).
//!
//! Wrong names and wrong passwords get the same answer after the same work. Guessing is cut short: an
//! account may fail 5 times from one address and 50 times from all together in 15 minutes ([`LIMITS`]),
//! counted in the database so that every server of the archive counts alike, before it is refused (`429`)
//! until the oldest failure leaves the window; a stranger guessing from one place does not lock a clerk out
//! of their own desk. Each attempt is counted before the password is checked, so requests sent at once get
//! no more tries. Password hashing runs [`HASHING_AT_ONCE`]-per-core at most, so a flood of sign-ins cannot
//! take the server's memory, and attempts are written no faster than passwords are checked.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, SemaphorePermit};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{JsonBody, PathParams};
use super::{ApiError, AppState, Caller};
use crate::access::{self, Permission, token_hash};
use crate::repo::{Account, Repo, SignInLimits};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(set_password))
        .routes(routes!(change_own_password))
}

/// Failed sign-ins an account may have from one address in the window, and from every address together.
const LIMITS: SignInLimits = SignInLimits {
    per_address: 5,
    overall: 50,
    window_ms: 15 * 60 * 1000,
};
/// Password hashes computed at once, per core (Argon2 takes about 19 MiB and tens of milliseconds each).
const HASHING_AT_ONCE: usize = 1;
/// How long a sign-in waits for its turn to hash before the server says it is busy.
const HASHING_WAIT: Duration = Duration::from_secs(10);

/// The turns at password hashing in this process.
pub struct SignIns {
    hashing: Semaphore,
}

impl Default for SignIns {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            hashing: Semaphore::new(cores * HASHING_AT_ONCE),
        }
    }
}

/// Forgets the sign-in attempts that left the counting window (housekeeping).
pub async fn forget_old_sign_in_attempts(repo: &Repo) -> Result<u64, crate::repo::RepoError> {
    repo.forget_sign_in_attempts(LIMITS.window_ms).await
}

impl SignIns {
    /// Waits for a turn at password hashing, or says the server is busy.
    async fn turn(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        let busy = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is busy checking passwords: try again in a few seconds",
            )
            .retry_after(5)
        };
        tokio::time::timeout(HASHING_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }

    /// Runs the password hashing `work` when a turn is free.
    async fn hash<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _turn = self.turn().await?;
        run_hashing(work).await
    }

    /// Counts an attempt by `name` from `client` before its password is checked, or refuses it (`429`)
    /// when the account has failed too often from there or from everywhere. A refusal is answered before
    /// waiting for a turn at hashing; a counted attempt holds its turn, so attempts are written no faster
    /// than passwords can be checked.
    async fn attempt(
        &self,
        repo: &Repo,
        name: &str,
        client: Option<IpAddr>,
    ) -> Result<Attempt<'_>, ApiError> {
        let address = client.map_or_else(|| "-".to_owned(), address_key);
        if let Some(wait) = repo.sign_in_wait(name, &address, LIMITS).await? {
            return Err(too_many_attempts(name, wait));
        }
        let turn = self.turn().await?;
        match repo.count_sign_in(name, &address, LIMITS).await? {
            Ok(id) => Ok(Attempt {
                id,
                name: name.to_owned(),
                address,
                _turn: turn,
            }),
            Err(wait) => Err(too_many_attempts(name, wait)),
        }
    }
}

/// Where attempts are counted from: an IPv4 address (also when it comes IPv4-mapped), or an IPv6 /64
/// network, which one machine usually has whole (counting each of its addresses apart would give it
/// billions of tries).
fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
    }
}

/// A counted password check, holding its turn at hashing.
struct Attempt<'a> {
    id: i64,
    name: String,
    address: String,
    _turn: SemaphorePermit<'a>,
}

impl Attempt<'_> {
    /// Whether `password` is the one `phc` was made from (with `None`, after the same work: no account).
    async fn check(&self, phc: Option<String>, password: String) -> Result<bool, ApiError> {
        run_hashing(move || access::verify_password(phc.as_deref(), &password)).await
    }

    /// The right password: the attempt no longer counts, and this address starts afresh.
    async fn succeeded(self, repo: &Repo) -> Result<(), ApiError> {
        repo.sign_in_succeeded(self.id, &self.name, &self.address)
            .await?;
        Ok(())
    }
}

async fn run_hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)
}

fn too_many_attempts(name: &str, wait_ms: i64) -> ApiError {
    let seconds = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-attempts",
        format!(
            "too many wrong passwords for '{name}': try again in {} minutes, or ask an administrator",
            seconds.div_ceil(60)
        ),
    )
    .retry_after(seconds)
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
    let attempt = archive
        .sign_ins()
        .attempt(archive.repo(), &name, address.map(|a| a.ip()))
        .await?;
    let found = archive.repo().sign_in_account(&name).await?;
    let phc = found.as_ref().map(|(_, phc)| phc.clone());
    let matches = attempt.check(phc, credentials.password).await?;
    let account = match (found, matches) {
        (Some((account, _)), true) => account,
        (found, _) => {
            // The turn at hashing is free for others while the refusal is put on record.
            drop(attempt);
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
    attempt.succeeded(archive.repo()).await?;
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
        must_change_password: false,
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
    /// Whether its owner must change it before doing anything else; absent: yes for someone else's
    /// account, no for one's own.
    temporary: Option<bool>,
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
    // Someone else's password is theirs to change before they use it; one's own is kept as given.
    let temporary = body.temporary.unwrap_or(name != caller.0.name);
    if !archive
        .repo()
        .set_password(&name, phc.as_deref(), temporary)
        .await?
    {
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
    let Some((mut account, phc)) = archive.repo().sign_in_account(&name).await? else {
        return Err(ApiError::invalid(
            "this account has no password to change: an administrator sets the first one",
        ));
    };
    if access::same_password(&change.current, &change.password) {
        // Else a password an administrator set could be "changed" to itself, which they still know.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "same-password",
            "the new password must differ from the current one",
        ));
    }
    let sign_ins = archive.sign_ins();
    let attempt = sign_ins.attempt(archive.repo(), &name, ip).await?;
    if !attempt.check(Some(phc), change.current).await? {
        drop(attempt);
        caller
            .refuse(&archive, "account.password.change", &name)
            .await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong-password",
            "the current password is not right",
        ));
    }
    attempt.succeeded(archive.repo()).await?;
    let password = change.password;
    let phc = sign_ins
        .hash(move || access::hash_password(&password))
        .await?
        .map_err(|e| match e {
            access::PasswordError::Hash(_) => ApiError::internal(e),
            _ => ApiError::invalid(e.to_string()),
        })?;
    archive
        .repo()
        .set_password(&name, Some(&phc), false)
        .await?;
    account.must_change_password = false;
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
    use super::address_key;

    #[test]
    fn attempts_count_by_ipv4_address_or_ipv6_network() {
        let key = |text: &str| address_key(text.parse().unwrap());
        assert_eq!(key("203.0.113.9"), "203.0.113.9");
        assert_eq!(key("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::7"), key("2001:db8:1:2:aaaa::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }
}
