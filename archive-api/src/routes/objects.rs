//! `GET /v1/objects/{blake3}`: any stored document or page master by its hash, verified before serving,
//! to callers whose units hold it; every download is recorded in the audit log.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::PathParams;
use super::{ApiError, AppState, Caller};
use crate::access::Permission;
use crate::codes::ContentHash;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_object))
}

/// Checks that the caller may act on the object `hash` (the dossiers holding it are in its units) and
/// returns the first such dossier, for the audit log. An object no dossier holds is served only to
/// callers of every unit.
pub(super) async fn object_in_scope(
    archive: &AppState,
    caller: &Caller,
    permission: Permission,
    action: &str,
    hash: &ContentHash,
) -> Result<Option<String>, ApiError> {
    let target = hash.to_hex();
    caller.require(archive, permission, action, &target).await?;
    let owners = archive.repo().object_dossiers(&target).await?;
    if owners.is_empty() {
        if caller.0.scope.units().is_some() {
            return Err(ApiError::not_found(
                "object-not-found",
                format!("no document or page with hash {target}"),
            ));
        }
        return Ok(None);
    }
    let visible = owners
        .iter()
        .find(|(_, unit)| caller.0.scope.covers(unit))
        .or(owners.first())
        .cloned()
        .unwrap_or_default();
    caller
        .require_in_unit(
            archive,
            permission,
            action,
            &target,
            Some(&visible.0),
            &visible.1,
        )
        .await?;
    Ok(Some(visible.0))
}

/// A stored object (a document's PDF, a page master, a source file) by its BLAKE3, checked against that
/// hash before it is served.
#[utoipa::path(get, path = "/v1/objects/{hash}", tag = "objects",
    params(("hash" = String, Path, description = "BLAKE3, 64 hexadecimal digits", pattern = "^[0-9a-f]{64}$")),
    responses((status = 200, description = "the object", content_type = "application/octet-stream", body = Vec<u8>),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 500, description = "the stored copy failed its integrity check", body = ErrorBody)))]
async fn get_object(
    State(archive): State<AppState>,
    caller: Caller,
    PathParams(hash): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    let hash = ContentHash::parse(&hash)?;
    let dossier = object_in_scope(
        &archive,
        &caller,
        Permission::ReadContent,
        "object.download",
        &hash,
    )
    .await?;
    let (bytes, media_type) = archive.object(&hash).await?;
    caller
        .record(
            &archive,
            "object.download",
            &hash.to_hex(),
            dossier.as_deref(),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, media_type),
            (header::ETAG, format!("\"{hash}\"")),
            // Content-addressed: the bytes behind a hash never change; personal data stays out of
            // shared caches.
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_owned(),
            ),
        ],
        bytes,
    ))
}
