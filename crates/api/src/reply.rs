//! JSON responses.
//!
//! The crate builds its own instead of enabling axum's `json` feature: one serializer
//! call, and a serialization failure becomes a problem document rather than a panic or
//! a plain-text 500.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::problem::Problem;

/// `value` as an `application/json` response with `status`.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Result<Response, Problem> {
    let body = serde_json::to_vec(value).map_err(Problem::internal)?;
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// Adds a header whose value came from elsewhere (an ETag, a path); an unsendable
/// value is a server bug, reported as such.
pub(crate) fn with_header(
    mut response: Response,
    name: axum::http::HeaderName,
    value: &str,
) -> Result<Response, Problem> {
    let value = HeaderValue::from_str(value)
        .map_err(|e| Problem::internal(format!("header {name}: {e}")))?;
    response.headers_mut().insert(name, value);
    Ok(response)
}
