//! The narrow storage interface the control plane is written against.

use crate::model::*;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// A record with this id exists already.
    #[error("already exists")]
    AlreadyExists,
    /// The expected version did not match (optimistic concurrency).
    #[error("version conflict: expected {expected}, found {found}")]
    Conflict {
        /// Version the caller based its write on.
        expected: u64,
        /// Version stored.
        found: u64,
    },
    /// The device's C2D queue is at its maximum depth.
    #[error("queue full ({depth} messages)")]
    QueueFull {
        /// Messages queued.
        depth: usize,
    },
    /// The database failed or holds something this version cannot read.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// Devices and their connection state.
pub trait Registry {
    /// Adds a device; `AlreadyExists` if the id is taken.
    fn create_device(&self, device: &Device) -> Result<(), StoreError>;
    /// One device.
    fn device(&self, id: &str) -> Result<Device, StoreError>;
    /// Replaces status, auth kind and group of an existing device.
    fn update_device(&self, device: &Device) -> Result<(), StoreError>;
    /// Removes a device with its twin, C2D queue and feedback.
    fn delete_device(&self, id: &str) -> Result<(), StoreError>;
    /// Devices matching `filter` with ids after `after`, at most `limit`, in id order.
    fn list_devices(
        &self,
        filter: &DeviceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Device>, StoreError>;
    /// Records a connection state change (and activity at the same time).
    fn set_connection(
        &self,
        id: &str,
        state: ConnectionState,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), StoreError>;
    /// Records activity.
    fn touch(&self, id: &str, at_ms: i64) -> Result<(), StoreError>;
}

/// Twin documents with optimistic concurrency.
pub trait TwinStore {
    /// The device's twin; `NotFound` if the device has none.
    fn twin(&self, device_id: &str) -> Result<StoredTwin, StoreError>;
    /// Writes the twin if its stored version is `expected` (0: none stored yet) and
    /// returns the new version; `Conflict` otherwise.
    fn save_twin(&self, device_id: &str, json: &str, expected: u64) -> Result<u64, StoreError>;
    /// Twins with device ids after `after`, at most `limit`, in id order (for queries).
    fn scan_twins(&self, after: Option<&str>, limit: usize) -> Result<Vec<StoredTwin>, StoreError>;
    /// The desired-properties document last delivered to the device, with its version,
    /// so a reconnecting device can be sent what it missed as one patch.
    fn delivered_desired(&self, device_id: &str) -> Result<Option<(String, u64)>, StoreError>;
    /// Records what was last delivered.
    fn set_delivered_desired(
        &self,
        device_id: &str,
        json: &str,
        version: u64,
    ) -> Result<(), StoreError>;
}

/// The durable per-device cloud-to-device queue and its feedback records.
pub trait C2dStore {
    /// Appends a message unless the device already has `max_depth` queued.
    fn enqueue(&self, message: &C2dMessage, max_depth: usize) -> Result<(), StoreError>;
    /// Messages queued for a device, oldest first, at most `limit`, expired ones included.
    fn queued(&self, device_id: &str, limit: usize) -> Result<Vec<C2dMessage>, StoreError>;
    /// Removes a queued message and records its outcome; `NotFound` if it is not queued
    /// (already completed), so completing twice records one outcome.
    fn complete(&self, message_id: &str, outcome: C2dOutcome, at_ms: i64)
        -> Result<(), StoreError>;
    /// Completes every message whose expiry is at or before `now_ms` as expired;
    /// returns them.
    fn expire(&self, now_ms: i64) -> Result<Vec<C2dMessage>, StoreError>;
    /// Completes every message queued for a device as purged; returns how many.
    fn purge(&self, device_id: &str, at_ms: i64) -> Result<usize, StoreError>;
    /// Feedback records with `seq > after`, optionally for one device, at most `limit`.
    fn feedback(
        &self,
        device_id: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Feedback>, StoreError>;
}

/// Named device groups, each defined by a query condition (the `WHERE` part of a twin
/// query), so membership follows the twins instead of being kept by hand.
pub trait GroupStore {
    /// Creates or replaces a group.
    fn put_group(&self, group: &Group) -> Result<(), StoreError>;
    /// One group; `NotFound` if there is none by that name.
    fn group(&self, name: &str) -> Result<Group, StoreError>;
    /// Every group, by name.
    fn groups(&self) -> Result<Vec<Group>, StoreError>;
    /// Removes a group; `NotFound` if there was none.
    fn delete_group(&self, name: &str) -> Result<(), StoreError>;
}

/// Device credentials: the symmetric keys SAS tokens are signed with. Kept apart from
/// [`Registry`] so listing devices never reads a secret.
pub trait CredentialStore {
    /// Creates or replaces a device's keys; `NotFound` if the device does not exist.
    fn set_keys(&self, device_id: &str, keys: &SymmetricKeys) -> Result<(), StoreError>;
    /// A device's keys; `NotFound` if it has none (or does not exist).
    fn keys(&self, device_id: &str) -> Result<SymmetricKeys, StoreError>;
}

/// Provisioning enrollments (individual and group), keyed by kind and name.
pub trait EnrollmentStore {
    /// Creates or replaces an enrollment.
    fn put_enrollment(&self, enrollment: &Enrollment) -> Result<(), StoreError>;
    /// One enrollment; `NotFound` if there is none.
    fn enrollment(&self, kind: EnrollmentKind, name: &str) -> Result<Enrollment, StoreError>;
    /// Every enrollment of a kind (or all), by kind then name.
    fn enrollments(&self, kind: Option<EnrollmentKind>) -> Result<Vec<Enrollment>, StoreError>;
    /// Removes an enrollment; `NotFound` if there was none.
    fn delete_enrollment(&self, kind: EnrollmentKind, name: &str) -> Result<(), StoreError>;
}

/// Everything the control plane persists.
pub trait Store:
    Registry + TwinStore + C2dStore + GroupStore + CredentialStore + EnrollmentStore + Send + Sync
{
}

impl<
        T: Registry
            + TwinStore
            + C2dStore
            + GroupStore
            + CredentialStore
            + EnrollmentStore
            + Send
            + Sync,
    > Store for T
{
}
