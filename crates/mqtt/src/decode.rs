//! Bytes to packets. (Implementation in progress.)

use bytes::BytesMut;
use thiserror::Error;

use crate::{Packet, ProtocolVersion, ReasonCode};

/// Why a byte stream could not be read as MQTT; each maps to the reason code the
/// server sends in DISCONNECT (v5) before closing.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes violate the packet grammar.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The bytes parse but break a protocol rule.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The packet is larger than the receiver's maximum packet size.
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Declared size of the whole packet.
        size: usize,
        /// Limit in force.
        max: usize,
    },
    /// CONNECT names a protocol this crate does not speak.
    #[error("unsupported protocol level {0}")]
    UnsupportedVersion(u8),
    /// A PUBLISH topic name is invalid (wildcards, empty without alias, U+0000…).
    #[error("invalid topic name")]
    TopicName,
}

impl DecodeError {
    /// The reason code to report this error with.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) => ReasonCode::MALFORMED_PACKET,
            DecodeError::Protocol(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::TooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedVersion(_) => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::TopicName => ReasonCode::TOPIC_NAME_INVALID,
        }
    }
}

/// Takes one whole packet off the front of `buf`.
///
/// Returns `Ok(None)` while the packet is incomplete (nothing is consumed). `version` is
/// `None` until CONNECT has been read: then only CONNECT is accepted. `max_packet_size`
/// is checked from the fixed header alone, before the body is buffered or parsed.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let _ = (buf, version, max_packet_size);
    Err(DecodeError::Malformed("decoder not implemented yet"))
}
