//! Packets to bytes: the public entry points of the encoder and its error type.
//!
//! This module owns the fixed header (first byte and remaining length); the bodies are
//! written by `codec::write`, once to measure them and once to emit them, so
//! [`encoded_len`] is exact by construction.

use bytes::BytesMut;
use thiserror::Error;

use crate::codec::sink::{Counter, Sink};
use crate::codec::{varint, write};
use crate::{Packet, ProtocolVersion, PublishView};

/// Why a packet cannot be written.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A field is out of the range the wire format can carry.
    #[error("cannot encode: {0}")]
    Invalid(&'static str),
}

/// Appends the encoding of `packet` for a connection speaking `version`.
///
/// Fields that do not exist in `version` (properties and reason codes on 3.1.1) and
/// properties the specification does not allow on this packet kind are left out. On
/// error nothing is appended.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let remaining = remaining_length(packet, version)?;
    buf.reserve(total_len(remaining));
    buf.put_u8(write::first_byte(packet));
    buf.put_varint(remaining)?;
    write::body(buf, packet, version)
}

/// Size in bytes of the whole encoded packet, to honour a peer's maximum packet size
/// without encoding first. A packet that [`encode`] would refuse measures `usize::MAX`,
/// so it fails every size check.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    remaining_length(packet, version).map_or(usize::MAX, total_len)
}

/// Appends a PUBLISH given as a borrowed view: the broker's per-subscriber path,
/// byte-for-byte what [`encode`] writes for the equivalent [`crate::Publish`].
pub fn encode_publish(
    publish: &PublishView<'_>,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let remaining = publish_remaining_length(publish, version)?;
    buf.reserve(total_len(remaining));
    buf.put_u8(write::publish::first_byte(publish));
    buf.put_varint(remaining)?;
    write::publish::publish(buf, publish, version)
}

/// [`encoded_len`] for a [`PublishView`].
pub fn publish_len(publish: &PublishView<'_>, version: ProtocolVersion) -> usize {
    publish_remaining_length(publish, version).map_or(usize::MAX, total_len)
}

fn publish_remaining_length(
    p: &PublishView<'_>,
    version: ProtocolVersion,
) -> Result<u32, EncodeError> {
    let mut counter = Counter::default();
    write::publish::publish(&mut counter, p, version)?;
    checked_remaining(counter.0)
}

/// Measures the body, which also runs every check [`encode`] would.
fn remaining_length(packet: &Packet, version: ProtocolVersion) -> Result<u32, EncodeError> {
    let mut counter = Counter::default();
    write::body(&mut counter, packet, version)?;
    checked_remaining(counter.0)
}

/// A body length as the remaining-length field, if the wire format can carry it.
fn checked_remaining(len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len)
        .ok()
        .filter(|&len| len <= varint::MAX)
        .ok_or(EncodeError::Invalid("packet larger than 268,435,455 bytes"))
}

/// First byte, remaining length and body.
fn total_len(remaining: u32) -> usize {
    1 + varint::len(remaining) + remaining as usize
}
