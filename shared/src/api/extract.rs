//! Request extraction that answers every malformed input with a problem body naming the field.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::Problem;
use crate::ports::PageRequest;

/// The body as bytes, with the size limit reported as a problem.
pub struct Body(pub Bytes);

pub(crate) fn body_rejection(rejection: BytesRejection) -> Problem {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Problem::too_large("the request body is larger than this API accepts; split the leads over several executions")
    } else {
        Problem::malformed(format!("the request body could not be read: {rejection}"))
    }
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state).await.map(Body).map_err(body_rejection)
    }
}

/// Reads JSON, naming the exact field that failed (`sequence[1].wait_days`), or the line and
/// column of a syntax error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::malformed("the request body is empty; send a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    match result {
        Ok(value) => deserializer.end().map(|_| value).map_err(|e| Problem::malformed(format!("malformed JSON: {e}"))),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(Problem::malformed(format!("malformed JSON: {inner}")))
            } else {
                let message = inner.to_string();
                // "missing field `pitch`" is about a field below the path serde stopped at.
                let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
                let field = match (path.as_str(), missing) {
                    (".", Some(name)) => name.to_string(),
                    (_, Some(name)) => format!("{path}.{name}"),
                    (".", None) => "body".to_string(),
                    _ => path,
                };
                let message = if missing.is_some() { "is required".to_string() } else { message };
                Err(Problem::invalid_field(&field, message))
            }
        }
    }
}

/// A JSON body. A content type other than JSON is refused with 415.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
            let content_type = content_type.to_str().unwrap_or_default().to_ascii_lowercase();
            if !content_type.starts_with("application/json") && !content_type.contains("+json") {
                return Err(Problem::unsupported_media_type(format!("send application/json, not {content_type}")));
            }
        }
        let Body(bytes) = Body::from_request(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Query parameters, read leniently so each bad value is reported by name.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| Params(map))
            .map_err(|e| Problem::malformed(format!("the query string could not be read: {e}")))
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn page(&self) -> Result<PageRequest, Problem> {
        let limit = match self.get("limit") {
            None => PageRequest::DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=PageRequest::MAX_LIMIT).contains(&n) => n,
                _ => return Err(Problem::invalid_field("limit", format!("must be a whole number from 1 to {}", PageRequest::MAX_LIMIT))),
            },
        };
        Ok(PageRequest { cursor: self.get("cursor").map(str::to_string), limit })
    }

    pub fn flag(&self, name: &str) -> Result<bool, Problem> {
        match self.get(name) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(_) => Err(Problem::invalid_field(name, "must be true or false")),
        }
    }
}

/// Parses an id from the path; an id that cannot exist is simply not found.
pub fn path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, Problem> {
    raw.parse().map_err(|_| Problem::not_found(format!("no {what} with id '{raw}'")))
}
