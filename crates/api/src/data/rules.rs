//! How the pipeline treats messages: its rules (with counters) and the Protobuf schemas
//! and per-device content types it decodes with.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::data;
use crate::extract::{JsonBody, PathParams};
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane};

/// `GET /api/rules`: every rule in force with its counters.
pub(super) async fn rules<H: ControlPlane>(
    State(state): State<ApiState<H>>,
) -> Result<Response, Problem> {
    let items: Vec<Value> = data(&state)?
        .rules()
        .into_iter()
        .map(|(rule, stats)| {
            let mut v = serde_json::to_value(&rule).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                let counters = json!({
                    "matched": stats.matched,
                    "actionsOk": stats.actions_ok,
                    "actionsFailed": stats.actions_failed,
                });
                m.insert("counters".into(), counters);
            }
            v
        })
        .collect();
    reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// Body of `PUT /api/rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesBody {
    /// The operator's rules; built-in rules are added as at start.
    rules: Vec<telemetry::rules::Rule>,
}

/// `PUT /api/rules`: replaces the operator's rules; all or nothing.
pub(super) async fn put_rules<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    JsonBody(body): JsonBody<RulesBody>,
) -> Result<Response, Problem> {
    let pipeline = data(&state)?;
    pipeline.set_rules(body.rules)?;
    rules(State(state)).await
}

impl From<pipeline::SchemaProblem> for Problem {
    fn from(e: pipeline::SchemaProblem) -> Problem {
        match e {
            pipeline::SchemaProblem::Io(e) => Problem::internal(e),
            // Where the `.proto` source went wrong, also as members for tools.
            pipeline::SchemaProblem::Proto(e) => Problem::bad_request(e.to_string())
                .with_extension("file", json!(e.file))
                .with_extension("line", json!(e.pos.line))
                .with_extension("column", json!(e.pos.column)),
            other => Problem::bad_request(other.to_string()),
        }
    }
}

/// Body of `POST /api/schemas`: exactly one of the two forms.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SchemaBody {
    /// A binary `FileDescriptorSet` (`protoc --descriptor_set_out`), base64.
    #[serde(default)]
    descriptor_set: Option<String>,
    /// `.proto` source files by the name imports use (`{"acme/reading.proto": "…"}`).
    #[serde(default)]
    proto: Option<BTreeMap<String, String>>,
}

/// `POST /api/schemas`: registers Protobuf message types, no rebuild needed.
pub(super) async fn register_schema<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    JsonBody(body): JsonBody<SchemaBody>,
) -> Result<Response, Problem> {
    let messages = match (body.descriptor_set, body.proto) {
        (Some(set), None) => {
            let bytes = hub::base64::decode(&set)
                .map_err(|e| Problem::bad_request(format!("descriptorSet is not base64: {e}")))?;
            data(&state)?.register_schema(&bytes)?
        }
        (None, Some(files)) => data(&state)?.register_proto(&files)?,
        _ => {
            return Err(Problem::bad_request(
                "give exactly one of descriptorSet (base64 FileDescriptorSet) or proto ({\"name.proto\": \"source\"})",
            ))
        }
    };
    reply::json(StatusCode::CREATED, &json!({ "messages": messages }))
}

/// Body of `PUT /api/schemas/devices/{id}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DeviceSchemaBody {
    /// What the device's messages are when they name no content type.
    content_type: String,
}

/// `PUT /api/schemas/devices/{id}`: the content type assumed for a device's messages.
pub(super) async fn put_device_schema<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<DeviceSchemaBody>,
) -> Result<Response, Problem> {
    data(&state)?.set_device_schema(&id, Some(&body.content_type))?;
    reply::json(
        StatusCode::OK,
        &json!({ "deviceId": id, "contentType": body.content_type }),
    )
}

/// `DELETE /api/schemas/devices/{id}`.
pub(super) async fn delete_device_schema<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    data(&state)?.set_device_schema(&id, None)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
