//! What the pipeline recorded: anomaly events, raw captures, dead letters.

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{csv, data};
use crate::extract::{PathParams, QueryParams};
use crate::operations::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane};

/// `GET /api/anomalies`.
pub(super) async fn anomalies<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let limit = query
        .number("limit", 1, MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT);
    let items = data(&state)?.anomalies(query.get("deviceId"), limit);
    reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// `GET /api/captures`.
pub(super) async fn captures<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let items = data(&state)?.captures(query.get("deviceId"))?;
    reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// `GET /api/captures/{id}`: the samples, as little-endian f32 (default; frames of the
/// capture's axes interleaved), CSV (one column per axis) or the description as JSON;
/// `axis=x|y|z` keeps one axis.
pub(super) async fn capture<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let (mut info, mut samples) = data(&state)?.capture(&id)?;
    if let Some(axis) = query.get("axis") {
        samples = one_axis(&info, &samples, axis)?;
        info.axes = 1;
    }
    match query.get("format").unwrap_or("f32") {
        "json" => reply::json(StatusCode::OK, &info),
        "csv" => Ok(csv(capture_csv(&info, &samples), &format!("{id}.csv"))),
        "f32" => {
            let mut response = (StatusCode::OK, samples).into_response();
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.f32\"")) {
                headers.insert(CONTENT_DISPOSITION, v);
            }
            Ok(response)
        }
        other => Err(Problem::bad_request(format!(
            "format must be f32, csv or json, not {other:?}"
        ))),
    }
}

/// The samples of one axis (`x`, `y` or `z`, within the capture's axes).
fn one_axis(info: &pipeline::CaptureInfo, samples: &[u8], axis: &str) -> Result<Vec<u8>, Problem> {
    let index = match axis {
        "x" => 0,
        "y" => 1,
        "z" => 2,
        other => {
            return Err(Problem::bad_request(format!(
                "axis must be x, y or z, not {other:?}"
            )))
        }
    };
    let axes = usize::from(info.axes.max(1));
    if index >= axes {
        let msg = format!("capture {} has {axes} axis(es); no axis {axis}", info.id);
        return Err(Problem::bad_request(msg));
    }
    Ok(samples
        .chunks_exact(4)
        .skip(index)
        .step_by(axes)
        .flatten()
        .copied()
        .collect())
}

/// `index,time_s,value` (one axis) or `index,time_s,x,y[,z]`, with the capture's
/// missing chunk ranges as comment lines first.
fn capture_csv(info: &pipeline::CaptureInfo, samples: &[u8]) -> String {
    let mut out = String::new();
    for [start, end] in &info.missing {
        out.push_str(&format!("# missing chunks {start}..{end}\n"));
    }
    let axes = usize::from(info.axes.clamp(1, 3));
    out.push_str(
        [
            "index,time_s,value\n",
            "index,time_s,x,y\n",
            "index,time_s,x,y,z\n",
        ][axes - 1],
    );
    let rate = if info.rate_hz > 0.0 {
        info.rate_hz
    } else {
        1.0
    };
    for (i, frame) in samples.chunks_exact(4 * axes).enumerate() {
        out.push_str(&format!("{i},{}", i as f64 / rate));
        for b in frame.chunks_exact(4) {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            out.push_str(&format!(",{v}"));
        }
        out.push('\n');
    }
    out
}
/// `GET /api/deadletters`.
pub(super) async fn dead_letters<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let limit = query
        .number("limit", 1, MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT);
    let items = data(&state)?.dead_letters(limit)?;
    reply::json(StatusCode::OK, &json!({ "items": items }))
}
