//! The firmware operations' rows in the API's one operations table, and their bodies'
//! schemas.

use axum::extract::DefaultBodyLimit;
use axum::routing::on;
use serde_json::{json, Value};

use super::images::MAX_UPLOAD_BODY;
use super::{images, keys, rollouts};
use crate::auth::{Access, Role};
use crate::operations::{Body, Kind, Operation, Param, Verb};
use crate::ControlPlane;

const FIRMWARE_ID: Param = Param::path("id", "Firmware id: the image's SHA-256, hex.");
const KEY_ID: Param = Param::path("id", "Publisher key id.");
const ROLLOUT: Param = Param::path("name", "Rollout name.");
/// The presigned-URL parameters a rollout writes into a device's desired `firmware`.
const PRESIGNED: [Param; 4] = [
    FIRMWARE_ID,
    Param::query(
        "device",
        Kind::Text,
        "Presigned URL: the device it was issued to.",
    ),
    Param::query(
        "expires",
        Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        "Presigned URL: expiry, seconds since the epoch.",
    ),
    Param::query(
        "sig",
        Kind::Text,
        "Presigned URL: the hub's HMAC-SHA256 over image, device and expiry, hex.",
    ),
];

/// One firmware operation; `tag` is always `firmware`.
#[allow(clippy::too_many_arguments)]
fn row<H: ControlPlane>(
    verb: Verb,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    role: Role,
    params: &'static [Param],
    request: Option<&'static str>,
    status: u16,
    response: Body,
    errors: &'static [u16],
    route: fn(axum::routing::MethodFilter) -> axum::routing::MethodRouter<crate::ApiState<H>>,
) -> Operation<H> {
    Operation {
        verb,
        path,
        id,
        tag: "firmware",
        summary,
        access: Access::Role(role),
        params,
        request,
        status,
        response,
        response_headers: &[],
        errors,
        route,
    }
}

/// The firmware operations, appended to the API's table.
pub(crate) fn table<H: ControlPlane>() -> Vec<Operation<H>> {
    let mut download = row(
        Verb::Get,
        "/api/firmware/{id}/image",
        "getFirmwareImage",
        "Download an image; a single `Range: bytes=…` gets 206 with Content-Range (resume). Needs a read-only token, or the presigned `device`, `expires`, `sig` a rollout gives a device.",
        Role::ReadOnly,
        &PRESIGNED,
        None,
        200,
        Body::Binary("The image's bytes (or the requested part)."),
        &[401, 403, 404, 416, 503],
        |m| on(m, images::image::<H>),
    );
    // Devices have no token: they present the presigned URL, which the handler checks.
    download.access = Access::RoleOrPresigned(Role::ReadOnly);
    download.response_headers = &[
        ("Accept-Ranges", "`bytes`."),
        (
            "ETag",
            "The image's SHA-256 in quotes (images never change).",
        ),
        ("Content-Range", "With 206: `bytes first-last/length`."),
    ];
    vec![
        row(
            Verb::Post,
            "/api/firmware/keys",
            "addPublisherKey",
            "Register a publisher public key (Ed25519 or P-256) uploads may be signed with.",
            Role::Admin,
            &[],
            Some("NewPublisherKey"),
            201,
            Body::Json("PublisherKey"),
            &[503],
            |m| on(m, keys::add::<H>),
        ),
        row(
            Verb::Get,
            "/api/firmware/keys",
            "listPublisherKeys",
            "Registered publisher keys.",
            Role::ReadOnly,
            &[],
            None,
            200,
            Body::Json("PublisherKeys"),
            &[503],
            |m| on(m, keys::list::<H>),
        ),
        row(
            Verb::Delete,
            "/api/firmware/keys/{id}",
            "removePublisherKey",
            "Unregister a publisher key (images it signed stay).",
            Role::Admin,
            &[KEY_ID],
            None,
            204,
            Body::Empty,
            &[404, 503],
            |m| on(m, keys::remove::<H>),
        ),
        row(
            Verb::Post,
            "/api/firmware",
            "uploadFirmware",
            "Upload a signed image; refused (422) unless signed by a registered key and matching its manifest.",
            Role::Operator,
            &[],
            Some("FirmwareUpload"),
            201,
            Body::Json("Firmware"),
            &[409, 413, 422, 503],
            |m| on(m, images::upload::<H>).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)),
        ),
        row(
            Verb::Get,
            "/api/firmware",
            "listFirmware",
            "Stored images, newest version first.",
            Role::ReadOnly,
            &[],
            None,
            200,
            Body::Json("FirmwareList"),
            &[503],
            |m| on(m, images::list::<H>),
        ),
        row(
            Verb::Get,
            "/api/firmware/{id}",
            "getFirmware",
            "One stored image's signed manifest.",
            Role::ReadOnly,
            &[FIRMWARE_ID],
            None,
            200,
            Body::Json("Firmware"),
            &[404, 503],
            |m| on(m, images::get::<H>),
        ),
        download,
        row(
            Verb::Post,
            "/api/rollouts",
            "createRollout",
            "Roll a stored image out to a device group, phase by phase, behind health gates.",
            Role::Operator,
            &[],
            Some("NewRollout"),
            201,
            Body::Json("Rollout"),
            &[404, 409, 503],
            |m| on(m, rollouts::create::<H>),
        ),
        row(
            Verb::Get,
            "/api/rollouts",
            "listRollouts",
            "Every rollout with its progress.",
            Role::ReadOnly,
            &[],
            None,
            200,
            Body::Json("RolloutList"),
            &[503],
            |m| on(m, rollouts::list::<H>),
        ),
        row(
            Verb::Get,
            "/api/rollouts/{name}",
            "getRollout",
            "One rollout: spec, per-phase progress and recent events.",
            Role::ReadOnly,
            &[ROLLOUT],
            None,
            200,
            Body::Json("Rollout"),
            &[404, 503],
            |m| on(m, rollouts::get::<H>),
        ),
        row(
            Verb::Post,
            "/api/rollouts/{name}/pause",
            "pauseRollout",
            "Stop notifying devices until resumed.",
            Role::Operator,
            &[ROLLOUT],
            None,
            200,
            Body::Json("Rollout"),
            &[404, 503],
            |m| on(m, rollouts::pause::<H>),
        ),
        row(
            Verb::Post,
            "/api/rollouts/{name}/resume",
            "resumeRollout",
            "Continue a paused rollout; failures so far are accepted.",
            Role::Operator,
            &[ROLLOUT],
            None,
            200,
            Body::Json("Rollout"),
            &[404, 503],
            |m| on(m, rollouts::resume::<H>),
        ),
        row(
            Verb::Post,
            "/api/rollouts/{name}/cancel",
            "cancelRollout",
            "Stop for good; with rollBack, updated devices go back to their previous image.",
            Role::Operator,
            &[ROLLOUT],
            Some("CancelRollout"),
            200,
            Body::Json("Rollout"),
            &[404, 503],
            |m| on(m, rollouts::cancel::<H>),
        ),
    ]
}

/// A string schema.
fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// The manifest's schema (see `ota::Manifest` and docs/ota.md).
fn manifest() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A signed firmware manifest (docs/ota.md).",
        "required": ["version", "hw", "size", "sha256"],
        "properties": {
            "version": string("Semantic version of the image."),
            "hw": { "type": "array", "items": string("Hardware id."), "description": "Hardware the image runs on." },
            "size": { "type": "integer", "minimum": 0, "description": "Image length in bytes." },
            "sha256": string("Image SHA-256, 64 lower-case hex digits."),
            "minFrom": string("Oldest version that may update to this one."),
            "allowDowngrade": { "type": "boolean", "description": "Whether newer devices may install it." },
            "signature": {
                "type": "object",
                "additionalProperties": false,
                "required": ["algorithm", "keyId", "value"],
                "properties": {
                    "algorithm": { "type": "string", "enum": ["ed25519", "ecdsa-p256-sha256"] },
                    "keyId": string("The signing key's id."),
                    "value": string("The signature, base64."),
                },
            },
        },
    })
}

/// A key's schema.
fn publisher_key() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A registered publisher key.",
        "required": ["id", "name", "algorithm", "publicKey"],
        "properties": {
            "id": string("Key id: first 8 bytes of SHA-256 over the SubjectPublicKeyInfo, hex."),
            "name": string("A name for people."),
            "algorithm": { "type": "string", "enum": ["ed25519", "ecdsa-p256-sha256"] },
            "publicKey": string("PUBLIC KEY PEM."),
        },
    })
}

/// A stored image's schema.
fn firmware() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A stored image.",
        "required": ["id", "manifest"],
        "properties": {
            "id": string("The image's SHA-256, hex."),
            "manifest": manifest(),
        },
    })
}

/// The firmware bodies' schemas, appended to the API's components.
pub(crate) fn components() -> Vec<(&'static str, Value)> {
    let items = |item: Value, description: &str| {
        json!({
            "type": "object",
            "additionalProperties": false,
            "description": description,
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": item } },
        })
    };
    vec![
        (
            "NewPublisherKey",
            json!({
                "type": "object",
                "additionalProperties": false,
                "description": "A publisher key to register.",
                "required": ["name", "publicKey"],
                "properties": {
                    "name": string("1-64 printable ASCII characters."),
                    "publicKey": string("PUBLIC KEY PEM (SubjectPublicKeyInfo) of an Ed25519 or P-256 key."),
                },
            }),
        ),
        ("PublisherKey", publisher_key()),
        (
            "PublisherKeys",
            items(publisher_key(), "Registered publisher keys."),
        ),
        (
            "FirmwareUpload",
            json!({
                "type": "object",
                "additionalProperties": false,
                "description": "A signed image to store.",
                "required": ["manifest", "image"],
                "properties": {
                    "manifest": manifest(),
                    "image": string("The image, base64 (at most 32 MiB decoded)."),
                },
            }),
        ),
        ("Firmware", firmware()),
        (
            "FirmwareList",
            items(firmware(), "Stored images, newest version first."),
        ),
        ("NewRollout", new_rollout()),
        ("Rollout", rollout()),
        (
            "RolloutList",
            items(rollout(), "Rollouts by name (without events)."),
        ),
        (
            "CancelRollout",
            json!({
                "type": "object",
                "additionalProperties": false,
                "description": "How to cancel.",
                "properties": {
                    "rollBack": { "type": "boolean", "description": "Tell updated devices to go back to their previous image (default false)." },
                },
            }),
        ),
    ]
}

/// A number schema.
fn number(description: &str) -> Value {
    json!({ "type": "number", "minimum": 0, "description": description })
}

/// The body creating a rollout.
fn new_rollout() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A rollout to start; rates in percent, times in seconds.",
        "required": ["name", "firmware", "group"],
        "properties": {
            "name": string("1-64 characters of A-Z a-z 0-9 . _ -"),
            "firmware": string("Firmware id (image SHA-256)."),
            "group": string("Target device group."),
            "phases": { "type": "array", "items": number("Cumulative percent of the group."), "description": "Default [1, 10, 50, 100]; increasing, ending at 100." },
            "soakSeconds": number("Watch time after each phase (default 600)."),
            "maxFailurePercent": number("Failure gate (default 2)."),
            "minSuccessPercent": number("Success needed to advance (default 95)."),
            "maxOfflineExcessPercent": number("Offline gate, over the rest of the group (default 20)."),
            "maxAnomalyExcessPercent": number("Anomaly gate, over the rest of the group (default 20)."),
            "maxRebootExcessPercent": number("Reboot gate (reported boot counters), over the rest of the group (default 20)."),
            "maxConcurrent": number("Devices updating at once (default 50)."),
            "maxStartDelaySeconds": number("Random per-device start delay bound (default 60)."),
            "deviceTimeoutSeconds": number("A device silent this long counts as failed (default 3600)."),
            "policy": { "type": "string", "enum": ["pause", "rollback"], "description": "On a breach (default pause)." },
            "windows": { "type": "array", "items": string("HH:MM-HH:MM, UTC; may wrap midnight."), "description": "Daily maintenance windows: devices are notified only inside one (default: any time)." },
        },
    })
}

/// A rollout as answered.
fn rollout() -> Value {
    let free =
        |d: &str| json!({ "type": "object", "additionalProperties": true, "description": d });
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A rollout.",
        "required": ["name", "firmware", "group", "createdMs", "progress"],
        "properties": {
            "name": string("Its name."),
            "firmware": string("Firmware id."),
            "group": string("Target device group."),
            "createdMs": number("Creation time, ms since the epoch."),
            "spec": free("Phases (fractions), soakMs, maxFailure, minSuccess, maxOfflineExcess, maxAnomalyExcess, maxRebootExcess, maxConcurrent, maxStartDelayMs, deviceTimeoutMs, policy, windows."),
            "waitingForWindow": { "type": "boolean", "description": "Running, with devices to notify, but outside its maintenance windows." },
            "progress": free("{status, phase, members, unassigned, phases: [{target, pending, inProgress, succeeded, failed, rolledBack}]}."),
            "events": { "type": "array", "items": free("{timeMs, event: {event, …}}"), "description": "Recent events, oldest first (not in listings)." },
        },
    })
}
