//! The control-plane operations the API forwards to, as a trait.
//!
//! Why a trait: the handlers are tested in-process against a small in-memory control
//! plane (`fake.rs`), without a broker or a database. The production implementation is
//! [`hub::service::Hub`] below and only forwards; the signatures mirror the hub's
//! exactly, so a change there shows up here as a compile error, not as drift.

use std::future::Future;

use hub::service::{
    C2dMessage, C2dSend, DeviceInfo, DeviceKeys, DeviceQuery, DeviceUpdate, EnrollmentInfo,
    EnrollmentKind, EnrollmentSpec, Event, Feedback, GroupInfo, Hub, HubError, KeyName, MethodCall,
    MethodResponse, NewDevice, Page, TwinView,
};
use serde_json::Value;
use tokio::sync::broadcast;

/// What the REST API needs from the control plane. See [`hub::service::Hub`] for the
/// meaning of each operation; the futures are `Send` because axum handlers run on any
/// worker thread.
pub trait ControlPlane: Clone + Send + Sync + 'static {
    /// Creates a device (and its twin).
    fn create_device(
        &self,
        new: NewDevice,
    ) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send;
    /// One device.
    fn device(&self, id: &str) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send;
    /// Changes a device's status or group.
    fn update_device(
        &self,
        id: &str,
        update: DeviceUpdate,
    ) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send;
    /// Deletes a device, its twin and its queue.
    fn delete_device(&self, id: &str) -> impl Future<Output = Result<(), HubError>> + Send;
    /// One page of devices matching `query`, after the hub's continuation `after`.
    fn list_devices(
        &self,
        query: DeviceQuery,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<DeviceInfo>, HubError>> + Send;
    /// A device's twin and its ETag.
    fn twin(&self, id: &str) -> impl Future<Output = Result<TwinView, HubError>> + Send;
    /// Applies a merge patch of tags and desired properties.
    fn patch_twin(
        &self,
        id: &str,
        patch: Value,
        if_match: Option<String>,
    ) -> impl Future<Output = Result<TwinView, HubError>> + Send;
    /// Runs a twin query.
    fn query(
        &self,
        sql: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<Value>, HubError>> + Send;
    /// Calls a direct method and waits for the device's answer.
    fn invoke_method(
        &self,
        id: &str,
        call: MethodCall,
    ) -> impl Future<Output = Result<MethodResponse, HubError>> + Send;
    /// Queues a cloud-to-device message; returns its id.
    fn send_c2d(
        &self,
        id: &str,
        message: C2dSend,
    ) -> impl Future<Output = Result<String, HubError>> + Send;
    /// The messages still queued for a device.
    fn c2d_queue(&self, id: &str)
        -> impl Future<Output = Result<Vec<C2dMessage>, HubError>> + Send;
    /// Drops a device's queued messages; returns how many.
    fn purge_c2d(&self, id: &str) -> impl Future<Output = Result<usize, HubError>> + Send;
    /// Feedback records with a sequence number above `after`.
    fn feedback(
        &self,
        device: Option<String>,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Feedback>, HubError>> + Send;
    /// A new subscription to device events.
    fn events(&self) -> broadcast::Receiver<Event>;
    /// Defines or redefines a device group; the condition is checked now.
    fn put_group(
        &self,
        name: &str,
        condition: &str,
    ) -> impl Future<Output = Result<GroupInfo, HubError>> + Send;
    /// One device group.
    fn group(&self, name: &str) -> impl Future<Output = Result<GroupInfo, HubError>> + Send;
    /// Every device group.
    fn groups(&self) -> impl Future<Output = Result<Vec<GroupInfo>, HubError>> + Send;
    /// Removes a device group (its devices are untouched).
    fn delete_group(&self, name: &str) -> impl Future<Output = Result<(), HubError>> + Send;
    /// Creates or replaces a provisioning enrollment.
    fn put_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
        spec: EnrollmentSpec,
    ) -> impl Future<Output = Result<EnrollmentInfo, HubError>> + Send;
    /// One enrollment, key included.
    fn enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> impl Future<Output = Result<EnrollmentInfo, HubError>> + Send;
    /// Every enrollment of a kind, keys included.
    fn enrollments(
        &self,
        kind: EnrollmentKind,
    ) -> impl Future<Output = Result<Vec<EnrollmentInfo>, HubError>> + Send;
    /// Removes an enrollment (devices it registered stay).
    fn delete_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> impl Future<Output = Result<(), HubError>> + Send;
    /// One page of a group's current members, after the hub's continuation `after`.
    fn group_devices(
        &self,
        name: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<Value>, HubError>> + Send;
    /// A device's symmetric keys and connection string.
    fn device_keys(&self, id: &str) -> impl Future<Output = Result<DeviceKeys, HubError>> + Send;
    /// Replaces one of a device's keys.
    fn regenerate_key(
        &self,
        id: &str,
        which: KeyName,
    ) -> impl Future<Output = Result<DeviceKeys, HubError>> + Send;
}

impl ControlPlane for Hub {
    fn create_device(
        &self,
        new: NewDevice,
    ) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send {
        Hub::create_device(self, new)
    }
    fn device(&self, id: &str) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send {
        Hub::device(self, id)
    }
    fn update_device(
        &self,
        id: &str,
        update: DeviceUpdate,
    ) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send {
        Hub::update_device(self, id, update)
    }
    fn delete_device(&self, id: &str) -> impl Future<Output = Result<(), HubError>> + Send {
        Hub::delete_device(self, id)
    }
    fn list_devices(
        &self,
        query: DeviceQuery,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<DeviceInfo>, HubError>> + Send {
        Hub::list_devices(self, query, after, limit)
    }
    fn twin(&self, id: &str) -> impl Future<Output = Result<TwinView, HubError>> + Send {
        Hub::twin(self, id)
    }
    fn patch_twin(
        &self,
        id: &str,
        patch: Value,
        if_match: Option<String>,
    ) -> impl Future<Output = Result<TwinView, HubError>> + Send {
        Hub::patch_twin(self, id, patch, if_match)
    }
    fn query(
        &self,
        sql: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<Value>, HubError>> + Send {
        Hub::query(self, sql, after, limit)
    }
    fn invoke_method(
        &self,
        id: &str,
        call: MethodCall,
    ) -> impl Future<Output = Result<MethodResponse, HubError>> + Send {
        Hub::invoke_method(self, id, call)
    }
    fn send_c2d(
        &self,
        id: &str,
        message: C2dSend,
    ) -> impl Future<Output = Result<String, HubError>> + Send {
        Hub::send_c2d(self, id, message)
    }
    fn c2d_queue(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<C2dMessage>, HubError>> + Send {
        Hub::c2d_queue(self, id)
    }
    fn purge_c2d(&self, id: &str) -> impl Future<Output = Result<usize, HubError>> + Send {
        Hub::purge_c2d(self, id)
    }
    fn feedback(
        &self,
        device: Option<String>,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Feedback>, HubError>> + Send {
        Hub::feedback(self, device, after, limit)
    }
    fn events(&self) -> broadcast::Receiver<Event> {
        Hub::events(self)
    }
    fn put_group(
        &self,
        name: &str,
        condition: &str,
    ) -> impl Future<Output = Result<GroupInfo, HubError>> + Send {
        Hub::put_group(self, name, condition)
    }
    fn group(&self, name: &str) -> impl Future<Output = Result<GroupInfo, HubError>> + Send {
        Hub::group(self, name)
    }
    fn groups(&self) -> impl Future<Output = Result<Vec<GroupInfo>, HubError>> + Send {
        Hub::groups(self)
    }
    fn delete_group(&self, name: &str) -> impl Future<Output = Result<(), HubError>> + Send {
        Hub::delete_group(self, name)
    }
    fn put_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
        spec: EnrollmentSpec,
    ) -> impl Future<Output = Result<EnrollmentInfo, HubError>> + Send {
        Hub::put_enrollment(self, kind, name, spec)
    }
    fn enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> impl Future<Output = Result<EnrollmentInfo, HubError>> + Send {
        Hub::enrollment(self, kind, name)
    }
    fn enrollments(
        &self,
        kind: EnrollmentKind,
    ) -> impl Future<Output = Result<Vec<EnrollmentInfo>, HubError>> + Send {
        Hub::enrollments(self, Some(kind))
    }
    fn delete_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> impl Future<Output = Result<(), HubError>> + Send {
        Hub::delete_enrollment(self, kind, name)
    }
    fn group_devices(
        &self,
        name: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<Value>, HubError>> + Send {
        Hub::group_devices(self, name, after, limit)
    }
    fn device_keys(&self, id: &str) -> impl Future<Output = Result<DeviceKeys, HubError>> + Send {
        Hub::device_keys(self, id)
    }
    fn regenerate_key(
        &self,
        id: &str,
        which: KeyName,
    ) -> impl Future<Output = Result<DeviceKeys, HubError>> + Send {
        Hub::regenerate_key(self, id, which)
    }
}
