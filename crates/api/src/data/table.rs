//! The data operations' rows in the API's one operations table.

use axum::routing::on;

use super::{records, rules, series};
use crate::auth::{Access, Role};
use crate::operations::{Body, Kind, Operation, Param, Verb, DEVICE_FILTER, DEVICE_ID, MAX_LIMIT};
use crate::{ApiState, ControlPlane};

const LIMIT: Param = Param::query(
    "limit",
    Kind::Integer {
        min: 1,
        max: MAX_LIMIT as i64,
    },
    "How many, newest first (default 100).",
);
const SERIES_PARAMS: &[Param] = &[
    Param::query(
        "field",
        Kind::Text,
        "The field (required), e.g. `x.rms` or `anomaly.score`.",
    ),
    Param::query(
        "deviceId",
        Kind::Text,
        "Devices, comma-separated (default: all).",
    ),
    Param::query(
        "tag",
        Kind::Text,
        "`key:value`: the devices whose twin tag `key` is `value`.",
    ),
    Param::query(
        "from",
        Kind::Text,
        "Start (inclusive): epoch ms, RFC 3339, `now` or `-1h` (default -1h).",
    ),
    Param::query(
        "to",
        Kind::Text,
        "End (exclusive), same forms (default now).",
    ),
    Param::query(
        "step",
        Kind::Text,
        "Bucket width (`10s`, `1m`, `1h`); none: one value per series.",
    ),
    Param::query(
        "agg",
        Kind::OneOf(&["mean", "min", "max", "count", "last", "p99"]),
        "Aggregate (default mean).",
    ),
    Param::query(
        "format",
        Kind::OneOf(&["json", "csv"]),
        "Response format (default json).",
    ),
];
const CAPTURE_PARAMS: &[Param] = &[
    Param::path("id", "Capture id."),
    Param::query(
        "format",
        Kind::OneOf(&["f32", "csv", "json"]),
        "Samples as little-endian f32 (default), CSV, or the description.",
    ),
    Param::query(
        "axis",
        Kind::OneOf(&["x", "y", "z"]),
        "Only this axis of a multi-axis capture (default: all, interleaved in f32, columns in CSV).",
    ),
];

/// A read-only data operation answering JSON.
fn read<H: ControlPlane>(
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    params: &'static [Param],
    response: &'static str,
    route: fn(axum::routing::MethodFilter) -> axum::routing::MethodRouter<ApiState<H>>,
) -> Operation<H> {
    Operation {
        verb: Verb::Get,
        path,
        id,
        tag: "data",
        summary,
        access: Access::Role(Role::ReadOnly),
        params,
        request: None,
        status: 200,
        response: Body::Json(response),
        response_headers: &[],
        errors: &[404, 503],
        route,
    }
}

/// A data operation that changes something (operator role), answering JSON.
#[allow(clippy::too_many_arguments)]
fn write<H: ControlPlane>(
    verb: Verb,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    params: &'static [Param],
    request: Option<&'static str>,
    status: u16,
    response: &'static str,
    route: fn(axum::routing::MethodFilter) -> axum::routing::MethodRouter<ApiState<H>>,
) -> Operation<H> {
    Operation {
        verb,
        path,
        id,
        tag: "data",
        summary,
        access: Access::Role(Role::Operator),
        params,
        request,
        status,
        response: Body::Json(response),
        response_headers: &[],
        errors: &[503],
        route,
    }
}

/// The data operations, appended to the API's table.
pub(crate) fn table<H: ControlPlane>() -> Vec<Operation<H>> {
    vec![
        read(
            "/api/series",
            "querySeries",
            "Aggregates of one field over a time range, per device (JSON or CSV).",
            SERIES_PARAMS,
            "SeriesAnswer",
            |m| on(m, series::series::<H>),
        ),
        read(
            "/api/series/keys",
            "listSeries",
            "The series the store holds.",
            &[DEVICE_FILTER],
            "SeriesKeys",
            |m| on(m, series::keys::<H>),
        ),
        read(
            "/api/anomalies",
            "listAnomalies",
            "Anomaly events (state changes of the devices' models), newest first.",
            &[DEVICE_FILTER, LIMIT],
            "AnomalyEvents",
            |m| on(m, records::anomalies::<H>),
        ),
        read(
            "/api/captures",
            "listCaptures",
            "Stored raw captures, newest first.",
            &[DEVICE_FILTER],
            "Captures",
            |m| on(m, records::captures::<H>),
        ),
        read(
            "/api/captures/{id}",
            "getCapture",
            "One capture's samples (f32 or CSV) or description.",
            CAPTURE_PARAMS,
            "Capture",
            |m| on(m, records::capture::<H>),
        ),
        read(
            "/api/rules",
            "listRules",
            "The rules in force with their counters.",
            &[],
            "Rules",
            |m| on(m, rules::rules::<H>),
        ),
        Operation {
            verb: Verb::Put,
            path: "/api/rules",
            id: "putRules",
            tag: "data",
            summary: "Replace the operator's rules (all or nothing; built-in rules are kept).",
            access: Access::Role(Role::Admin),
            params: &[],
            request: Some("RulesBody"),
            status: 200,
            response: Body::Json("Rules"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, rules::put_rules::<H>),
        },
        write(
            Verb::Post,
            "/api/schemas",
            "registerSchema",
            "Register Protobuf message types: .proto source files, or a binary FileDescriptorSet (base64).",
            &[],
            Some("SchemaBody"),
            201,
            "SchemaRegistered",
            |m| on(m, rules::register_schema::<H>),
        ),
        write(
            Verb::Put,
            "/api/schemas/devices/{id}",
            "putDeviceSchema",
            "Set the content type assumed for a device's messages that name none.",
            &[DEVICE_ID],
            Some("DeviceSchema"),
            200,
            "DeviceSchema",
            |m| on(m, rules::put_device_schema::<H>),
        ),
        Operation {
            verb: Verb::Delete,
            path: "/api/schemas/devices/{id}",
            id: "deleteDeviceSchema",
            tag: "data",
            summary: "Remove a device's assumed content type.",
            access: Access::Role(Role::Operator),
            params: &[DEVICE_ID],
            request: None,
            status: 204,
            response: Body::Empty,
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, rules::delete_device_schema::<H>),
        },
        read(
            "/api/deadletters",
            "listDeadLetters",
            "Messages that could not be handled, with why, newest first.",
            &[LIMIT],
            "DeadLetters",
            |m| on(m, records::dead_letters::<H>),
        ),
    ]
}
