//! Who is calling: the bearer token checked against the database, the caller's rights checked against
//! what the request needs, and the audit log written.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::{ApiError, AppState};
use crate::access::{Permission, Principal, token_hash};
use crate::repo::NewAuditEntry;

/// The authenticated caller of a request. Extracting it answers `401` without a valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// What a session signed in with a temporary password may do: see who it is, change the password, sign out.
const PATHS_BEFORE_CHANGE: [&str; 3] = ["/v1/me", "/v1/me/password", "/v1/sessions/current"];

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, archive: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |message: &str| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message.to_owned())
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "this request needs a bearer token: send 'Authorization: Bearer <token>'",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <token>'"))?;
        let owner = archive
            .repo()
            .token_owner(&token_hash(token))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                unauthorized(
                    "the token is not valid: unknown, expired, revoked, or its account disabled",
                )
            })?;
        if owner.must_change_password && !PATHS_BEFORE_CHANGE.contains(&parts.uri.path()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "password-change-required",
                "an administrator set this account's password: change it first (PUT /v1/me/password)",
            ));
        }
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.to_string())
            .unwrap_or_else(|| "-".to_owned());
        Ok(Caller(Principal {
            name: owner.name,
            role: owner.role,
            scope: owner.scope,
            client,
            must_change_password: owner.must_change_password,
        }))
    }
}

impl Caller {
    /// Fails with `403` (and a `denied` line in the audit log) unless the caller's role grants
    /// `permission`.
    pub async fn require(
        &self,
        archive: &AppState,
        permission: Permission,
        action: &str,
        target: &str,
    ) -> Result<(), ApiError> {
        self.require_about(archive, permission, action, target, None)
            .await
    }

    /// [`Caller::require`] for an action on `dossier`, which the refusal's audit line names.
    pub async fn require_about(
        &self,
        archive: &AppState,
        permission: Permission,
        action: &str,
        target: &str,
        dossier: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.0.can(permission) {
            return Ok(());
        }
        self.log(archive, action, target, dossier, true).await?;
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a {} account may not do this ({action})",
                self.0.role.as_str()
            ),
        ))
    }

    /// Like [`Caller::require`], and also fails with `403` unless `unit` is in the caller's scope.
    pub async fn require_in_unit(
        &self,
        archive: &AppState,
        permission: Permission,
        action: &str,
        target: &str,
        dossier: Option<&str>,
        unit: &str,
    ) -> Result<(), ApiError> {
        self.require_about(archive, permission, action, target, dossier)
            .await?;
        if self.0.scope.covers(unit) {
            return Ok(());
        }
        self.log(archive, action, target, dossier, true).await?;
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the account '{}' may not act for unit {unit}", self.0.name),
        ))
    }

    /// Writes what the caller did to the audit log. A read that cannot be recorded is not served.
    pub async fn record(
        &self,
        archive: &AppState,
        action: &str,
        target: &str,
        dossier: Option<&str>,
    ) -> Result<(), ApiError> {
        self.log(archive, action, target, dossier, false).await
    }

    /// Records a refusal of the caller that no role check made (a wrong current password, say).
    pub async fn refuse(
        &self,
        archive: &AppState,
        action: &str,
        target: &str,
    ) -> Result<(), ApiError> {
        self.log(archive, action, target, None, true).await
    }

    async fn log(
        &self,
        archive: &AppState,
        action: &str,
        target: &str,
        dossier: Option<&str>,
        denied: bool,
    ) -> Result<(), ApiError> {
        let entry = NewAuditEntry {
            actor: &self.0.name,
            role: self.0.role,
            action,
            target,
            dossier,
            client: &self.0.client,
            denied,
        };
        archive
            .repo()
            .audit(&entry)
            .await
            .map_err(ApiError::internal)
    }
}
