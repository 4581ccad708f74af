//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.

use alloc::{string::String, vec::Vec};

use super::{PacketId, QoS};
use crate::{Properties, ReasonCode};

/// A client's request to add one or more subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Identifier echoed by SUBACK.
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.8.3-2].
    pub subscriptions: Vec<Subscription>,
    /// v5 properties (subscription identifier, user properties).
    pub properties: Properties,
}

/// One topic filter with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Topic filter, possibly `$share/{group}/{filter}`.
    pub filter: String,
    /// Maximum QoS and the v5 flags.
    pub options: SubscriptionOptions,
}

/// Per-filter options of SUBSCRIBE; only `qos` exists in 3.1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the client accepts on this filter.
    pub qos: QoS,
    /// v5: do not send the client its own messages.
    pub no_local: bool,
    /// v5: keep the RETAIN flag as published instead of clearing it.
    pub retain_as_published: bool,
    /// v5: when to send retained messages at subscribe time.
    pub retain_handling: RetainHandling,
}

/// When retained messages are sent for a new subscription (v5 option bits 4-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// 0: always send retained messages at subscribe time.
    #[default]
    OnSubscribe,
    /// 1: only if the subscription did not exist before.
    OnNewSubscribe,
    /// 2: never.
    Never,
}

/// The server's answer to SUBSCRIBE, one code per filter in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    /// Identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// Granted QoS (0x00..=0x02) or a failure code (>= 0x80) per filter.
    pub codes: Vec<ReasonCode>,
    /// v5 properties (reason string, user properties).
    pub properties: Properties,
}

/// A client's request to remove subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Identifier echoed by UNSUBACK.
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.10.3-2].
    pub filters: Vec<String>,
    /// v5 properties (user properties).
    pub properties: Properties,
}

/// The server's answer to UNSUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    /// Identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// v5: one code per filter; empty on 3.1.1, which has no payload here.
    pub codes: Vec<ReasonCode>,
    /// v5 properties (reason string, user properties).
    pub properties: Properties,
}
