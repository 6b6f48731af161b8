//! RFC 9457 problem details: every error the API returns is `application/problem+json` and
//! names the field, line or resource at fault.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::{FieldIssue, ValidationErrors};
use crate::ports::StoreError;

/// At most this many issues are listed; the rest are counted.
const MAX_LISTED_ISSUES: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldIssue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more_errors: Option<usize>,
}

impl Problem {
    fn new(status: StatusCode, type_uri: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { type_uri, title, status: status.as_u16(), detail: detail.into(), errors: Vec::new(), more_errors: None }
    }

    pub fn with_errors(mut self, mut errors: Vec<FieldIssue>) -> Self {
        if errors.len() > MAX_LISTED_ISSUES {
            self.more_errors = Some(errors.len() - MAX_LISTED_ISSUES);
            errors.truncate(MAX_LISTED_ISSUES);
        }
        self.errors = errors;
        self
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "urn:sales-agent:problem:malformed-request", "The request could not be read", detail)
    }

    pub fn invalid(errors: Vec<FieldIssue>) -> Self {
        let detail = match errors.as_slice() {
            [only] => format!("{}: {}", only.field, only.message),
            many => format!("{} fields are invalid; see errors", many.len()),
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "urn:sales-agent:problem:validation", "The request is invalid", detail)
            .with_errors(errors)
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldIssue::new(field, message)])
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "urn:sales-agent:problem:unauthorized", "An API key is required", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "urn:sales-agent:problem:not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "urn:sales-agent:problem:conflict", "The request conflicts with the current state", detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "urn:sales-agent:problem:too-large", "The request is too large", detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "urn:sales-agent:problem:unsupported-media-type", "Unsupported content type", detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "urn:sales-agent:problem:method-not-allowed",
            "Method not allowed",
            "this resource does not support that method",
        )
    }

    /// 421: the request reached a server that will not answer for the name it was sent to.
    pub fn misdirected(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::MISDIRECTED_REQUEST, "urn:sales-agent:problem:misdirected", "Misdirected request", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "urn:sales-agent:problem:unavailable", "Temporarily unavailable", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "urn:sales-agent:problem:internal", "Internal error", detail)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ValidationErrors> for Problem {
    fn from(errors: ValidationErrors) -> Self {
        Problem::invalid(errors.0)
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Problem::not_found("the resource does not exist"),
            StoreError::Conflict => Problem::conflict("the resource was changed by another request; read it again and retry"),
            StoreError::ContactHeld => Problem::conflict("another lead of this agent already contacted the address"),
            StoreError::InvalidCursor => {
                Problem::invalid_field("cursor", "is not a cursor this API issued; pass next_cursor from the previous page")
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(%why, "store unavailable");
                Problem::unavailable("the store is unavailable; retry shortly")
            }
            StoreError::Corrupt(why) => {
                tracing::error!(%why, "stored data is unreadable");
                Problem::internal("stored data could not be read")
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
