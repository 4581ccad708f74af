//! An in-memory control plane for the handler tests.
//!
//! Behaves like the hub where the API's behaviour depends on it (not found, conflicts,
//! ETags, paging, queue limits, events) and records what it was asked, so tests can
//! check how a request was translated. Special names trigger the hub's other errors:
//! device `sleepy` is not connected, method `slow` times out, method `fail` answers 500.

use std::collections::BTreeMap;
use std::future::{ready, Future};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hub::service::{
    C2dMessage, C2dOutcome, C2dSend, ConnectionState, DeviceInfo, DeviceKeys, DeviceQuery,
    DeviceStatus, DeviceUpdate, EnrollmentInfo, EnrollmentKind, EnrollmentSpec, Event, Feedback,
    GroupInfo, HubError, KeyName, MethodCall, MethodResponse, NewDevice, Page, TwinView,
};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::ControlPlane;

/// Messages a device's queue holds before `QueueFull`.
pub(crate) const QUEUE_LIMIT: usize = 3;
/// Capacity of the event channel; small so tests can make a subscriber lag.
pub(crate) const EVENT_CAPACITY: usize = 4;
/// The time every fake record carries.
const NOW_MS: i64 = 1_735_689_600_000;

/// The fake control plane; clones share state.
#[derive(Clone)]
pub(crate) struct Fake {
    /// Everything the fake knows and was asked.
    state: Arc<Mutex<State>>,
    /// Device events.
    events: broadcast::Sender<Event>,
}

/// The fake's data and its record of calls.
#[derive(Default)]
pub(crate) struct State {
    devices: BTreeMap<String, DeviceInfo>,
    twins: BTreeMap<String, (Value, u64)>,
    queues: BTreeMap<String, Vec<C2dMessage>>,
    feedback: Vec<Feedback>,
    next_message: u64,
    /// Last `list_devices` arguments.
    pub(crate) last_list: Option<(DeviceQuery, Option<String>, usize)>,
    /// Last `invoke_method` call.
    pub(crate) last_call: Option<MethodCall>,
    /// Last `send_c2d` message.
    pub(crate) last_send: Option<C2dSend>,
    /// Last `feedback` arguments.
    pub(crate) last_feedback: Option<(Option<String>, i64, usize)>,
    /// Last `query` arguments.
    pub(crate) last_query: Option<(String, Option<String>, usize)>,
    /// Device groups by name.
    groups: BTreeMap<String, GroupInfo>,
    /// Last `group_devices` arguments.
    pub(crate) last_group_devices: Option<(String, Option<String>, usize)>,
    /// Symmetric keys (primary, secondary) of `sas` devices.
    keys: BTreeMap<String, (String, String)>,
    /// Keys handed out so far, to make each new one different.
    next_key: u64,
    /// Enrollments by kind and name.
    enrollments: BTreeMap<(&'static str, String), EnrollmentInfo>,
}

impl State {
    /// A new fake key (base64 of 32 bytes, different every time).
    fn fresh_key(&mut self) -> String {
        self.next_key += 1;
        hub::base64::encode(format!("fake-key-{:023}", self.next_key).as_bytes())
    }
}

impl Fake {
    /// An empty fake.
    pub(crate) fn new() -> Fake {
        Fake {
            state: Arc::default(),
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    /// The state, for assertions.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes an event as the hub would.
    pub(crate) fn emit(&self, kind: &'static str, device: &str) {
        let _ = self.events.send(Event {
            kind,
            device_id: device.to_owned(),
            time: hub::twin::rfc3339(NOW_MS),
            detail: json!({}),
        });
    }

    fn create(&self, new: NewDevice) -> Result<DeviceInfo, HubError> {
        if new.id.is_empty() || new.id.len() > 128 {
            return Err(HubError::Invalid("bad device id".into()));
        }
        let mut state = self.state();
        if state.devices.contains_key(&new.id) {
            return Err(HubError::AlreadyExists(new.id));
        }
        let auth_kind = new.auth_kind.clone().unwrap_or_else(|| "none".into());
        match (auth_kind.as_str(), new.symmetric_key) {
            ("sas", given) => {
                let primary = given.unwrap_or_else(|| state.fresh_key());
                let secondary = state.fresh_key();
                state.keys.insert(new.id.clone(), (primary, secondary));
            }
            (_, Some(_)) => {
                return Err(HubError::Invalid("symmetricKey needs authKind sas".into()));
            }
            (_, None) => {}
        }
        let tags = new.tags.unwrap_or_else(|| json!({}));
        let info = DeviceInfo {
            device_id: new.id.clone(),
            status: match new.status {
                Some(DeviceStatus::Disabled) => "disabled",
                _ => "enabled",
            },
            auth_kind,
            group: new.group,
            connection_state: "disconnected",
            connection_reason: None,
            connection_state_updated_time: None,
            last_activity_time: None,
            created_time: hub::twin::rfc3339(NOW_MS),
            firmware_version: None,
            tags: tags.clone(),
        };
        let twin = json!({
            "deviceId": new.id,
            "tags": tags,
            "properties": { "desired": new.desired.unwrap_or_else(|| json!({})), "reported": {} },
        });
        state.twins.insert(new.id.clone(), (twin, 1));
        state.devices.insert(new.id.clone(), info.clone());
        drop(state);
        self.emit("deviceCreated", &new.id);
        Ok(info)
    }

    fn keys_of(&self, id: &str, regenerate: Option<KeyName>) -> Result<DeviceKeys, HubError> {
        let mut state = self.state();
        if !state.devices.contains_key(id) {
            return Err(HubError::NotFound(id.to_owned()));
        }
        if !state.keys.contains_key(id) {
            return Err(HubError::Invalid(format!("device {id} has no keys")));
        }
        let fresh = state.fresh_key();
        let Some((primary, secondary)) = state.keys.get_mut(id) else {
            return Err(HubError::Invalid(format!("device {id} has no keys")));
        };
        match regenerate {
            Some(KeyName::Primary) => *primary = fresh,
            Some(KeyName::Secondary) => *secondary = fresh,
            None => {}
        }
        Ok(DeviceKeys {
            device_id: id.to_owned(),
            primary_key: primary.clone(),
            secondary_key: secondary.clone(),
            connection_string: format!(
                "HostName=127.0.0.1;DeviceId={id};SharedAccessKey={primary}"
            ),
        })
    }

    fn get(&self, id: &str) -> Result<DeviceInfo, HubError> {
        self.state()
            .devices
            .get(id)
            .cloned()
            .ok_or_else(|| HubError::NotFound(id.to_owned()))
    }

    fn update(&self, id: &str, update: DeviceUpdate) -> Result<DeviceInfo, HubError> {
        let mut state = self.state();
        let info = state
            .devices
            .get_mut(id)
            .ok_or_else(|| HubError::NotFound(id.to_owned()))?;
        if let Some(status) = update.status {
            info.status = match status {
                DeviceStatus::Enabled => "enabled",
                DeviceStatus::Disabled => "disabled",
            };
        }
        if let Some(group) = update.group {
            info.group = group;
        }
        Ok(info.clone())
    }

    fn delete(&self, id: &str) -> Result<(), HubError> {
        let mut state = self.state();
        state
            .devices
            .remove(id)
            .ok_or_else(|| HubError::NotFound(id.to_owned()))?;
        state.twins.remove(id);
        state.queues.remove(id);
        state.keys.remove(id);
        drop(state);
        self.emit("deviceDeleted", id);
        Ok(())
    }

    fn list(
        &self,
        query: DeviceQuery,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<DeviceInfo>, HubError> {
        let mut state = self.state();
        state.last_list = Some((query.clone(), after.clone(), limit));
        let matching: Vec<DeviceInfo> = state
            .devices
            .values()
            .filter(|d| after.as_ref().is_none_or(|a| &d.device_id > a))
            .filter(|d| {
                query.status.is_none_or(|s| {
                    d.status
                        == if s == DeviceStatus::Enabled {
                            "enabled"
                        } else {
                            "disabled"
                        }
                })
            })
            .filter(|d| {
                query.connection.is_none_or(|c| {
                    d.connection_state
                        == if c == ConnectionState::Connected {
                            "connected"
                        } else {
                            "disconnected"
                        }
                })
            })
            .filter(|d| {
                query
                    .group
                    .as_ref()
                    .is_none_or(|g| d.group.as_ref() == Some(g))
            })
            .filter(|d| {
                query
                    .tag
                    .as_ref()
                    .is_none_or(|(k, v)| d.tags.get(k).and_then(Value::as_str) == Some(v))
            })
            .cloned()
            .collect();
        Ok(paged(matching, limit, |d| d.device_id.clone()))
    }

    fn twin_view(&self, id: &str) -> Result<TwinView, HubError> {
        let state = self.state();
        let (json, version) = state
            .twins
            .get(id)
            .ok_or_else(|| HubError::NotFound(id.to_owned()))?;
        Ok(view(json, *version))
    }

    fn patch(
        &self,
        id: &str,
        patch: Value,
        if_match: Option<String>,
    ) -> Result<TwinView, HubError> {
        let mut state = self.state();
        let (twin, version) = state
            .twins
            .get_mut(id)
            .ok_or_else(|| HubError::NotFound(id.to_owned()))?;
        let current = format!("\"{version}\"");
        if if_match.is_some_and(|e| e != current) {
            return Err(HubError::PreconditionFailed { current });
        }
        merge(twin, &patch);
        *version += 1;
        let out = view(twin, *version);
        drop(state);
        self.emit("twinChanged", id);
        Ok(out)
    }

    fn run_query(
        &self,
        sql: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<Value>, HubError> {
        let mut state = self.state();
        state.last_query = Some((sql.to_owned(), after.clone(), limit));
        if sql.contains("BAD") {
            return Err(HubError::Invalid("syntax error near BAD".into()));
        }
        let twins: Vec<Value> = state
            .twins
            .iter()
            .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
            .map(|(_, (twin, _))| twin.clone())
            .collect();
        Ok(paged(twins, limit, |t| {
            t["deviceId"].as_str().unwrap_or_default().to_owned()
        }))
    }

    fn invoke(&self, id: &str, call: MethodCall) -> Result<MethodResponse, HubError> {
        self.get(id)?;
        self.state().last_call = Some(call.clone());
        match (id, call.name.as_str()) {
            ("sleepy", _) => Err(HubError::NotConnected(id.to_owned())),
            (_, "slow") => Err(HubError::Timeout(id.to_owned())),
            (_, "fail") => Ok(MethodResponse {
                status: 500,
                payload: json!({ "error": "boom" }),
            }),
            _ => Ok(MethodResponse {
                status: 200,
                payload: json!({ "echo": call.payload }),
            }),
        }
    }

    fn send(&self, id: &str, message: C2dSend) -> Result<String, HubError> {
        self.get(id)?;
        let mut state = self.state();
        state.last_send = Some(message.clone());
        state.next_message += 1;
        let message_id = format!("m{}", state.next_message);
        let queue = state.queues.entry(id.to_owned()).or_default();
        if queue.len() >= QUEUE_LIMIT {
            return Err(HubError::QueueFull(id.to_owned()));
        }
        let ttl = message.ttl.unwrap_or(Duration::from_secs(3600));
        queue.push(C2dMessage {
            id: message_id.clone(),
            device_id: id.to_owned(),
            payload: message.payload,
            properties: message.properties,
            enqueued_ms: NOW_MS,
            expires_ms: NOW_MS + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2),
        });
        Ok(message_id)
    }

    fn queue(&self, id: &str) -> Result<Vec<C2dMessage>, HubError> {
        self.get(id)?;
        Ok(self.state().queues.get(id).cloned().unwrap_or_default())
    }

    fn purge(&self, id: &str) -> Result<usize, HubError> {
        self.get(id)?;
        let mut state = self.state();
        let purged = state.queues.remove(id).unwrap_or_default();
        for message in &purged {
            let seq = i64::try_from(state.feedback.len()).unwrap_or(i64::MAX) + 1;
            state.feedback.push(Feedback {
                seq,
                message_id: message.id.clone(),
                device_id: id.to_owned(),
                outcome: C2dOutcome::Purged,
                at_ms: NOW_MS,
            });
        }
        Ok(purged.len())
    }

    fn feedback_since(
        &self,
        device: Option<String>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Feedback>, HubError> {
        let mut state = self.state();
        state.last_feedback = Some((device.clone(), after, limit));
        Ok(state
            .feedback
            .iter()
            .filter(|f| f.seq > after && device.as_ref().is_none_or(|d| &f.device_id == d))
            .take(limit)
            .cloned()
            .collect())
    }
}

/// The first `limit` of `items` and the cursor after the last one if more remain.
fn paged<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let continuation = if more { items.last().map(cursor) } else { None };
    Page {
        items,
        continuation,
    }
}

/// A twin as the hub shows it, with its version as ETag.
fn view(twin: &Value, version: u64) -> TwinView {
    let mut json = twin.clone();
    json["version"] = json!(version);
    json["etag"] = json!(format!("\"{version}\""));
    TwinView {
        json,
        etag: format!("\"{version}\""),
    }
}

/// RFC 7396 merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Device groups. The fake understands a small part of the query language: `path =
/// 'text'` clauses joined by `AND`, where a path names a twin member (`tags.site`) or
/// `status`/`connectionState`. Anything else is refused with the clause's position,
/// the way the hub reports a bad condition.
impl Fake {
    fn define_group(&self, name: &str, condition: &str) -> Result<GroupInfo, HubError> {
        if name.is_empty() || name.len() > 128 || name.contains('/') {
            return Err(HubError::Invalid(format!("bad group name {name:?}")));
        }
        clauses(condition)?;
        let info = GroupInfo {
            name: name.to_owned(),
            condition: condition.to_owned(),
            created_time: hub::twin::rfc3339(NOW_MS),
        };
        self.state().groups.insert(name.to_owned(), info.clone());
        Ok(info)
    }

    fn get_group(&self, name: &str) -> Result<GroupInfo, HubError> {
        self.state()
            .groups
            .get(name)
            .cloned()
            .ok_or_else(|| HubError::NotFound(format!("group {name}")))
    }

    fn all_groups(&self) -> Vec<GroupInfo> {
        self.state().groups.values().cloned().collect()
    }

    fn remove_group(&self, name: &str) -> Result<(), HubError> {
        self.state()
            .groups
            .remove(name)
            .map(drop)
            .ok_or_else(|| HubError::NotFound(format!("group {name}")))
    }

    fn members(
        &self,
        name: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<Value>, HubError> {
        let group = self.get_group(name)?;
        let wanted = clauses(&group.condition)?;
        let mut state = self.state();
        state.last_group_devices = Some((name.to_owned(), after.clone(), limit));
        let members: Vec<Value> = state
            .devices
            .values()
            .filter(|d| after.as_ref().is_none_or(|a| &d.device_id > a))
            .filter_map(|d| {
                let mut doc = state.twins.get(&d.device_id)?.0.clone();
                doc["status"] = json!(d.status);
                doc["connectionState"] = json!(d.connection_state);
                let pointer = |path: &str| format!("/{}", path.replace('.', "/"));
                wanted
                    .iter()
                    .all(|(path, value)| {
                        doc.pointer(&pointer(path)).and_then(Value::as_str) == Some(value)
                    })
                    .then(|| {
                        json!({
                            "deviceId": d.device_id,
                            "status": d.status,
                            "connectionState": d.connection_state,
                        })
                    })
            })
            .collect();
        Ok(paged(members, limit, |m| {
            m["deviceId"].as_str().unwrap_or_default().to_owned()
        }))
    }
}

/// The fake's condition language: `path = 'text'` clauses joined by ` AND `.
fn clauses(condition: &str) -> Result<Vec<(String, String)>, HubError> {
    const AND: &str = " AND ";
    let mut out = Vec::new();
    let mut at = 0;
    for clause in condition.split(AND) {
        let parsed = clause.split_once('=').and_then(|(path, value)| {
            let path = path.trim();
            let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
            (!path.is_empty()).then(|| (path.to_owned(), value.to_owned()))
        });
        let Some(parsed) = parsed else {
            return Err(HubError::Invalid(format!(
                "group condition, at {at}: expected path = 'text'"
            )));
        };
        out.push(parsed);
        at += clause.len() + AND.len();
    }
    Ok(out)
}

impl ControlPlane for Fake {
    fn create_device(
        &self,
        new: NewDevice,
    ) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send {
        ready(self.create(new))
    }
    fn device(&self, id: &str) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send {
        ready(self.get(id))
    }
    fn update_device(
        &self,
        id: &str,
        update: DeviceUpdate,
    ) -> impl Future<Output = Result<DeviceInfo, HubError>> + Send {
        ready(self.update(id, update))
    }
    fn delete_device(&self, id: &str) -> impl Future<Output = Result<(), HubError>> + Send {
        ready(self.delete(id))
    }
    fn list_devices(
        &self,
        query: DeviceQuery,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<DeviceInfo>, HubError>> + Send {
        ready(self.list(query, after, limit))
    }
    fn twin(&self, id: &str) -> impl Future<Output = Result<TwinView, HubError>> + Send {
        ready(self.twin_view(id))
    }
    fn patch_twin(
        &self,
        id: &str,
        patch: Value,
        if_match: Option<String>,
    ) -> impl Future<Output = Result<TwinView, HubError>> + Send {
        ready(self.patch(id, patch, if_match))
    }
    fn query(
        &self,
        sql: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<Value>, HubError>> + Send {
        ready(self.run_query(sql, after, limit))
    }
    fn invoke_method(
        &self,
        id: &str,
        call: MethodCall,
    ) -> impl Future<Output = Result<MethodResponse, HubError>> + Send {
        ready(self.invoke(id, call))
    }
    fn send_c2d(
        &self,
        id: &str,
        message: C2dSend,
    ) -> impl Future<Output = Result<String, HubError>> + Send {
        ready(self.send(id, message))
    }
    fn c2d_queue(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<C2dMessage>, HubError>> + Send {
        ready(self.queue(id))
    }
    fn purge_c2d(&self, id: &str) -> impl Future<Output = Result<usize, HubError>> + Send {
        ready(self.purge(id))
    }
    fn feedback(
        &self,
        device: Option<String>,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Feedback>, HubError>> + Send {
        ready(self.feedback_since(device, after, limit))
    }
    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
    fn put_group(
        &self,
        name: &str,
        condition: &str,
    ) -> impl Future<Output = Result<GroupInfo, HubError>> + Send {
        ready(self.define_group(name, condition))
    }
    fn group(&self, name: &str) -> impl Future<Output = Result<GroupInfo, HubError>> + Send {
        ready(self.get_group(name))
    }
    fn groups(&self) -> impl Future<Output = Result<Vec<GroupInfo>, HubError>> + Send {
        ready(Ok(self.all_groups()))
    }
    fn put_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
        spec: EnrollmentSpec,
    ) -> impl Future<Output = Result<EnrollmentInfo, HubError>> + Send {
        let mut state = self.state();
        let (attestation, key, x509) = match spec.x509 {
            Some(x509) => (
                "x509",
                None,
                Some(hub::service::X509Info {
                    ca: x509.ca,
                    serial: x509.serial,
                }),
            ),
            None => (
                "symmetricKey",
                Some(spec.key.unwrap_or_else(|| state.fresh_key())),
                None,
            ),
        };
        let info = EnrollmentInfo {
            kind: kind.as_str(),
            name: name.to_owned(),
            attestation,
            key,
            x509,
            initial_twin: json!({
                "tags": spec.tags.unwrap_or_else(|| json!({})),
                "desired": spec.desired.unwrap_or_else(|| json!({})),
            }),
            device_group: spec.device_group,
            disabled: spec.disabled,
            created_time: hub::twin::rfc3339(NOW_MS),
        };
        state
            .enrollments
            .insert((kind.as_str(), name.to_owned()), info.clone());
        ready(Ok(info))
    }
    fn enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> impl Future<Output = Result<EnrollmentInfo, HubError>> + Send {
        ready(
            self.state()
                .enrollments
                .get(&(kind.as_str(), name.to_owned()))
                .cloned()
                .ok_or_else(|| HubError::NotFound(format!("enrollment {name}"))),
        )
    }
    fn enrollments(
        &self,
        kind: EnrollmentKind,
    ) -> impl Future<Output = Result<Vec<EnrollmentInfo>, HubError>> + Send {
        let all = self.state().enrollments.clone();
        ready(Ok(all
            .into_iter()
            .filter(|((k, _), _)| *k == kind.as_str())
            .map(|(_, info)| info)
            .collect()))
    }
    fn delete_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> impl Future<Output = Result<(), HubError>> + Send {
        ready(
            self.state()
                .enrollments
                .remove(&(kind.as_str(), name.to_owned()))
                .map(drop)
                .ok_or_else(|| HubError::NotFound(format!("enrollment {name}"))),
        )
    }
    fn delete_group(&self, name: &str) -> impl Future<Output = Result<(), HubError>> + Send {
        ready(self.remove_group(name))
    }
    fn group_devices(
        &self,
        name: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<Value>, HubError>> + Send {
        ready(self.members(name, after, limit))
    }
    fn device_keys(&self, id: &str) -> impl Future<Output = Result<DeviceKeys, HubError>> + Send {
        ready(self.keys_of(id, None))
    }
    fn regenerate_key(
        &self,
        id: &str,
        which: KeyName,
    ) -> impl Future<Output = Result<DeviceKeys, HubError>> + Send {
        ready(self.keys_of(id, Some(which)))
    }
}
