//! What the hub's callers (REST API, CLI through it, rules) hand in and get back.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use store::{C2dMessage, C2dOutcome, ConnectionState, DeviceStatus, Feedback};

/// Why a hub operation failed; the API maps each to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// No such device (404).
    #[error("device {0} not found")]
    NotFound(String),
    /// The device id is taken (409).
    #[error("device {0} already exists")]
    AlreadyExists(String),
    /// `If-Match` named a version that is no longer current (412).
    #[error("precondition failed: the twin's current ETag is {current}")]
    PreconditionFailed {
        /// The ETag to retry with.
        current: String,
    },
    /// The request is invalid: bad JSON shape, a limit exceeded, a bad query (400).
    #[error("{0}")]
    Invalid(String),
    /// The device did not connect within the connect timeout (404, as Azure does).
    #[error("device {0} is not connected")]
    NotConnected(String),
    /// The device did not answer within the response timeout (504).
    #[error("device {0} did not answer in time")]
    Timeout(String),
    /// The device's C2D queue is full (403 in Azure; 429 here: retry later).
    #[error("the C2D queue of {0} is full")]
    QueueFull(String),
    /// Storage failed or the hub is stopping (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A device to create.
#[derive(Clone, Default)]
pub struct NewDevice {
    /// Device id: 1–128 characters of `[A-Za-z0-9-.%_*?!(),:=@$']` (Azure's rule).
    pub id: String,
    /// `none`, `sas` or `x509`; `none` when unset.
    pub auth_kind: Option<String>,
    /// Device group.
    pub group: Option<String>,
    /// Initial twin tags (an object).
    pub tags: Option<Value>,
    /// Initial desired properties (an object).
    pub desired: Option<Value>,
    /// Created disabled when `Some(Disabled)`.
    pub status: Option<DeviceStatus>,
    /// The primary symmetric key (base64 of 16–64 bytes) for auth kind `sas`; one is
    /// generated when unset. The secondary key is always generated.
    pub symmetric_key: Option<String>,
}

impl std::fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand so a given symmetric key never reaches a log line.
        f.debug_struct("NewDevice")
            .field("id", &self.id)
            .field("auth_kind", &self.auth_kind)
            .field("group", &self.group)
            .field("tags", &self.tags)
            .field("desired", &self.desired)
            .field("status", &self.status)
            .field(
                "symmetric_key",
                &self.symmetric_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Which of a device's two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyName {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

/// A device's symmetric keys as the API shows them (to admins only), with a connection
/// string ready for the Azure device SDKs.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceKeys {
    /// The device.
    pub device_id: String,
    /// Primary key, base64.
    pub primary_key: String,
    /// Secondary key, base64.
    pub secondary_key: String,
    /// `HostName={host};DeviceId={id};SharedAccessKey={primary}`.
    pub connection_string: String,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs and panic messages.
        f.debug_struct("DeviceKeys")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// Changes to a device; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DeviceUpdate {
    /// New status.
    pub status: Option<DeviceStatus>,
    /// New group (`Some(None)` removes it).
    pub group: Option<Option<String>>,
}

/// Filters for listing devices.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    /// Only this status.
    pub status: Option<DeviceStatus>,
    /// Only this connection state.
    pub connection: Option<ConnectionState>,
    /// Only this group.
    pub group: Option<String>,
    /// Only devices whose twin tag `.0` equals `.1` (string comparison).
    pub tag: Option<(String, String)>,
}

/// A device as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// Device id.
    pub device_id: String,
    /// `enabled` or `disabled`.
    pub status: &'static str,
    /// `none`, `sas`, `x509`.
    pub auth_kind: String,
    /// Device group.
    pub group: Option<String>,
    /// `connected` or `disconnected`.
    pub connection_state: &'static str,
    /// Why the connection state last changed.
    pub connection_reason: Option<String>,
    /// When the connection state last changed (RFC 3339).
    pub connection_state_updated_time: Option<String>,
    /// Last activity (RFC 3339).
    pub last_activity_time: Option<String>,
    /// Creation time (RFC 3339).
    pub created_time: String,
    /// `properties.reported.firmware.version` (or `firmwareVersion`) from the twin.
    pub firmware_version: Option<String>,
    /// Twin tags.
    pub tags: Value,
}

/// One page of results and where to continue.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// Items of this page.
    pub items: Vec<T>,
    /// Opaque token for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<String>,
}

/// A twin as the service sees it, with the ETag for `If-Match`.
#[derive(Debug, Clone)]
pub struct TwinView {
    /// The Azure-shaped service twin document.
    pub json: Value,
    /// Quoted ETag (`"7"`).
    pub etag: String,
}

/// A direct method call.
#[derive(Debug, Clone)]
pub struct MethodCall {
    /// Method name.
    pub name: String,
    /// JSON payload sent to the device.
    pub payload: Value,
    /// How long to wait for the device's answer once it has the request.
    pub response_timeout: Duration,
    /// How long to wait for an offline device to connect and subscribe.
    pub connect_timeout: Duration,
}

/// A device's answer to a direct method.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResponse {
    /// Status the device chose.
    pub status: i32,
    /// Its payload (JSON; a non-JSON answer becomes a string).
    pub payload: Value,
}

/// A cloud-to-device message to send.
#[derive(Debug, Clone, Default)]
pub struct C2dSend {
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Application properties.
    pub properties: Vec<(String, String)>,
    /// Time to live; the hub's default when unset.
    pub ttl: Option<Duration>,
}

/// Something that happened to a device, for `/api/events` and `$bosun/events/…`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `deviceConnected`, `deviceDisconnected`, `twinChanged`, `deviceCreated`, `deviceDeleted`.
    pub kind: &'static str,
    /// The device.
    pub device_id: String,
    /// When (RFC 3339).
    pub time: String,
    /// Kind-specific detail (reason, versions, patch).
    pub detail: Value,
}
