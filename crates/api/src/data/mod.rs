//! The data plane's REST side: time series, anomaly events, raw captures, rules and
//! dead letters, served from the running pipeline (`pipeline::Pipeline`).
//!
//! These operations answer 503 when the API runs without a pipeline (the in-process
//! tests of the control plane), so their presence in the table never depends on it.
//! Times are accepted as milliseconds since the epoch, RFC 3339, `now` or `-15m`
//! (relative to now); steps as `500ms`, `10s`, `1m`, `1h`, `1d` or milliseconds.
//!
//! Layout: `series` (queries), `records` (anomalies, captures, dead letters), `rules`
//! (rules and schemas), `table` (their rows in the operations table).

mod records;
mod rules;
mod series;
mod table;

use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pipeline::{Pipeline, PipelineError};

use crate::problem::Problem;
use crate::ApiState;

pub(crate) use table::table;

pub(super) fn data<H>(state: &ApiState<H>) -> Result<&Pipeline, Problem> {
    state.data.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-pipeline",
            "Data pipeline not running",
            "this server runs without the data pipeline",
        )
    })
}

impl From<PipelineError> for Problem {
    fn from(e: PipelineError) -> Problem {
        match e {
            PipelineError::NoCapture(id) => Problem::new(
                StatusCode::NOT_FOUND,
                "no-such-capture",
                "No such capture",
                format!("no capture {id}"),
            ),
            PipelineError::Rule(e) => Problem::bad_request(e.to_string()),
            e @ PipelineError::Unsupported { .. } => Problem::bad_request(e.to_string()),
            PipelineError::Series(e) => Problem::bad_request(e.to_string()),
            e @ PipelineError::Io { .. } => Problem::internal(e),
        }
    }
}

pub(super) fn csv(body: String, name: &str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    response
}
