//! Helpers shared by the integration tests: hex vectors in, decoded packets out, and
//! the decode-encode-decode check every valid input must pass.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::BytesMut;
use mqtt::{decode, encode, encoded_len, DecodeError, Packet, ProtocolVersion};

/// Generous limit for tests that are not about the maximum packet size.
pub(crate) const MAX: usize = 1 << 20;

/// Bytes from hex text; whitespace is ignored so vectors can be laid out by field.
pub(crate) fn hex(text: &str) -> BytesMut {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect::<Vec<u8>>()
        .as_slice()
        .into()
}

/// Decodes exactly one packet from `text` and checks that nothing is left over.
pub(crate) fn decode_one(
    text: &str,
    version: Option<ProtocolVersion>,
) -> Result<Packet, DecodeError> {
    let mut buf = hex(text);
    let packet = decode(&mut buf, version, MAX)?.expect("vector is a whole packet");
    assert!(buf.is_empty(), "vector holds more than one packet");
    Ok(packet)
}

/// The error decoding `text` yields.
pub(crate) fn decode_err(text: &str, version: Option<ProtocolVersion>) -> DecodeError {
    decode_one(text, version).unwrap_err()
}

/// Encodes `packet`, checking `encoded_len` against the bytes written.
pub(crate) fn encode_checked(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).unwrap();
    assert_eq!(
        encoded_len(packet, version),
        buf.len(),
        "encoded_len of {packet:?}"
    );
    buf
}

/// The version to decode an encoding of `packet` with: CONNECT is read before any
/// version is known.
pub(crate) fn reading_version(
    packet: &Packet,
    version: ProtocolVersion,
) -> Option<ProtocolVersion> {
    match packet {
        Packet::Connect(_) => None,
        _ => Some(version),
    }
}

/// Re-encodes a decoded packet and decodes it again: the result must be identical.
pub(crate) fn assert_reencodes(packet: &Packet, version: ProtocolVersion) {
    let mut buf = encode_checked(packet, version);
    let again = decode(&mut buf, reading_version(packet, version), MAX)
        .unwrap()
        .unwrap();
    assert_eq!(&again, packet);
    assert!(buf.is_empty());
}
