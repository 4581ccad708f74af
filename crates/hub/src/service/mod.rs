//! The control plane at run time: a handle ([`Hub`]) for the API and a task that
//! serves the devices' side of the conversation from the broker's events.
//!
//! State lives in the [`store::Store`]; what is only meaningful while the process runs
//! (direct-method calls waiting for answers, C2D messages on the wire, receipts) lives
//! in [`Inner`]'s maps. Store calls block (SQLite commits are fsyncs), so each runs on
//! tokio's blocking pool and never stalls the runtime's worker.
//!
//! - `registry`: devices (create, update, delete, list) and their API view.
//! - `twins`: service and device twin operations, and desired-property sync.
//! - `methods`: direct-method calls and their answers.
//! - `c2d`: the cloud-to-device queue's delivery loop and expiry.
//! - `events`: the broker event loop and presence.
//! - `groups`: device groups defined by a query condition.
//! - `keys`: devices' symmetric keys (read, regenerate) for SAS authentication.
//! - `enrollments`: provisioning enrollments (individual and group).
//! - `provisioning`: the DPS registration protocol (register, poll, assign).

mod api;
mod application;
mod c2d;
mod enrollments;
mod events;
mod groups;
mod handoff;
mod keys;
mod known;
mod methods;
mod provisioning;
mod registry;
mod twins;

pub use api::*;
pub use enrollments::{EnrollmentInfo, EnrollmentSpec, X509Info};
pub use groups::GroupInfo;
pub use handoff::TelemetryReceiver;
pub(crate) use registry::validate_id;
pub use store::{EnrollmentKind, X509Attestation};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker::service::{ServiceEvent, ServiceHandle, ServiceSpec};
use serde_json::Value;
use store::{Store, StoreError};
use tokio::sync::{broadcast, mpsc, Notify};

use crate::twin::Limits;

/// Control-plane settings; every one has a default a fleet can start on.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Register unknown client ids on their first use of a device topic (development
    /// mode only: in production devices are created by the API or provisioning).
    pub auto_register: bool,
    /// Most C2D messages queued per device (Azure: 50).
    pub max_c2d_depth: usize,
    /// Time to live of a C2D message that names none (Azure: 1 hour).
    pub default_c2d_ttl: Duration,
    /// Longest time to live accepted (Azure: 2 days).
    pub max_c2d_ttl: Duration,
    /// C2D messages on the wire to one device before waiting for acknowledgements.
    pub c2d_window: usize,
    /// Twin document limits.
    pub twin_limits: Limits,
    /// The host name devices reach the hub by, put in the connection strings the API
    /// hands out (`HostName=…`). Not checked in tokens: a hub has several names.
    pub host_name: String,
    /// Provisioning clients authenticated by [`crate::auth::DeviceAuth`], with their
    /// enrollment: shared with it, read when they register.
    pub registrations: crate::auth::Registrations,
    /// A telemetry consumer (the data pipeline) will subscribe after the hub starts:
    /// its queue, of this many messages, is made before the hub serves its first
    /// event, so the telemetry of devices that connect while the consumer is still
    /// opening (a restart replaying its store) waits for it instead of being
    /// acknowledged unstored. The first [`Hub::telemetry_with_capacity`] call gets it.
    pub telemetry_consumer: Option<usize>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            auto_register: false,
            max_c2d_depth: 50,
            default_c2d_ttl: Duration::from_secs(3600),
            max_c2d_ttl: Duration::from_secs(2 * 24 * 3600),
            c2d_window: 8,
            twin_limits: Limits::default(),
            telemetry_consumer: None,
            host_name: "127.0.0.1".into(),
            registrations: crate::auth::Registrations::default(),
        }
    }
}

/// The publishes the hub asks the broker for: device requests on `$iothub/…` and
/// `$dps/…` are consumed, telemetry is tapped.
pub fn broker_spec() -> ServiceSpec {
    ServiceSpec {
        consume: vec!["$iothub/#".into(), "$dps/#".into()],
        tap: vec![
            "devices/+/messages/events".into(),
            "devices/+/messages/events/#".into(),
        ],
        // Telemetry is acknowledged once the data pipeline stored it (see
        // `Telemetry::hold`); with no pipeline listening the hold ends at once.
        hold_taps: true,
    }
}

/// Telemetry messages queued for a subscriber of [`Hub::telemetry`] before its
/// publishers wait (see `handoff`).
pub const TELEMETRY_BUFFER: usize = 16_384;

/// One telemetry message, as the data pipeline receives it.
///
/// `device_id` is the authenticated client that published it, never what the topic
/// claims; `properties` are the decoded property bag of the topic (`$.ct`, `$.ce` and
/// application properties), `content_type` the MQTT 5 property if one was sent.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// The device that sent it.
    pub device_id: std::sync::Arc<str>,
    /// Properties from the topic's property bag.
    pub properties: Vec<(String, String)>,
    /// MQTT 5 content type, if sent.
    pub content_type: Option<String>,
    /// The payload (JSON, CBOR or Protobuf features).
    pub payload: bytes::Bytes,
    /// When the hub received it (ms since the Unix epoch).
    pub received_ms: i64,
    /// The same moment on the monotonic clock, for measuring the pipeline's latency.
    pub arrived: std::time::Instant,
    /// The device's PUBACK waits until every clone of this is dropped: a consumer that
    /// must store the message before it counts as received keeps its clone until then.
    pub hold: Option<broker::service::Hold>,
}

impl Telemetry {
    /// Tells the device its message was not stored (a consumer's write failed): its
    /// acknowledgement becomes a refusal, so it publishes the message again rather
    /// than believing it kept (see [`broker::service::Hold::refuse`]).
    pub fn refuse(&self) {
        if let Some(hold) = &self.hold {
            hold.refuse(mqtt::ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR);
        }
    }
}

/// Events buffered for slow `/api/events` readers before they see a gap.
const EVENT_BUFFER: usize = 4096;

/// Handle to the running control plane; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// What a [`Receipt`] stands for when the device acknowledges it.
#[derive(Debug, Clone)]
enum Receipt {
    /// A C2D message.
    C2d { device: String, message_id: String },
    /// A desired-properties patch bringing the device to this document and version.
    Desired {
        device: String,
        json: String,
        version: u64,
    },
}

/// Shared state behind the handle.
struct Inner {
    store: Arc<dyn Store>,
    broker: ServiceHandle,
    config: HubConfig,
    events: broadcast::Sender<Event>,
    /// Telemetry from devices, attributed to the connection that sent it.
    telemetry: Arc<handoff::Handoff>,
    /// The queue made at start for the consumer announced in the config, until it
    /// subscribes.
    reserved_telemetry: Mutex<Option<TelemetryReceiver>>,
    /// Woken whenever a device connects or subscribes, for method calls waiting on it.
    arrivals: Notify,
    next_id: AtomicU64,
    state: Mutex<Volatile>,
    /// Serializes desired-property notifications so devices see versions in order.
    desired_sync: tokio::sync::Mutex<()>,
    /// Registered device ids, so presence skips plain MQTT clients without a store trip.
    known: known::KnownDevices,
}

/// Run-time state that dies with the process (and needs none of it afterwards).
#[derive(Default)]
struct Volatile {
    /// Direct-method calls waiting for an answer, by request id.
    methods: HashMap<String, methods::Pending>,
    /// Receipts handed to the broker and not yet acknowledged.
    receipts: HashMap<u64, Receipt>,
    /// C2D message ids on the wire, per device.
    c2d_on_wire: HashMap<String, Vec<String>>,
    /// When each connected device's activity was last written, to write it at most
    /// once per [`ACTIVITY_RESOLUTION_MS`] instead of on every message.
    activity_written: HashMap<String, i64>,
    /// DPS registration operations, by operation id (at most
    /// [`provisioning::MAX_OPERATIONS`]).
    dps_operations: HashMap<String, provisioning::Operation>,
}

/// Resolution of `lastActivityTime`: finer would cost a database write per message.
const ACTIVITY_RESOLUTION_MS: i64 = 60_000;

impl Hub {
    /// Starts the control plane over `store`, serving the broker's `events`.
    pub fn start(
        store: Arc<dyn Store>,
        broker: ServiceHandle,
        events: mpsc::Receiver<ServiceEvent>,
        config: HubConfig,
    ) -> Hub {
        let (tx, _) = broadcast::channel(EVENT_BUFFER);
        let known = known::KnownDevices::load(&*store).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot load device ids; presence asks the store");
            known::KnownDevices::unknown()
        });
        let telemetry: Arc<handoff::Handoff> = Arc::default();
        let reserved = config.telemetry_consumer.map(|n| telemetry.subscribe(n));
        let hub = Hub {
            inner: Arc::new(Inner {
                store,
                broker,
                config,
                events: tx,
                telemetry,
                reserved_telemetry: Mutex::new(reserved),
                arrivals: Notify::new(),
                next_id: AtomicU64::new(1),
                state: Mutex::new(Volatile::default()),
                desired_sync: tokio::sync::Mutex::new(()),
                known,
            }),
        };
        hub.forget_stale_connections();
        tokio::spawn(hub.clone().serve_broker(events));
        tokio::spawn(hub.clone().expire_c2d_periodically());
        hub
    }

    /// Marks devices recorded as connected as disconnected: after a restart (a crash
    /// included) no connection survives, and the broker reports each new one afresh.
    /// Runs before the event loop starts, so it cannot overwrite a new connection.
    fn forget_stale_connections(&self) {
        let store = &self.inner.store;
        let filter = store::DeviceFilter {
            connection: Some(store::ConnectionState::Connected),
            ..store::DeviceFilter::default()
        };
        let now = now_ms();
        loop {
            let page = match store.list_devices(&filter, None, 500) {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reset connection states");
                    return;
                }
            };
            if page.items.is_empty() {
                return;
            }
            for device in page.items {
                let state = store::ConnectionState::Disconnected;
                if let Err(e) = store.set_connection(&device.id, state, "hub restarted", now) {
                    tracing::warn!(device = %device.id, error = %e, "cannot reset connection state");
                    return;
                }
            }
        }
    }

    /// Device telemetry, for the data pipeline. Telemetry stays MQTT traffic too (any
    /// subscriber with the right to see it gets it from the broker); this is the hub's
    /// attributed copy. Nothing is skipped: while this receiver's queue
    /// ([`TELEMETRY_BUFFER`] messages) is full, publishers wait for their PUBACKs — so a
    /// subscriber must keep reading, or drop the receiver to stop being waited for.
    pub fn telemetry(&self) -> TelemetryReceiver {
        self.telemetry_with_capacity(TELEMETRY_BUFFER)
    }

    /// [`Hub::telemetry`] with a queue of `capacity` messages (at least 1); the first
    /// call gets the queue reserved at start ([`HubConfig::telemetry_consumer`]), with
    /// everything published since, and that reservation's capacity.
    pub fn telemetry_with_capacity(&self, capacity: usize) -> TelemetryReceiver {
        let reserved = self
            .inner
            .reserved_telemetry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        reserved.unwrap_or_else(|| self.inner.telemetry.subscribe(capacity))
    }

    /// Telemetry messages waiting for room in a subscriber's queue (their publishers
    /// wait for the PUBACKs meanwhile).
    pub fn telemetry_waiting(&self) -> usize {
        self.inner.telemetry.waiting()
    }

    /// Telemetry messages that ever had to wait for room in a subscriber's queue: how
    /// often backpressure reached the devices.
    pub fn telemetry_delayed(&self) -> u64 {
        self.inner.telemetry.delayed()
    }

    /// Device lifecycle and presence events, for `/api/events`.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Runs a store operation on the blocking pool.
    async fn blocking<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || op(&*store))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// A fresh id, unique within this process.
    fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn volatile(&self) -> MutexGuard<'_, Volatile> {
        // The maps hold no invariant a panic elsewhere could break halfway.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes a lifecycle event to API listeners and `$bosun/events/{kind}/{device}`.
    fn announce(&self, kind: &'static str, device_id: &str, detail: Value) {
        let event = Event {
            kind,
            device_id: device_id.to_string(),
            time: crate::twin::rfc3339(now_ms()),
            detail,
        };
        let topic = format!("$bosun/events/{kind}/{device_id}");
        let payload = serde_json::to_vec(&event).unwrap_or_default();
        let _ = self.inner.events.send(event);
        let broker = self.inner.broker.clone();
        tokio::spawn(async move {
            let _ = broker
                .publish(plain_publish(topic, payload, mqtt::QoS::AtMostOnce))
                .await;
        });
    }
}

/// Milliseconds since the Unix epoch: the one wall clock the hub and the services
/// built on it (pipeline, API) stamp records with.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A PUBLISH with no properties, as the hub sends most of its messages.
fn plain_publish(topic: String, payload: Vec<u8>, qos: mqtt::QoS) -> mqtt::Publish {
    mqtt::Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id: None,
        properties: mqtt::Properties::default(),
        payload: bytes::Bytes::from(payload),
    }
}

/// Maps a storage failure for a given device to the API's error.
fn store_error(device: &str, e: StoreError) -> HubError {
    match e {
        StoreError::NotFound => HubError::NotFound(device.to_string()),
        StoreError::AlreadyExists => HubError::AlreadyExists(device.to_string()),
        StoreError::QueueFull { .. } => HubError::QueueFull(device.to_string()),
        StoreError::Conflict { found, .. } => HubError::PreconditionFailed {
            current: etag(found),
        },
        StoreError::Backend(msg) => HubError::Unavailable(msg),
    }
}

/// The quoted ETag of a twin version.
fn etag(version: u64) -> String {
    format!("\"{version}\"")
}
