//! Records persisted by the control plane. Times are milliseconds since the Unix epoch.

/// Whether a device may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// The device may connect.
    Enabled,
    /// The device is refused at connect.
    Disabled,
}

/// Last known connection state of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// A connection is open.
    Connected,
    /// No connection is open (or the device never connected).
    Disconnected,
}

/// One device in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device id; also its MQTT client id.
    pub id: String,
    /// Whether it may connect.
    pub status: DeviceStatus,
    /// How it authenticates: `none` (dev), `sas`, `x509`.
    pub auth_kind: String,
    /// Device group name, if any.
    pub group: Option<String>,
    /// When it was created.
    pub created_ms: i64,
    /// Last time the device did something (connected, published, answered).
    pub last_activity_ms: Option<i64>,
    /// Connection state.
    pub connection: ConnectionState,
    /// Why the connection state last changed (`connected`, `clean disconnect`, `keep-alive timeout`, ...).
    pub connection_reason: Option<String>,
    /// When the connection state last changed.
    pub connection_changed_ms: Option<i64>,
}

/// A filter for listing devices; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Only devices with this status.
    pub status: Option<DeviceStatus>,
    /// Only devices in this connection state.
    pub connection: Option<ConnectionState>,
    /// Only devices in this group.
    pub group: Option<String>,
}

/// One page of a listing: items in id order and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` when this was the last.
    pub continuation: Option<String>,
}

/// A twin document as stored: the hub's JSON text and a version bumped on every write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTwin {
    /// Device id.
    pub device_id: String,
    /// Whole document as JSON text.
    pub json: String,
    /// Incremented by every successful save; the basis of ETags.
    pub version: u64,
}

/// A queued cloud-to-device message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2dMessage {
    /// Unique message id.
    pub id: String,
    /// Target device.
    pub device_id: String,
    /// Application payload.
    pub payload: Vec<u8>,
    /// Application properties (key, value), in order.
    pub properties: Vec<(String, String)>,
    /// When it was enqueued.
    pub enqueued_ms: i64,
    /// When it stops being deliverable.
    pub expires_ms: i64,
}

/// What finally happened to a C2D message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum C2dOutcome {
    /// The device acknowledged it (PUBACK).
    Delivered,
    /// Its time to live passed before delivery.
    Expired,
    /// An operator purged the queue.
    Purged,
}

/// A feedback record: one C2D message's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Increasing sequence number, for paging.
    pub seq: i64,
    /// The message.
    pub message_id: String,
    /// Its device.
    pub device_id: String,
    /// What happened.
    pub outcome: C2dOutcome,
    /// When.
    pub at_ms: i64,
}

/// A device group: a name for the devices whose twins match a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// The `WHERE` condition of a twin query (`tags.site = 'plant-7'`).
    pub condition: String,
    /// When it was created (or last replaced).
    pub created_ms: i64,
}

/// A device's two symmetric keys for SAS tokens, as base64 text (what operators copy
/// into connection strings). Two, as in IoT Hub, so one can be rotated while devices
/// still use the other.
#[derive(Clone, PartialEq, Eq)]
pub struct SymmetricKeys {
    /// The primary key.
    pub primary: String,
    /// The secondary key.
    pub secondary: String,
}

impl std::fmt::Debug for SymmetricKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs and panic messages.
        f.write_str("SymmetricKeys { <redacted> }")
    }
}

/// Which kind of enrollment a record is: one device, or any device whose key derives
/// from the group's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrollmentKind {
    /// One registration id with its own symmetric key.
    Individual,
    /// A named group: a device's key is derived from the group key and its
    /// registration id.
    Group,
}

impl EnrollmentKind {
    /// The lower-case name stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentKind::Individual => "individual",
            EnrollmentKind::Group => "group",
        }
    }
}

/// How the devices of an X.509 enrollment prove who they are: a client certificate
/// (verified by the broker at the TLS handshake) whose subject CN is the registration
/// id, signed by a registered device CA.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct X509Attestation {
    /// The registered device CA (its `bosun ca` name) that must have signed the
    /// certificate. Required for a group: it is what the group matches on.
    pub ca: Option<String>,
    /// The one certificate (serial, lower-case hex) an individual enrollment accepts.
    pub serial: Option<String>,
}

/// A provisioning enrollment: who may register, with which key or certificate, and
/// what the device gets when it does.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// Individual or group.
    pub kind: EnrollmentKind,
    /// The registration id (individual) or the group name (group).
    pub name: String,
    /// The symmetric key, base64: the device key (individual) or the group key. Empty
    /// for an X.509 enrollment.
    pub key: String,
    /// Set for an X.509 enrollment (then `key` is unused).
    pub x509: Option<X509Attestation>,
    /// The initial twin, as JSON `{"tags": {...}, "desired": {...}}`.
    pub initial_twin: String,
    /// The device group assigned devices join.
    pub device_group: Option<String>,
    /// Registrations are refused while set.
    pub disabled: bool,
    /// When it was created (or last replaced).
    pub created_ms: i64,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: it never reaches a log line.
        f.debug_struct("Enrollment")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("x509", &self.x509)
            .field("initial_twin", &self.initial_twin)
            .field("device_group", &self.device_group)
            .field("disabled", &self.disabled)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}
