//! Packets to bytes. (Implementation in progress.)

use bytes::BytesMut;
use thiserror::Error;

use crate::{Packet, ProtocolVersion};

/// Why a packet cannot be written.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A field is out of the range the wire format can carry.
    #[error("cannot encode: {0}")]
    Invalid(&'static str),
}

/// Appends the encoding of `packet` for a connection speaking `version`.
pub fn encode(packet: &Packet, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let _ = (packet, version, buf);
    Err(EncodeError::Invalid("encoder not implemented yet"))
}

/// Size in bytes of the whole encoded packet, to honour a peer's maximum packet size
/// without encoding first.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let _ = (packet, version);
    0
}
