//! Request extractors whose refusals are the API's own errors (JSON with a code and a message), not
//! axum's plain-text ones.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A JSON request body; a malformed one is `400 invalid-input` (or `415` without a JSON content type).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = match rejection.status() {
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => rejection.status(),
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE => rejection.status(),
                    _ => axum::http::StatusCode::BAD_REQUEST,
                };
                Err(ApiError::new(
                    status,
                    "invalid-input",
                    rejection.body_text(),
                ))
            }
        }
    }
}

/// Query parameters; malformed ones are `400 invalid-input` naming the parameter.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))
    }
}

/// Path parameters; malformed ones are `400 invalid-input`.
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))
    }
}

/// A time from a request (RFC 3339 in any offset, or a day `YYYY-MM-DD`), as stored: RFC 3339 in Vietnam
/// time. `400` naming the field when it is neither.
pub fn time_param(value: Option<&str>, field: &str) -> Result<Option<String>, ApiError> {
    value
        .map(|v| {
            crate::time::to_vietnam(v).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{field} '{}' is not a time: expected a day (2023-11-28) or RFC 3339 \
                     (2023-11-28T08:30:00+07:00)",
                    v.chars().take(60).collect::<String>()
                ))
            })
        })
        .transpose()
}

/// A JSON body that may be left empty, for the defaults.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the JSON body is not valid: {e}")))
}
