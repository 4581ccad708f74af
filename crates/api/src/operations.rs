//! The table of every API operation: the single source for routing, access checks and
//! the OpenAPI document.
//!
//! `router()` registers exactly these rows (each behind a guard built from its row),
//! `openapi.rs` describes exactly these rows, and the tests check both directions. To add
//! an operation, add a row here and a handler in its resource's file.

use axum::routing::{on, MethodFilter, MethodRouter};

use crate::auth::{self, Access, Role};
use crate::{
    devices, enrollments, events, groups, keys, messages, methods, openapi, twins, ApiState,
    ControlPlane,
};

/// HTTP methods the API uses; an enum (not `Method`) so that turning it into a
/// [`MethodFilter`] cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verb {
    /// GET
    Get,
    /// POST
    Post,
    /// PATCH
    Patch,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

impl Verb {
    /// For routing.
    pub(crate) fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// As on the wire (`GET`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }
}

/// Where a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum In {
    /// A `{segment}` of the path.
    Path,
    /// The query string.
    Query,
    /// A request header.
    Header,
}

/// A parameter's type, for the document.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// Free text.
    Text,
    /// A whole number in a range.
    Integer {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// One of these words.
    OneOf(&'static [&'static str]),
}

/// One path, query or header parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    /// Its name.
    pub(crate) name: &'static str,
    /// Where it goes.
    pub(crate) location: In,
    /// Its type.
    pub(crate) kind: Kind,
    /// What it does.
    pub(crate) description: &'static str,
}

/// What a successful response carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body {
    /// Nothing (`204`).
    Empty,
    /// JSON of the named component schema.
    Json(&'static str),
    /// `text/event-stream`; each event's `data:` is JSON of the named schema.
    EventStream(&'static str),
    /// `application/octet-stream`; the text describes the bytes.
    Binary(&'static str),
}

/// One operation: everything the router, the guard and the document need.
pub(crate) struct Operation<H> {
    /// Method.
    pub(crate) verb: Verb,
    /// Path in axum's syntax, which is also OpenAPI's (`/api/devices/{id}`).
    pub(crate) path: &'static str,
    /// `operationId`.
    pub(crate) id: &'static str,
    /// Resource group in the document.
    pub(crate) tag: &'static str,
    /// One line for the document.
    pub(crate) summary: &'static str,
    /// Who may call it.
    pub(crate) access: Access,
    /// Parameters; query parameters not listed here are rejected.
    pub(crate) params: &'static [Param],
    /// Request body schema, if the operation takes a body.
    pub(crate) request: Option<&'static str>,
    /// Success status.
    pub(crate) status: u16,
    /// Success body.
    pub(crate) response: Body,
    /// Headers of the success response: (name, description).
    pub(crate) response_headers: &'static [(&'static str, &'static str)],
    /// Error statuses besides the ones every operation may answer (400, 401, 403).
    pub(crate) errors: &'static [u16],
    /// The handler, registered for `verb` (so the table's method is the routed one).
    pub(crate) route: fn(MethodFilter) -> MethodRouter<ApiState<H>>,
}

impl Param {
    /// A required path segment.
    pub(crate) const fn path(name: &'static str, description: &'static str) -> Param {
        Param {
            name,
            location: In::Path,
            kind: Kind::Text,
            description,
        }
    }

    /// An optional query parameter.
    pub(crate) const fn query(name: &'static str, kind: Kind, description: &'static str) -> Param {
        Param {
            name,
            location: In::Query,
            kind,
            description,
        }
    }
}

/// Page size used when a listing has no `limit`.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` a listing accepts: bounds the work and memory of one request.
pub(crate) const MAX_LIMIT: usize = 1000;

pub(crate) const DEVICE_ID: Param = Param::path("id", "Device id.");
const METHOD_NAME: Param = Param::path("name", "Direct method name.");
const GROUP_NAME: Param = Param::path("name", "Device group name.");
const ENROLLMENT_GROUP: Param = Param::path("name", "Enrollment group name.");
const REGISTRATION_ID: Param = Param::path(
    "registrationId",
    "Registration id (the device id the device gets).",
);
const LIMIT: Param = Param::query(
    "limit",
    Kind::Integer {
        min: 1,
        max: MAX_LIMIT as i64,
    },
    "Page size (default 100).",
);
const CONTINUATION: Param = Param::query(
    "continuation",
    Kind::Text,
    "Token from the previous page's `continuation`.",
);
pub(crate) const DEVICE_FILTER: Param = Param::query("deviceId", Kind::Text, "Only this device.");
const IF_MATCH: Param = Param {
    name: "If-Match",
    location: In::Header,
    kind: Kind::Text,
    description: "Apply only if the twin's ETag is this one; `*` (or no header) matches any.",
};
const LIST_DEVICES_PARAMS: &[Param] = &[
    Param::query(
        "status",
        Kind::OneOf(&["enabled", "disabled"]),
        "Only this status.",
    ),
    Param::query(
        "connectionState",
        Kind::OneOf(&["connected", "disconnected"]),
        "Only this connection state.",
    ),
    Param::query("group", Kind::Text, "Only this device group."),
    Param::query(
        "tag",
        Kind::Text,
        "`key:value`: only devices whose twin tag `key` is the string `value`.",
    ),
    LIMIT,
    CONTINUATION,
];
const FEEDBACK_PARAMS: &[Param] = &[
    DEVICE_FILTER,
    Param::query(
        "after",
        Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        "Only records with a sequence number above this one.",
    ),
    LIMIT,
    CONTINUATION,
];
const ETAG_HEADER: (&str, &str) = ("ETag", "The twin's version, for `If-Match`.");

/// Every operation of the API.
pub(crate) fn table<H: ControlPlane>() -> Vec<Operation<H>> {
    vec![
        Operation {
            verb: Verb::Get,
            path: "/api/openapi.json",
            id: "getOpenApi",
            tag: "meta",
            summary: "This document.",
            access: Access::Public,
            params: &[],
            request: None,
            status: 200,
            response: Body::Json("OpenApiDocument"),
            response_headers: &[],
            errors: &[],
            route: |m| on(m, openapi::serve::<H>),
        },
        Operation {
            verb: Verb::Post,
            path: "/api/tokens",
            id: "createToken",
            tag: "meta",
            summary: "Create an API token with a role; the token is shown only in this response.",
            access: Access::Role(Role::Admin),
            params: &[],
            request: Some("NewToken"),
            status: 201,
            response: Body::Json("TokenCreated"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, auth::create_token::<H>),
        },
        Operation {
            verb: Verb::Post,
            path: "/api/devices",
            id: "createDevice",
            tag: "devices",
            summary: "Register a device (and its twin).",
            access: Access::Role(Role::Operator),
            params: &[],
            request: Some("NewDevice"),
            status: 201,
            response: Body::Json("DeviceInfo"),
            response_headers: &[("Location", "The new device's URL.")],
            errors: &[409, 503],
            route: |m| on(m, devices::create::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/devices",
            id: "listDevices",
            tag: "devices",
            summary: "List devices, filtered, one page at a time (ordered by id).",
            access: Access::Role(Role::ReadOnly),
            params: LIST_DEVICES_PARAMS,
            request: None,
            status: 200,
            response: Body::Json("DevicePage"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, devices::list::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/devices/{id}",
            id: "getDevice",
            tag: "devices",
            summary: "One device's registry entry and connection state.",
            access: Access::Role(Role::ReadOnly),
            params: &[DEVICE_ID],
            request: None,
            status: 200,
            response: Body::Json("DeviceInfo"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, devices::get::<H>),
        },
        Operation {
            verb: Verb::Patch,
            path: "/api/devices/{id}",
            id: "updateDevice",
            tag: "devices",
            summary: "Enable or disable a device, or change its group (`null` removes it).",
            access: Access::Role(Role::Operator),
            params: &[DEVICE_ID],
            request: Some("DeviceUpdate"),
            status: 200,
            response: Body::Json("DeviceInfo"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, devices::update::<H>),
        },
        Operation {
            verb: Verb::Delete,
            path: "/api/devices/{id}",
            id: "deleteDevice",
            tag: "devices",
            summary: "Delete a device with its twin and queued messages.",
            access: Access::Role(Role::Admin),
            params: &[DEVICE_ID],
            request: None,
            status: 204,
            response: Body::Empty,
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, devices::delete::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/devices/{id}/keys",
            id: "getDeviceKeys",
            tag: "devices",
            summary: "A SAS device's symmetric keys and a connection string for the device \
                      SDKs (400 for devices of another authKind).",
            access: Access::Role(Role::Admin),
            params: &[DEVICE_ID],
            request: None,
            status: 200,
            response: Body::Json("DeviceKeys"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, keys::get::<H>),
        },
        Operation {
            verb: Verb::Post,
            path: "/api/devices/{id}/keys/regenerate",
            id: "regenerateDeviceKey",
            tag: "devices",
            summary: "Replace a SAS device's primary or secondary key with a new random one \
                      (open connections stay up until their tokens expire).",
            access: Access::Role(Role::Admin),
            params: &[DEVICE_ID],
            request: Some("KeyRegeneration"),
            status: 200,
            response: Body::Json("DeviceKeys"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, keys::regenerate::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/devices/{id}/twin",
            id: "getTwin",
            tag: "twins",
            summary: "A device's twin: tags, desired and reported properties, versions.",
            access: Access::Role(Role::ReadOnly),
            params: &[DEVICE_ID],
            request: None,
            status: 200,
            response: Body::Json("Twin"),
            response_headers: &[ETAG_HEADER],
            errors: &[404, 503],
            route: |m| on(m, twins::get::<H>),
        },
        Operation {
            verb: Verb::Patch,
            path: "/api/devices/{id}/twin",
            id: "patchTwin",
            tag: "twins",
            summary: "Merge-patch a twin's tags and desired properties (`null` removes a key).",
            access: Access::Role(Role::Operator),
            params: &[DEVICE_ID, IF_MATCH],
            request: Some("TwinPatch"),
            status: 200,
            response: Body::Json("Twin"),
            response_headers: &[ETAG_HEADER],
            errors: &[404, 412, 503],
            route: |m| on(m, twins::patch::<H>),
        },
        Operation {
            verb: Verb::Post,
            path: "/api/query",
            id: "queryTwins",
            tag: "twins",
            summary: "Run a twin query (`SELECT * FROM devices WHERE ...`), one page at a time.",
            access: Access::Role(Role::ReadOnly),
            params: &[],
            request: Some("QueryRequest"),
            status: 200,
            response: Body::Json("QueryPage"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, twins::query::<H>),
        },
        Operation {
            verb: Verb::Put,
            path: "/api/groups/{name}",
            id: "putGroup",
            tag: "groups",
            summary: "Define a device group by a twin-query condition, or replace its \
                      condition.",
            access: Access::Role(Role::Operator),
            params: &[GROUP_NAME],
            request: Some("GroupCondition"),
            status: 200,
            response: Body::Json("GroupInfo"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, groups::put::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/groups",
            id: "listGroups",
            tag: "groups",
            summary: "Every device group, by name.",
            access: Access::Role(Role::ReadOnly),
            params: &[],
            request: None,
            status: 200,
            response: Body::Json("GroupList"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, groups::list::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/groups/{name}",
            id: "getGroup",
            tag: "groups",
            summary: "One device group's definition.",
            access: Access::Role(Role::ReadOnly),
            params: &[GROUP_NAME],
            request: None,
            status: 200,
            response: Body::Json("GroupInfo"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, groups::get::<H>),
        },
        Operation {
            verb: Verb::Delete,
            path: "/api/groups/{name}",
            id: "deleteGroup",
            tag: "groups",
            summary: "Delete a device group (its devices are untouched).",
            access: Access::Role(Role::Operator),
            params: &[GROUP_NAME],
            request: None,
            status: 204,
            response: Body::Empty,
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, groups::delete::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/groups/{name}/devices",
            id: "listGroupDevices",
            tag: "groups",
            summary: "The devices that match a group's condition now, one page at a time \
                      (ordered by id).",
            access: Access::Role(Role::ReadOnly),
            params: &[GROUP_NAME, LIMIT, CONTINUATION],
            request: None,
            status: 200,
            response: Body::Json("GroupPage"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, groups::devices::<H>),
        },
        Operation {
            verb: Verb::Post,
            path: "/api/devices/{id}/methods/{name}",
            id: "invokeMethod",
            tag: "methods",
            summary: "Call a direct method and wait for the device's answer \
                      (200 whatever status the device chose; it is in the body).",
            access: Access::Role(Role::Operator),
            params: &[DEVICE_ID, METHOD_NAME],
            request: Some("MethodInvocation"),
            status: 200,
            response: Body::Json("MethodResult"),
            response_headers: &[],
            errors: &[404, 503, 504],
            route: |m| on(m, methods::invoke::<H>),
        },
        Operation {
            verb: Verb::Post,
            path: "/api/devices/{id}/messages",
            id: "sendMessage",
            tag: "messages",
            summary: "Queue a cloud-to-device message.",
            access: Access::Role(Role::Operator),
            params: &[DEVICE_ID],
            request: Some("C2dSend"),
            status: 202,
            response: Body::Json("C2dAccepted"),
            response_headers: &[],
            errors: &[404, 429, 503],
            route: |m| on(m, messages::send::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/devices/{id}/messages",
            id: "listQueuedMessages",
            tag: "messages",
            summary: "Messages still queued for a device, oldest first.",
            access: Access::Role(Role::ReadOnly),
            params: &[DEVICE_ID],
            request: None,
            status: 200,
            response: Body::Json("C2dQueue"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, messages::queue::<H>),
        },
        Operation {
            verb: Verb::Delete,
            path: "/api/devices/{id}/messages",
            id: "purgeMessages",
            tag: "messages",
            summary: "Drop every message queued for a device (each gets `purged` feedback).",
            access: Access::Role(Role::Operator),
            params: &[DEVICE_ID],
            request: None,
            status: 200,
            response: Body::Json("Purged"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, messages::purge::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/feedback",
            id: "listFeedback",
            tag: "messages",
            summary: "What became of sent messages (delivered, expired, purged), oldest first.",
            access: Access::Role(Role::ReadOnly),
            params: FEEDBACK_PARAMS,
            request: None,
            status: 200,
            response: Body::Json("FeedbackPage"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, messages::feedback::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/events",
            id: "streamEvents",
            tag: "events",
            summary: "Server-sent events as devices connect, disconnect, change and come and \
                      go (`event:` is the kind, `data:` the JSON event; `lagged` when some \
                      were skipped).",
            access: Access::Role(Role::ReadOnly),
            params: &[DEVICE_FILTER],
            request: None,
            status: 200,
            response: Body::EventStream("Event"),
            response_headers: &[],
            errors: &[],
            route: |m| on(m, events::stream::<H>),
        },
        Operation {
            verb: Verb::Put,
            path: "/api/enrollments/groups/{name}",
            id: "putGroupEnrollment",
            tag: "enrollments",
            summary: "Create or replace a group enrollment (a key is generated when none is given and none exists).",
            access: Access::Role(Role::Admin),
            params: &[ENROLLMENT_GROUP],
            request: Some("EnrollmentSpec"),
            status: 200,
            response: Body::Json("Enrollment"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, enrollments::put_group::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/enrollments/groups",
            id: "listGroupEnrollments",
            tag: "enrollments",
            summary: "Every group enrollment, by name (keys for administrators only).",
            access: Access::Role(Role::ReadOnly),
            params: &[],
            request: None,
            status: 200,
            response: Body::Json("EnrollmentList"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, enrollments::list_groups::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/enrollments/groups/{name}",
            id: "getGroupEnrollment",
            tag: "enrollments",
            summary: "One group enrollment (its key for administrators only).",
            access: Access::Role(Role::ReadOnly),
            params: &[ENROLLMENT_GROUP],
            request: None,
            status: 200,
            response: Body::Json("Enrollment"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, enrollments::get_group::<H>),
        },
        Operation {
            verb: Verb::Delete,
            path: "/api/enrollments/groups/{name}",
            id: "deleteGroupEnrollment",
            tag: "enrollments",
            summary: "Delete a group enrollment (devices it registered stay).",
            access: Access::Role(Role::Admin),
            params: &[ENROLLMENT_GROUP],
            request: None,
            status: 204,
            response: Body::Empty,
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, enrollments::delete_group::<H>),
        },
        Operation {
            verb: Verb::Put,
            path: "/api/enrollments/individual/{registrationId}",
            id: "putIndividualEnrollment",
            tag: "enrollments",
            summary: "Create or replace an individual enrollment (a key is generated when none is given and none exists).",
            access: Access::Role(Role::Admin),
            params: &[REGISTRATION_ID],
            request: Some("EnrollmentSpec"),
            status: 200,
            response: Body::Json("Enrollment"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, enrollments::put_individual::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/enrollments/individual",
            id: "listIndividualEnrollments",
            tag: "enrollments",
            summary: "Every individual enrollment, by name (keys for administrators only).",
            access: Access::Role(Role::ReadOnly),
            params: &[],
            request: None,
            status: 200,
            response: Body::Json("EnrollmentList"),
            response_headers: &[],
            errors: &[503],
            route: |m| on(m, enrollments::list_individual::<H>),
        },
        Operation {
            verb: Verb::Get,
            path: "/api/enrollments/individual/{registrationId}",
            id: "getIndividualEnrollment",
            tag: "enrollments",
            summary: "One individual enrollment (its key for administrators only).",
            access: Access::Role(Role::ReadOnly),
            params: &[REGISTRATION_ID],
            request: None,
            status: 200,
            response: Body::Json("Enrollment"),
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, enrollments::get_individual::<H>),
        },
        Operation {
            verb: Verb::Delete,
            path: "/api/enrollments/individual/{registrationId}",
            id: "deleteIndividualEnrollment",
            tag: "enrollments",
            summary: "Delete an individual enrollment (devices it registered stay).",
            access: Access::Role(Role::Admin),
            params: &[REGISTRATION_ID],
            request: None,
            status: 204,
            response: Body::Empty,
            response_headers: &[],
            errors: &[404, 503],
            route: |m| on(m, enrollments::delete_individual::<H>),
        },
    ]
    .into_iter()
    .chain(crate::data::table())
    .chain(crate::firmware::table())
    .collect()
}
