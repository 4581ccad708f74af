//! Bytes to packets: the public entry point of the decoder and its error type.
//!
//! This module owns framing: it reads the fixed header, enforces the receiver's
//! maximum packet size before the body is buffered, applies the "CONNECT first" rule,
//! and cuts one frame off the stream. Parsing the body is `codec::read`'s job.

use bytes::BytesMut;
use thiserror::Error;

use crate::codec::kind::Kind;
use crate::codec::read;
use crate::codec::reader::Reader;
use crate::codec::varint;
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
/// On error the connection must be closed; the offending frame may have been consumed.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = FixedHeader::parse(buf)? else {
        return Ok(None);
    };
    let size = header.frame_len();
    if size > max_packet_size {
        return Err(DecodeError::TooLarge {
            size,
            max: max_packet_size,
        });
    }
    let kind = Kind::from_first_byte(header.first_byte, version)?;
    if version.is_none() && kind != Kind::Connect {
        return Err(read::NOT_CONNECT);
    }
    if buf.len() < size {
        return Ok(None);
    }
    let mut frame = buf.split_to(size).freeze();
    let body = frame.split_off(header.len);
    read::packet(kind, header.first_byte & 0x0F, Reader::new(body), version).map(Some)
}

/// First byte and remaining length [MQTT-2.1.1], as far as they have arrived.
struct FixedHeader {
    first_byte: u8,
    /// Bytes of the fixed header itself (2 to 5).
    len: usize,
    /// The remaining length: bytes of the body.
    remaining: usize,
}

impl FixedHeader {
    /// `Ok(None)` until the whole remaining-length integer is buffered.
    fn parse(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
        let Some((&first_byte, rest)) = buf.split_first() else {
            return Ok(None);
        };
        let Some((remaining, used)) = varint::parse(rest)? else {
            return Ok(None);
        };
        let remaining = usize::try_from(remaining)
            .map_err(|_| DecodeError::Malformed("remaining length does not fit in memory"))?;
        Ok(Some(FixedHeader {
            first_byte,
            len: 1 + used,
            remaining,
        }))
    }

    /// Size of the whole packet; cannot overflow (at most 5 + 268,435,455).
    fn frame_len(&self) -> usize {
        self.len.saturating_add(self.remaining)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_header_consumes_nothing() {
        let mut buf = BytesMut::from(&[0x10u8, 0x80][..]);
        assert_eq!(decode(&mut buf, None, 1024).unwrap(), None);
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn too_large_is_reported_from_the_header() {
        // PUBLISH claiming 200 bytes, none of which have arrived.
        let mut buf = BytesMut::from(&[0x30u8, 0xC8, 0x01][..]);
        let err = decode(&mut buf, Some(ProtocolVersion::V5), 100).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                size: 203,
                max: 100
            }
        );
    }

    #[test]
    fn pingreq_round_trip() {
        let mut buf = BytesMut::from(&[0xC0u8, 0x00, 0xD0, 0x00][..]);
        let v = Some(ProtocolVersion::V311);
        assert_eq!(decode(&mut buf, v, 16).unwrap(), Some(Packet::PingReq));
        assert_eq!(decode(&mut buf, v, 16).unwrap(), Some(Packet::PingResp));
        assert!(buf.is_empty());
    }
}
