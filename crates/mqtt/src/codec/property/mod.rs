//! MQTT 5 properties on the wire (MQTT 5.0 §2.2.2): identifiers, which packet may carry
//! which property (§2.2.2.2), and which properties may repeat. Reading lives in
//! `read.rs`, writing in `write.rs`; both consult the tables here so the encoder never
//! writes a property the decoder would refuse.

mod read;
mod write;

pub(crate) use read::read;
pub(crate) use write::write;

pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub(crate) const CONTENT_TYPE: u8 = 0x03;
pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
pub(crate) const CORRELATION_DATA: u8 = 0x09;
pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
pub(crate) const REASON_STRING: u8 = 0x1F;
pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub(crate) const TOPIC_ALIAS: u8 = 0x23;
pub(crate) const MAXIMUM_QOS: u8 = 0x24;
pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
pub(crate) const USER_PROPERTY: u8 = 0x26;
pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// Which property block is being read or written; decides the allowed identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
    Ack,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Auth,
}

/// Bit of a property identifier in a mask (all identifiers are below 64).
const fn bit(id: u8) -> u64 {
    1 << id
}

/// Builds a mask from a list of identifiers.
const fn mask(ids: &[u8]) -> u64 {
    let mut m = 0;
    let mut i = 0;
    while i < ids.len() {
        m |= bit(ids[i]);
        i += 1;
    }
    m
}

const CONNECT: u64 = mask(&[
    SESSION_EXPIRY_INTERVAL,
    RECEIVE_MAXIMUM,
    MAXIMUM_PACKET_SIZE,
    TOPIC_ALIAS_MAXIMUM,
    REQUEST_RESPONSE_INFORMATION,
    REQUEST_PROBLEM_INFORMATION,
    USER_PROPERTY,
    AUTHENTICATION_METHOD,
    AUTHENTICATION_DATA,
]);
const WILL: u64 = mask(&[
    WILL_DELAY_INTERVAL,
    PAYLOAD_FORMAT_INDICATOR,
    MESSAGE_EXPIRY_INTERVAL,
    CONTENT_TYPE,
    RESPONSE_TOPIC,
    CORRELATION_DATA,
    USER_PROPERTY,
]);
const CONNACK: u64 = mask(&[
    SESSION_EXPIRY_INTERVAL,
    RECEIVE_MAXIMUM,
    MAXIMUM_QOS,
    RETAIN_AVAILABLE,
    MAXIMUM_PACKET_SIZE,
    ASSIGNED_CLIENT_IDENTIFIER,
    TOPIC_ALIAS_MAXIMUM,
    REASON_STRING,
    USER_PROPERTY,
    WILDCARD_SUBSCRIPTION_AVAILABLE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE,
    SHARED_SUBSCRIPTION_AVAILABLE,
    SERVER_KEEP_ALIVE,
    RESPONSE_INFORMATION,
    SERVER_REFERENCE,
    AUTHENTICATION_METHOD,
    AUTHENTICATION_DATA,
]);
const PUBLISH: u64 = mask(&[
    PAYLOAD_FORMAT_INDICATOR,
    MESSAGE_EXPIRY_INTERVAL,
    TOPIC_ALIAS,
    RESPONSE_TOPIC,
    CORRELATION_DATA,
    USER_PROPERTY,
    SUBSCRIPTION_IDENTIFIER,
    CONTENT_TYPE,
]);
const ACK: u64 = mask(&[REASON_STRING, USER_PROPERTY]);
const SUBSCRIBE: u64 = mask(&[SUBSCRIPTION_IDENTIFIER, USER_PROPERTY]);
const UNSUBSCRIBE: u64 = mask(&[USER_PROPERTY]);
const DISCONNECT: u64 = mask(&[
    SESSION_EXPIRY_INTERVAL,
    REASON_STRING,
    USER_PROPERTY,
    SERVER_REFERENCE,
]);
const AUTH: u64 = mask(&[
    AUTHENTICATION_METHOD,
    AUTHENTICATION_DATA,
    REASON_STRING,
    USER_PROPERTY,
]);

impl Context {
    /// Whether property `id` may appear in this block.
    pub(crate) fn allows(self, id: u8) -> bool {
        let allowed = match self {
            Context::Connect => CONNECT,
            Context::Will => WILL,
            Context::ConnAck => CONNACK,
            Context::Publish => PUBLISH,
            Context::Ack => ACK,
            Context::Subscribe => SUBSCRIBE,
            Context::Unsubscribe => UNSUBSCRIBE,
            Context::Disconnect => DISCONNECT,
            Context::Auth => AUTH,
        };
        id < 64 && allowed & bit(id) != 0
    }

    /// Whether property `id` may appear more than once here: user properties anywhere,
    /// subscription identifiers only in PUBLISH [MQTT-3.3.4-4], [MQTT-3.8.2.1.2].
    pub(crate) fn repeats(self, id: u8) -> bool {
        id == USER_PROPERTY || (id == SUBSCRIPTION_IDENTIFIER && self == Context::Publish)
    }
}
