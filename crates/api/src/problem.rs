//! RFC 9457 problem details: the one shape every API error takes.
//!
//! Owns the mapping from the hub's errors ([`HubError`]) and from request-level failures
//! (bad JSON, unknown route, missing token) to an HTTP status plus an
//! `application/problem+json` body. Handlers return `Result<_, Problem>` and never build
//! error responses themselves, so clients can rely on `type` and `status` everywhere.

use axum::http::header::{ALLOW, CONTENT_TYPE, ETAG, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hub::service::HubError;
use serde_json::{json, Map, Value};

/// Media type of problem documents (RFC 9457 §3).
pub(crate) const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Prefix of every problem `type`: a URN, so it identifies without pretending to be a
/// page someone can fetch.
const TYPE_PREFIX: &str = "urn:bosun:problem:";

/// An error on its way to the client.
#[derive(Debug)]
pub(crate) struct Problem {
    /// HTTP status, repeated in the body as RFC 9457 asks.
    pub(crate) status: StatusCode,
    /// Stable machine-readable kind, appended to [`TYPE_PREFIX`].
    pub(crate) kind: &'static str,
    /// Short, human-readable summary that does not change between occurrences.
    pub(crate) title: &'static str,
    /// What went wrong this time.
    pub(crate) detail: String,
    /// Extension members (e.g. `currentEtag`).
    pub(crate) extensions: Map<String, Value>,
    /// Headers the status calls for (`WWW-Authenticate`, `Allow`, `ETag`).
    pub(crate) headers: Vec<(HeaderName, String)>,
}

impl Problem {
    /// A problem without extensions or extra headers.
    pub(crate) fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    /// 400: the request itself is wrong (a parameter, a field, a limit).
    pub(crate) fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    /// 500: a bug on our side; the detail is logged, not shown.
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %detail, "api internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed to produce a response; see its log",
        )
    }

    /// Adds an extension member to the body.
    pub(crate) fn with_extension(mut self, name: &str, value: Value) -> Problem {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// Adds a response header.
    pub(crate) fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Problem {
        self.headers.push((name, value.into()));
        self
    }

    /// The body as JSON (RFC 9457 members first, then extensions).
    pub(crate) fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), json!(format!("{TYPE_PREFIX}{}", self.kind)));
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        for (name, value) in &self.extensions {
            body.insert(name.clone(), value.clone());
        }
        Value::Object(body)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        for (name, value) in self.headers {
            // Values come from our own code or from the hub (ETags); one that is not a
            // valid header value is dropped rather than turning the error into a panic.
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(name, value);
            }
        }
        response
    }
}

impl From<HubError> for Problem {
    fn from(error: HubError) -> Problem {
        let detail = error.to_string();
        match error {
            HubError::NotFound(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "device-not-found",
                "Device not found",
                detail,
            ),
            HubError::AlreadyExists(_) => Problem::new(
                StatusCode::CONFLICT,
                "device-exists",
                "Device already exists",
                detail,
            ),
            HubError::PreconditionFailed { current } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "etag-mismatch",
                "The twin has changed",
                detail,
            )
            .with_extension("currentEtag", json!(current))
            .with_header(ETAG, current),
            HubError::Invalid(_) => Problem::bad_request(detail),
            // Azure answers 404 here too: from the caller's side the device is not there.
            HubError::NotConnected(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "device-not-connected",
                "Device not connected",
                detail,
            ),
            HubError::Timeout(_) => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "device-timeout",
                "Device did not answer in time",
                detail,
            ),
            HubError::QueueFull(_) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue-full",
                "Cloud-to-device queue full",
                detail,
            ),
            HubError::Unavailable(_) => {
                tracing::warn!(error = %detail, "hub unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    detail,
                )
            }
        }
    }
}

/// 401 with the `WWW-Authenticate` challenge RFC 6750 asks for; `error` is set when a
/// token was presented but is not valid (absent when none was sent at all).
pub(crate) fn unauthorized(detail: &str, invalid_token: bool) -> Problem {
    let challenge = if invalid_token {
        r#"Bearer realm="bosun", error="invalid_token""#
    } else {
        r#"Bearer realm="bosun""#
    };
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
        detail,
    )
    .with_header(WWW_AUTHENTICATE, challenge)
}

/// Handler for paths under `/api` that no operation has.
pub(crate) async fn no_such_route(method: Method, uri: Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        "No such route",
        format!(
            "no operation {method} {}; GET /api/openapi.json lists them all",
            uri.path()
        ),
    )
}

/// Fallback of a known path for methods it does not have; `allow` lists those it has.
pub(crate) async fn method_not_allowed(allow: String) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("this path allows {allow}"),
    )
    .with_header(ALLOW, allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_kind(error: HubError) -> (u16, String) {
        let problem = Problem::from(error);
        let body = problem.body();
        assert_eq!(body["status"], json!(problem.status.as_u16()));
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        (
            problem.status.as_u16(),
            body["type"].as_str().unwrap_or_default().to_owned(),
        )
    }

    #[test]
    fn every_hub_error_has_its_documented_status() {
        let id = || "d1".to_owned();
        let cases = [
            (HubError::NotFound(id()), 404, "device-not-found"),
            (HubError::AlreadyExists(id()), 409, "device-exists"),
            (
                HubError::PreconditionFailed {
                    current: "\"7\"".into(),
                },
                412,
                "etag-mismatch",
            ),
            (HubError::Invalid("bad".into()), 400, "invalid-request"),
            (HubError::NotConnected(id()), 404, "device-not-connected"),
            (HubError::Timeout(id()), 504, "device-timeout"),
            (HubError::QueueFull(id()), 429, "queue-full"),
            (HubError::Unavailable("disk".into()), 503, "unavailable"),
        ];
        for (error, status, kind) in cases {
            let (got_status, got_type) = status_and_kind(error);
            assert_eq!(got_status, status, "{kind}");
            assert_eq!(got_type, format!("{TYPE_PREFIX}{kind}"));
        }
    }

    #[test]
    fn precondition_failure_names_the_current_etag() {
        let problem = Problem::from(HubError::PreconditionFailed {
            current: "\"9\"".into(),
        });
        assert_eq!(problem.body()["currentEtag"], json!("\"9\""));
        let response = problem.into_response();
        assert_eq!(response.headers()[ETAG], "\"9\"");
    }

    #[test]
    fn responses_are_problem_json_with_challenge() {
        let response = unauthorized("no token", false).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        assert!(response.headers()[WWW_AUTHENTICATE]
            .to_str()
            .is_ok_and(|v| v.starts_with("Bearer")));
        let invalid = unauthorized("bad token", true).into_response();
        assert!(invalid.headers()[WWW_AUTHENTICATE]
            .to_str()
            .is_ok_and(|v| v.contains("invalid_token")));
    }

    #[test]
    fn a_header_value_that_cannot_be_sent_is_dropped() {
        let response = Problem::bad_request("x")
            .with_header(ETAG, "bad\nvalue")
            .into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(ETAG).is_none());
    }
}
