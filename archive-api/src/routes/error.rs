//! The API's one error type: a status, a stable machine-readable code and a message a person can act on.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::archive::{IngestError, ObjectError};
use crate::blobs::BlobError;
use crate::codes::CodeError;
use crate::copies::CopyError;
use crate::index::IndexError;

/// A failed page, as the API reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedPage {
    /// Page number, from 1.
    pub n: u32,
    /// The uploaded file it came from.
    pub origin: String,
    /// Why it failed.
    pub reason: String,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    pages: Vec<FailedPage>,
    /// Seconds the client should wait before asking again (`Retry-After`).
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pages: &'a [FailedPage],
}

impl ApiError {
    /// A client error with its code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            pages: Vec::new(),
            retry_after: None,
        }
    }

    /// Tells the client to ask again in `seconds` (`Retry-After`), for `429` and `503`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// A server-side failure: the cause is logged, the client gets a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the archive could not complete the request; the cause is in the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            pages: &self.pages,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The error body every failure carries.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// Stable machine-readable code: `invalid-input`, `dossier-not-found`, `forbidden`...
    code: String,
    /// What went wrong, for a person.
    message: String,
}

impl From<crate::repo::RepoError> for ApiError {
    fn from(e: crate::repo::RepoError) -> Self {
        use crate::repo::RepoError;
        match e {
            RepoError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            RepoError::NotFound(message) => Self::new(StatusCode::NOT_FOUND, "not-found", message),
            other => Self::internal(other),
        }
    }
}

impl ApiError {
    /// `400 invalid-input` with a message naming the field.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-input", message)
    }

    /// `404` with a code and message.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<CodeError> for ApiError {
    fn from(e: CodeError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-input", e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid(e) => e.into(),
            IngestError::Conflict(message) => {
                Self::new(StatusCode::CONFLICT, "dossier-conflict", message)
            }
            IngestError::NoPages => Self::new(StatusCode::BAD_REQUEST, "no-pages", e.to_string()),
            IngestError::DocumentNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "document-not-found", e.to_string())
            }
            IngestError::Replacement(message) => {
                Self::new(StatusCode::CONFLICT, "replacement-refused", message)
            }
            IngestError::PagesFailed(ref failures) => Self {
                pages: failures
                    .iter()
                    .map(|f| FailedPage {
                        n: f.number,
                        origin: f.origin.clone(),
                        reason: f.error.to_string(),
                    })
                    .collect(),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "pages-failed",
                    e.to_string(),
                )
            },
            other => Self::internal(other),
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::EmptyQuery => {
                Self::new(StatusCode::BAD_REQUEST, "empty-query", e.to_string())
            }
            other => Self::internal(other),
        }
    }
}

impl From<ObjectError> for ApiError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "object-not-found", e.to_string())
            }
            ObjectError::Blob(BlobError::Corrupt { expected, .. }) => {
                tracing::error!(%expected, "refused to serve an object that failed its integrity check");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "object-corrupt",
                    format!(
                        "the stored copy of {expected} failed its integrity check and is not served; \
                         an operator must restore it from backup"
                    ),
                )
            }
            other => Self::internal(other),
        }
    }
}

impl From<CopyError> for ApiError {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "document-not-found", e.to_string())
            }
            CopyError::Blob(blob) => ObjectError::Blob(blob).into(),
            CopyError::Key { .. } => {
                tracing::error!(error = %e, "cannot sign a certified copy");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "signing-unavailable",
                    format!("{e}; an administrator must fix the unit's certificate"),
                )
            }
            other => Self::internal(other),
        }
    }
}
