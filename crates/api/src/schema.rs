//! JSON schemas of every request and response body, as OpenAPI 3.0 components.
//!
//! Written as `serde_json` values in code (no schema-derive crate) next to each other,
//! so a reader sees the whole wire format in one file; the operations table refers to
//! them by name and a test checks that every name resolves and every schema is used.

use serde_json::{json, Map, Value};

use crate::operations::MAX_LIMIT;

/// `{"$ref": ...}` to the component `name`.
pub(crate) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A string.
fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// A string that may be `null`.
fn nullable_string(description: &str) -> Value {
    json!({ "type": "string", "nullable": true, "description": description })
}

/// An RFC 3339 time.
fn time(description: &str, nullable: bool) -> Value {
    json!({ "type": "string", "format": "date-time", "nullable": nullable, "description": description })
}

/// One of `words`.
fn one_of(words: &[&str], description: &str) -> Value {
    json!({ "type": "string", "enum": words, "description": description })
}

/// An integer in `min..=max` (no maximum when `max` is `None`).
fn integer(min: i64, max: Option<i64>, default: Option<i64>, description: &str) -> Value {
    let mut schema = json!({ "type": "integer", "minimum": min, "description": description });
    if let Some(max) = max {
        schema["maximum"] = json!(max);
    }
    if let Some(default) = default {
        schema["default"] = json!(default);
    }
    schema
}

/// A JSON object with free-form members.
fn free_object(description: &str) -> Value {
    json!({ "type": "object", "additionalProperties": true, "description": description })
}

/// Any JSON value.
fn any(description: &str) -> Value {
    json!({ "description": description })
}

/// An array of the component `item`.
fn array_of(item: &str) -> Value {
    json!({ "type": "array", "items": reference(item) })
}

/// An object with exactly these `properties`, of which `required` must be present.
fn object(description: &str, properties: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
        .collect();
    let mut schema = json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// A page of `item`s with a continuation token.
fn page(item: &str) -> Value {
    object(
        &format!("One page of {item} items."),
        &[
            ("items", array_of(item)),
            (
                "continuation",
                string("Pass back to get the next page; absent on the last page."),
            ),
        ],
        &["items"],
    )
}

/// Every component schema, by name.
pub(crate) fn components() -> Vec<(&'static str, Value)> {
    let status = || one_of(&["enabled", "disabled"], "Whether the device may connect.");
    let limit = || integer(1, Some(MAX_LIMIT as i64), Some(100), "Page size.");
    vec![
        (
            "NewDevice",
            object(
                "A device to register.",
                &[
                    (
                        "deviceId",
                        string("1–128 characters of A–Z a–z 0–9 and -.%_*?!(),:=@$'"),
                    ),
                    (
                        "authKind",
                        one_of(
                            &["none", "sas", "x509"],
                            "How it authenticates (default none).",
                        ),
                    ),
                    ("group", string("Device group.")),
                    ("tags", free_object("Initial twin tags.")),
                    ("desired", free_object("Initial desired properties.")),
                    ("status", status()),
                    (
                        "symmetricKey",
                        string(
                            "authKind sas only: the primary key, base64 of 16–64 bytes \
                             (default: 32 random bytes). The secondary key is generated.",
                        ),
                    ),
                ],
                &["deviceId"],
            ),
        ),
        (
            "DeviceUpdate",
            object(
                "Changes to a device; absent members stay as they are.",
                &[
                    ("status", status()),
                    ("group", nullable_string("New group; null removes it.")),
                ],
                &[],
            ),
        ),
        (
            "DeviceInfo",
            object(
                "A device's registry entry.",
                &[
                    ("deviceId", string("Device id.")),
                    ("status", status()),
                    ("authKind", string("none, sas or x509.")),
                    ("group", nullable_string("Device group.")),
                    (
                        "connectionState",
                        one_of(
                            &["connected", "disconnected"],
                            "Last known connection state.",
                        ),
                    ),
                    (
                        "connectionReason",
                        nullable_string("Why the connection state last changed."),
                    ),
                    (
                        "connectionStateUpdatedTime",
                        time("When the connection state last changed.", true),
                    ),
                    ("lastActivityTime", time("Last activity.", true)),
                    ("createdTime", time("When it was registered.", false)),
                    (
                        "firmwareVersion",
                        nullable_string("Reported firmware version, from the twin."),
                    ),
                    ("tags", free_object("Twin tags.")),
                ],
                &[
                    "deviceId",
                    "status",
                    "authKind",
                    "connectionState",
                    "createdTime",
                    "tags",
                ],
            ),
        ),
        ("DevicePage", page("DeviceInfo")),
        (
            "DeviceKeys",
            object(
                "A SAS device's symmetric keys (secrets: admins only).",
                &[
                    ("deviceId", string("The device.")),
                    ("primaryKey", string("Primary key, base64.")),
                    ("secondaryKey", string("Secondary key, base64.")),
                    (
                        "connectionString",
                        string("HostName={hub.host_name};DeviceId={id};SharedAccessKey={primaryKey}, for the Azure device SDKs."),
                    ),
                ],
                &["deviceId", "primaryKey", "secondaryKey", "connectionString"],
            ),
        ),
        (
            "KeyRegeneration",
            object(
                "Which key to replace.",
                &[("which", one_of(&["primary", "secondary"], "The key."))],
                &["which"],
            ),
        ),
        (
            "GroupCondition",
            object(
                "A device group's definition.",
                &[(
                    "condition",
                    string(
                        "The WHERE part of a twin query, e.g. tags.site = 'plant-7' AND \
                         properties.reported.mode = 'alarm'.",
                    ),
                )],
                &["condition"],
            ),
        ),
        (
            "GroupInfo",
            object(
                "A device group: the devices whose twins match its condition, now.",
                &[
                    (
                        "name",
                        string("Group name (the same characters as a device id)."),
                    ),
                    ("condition", string("The WHERE part of a twin query.")),
                    ("createdTime", time("When it was last defined.", false)),
                ],
                &["name", "condition", "createdTime"],
            ),
        ),
        (
            "GroupList",
            object(
                "Every device group, by name.",
                &[("items", array_of("GroupInfo"))],
                &["items"],
            ),
        ),
        (
            "GroupMember",
            object(
                "A device that matches a group's condition.",
                &[
                    ("deviceId", string("Device id.")),
                    ("status", status()),
                    (
                        "connectionState",
                        one_of(
                            &["connected", "disconnected"],
                            "Last known connection state.",
                        ),
                    ),
                ],
                &["deviceId", "status", "connectionState"],
            ),
        ),
        ("GroupPage", page("GroupMember")),
        (
            "EnrollmentSpec",
            object(
                "A provisioning enrollment's definition.",
                &[
                    (
                        "key",
                        string(
                            "Symmetric key, base64 of 16 to 64 bytes: the device key \
                             (individual) or the group key devices' keys derive from. \
                             Generated when absent for a new enrollment, kept otherwise. \
                             Not with `x509`.",
                        ),
                    ),
                    ("x509", x509_attestation()),
                    ("initialTwin", initial_twin()),
                    (
                        "deviceGroup",
                        nullable_string("Device group registered devices join."),
                    ),
                    (
                        "disabled",
                        json!({"type": "boolean", "default": false,
                               "description": "Refuse registrations."}),
                    ),
                ],
                &[],
            ),
        ),
        (
            "Enrollment",
            object(
                "A provisioning enrollment.",
                &[
                    (
                        "kind",
                        one_of(&["individual", "group"], "Individual or group."),
                    ),
                    (
                        "name",
                        string("Registration id (individual) or group name (group)."),
                    ),
                    (
                        "attestation",
                        one_of(
                            &["symmetricKey", "x509"],
                            "How devices prove who they are: a (derived) key or a certificate.",
                        ),
                    ),
                    (
                        "key",
                        string(
                            "Symmetric key (base64); present for administrators only, \
                             absent for X.509 enrollments.",
                        ),
                    ),
                    ("x509", x509_attestation()),
                    ("initialTwin", initial_twin()),
                    (
                        "deviceGroup",
                        nullable_string("Device group registered devices join."),
                    ),
                    (
                        "disabled",
                        json!({"type": "boolean", "description": "Registrations are refused."}),
                    ),
                    ("createdTime", time("When it was last defined.", false)),
                ],
                &[
                    "kind",
                    "name",
                    "attestation",
                    "initialTwin",
                    "deviceGroup",
                    "disabled",
                    "createdTime",
                ],
            ),
        ),
        (
            "EnrollmentList",
            object(
                "Every enrollment of a kind, by name.",
                &[("items", array_of("Enrollment"))],
                &["items"],
            ),
        ),
        (
            "Twin",
            free_object(
                "The service view of a twin (Azure IoT Hub shape): deviceId, etag, version, \
                 tags, properties.desired and properties.reported with $version and $metadata.",
            ),
        ),
        (
            "TwinPatch",
            object(
                "A JSON merge patch (RFC 7396) of tags and desired properties; reported \
                 properties are the device's to write.",
                &[
                    ("tags", free_object("Tags to merge.")),
                    (
                        "properties",
                        object(
                            "Property sections.",
                            &[("desired", free_object("Desired properties to merge."))],
                            &[],
                        ),
                    ),
                ],
                &[],
            ),
        ),
        (
            "QueryRequest",
            object(
                "A twin query.",
                &[
                    (
                        "query",
                        string(
                            "e.g. SELECT * FROM devices WHERE properties.reported.mode = 'alarm'",
                        ),
                    ),
                    ("continuation", string("From the previous page.")),
                    ("limit", limit()),
                ],
                &["query"],
            ),
        ),
        (
            "QueryPage",
            object(
                "One page of query results.",
                &[
                    (
                        "items",
                        json!({ "type": "array", "items": any("A twin or a projection of one.") }),
                    ),
                    (
                        "continuation",
                        string("Pass back to get the next page; absent on the last page."),
                    ),
                ],
                &["items"],
            ),
        ),
        (
            "MethodInvocation",
            object(
                "A direct method call.",
                &[
                    ("payload", any("JSON sent to the device (default null).")),
                    (
                        "responseTimeoutInSeconds",
                        integer(1, Some(300), Some(30), "How long the device has to answer."),
                    ),
                    (
                        "connectTimeoutInSeconds",
                        integer(
                            0,
                            Some(300),
                            Some(0),
                            "How long to wait for an offline device to connect.",
                        ),
                    ),
                ],
                &[],
            ),
        ),
        (
            "MethodResult",
            object(
                "The device's answer.",
                &[
                    (
                        "status",
                        json!({ "type": "integer", "description": "Status the device chose." }),
                    ),
                    ("payload", any("The device's JSON payload.")),
                ],
                &["status", "payload"],
            ),
        ),
        (
            "C2dSend",
            object(
                "A cloud-to-device message: exactly one of payload and payloadBase64.",
                &[
                    ("payload", string("Text payload (sent as UTF-8).")),
                    (
                        "payloadBase64",
                        json!({ "type": "string", "format": "byte", "description": "Binary payload, base64." }),
                    ),
                    (
                        "properties",
                        json!({
                            "type": "object",
                            "additionalProperties": { "type": "string" },
                            "description": "Application properties.",
                        }),
                    ),
                    (
                        "ttlSeconds",
                        integer(1, None, None, "Time to live (default: the hub's)."),
                    ),
                ],
                &[],
            ),
        ),
        (
            "C2dAccepted",
            object(
                "The queued message.",
                &[("messageId", string("Id of the queued message."))],
                &["messageId"],
            ),
        ),
        (
            "C2dMessage",
            object(
                "A queued message; `payload` when it is UTF-8 text, else `payloadBase64`.",
                &[
                    ("messageId", string("Message id.")),
                    ("deviceId", string("Target device.")),
                    ("payload", string("Text payload.")),
                    (
                        "payloadBase64",
                        json!({ "type": "string", "format": "byte", "description": "Binary payload." }),
                    ),
                    (
                        "properties",
                        json!({ "type": "object", "additionalProperties": { "type": "string" } }),
                    ),
                    ("enqueuedTime", time("When it was queued.", false)),
                    (
                        "expiryTime",
                        time("When it stops being deliverable.", false),
                    ),
                ],
                &[
                    "messageId",
                    "deviceId",
                    "properties",
                    "enqueuedTime",
                    "expiryTime",
                ],
            ),
        ),
        (
            "C2dQueue",
            object(
                "Queued messages, oldest first.",
                &[("items", array_of("C2dMessage"))],
                &["items"],
            ),
        ),
        (
            "Purged",
            object(
                "How many queued messages were dropped.",
                &[("purged", integer(0, None, None, "Messages dropped."))],
                &["purged"],
            ),
        ),
        (
            "Feedback",
            object(
                "What finally happened to one message.",
                &[
                    ("seq", integer(0, None, None, "Increasing sequence number.")),
                    ("messageId", string("The message.")),
                    ("deviceId", string("Its device.")),
                    (
                        "outcome",
                        one_of(&["delivered", "expired", "purged"], "What happened."),
                    ),
                    ("time", time("When.", false)),
                ],
                &["seq", "messageId", "deviceId", "outcome", "time"],
            ),
        ),
        ("FeedbackPage", page("Feedback")),
        (
            "Event",
            object(
                "Something that happened to a device.",
                &[
                    (
                        "kind",
                        one_of(
                            &[
                                "deviceConnected",
                                "deviceDisconnected",
                                "twinChanged",
                                "deviceCreated",
                                "deviceDeleted",
                            ],
                            "What happened (also the SSE `event:` name).",
                        ),
                    ),
                    ("deviceId", string("The device.")),
                    ("time", time("When.", false)),
                    (
                        "detail",
                        any("Kind-specific detail (reason, versions, patch)."),
                    ),
                ],
                &["kind", "deviceId", "time", "detail"],
            ),
        ),
        (
            "NewToken",
            object(
                "A token to create.",
                &[(
                    "role",
                    one_of(&["admin", "operator", "read-only"], "What it may do."),
                )],
                &["role"],
            ),
        ),
        (
            "TokenCreated",
            object(
                "The new token; it is not shown again.",
                &[
                    (
                        "role",
                        one_of(&["admin", "operator", "read-only"], "Its role."),
                    ),
                    ("token", string("Send as Authorization: Bearer TOKEN.")),
                ],
                &["role", "token"],
            ),
        ),
        (
            "Problem",
            json!({
                "type": "object",
                "description": "RFC 9457 problem details (application/problem+json).",
                "properties": {
                    "type": string("urn:bosun:problem:KIND: what kind of problem, stable."),
                    "title": string("Short summary of the kind."),
                    "status": integer(400, Some(599), None, "The HTTP status."),
                    "detail": string("What went wrong this time."),
                    "currentEtag": string("On 412: the twin's current ETag."),
                    "requiredRole": string("On 403: the role the operation needs."),
                    "role": string("On 403: the token's role."),
                },
                "required": ["type", "title", "status", "detail"],
            }),
        ),
        ("OpenApiDocument", free_object("An OpenAPI 3.0 document.")),
    ]
    .into_iter()
    .chain(data_components())
    .chain(crate::firmware::components())
    .collect()
}

/// The data plane's bodies (`crate::data`).
fn data_components() -> Vec<(&'static str, Value)> {
    let items = |item: &str, description: &str| {
        object(
            description,
            &[(
                "items",
                json!({ "type": "array", "items": free_object(item) }),
            )],
            &["items"],
        )
    };
    vec![
        (
            "SeriesAnswer",
            object(
                "Aggregates of one field, per device; each point is [time_ms, value] (bucket start).",
                &[
                    ("field", string("The field.")),
                    ("agg", string("The aggregate.")),
                    ("series", json!({ "type": "array", "items": free_object("{deviceId, points: [[time_ms, value]…]}") })),
                ],
                &["field", "agg", "series"],
            ),
        ),
        ("SeriesKeys", items("{deviceId, field}", "Series the store holds.")),
        ("AnomalyEvents", items("{id, deviceId, timeMs, transition, score, explanation}", "Anomaly events, newest first.")),
        ("Captures", items("{id, deviceId, deviceCaptureId, rateHz, samples, chunks, missing, anomalyId, storedMs}", "Stored captures, newest first.")),
        ("Capture", free_object("With format=json: {id, deviceId, rateHz, samples, chunks, missing: [[start, end]…], anomalyId, storedMs}; otherwise the samples.")),
        ("Rules", items("A rule {name, sql, enabled, actions: [{type, …}]} with counters {matched, actionsOk, actionsFailed}", "Rules in force.")),
        (
            "RulesBody",
            object(
                "The operator's rules.",
                &[("rules", json!({ "type": "array", "items": free_object("{name, sql, enabled, actions: [{type: store|republish|webhook|c2d|method|patch_desired|alert, …}]}") }))],
                &["rules"],
            ),
        ),
        (
            "SchemaBody",
            object(
                "Protobuf schemas to register: exactly one of descriptorSet and proto. A .proto source that does not compile is refused with 400 and the problem's file, line and column.",
                &[
                    ("descriptorSet", string("A binary FileDescriptorSet (protoc --descriptor_set_out), base64.")),
                    (
                        "proto",
                        json!({
                            "type": "object",
                            "description": ".proto source files by the name imports use, e.g. {\"acme/reading.proto\": \"<source>\"}; proto2 and proto3, imports only among these files.",
                            "additionalProperties": { "type": "string" },
                        }),
                    ),
                ],
                &[],
            ),
        ),
        (
            "SchemaRegistered",
            object("What the schema defined.", &[("messages", json!({ "type": "array", "items": string("Fully qualified message type.") }))], &["messages"]),
        ),
        (
            "DeviceSchema",
            object(
                "The content type assumed for a device's messages that name none.",
                &[
                    ("deviceId", string("The device (in answers).")),
                    ("contentType", string("e.g. application/x-protobuf; messageType=acme.Reading, application/cbor, application/json.")),
                ],
                &["contentType"],
            ),
        ),
        ("DeadLetters", items("{deviceId, receivedMs, reason, detail, contentType, payloadLen, payload (base64)}", "Dead letters, newest first.")),
    ]
}

/// An X.509 enrollment's attestation: which CA, which certificate.
fn x509_attestation() -> Value {
    object(
        "X.509 attestation (instead of a key): devices present a client certificate whose \
         subject CN is the registration id, verified at the TLS handshake.",
        &[
            (
                "ca",
                nullable_string(
                    "Registered device CA (`bosun ca list`, `bosun` for the built-in one) \
                     that must have signed the certificate. Required for a group.",
                ),
            ),
            (
                "serial",
                nullable_string(
                    "Individual only: the one certificate serial (hex, any case, colons \
                     allowed) accepted.",
                ),
            ),
        ],
        &[],
    )
}

/// The initial twin an enrollment gives registered devices.
fn initial_twin() -> Value {
    object(
        "Initial twin of registered devices (an existing device's twin is never reset).",
        &[
            ("tags", free_object("Initial tags.")),
            ("desired", free_object("Initial desired properties.")),
        ],
        &[],
    )
}
