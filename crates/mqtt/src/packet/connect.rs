//! CONNECT and CONNACK: the handshake that fixes the protocol version, the session
//! and the limits both sides promise to respect.

use alloc::string::String;
use bytes::Bytes;

use super::{ProtocolVersion, QoS};
use crate::{Properties, ReasonCode};

/// A client's request to open (or resume) a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// Version the client speaks; every later packet is read with it.
    pub protocol: ProtocolVersion,
    /// 3.1.1 "clean session" / 5.0 "clean start".
    pub clean_start: bool,
    /// Seconds; 0 disables keep-alive.
    pub keep_alive: u16,
    /// May be empty: the server then assigns one (v5) or requires clean session (3.1.1).
    pub client_id: String,
    /// Message to publish if the connection dies without a clean DISCONNECT.
    pub will: Option<Will>,
    /// Credentials, if any.
    pub username: Option<String>,
    /// Binary credential; MQTT allows arbitrary bytes.
    pub password: Option<Bytes>,
    /// v5 CONNECT properties (session expiry, receive maximum, maximum packet size…).
    pub properties: Properties,
}

/// Last Will: published by the server on the client's behalf after an abrupt loss.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Topic name of the will message.
    pub topic: String,
    /// Payload of the will message.
    pub payload: Bytes,
    /// QoS the will is published with.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// v5 will properties (will delay interval, expiry, content type, user properties…).
    pub properties: Properties,
}

/// The server's answer to CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    /// The server had state for this client id and resumed it.
    pub session_present: bool,
    /// v5 reason code; for 3.1.1 the encoder maps it to a return code 0..=5.
    pub code: ReasonCode,
    /// v5 CONNACK properties (assigned client id, server keep alive, limits…).
    pub properties: Properties,
}
