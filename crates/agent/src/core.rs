//! The device's protocol behaviour, without sockets or clocks: what to send when the
//! connection opens, what a message from the hub means, which feature message goes out
//! next and when it may leave the buffer.
//!
//! [`Core`] is driven by the runtime (`run/agent.rs`) with events — connected, a
//! PUBLISH from the hub, a PUBACK, disconnected — and answers with packets to send and
//! [`Effect`]s for the runtime to carry out (apply new settings, start a capture).
//! Feature messages are not stored here: the runtime keeps them in the offline buffer
//! and asks [`Core::publish_feature`] for the packet of the next key; the core
//! remembers which keys are on the wire, so [`Core::on_puback`] names the key that may
//! be deleted.
//!
//! Twin handling: at each connect the core subscribes, GETs the twin and applies its
//! desired properties (a desired patch may have been missed while away); after every
//! change, and once per connection, it reports `mode`, `firmware.version`,
//! `interval_s`, `window` and `thresholds`. Twin requests and method answers are QoS 0,
//! like the Azure SDKs'; a GET lost with its connection is repeated at the next one.

use std::collections::BTreeMap;

use bytes::Bytes;
use mqtt::{
    Packet, PacketId, Properties, Publish, QoS, Subscribe, Subscription, SubscriptionOptions,
};
use serde_json::{json, Value};

use crate::command::{parse_command, CaptureRequest, Command};
use crate::settings::Settings;
use crate::topics::{self, Incoming};

/// Content type of feature messages (what the hub's pipeline decodes).
pub const FEATURES_CONTENT_TYPE: &str = "application/vnd.bosun.features+cbor";
/// Most QoS 1 messages on the wire at once, whatever the hub would allow.
pub const MAX_IN_FLIGHT: usize = 16;

/// What the runtime must do besides sending packets.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// The settings changed (window, interval, mode, thresholds).
    Settings(Settings),
    /// Stream a capture with this id.
    Capture {
        /// Capture id: the C2D message id, or a counter.
        id: String,
        /// What was asked.
        request: CaptureRequest,
    },
    /// The desired `firmware` property: the whole value (`full`, from a twin GET) or a
    /// merge patch of it (from a desired-properties patch).
    Firmware {
        /// The value (`null` when the twin has none).
        value: Value,
        /// Whether it replaces the last one rather than patching it.
        full: bool,
    },
    /// The twin GET of this connection was answered: the device is connected and its
    /// twin works (a new image's health check).
    TwinSynced,
}

/// What a QoS 1 packet id on the wire carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flight {
    /// The feature message with this buffer key.
    Feature(u64),
    /// A capture chunk.
    Chunk,
}

/// The device's protocol state.
#[derive(Debug)]
pub struct Core {
    device_id: String,
    firmware: String,
    defaults: Settings,
    settings: Settings,
    /// Last request id used.
    rid: u64,
    /// The request id of the outstanding twin GET.
    pending_get: Option<String>,
    /// Last packet id used.
    packet_id: PacketId,
    /// QoS 1 publishes awaiting PUBACK, by packet id.
    in_flight: BTreeMap<PacketId, Flight>,
    /// Highest feature key sent on this connection.
    sent_upto: Option<u64>,
    /// Window granted by the hub (its receive maximum), capped at [`MAX_IN_FLIGHT`].
    window: usize,
    /// Captures started without a message id, for their ids.
    captures: u64,
    /// Feature messages the offline buffer evicted, as last told; reported.
    evicted: u64,
}

impl Core {
    /// A device `device_id` running `firmware`, with `defaults` until the twin says
    /// otherwise.
    pub fn new(device_id: &str, firmware: &str, defaults: Settings) -> Core {
        Core {
            device_id: device_id.to_owned(),
            firmware: firmware.to_owned(),
            defaults,
            settings: defaults,
            rid: 0,
            pending_get: None,
            packet_id: 0,
            in_flight: BTreeMap::new(),
            sent_upto: None,
            window: MAX_IN_FLIGHT,
            captures: 0,
            evicted: 0,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The connection is open (CONNACK accepted, `receive_maximum` from it): subscribe,
    /// GET the twin, report (with `evicted`, the buffer's eviction counter).
    pub fn on_connected(&mut self, receive_maximum: Option<u16>, evicted: u64) -> Vec<Packet> {
        self.evicted = evicted;
        self.in_flight.clear();
        self.sent_upto = None;
        self.window = usize::from(receive_maximum.unwrap_or(u16::MAX)).clamp(1, MAX_IN_FLIGHT);
        let subscribe = Subscribe {
            packet_id: self.next_packet_id(),
            subscriptions: topics::subscriptions(&self.device_id)
                .into_iter()
                .map(|filter| Subscription {
                    filter,
                    options: SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        ..Default::default()
                    },
                })
                .collect(),
            properties: Properties::default(),
        };
        let rid = self.next_rid();
        self.pending_get = Some(rid.to_string());
        vec![
            Packet::Subscribe(subscribe),
            control(topics::twin_get(rid), Bytes::new()),
            self.report(),
        ]
    }

    /// The connection is gone: nothing is in flight any more; unacknowledged feature
    /// messages go again, from the oldest, at the next connection.
    pub fn on_disconnected(&mut self) {
        self.in_flight.clear();
        self.sent_upto = None;
        self.pending_get = None;
    }

    /// A PUBACK arrived: the buffer key it releases, if it acknowledged a feature
    /// message. A refusal (reason code ≥ 0x80) releases nothing: the message stays in
    /// the buffer and goes again after the next reconnect.
    pub fn on_puback(&mut self, packet_id: PacketId, code: mqtt::ReasonCode) -> Option<u64> {
        match self.in_flight.remove(&packet_id) {
            Some(Flight::Feature(key)) if !code.is_error() => Some(key),
            Some(Flight::Feature(key)) => {
                tracing::warn!(
                    key,
                    code = code.0,
                    "hub refused a feature message; kept for later"
                );
                None
            }
            _ => None,
        }
    }

    /// Whether another QoS 1 publish fits in the window.
    pub fn can_publish(&self) -> bool {
        self.in_flight.len() < self.window
    }

    /// The next feature key to send on this connection: the first after those already
    /// sent (`next_after` is the buffer's lookup).
    pub fn next_feature_key(&self, next_after: impl Fn(Option<u64>) -> Option<u64>) -> Option<u64> {
        if !self.can_publish() {
            return None;
        }
        next_after(self.sent_upto)
    }

    /// The PUBLISH of feature message `key` (its CBOR `payload`), QoS 1, with the content
    /// type in the property bag and as the MQTT 5 property, and an `alert` property
    /// naming any threshold the window exceeds.
    pub fn publish_feature(&mut self, key: u64, payload: Vec<u8>) -> Packet {
        let alerts = device::encode::cbor::decode(&payload)
            .map(|f| self.settings.thresholds.exceeded(&f))
            .unwrap_or_default();
        let alert = alerts.join(",");
        let mut properties = vec![("$.ct", FEATURES_CONTENT_TYPE)];
        if !alert.is_empty() {
            properties.push(("alert", alert.as_str()));
        }
        let topic = topics::telemetry(&self.device_id, &properties);
        let packet_id = self.next_packet_id();
        self.in_flight.insert(packet_id, Flight::Feature(key));
        self.sent_upto = Some(key);
        qos1(topic, FEATURES_CONTENT_TYPE, payload.into(), packet_id)
    }

    /// The PUBLISH of one capture chunk, QoS 1.
    pub fn publish_chunk(
        &mut self,
        properties: &[(&'static str, String)],
        payload: Vec<u8>,
    ) -> Packet {
        let mut bag = vec![("$.ct", crate::capture::CONTENT_TYPE)];
        bag.extend(properties.iter().map(|(k, v)| (*k, v.as_str())));
        let topic = topics::telemetry(&self.device_id, &bag);
        let packet_id = self.next_packet_id();
        self.in_flight.insert(packet_id, Flight::Chunk);
        qos1(
            topic,
            crate::capture::CONTENT_TYPE,
            payload.into(),
            packet_id,
        )
    }

    /// A PUBLISH from the hub: packets to send back and effects for the runtime.
    pub fn on_publish(&mut self, topic: &str, payload: &[u8]) -> (Vec<Packet>, Vec<Effect>) {
        match topics::parse_incoming(&self.device_id, topic) {
            Incoming::TwinResponse { status, rid } => self.on_twin_response(status, &rid, payload),
            Incoming::DesiredPatch => match serde_json::from_slice::<Value>(payload) {
                Ok(patch) => self.apply_desired(&patch, false),
                Err(_) => {
                    tracing::warn!("desired patch is not JSON; ignored");
                    (Vec::new(), Vec::new())
                }
            },
            Incoming::C2d { properties } => (Vec::new(), self.on_c2d(&properties, payload)),
            Incoming::Method { name, rid } => self.on_method(&name, &rid, payload),
            Incoming::Other => (Vec::new(), Vec::new()),
        }
    }

    fn on_twin_response(
        &mut self,
        status: u16,
        rid: &str,
        payload: &[u8],
    ) -> (Vec<Packet>, Vec<Effect>) {
        if self.pending_get.as_deref() != Some(rid) {
            if status >= 300 {
                tracing::warn!(status, rid, "hub refused a twin request");
            }
            return (Vec::new(), Vec::new());
        }
        self.pending_get = None;
        match serde_json::from_slice::<Value>(payload) {
            Ok(twin) if status == 200 => {
                let (packets, mut effects) = self.apply_desired(&twin["desired"], true);
                effects.push(Effect::TwinSynced);
                (packets, effects)
            }
            _ => {
                tracing::warn!(status, "twin GET failed; keeping the current settings");
                (Vec::new(), Vec::new())
            }
        }
    }

    /// Applies desired properties; reports and tells the runtime when something changed.
    /// `full`: the whole desired document (a twin GET), not a patch.
    fn apply_desired(&mut self, desired: &Value, full: bool) -> (Vec<Packet>, Vec<Effect>) {
        let applied = self.settings.apply_desired(desired, &self.defaults);
        if !applied.refused.is_empty() {
            tracing::warn!(refused = ?applied.refused, "desired properties refused");
        }
        let mut effects = Vec::new();
        if full || desired.get("firmware").is_some() {
            let value = desired.get("firmware").cloned().unwrap_or(Value::Null);
            effects.push(Effect::Firmware { value, full });
        }
        if !applied.changed {
            return (Vec::new(), effects);
        }
        tracing::info!(settings = ?self.settings, "settings changed by the twin");
        effects.insert(0, Effect::Settings(self.settings));
        (vec![self.report()], effects)
    }

    /// The reported-properties PATCH of the `firmware` property alone (update progress).
    pub fn report_firmware(&mut self, firmware: Value) -> Packet {
        let rid = self.next_rid();
        let body = json!({ "firmware": firmware }).to_string();
        control(topics::twin_report(rid), body.into())
    }

    fn on_c2d(&mut self, properties: &[(String, String)], payload: &[u8]) -> Vec<Effect> {
        match parse_command(payload) {
            Ok(Command::Capture(request)) => {
                let mid = properties
                    .iter()
                    .find_map(|(k, v)| (k == "$.mid" && !v.is_empty()).then(|| v.clone()));
                let id = mid.unwrap_or_else(|| {
                    self.captures += 1;
                    format!("{}-capture-{}", self.device_id, self.captures)
                });
                vec![Effect::Capture { id, request }]
            }
            Err(e) => {
                tracing::warn!(error = %e, "C2D message ignored");
                Vec::new()
            }
        }
    }

    /// Direct methods: `capture` takes the C2D command's body; anything else is 501.
    fn on_method(&mut self, name: &str, rid: &str, payload: &[u8]) -> (Vec<Packet>, Vec<Effect>) {
        let (status, body, effects) = match name {
            "capture" => match parse_command(payload) {
                Ok(Command::Capture(request)) => {
                    self.captures += 1;
                    let id = format!("{}-capture-{}", self.device_id, self.captures);
                    let body = json!({ "captureId": id });
                    (200, body, vec![Effect::Capture { id, request }])
                }
                Err(e) => (400, json!({ "error": e.to_string() }), Vec::new()),
            },
            _ => (501, json!({ "error": "unknown method" }), Vec::new()),
        };
        let answer = control(
            topics::method_response(status, rid),
            body.to_string().into(),
        );
        (vec![answer], effects)
    }

    /// The reported-properties PATCH of the current settings.
    fn report(&mut self) -> Packet {
        let rid = self.next_rid();
        let mut body = self.settings.reported(&self.firmware);
        body["buffer"] = json!({ "evicted": self.evicted });
        let body = body.to_string();
        control(topics::twin_report(rid), body.into())
    }

    fn next_rid(&mut self) -> u64 {
        self.rid += 1;
        self.rid
    }

    /// A packet id not in flight (ids wrap and skip 0).
    fn next_packet_id(&mut self) -> PacketId {
        loop {
            self.packet_id = self.packet_id.wrapping_add(1).max(1);
            if !self.in_flight.contains_key(&self.packet_id) {
                return self.packet_id;
            }
        }
    }
}

/// A QoS 0 request to the hub's `$iothub/` topics.
fn control(topic: String, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic,
        packet_id: None,
        properties: Properties::default(),
        payload,
    })
}

/// A QoS 1 telemetry PUBLISH with the MQTT 5 content type. Never DUP: every
/// connection starts clean, so a resent message is a new publication with a new id.
fn qos1(topic: String, content_type: &str, payload: Bytes, packet_id: PacketId) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic,
        packet_id: Some(packet_id),
        properties: Properties {
            content_type: Some(content_type.to_owned()),
            ..Properties::default()
        },
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Mode, DEFAULT_INTERVAL};
    use mqtt::ReasonCode;

    fn core() -> Core {
        Core::new("dev-1", "0.1.0", Settings::new(DEFAULT_INTERVAL))
    }

    fn topic_of(packet: &Packet) -> &str {
        match packet {
            Packet::Publish(p) => &p.topic,
            _ => "",
        }
    }

    #[test]
    fn connect_subscribes_gets_and_reports() {
        let mut core = core();
        let packets = core.on_connected(Some(100), 0);
        assert!(matches!(&packets[0], Packet::Subscribe(s) if s.subscriptions.len() == 4));
        assert_eq!(topic_of(&packets[1]), "$iothub/twin/GET/?$rid=1");
        assert_eq!(
            topic_of(&packets[2]),
            "$iothub/twin/PATCH/properties/reported/?$rid=2"
        );
        // The twin answer applies desired properties and reports them.
        let twin = br#"{"desired":{"interval_s":5,"mode":"alarm","$version":2},"reported":{}}"#;
        let (packets, effects) = core.on_publish("$iothub/twin/res/200/?$rid=1&$version=2", twin);
        assert_eq!(packets.len(), 1);
        assert!(matches!(
            &effects[..],
            [Effect::Settings(s), Effect::Firmware { value: Value::Null, full: true }, Effect::TwinSynced]
                if s.mode == Mode::Alarm
        ));
        // A stale answer does nothing.
        let (packets, effects) = core.on_publish("$iothub/twin/res/200/?$rid=1", twin);
        assert!(packets.is_empty() && effects.is_empty());
        let (_, effects) = core.on_publish(
            "$iothub/twin/PATCH/properties/desired/?$version=3",
            br#"{"window":2048,"$version":3}"#,
        );
        assert!(matches!(&effects[..], [Effect::Settings(s)] if s.window == 2048));
        let (_, effects) = core.on_publish(
            "$iothub/twin/PATCH/properties/desired/?$version=4",
            br#"{"firmware":{"rollBack":true},"$version":4}"#,
        );
        assert!(matches!(
            &effects[..],
            [Effect::Firmware { full: false, .. }]
        ));
    }

    #[test]
    fn features_leave_the_buffer_only_on_puback() {
        let mut core = core();
        core.on_connected(Some(2), 0);
        let keys = [10u64, 11, 12];
        let next = |after: Option<u64>| keys.iter().copied().find(|&k| after.is_none_or(|a| k > a));
        let mut ids = Vec::new();
        while let Some(key) = core.next_feature_key(next) {
            match core.publish_feature(key, vec![0xf6]) {
                Packet::Publish(p) => {
                    assert!(p
                        .topic
                        .ends_with("$.ct=application%2Fvnd.bosun.features%2Bcbor"));
                    assert_eq!(
                        p.properties.content_type.as_deref(),
                        Some(FEATURES_CONTENT_TYPE)
                    );
                    ids.push(p.packet_id.unwrap_or(0));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ids.len(), 2, "window of 2");
        assert_eq!(core.on_puback(ids[0], ReasonCode::SUCCESS), Some(10));
        assert_eq!(core.on_puback(ids[1], ReasonCode::QUOTA_EXCEEDED), None);
        assert_eq!(core.next_feature_key(next), Some(12));
        core.on_disconnected();
        core.on_connected(None, 0);
        assert_eq!(
            core.next_feature_key(next),
            Some(10),
            "resend from the oldest"
        );
    }

    #[test]
    fn c2d_capture_and_methods() {
        let mut core = core();
        let topic = hub::topics::c2d_topic("dev-1", &[("$.mid".into(), "m-7".into())]);
        let (_, effects) =
            core.on_publish(&topic, br#"{"cmd":"capture","rate_hz":10000,"seconds":30}"#);
        assert_eq!(
            effects,
            [Effect::Capture {
                id: "m-7".into(),
                request: CaptureRequest {
                    rate_hz: 10_000,
                    seconds: 30
                }
            }]
        );
        let (_, effects) = core.on_publish(&topic, b"not json");
        assert!(effects.is_empty());
        let (packets, effects) = core.on_publish(
            "$iothub/methods/POST/capture/?$rid=9",
            br#"{"cmd":"capture","rate_hz":1000,"seconds":2}"#,
        );
        assert_eq!(topic_of(&packets[0]), "$iothub/methods/res/200/?$rid=9");
        assert_eq!(effects.len(), 1);
        let (packets, _) = core.on_publish("$iothub/methods/POST/reboot/?$rid=10", b"{}");
        assert_eq!(topic_of(&packets[0]), "$iothub/methods/res/501/?$rid=10");
    }
}
