//! MQTT 5 properties.
//!
//! One struct serves every packet kind; the decoder rejects a property that the
//! specification does not allow on the packet it came with (a protocol error), so code
//! that reads a `Properties` only sees the fields that make sense there. On MQTT 3.1.1
//! connections every field stays empty.

use alloc::{string::String, vec::Vec};
use bytes::Bytes;

/// All MQTT 5 properties; `None`/empty means "absent" (the specification's default applies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01: 1 means the payload is UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// 0x02: seconds the message may wait before delivery.
    pub message_expiry_interval: Option<u32>,
    /// 0x03: MIME type of the payload.
    pub content_type: Option<String>,
    /// 0x08: topic for a response (request/response pattern).
    pub response_topic: Option<String>,
    /// 0x09: lets the requester match a response to its request.
    pub correlation_data: Option<Bytes>,
    /// 0x0B: subscription identifiers (one in SUBSCRIBE, any number in PUBLISH).
    pub subscription_identifiers: Vec<u32>,
    /// 0x11: seconds the session outlives the connection.
    pub session_expiry_interval: Option<u32>,
    /// 0x12: client id chosen by the server for an empty one.
    pub assigned_client_identifier: Option<String>,
    /// 0x13: keep-alive the server imposes.
    pub server_keep_alive: Option<u16>,
    /// 0x15: enhanced authentication method.
    pub authentication_method: Option<String>,
    /// 0x16: enhanced authentication data.
    pub authentication_data: Option<Bytes>,
    /// 0x17: 0 asks the server to leave reason strings and user properties out of errors.
    pub request_problem_information: Option<u8>,
    /// 0x18: seconds to wait before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// 0x19: asks the server for response information.
    pub request_response_information: Option<u8>,
    /// 0x1A: basis for response topics.
    pub response_information: Option<String>,
    /// 0x1C: another server to use.
    pub server_reference: Option<String>,
    /// 0x1F: human-readable diagnostic.
    pub reason_string: Option<String>,
    /// 0x21: how many QoS 1/2 messages the sender of this property accepts in flight.
    pub receive_maximum: Option<u16>,
    /// 0x22: highest topic alias the sender of this property accepts.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: topic alias of this PUBLISH.
    pub topic_alias: Option<u16>,
    /// 0x24: highest QoS the server supports.
    pub maximum_qos: Option<u8>,
    /// 0x25: whether retained messages are supported.
    pub retain_available: Option<u8>,
    /// 0x26: application key/value pairs, order and duplicates preserved.
    pub user_properties: Vec<(String, String)>,
    /// 0x27: largest packet the sender of this property accepts.
    pub maximum_packet_size: Option<u32>,
    /// 0x28: whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29: whether subscription identifiers are supported.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A: whether shared subscriptions are supported.
    pub shared_subscription_available: Option<u8>,
}

impl Properties {
    /// True when no property is set, so the encoder writes a zero length.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}
