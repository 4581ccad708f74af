//! Request input: JSON bodies, path segments and query strings, each rejected as a
//! problem document rather than axum's plain-text rejections.
//!
//! Bodies are parsed here (not with axum's `Json`) so that the content-type check, the
//! size limit and serde's message all end up in one `400`/`413`/`415` problem, and query
//! strings are parsed here so that empty values mean "not given" (`?status=&group=g`)
//! and a repeated parameter is an error rather than a silent "last one wins".

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// A JSON request body of type `T`. An empty body is read as `{}`, so operations whose
/// fields are all optional can be called without one.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "Request body too large",
                    e.body_text(),
                )
            } else {
                Problem::bad_request(format!("cannot read the request body: {}", e.body_text()))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return parse_json(b"{}").map(JsonBody);
        }
        if !content_type.as_deref().is_some_and(is_json_media_type) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "the request body must be JSON, sent with Content-Type: application/json",
            ));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Whether `value` (a Content-Type header) names JSON: `application/json` or `…+json`.
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body, telling a syntax error apart from a shape error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-body",
                "Invalid request body",
                e.to_string(),
            )
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-json",
                "Malformed JSON",
                e.to_string(),
            )
        }
    })
}

/// Path parameters (`{id}`, `{name}`), percent-decoded.
pub(crate) struct PathParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParams(value))
            .map_err(|e| Problem::bad_request(format!("bad path: {}", e.body_text())))
    }
}

/// The query string as decoded name/value pairs.
#[derive(Debug, Default)]
pub(crate) struct QueryParams {
    /// Decoded parameters; empty values are kept here and hidden by the getters.
    values: BTreeMap<String, String>,
}

impl QueryParams {
    /// Parses `a=1&b=x%20y`; `+` is a space, as HTML forms send it.
    pub(crate) fn parse(query: Option<&str>) -> Result<QueryParams, Problem> {
        let mut values = BTreeMap::new();
        for pair in query.unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name)?;
            let value = percent_decode(value)?;
            if values.insert(name.clone(), value).is_some() {
                return Err(Problem::bad_request(format!(
                    "query parameter {name} is given more than once"
                )));
            }
        }
        Ok(QueryParams { values })
    }

    /// Names of all parameters given.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The value of `name`; an empty value counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `name` parsed as a number within `min..=max`.
    pub(crate) fn number<T>(&self, name: &str, min: T, max: T) -> Result<Option<T>, Problem>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        match raw.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(Some(n)),
            _ => Err(Problem::bad_request(format!(
                "query parameter {name} must be a whole number from {min} to {max}, not {raw:?}"
            ))),
        }
    }

    /// A listing's page: `limit` (default and maximum from the operations table) and
    /// where to resume, decoded from the `continuation` token of the previous page.
    pub(crate) fn page(&self) -> Result<(usize, Option<String>), Problem> {
        let limit = self
            .number("limit", 1, crate::operations::MAX_LIMIT)?
            .unwrap_or(crate::operations::DEFAULT_LIMIT);
        let after = self
            .get("continuation")
            .map(crate::continuation::decode)
            .transpose()?;
        Ok((limit, after))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        QueryParams::parse(parts.uri.query())
    }
}

/// Decodes `%XX` escapes and `+`; the result must be UTF-8.
fn percent_decode(raw: &str) -> Result<String, Problem> {
    let bad = || Problem::bad_request(format!("bad percent-encoding in query string: {raw:?}"));
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters),
/// for `Location` headers naming a device whose id has `%`, `?` or `'` in it.
pub(crate) fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_and_empty_means_absent() {
        let q =
            QueryParams::parse(Some("status=&group=a%20b&tag=k%3Av+w&limit=5")).expect("parses");
        assert_eq!(q.get("status"), None);
        assert_eq!(q.get("group"), Some("a b"));
        assert_eq!(q.get("tag"), Some("k:v w"));
        assert_eq!(q.number("limit", 1usize, 10).expect("in range"), Some(5));
        assert_eq!(
            q.names().collect::<Vec<_>>(),
            ["group", "limit", "status", "tag"]
        );
    }

    #[test]
    fn bad_query_strings_are_problems_not_panics() {
        for query in ["a=%", "a=%4", "a=%zz", "a=%ff", "a=1&a=2"] {
            let problem = QueryParams::parse(Some(query)).expect_err(query);
            assert_eq!(problem.status, StatusCode::BAD_REQUEST, "{query}");
        }
        let q = QueryParams::parse(Some("limit=0&big=99999999999999999999")).expect("parses");
        assert!(q.number("limit", 1usize, 10).is_err());
        assert!(q.number("big", 1usize, 10).is_err());
        assert_eq!(q.number::<usize>("absent", 1, 10).expect("absent"), None);
    }

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type(""));
    }

    #[test]
    fn syntax_and_shape_errors_are_told_apart() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Shape {
            n: u8,
        }
        let syntax = parse_json::<Shape>(b"{\"n\":").expect_err("syntax");
        assert_eq!(syntax.kind, "invalid-json");
        let shape = parse_json::<Shape>(b"{\"n\":\"x\"}").expect_err("shape");
        assert_eq!(shape.kind, "invalid-body");
        assert!(shape.detail.contains("invalid type"), "{}", shape.detail);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_path_segment("dev-1.a_b~"), "dev-1.a_b~");
        assert_eq!(encode_path_segment("a b/%?'"), "a%20b%2F%25%3F%27");
    }
}
