//! Property tests of the codec: every valid packet of both versions survives
//! encode-then-decode unchanged with an exact `encoded_len`, a packet split anywhere
//! is reported incomplete until its last byte arrives, and no input makes the decoder
//! panic.
#![allow(clippy::unwrap_used)]

mod common;
mod strategy;

use bytes::BytesMut;
use common::{encode_checked, reading_version, MAX};
use mqtt::{decode, Packet, ProtocolVersion};
use proptest::prelude::*;
use proptest::sample::select;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

fn version() -> impl Strategy<Value = ProtocolVersion> {
    select(&VERSIONS[..])
}

fn versioned_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(|v| (Just(v), strategy::packet(v)))
}

fn packet_stream() -> impl Strategy<Value = (ProtocolVersion, Vec<Packet>)> {
    version().prop_flat_map(|v| {
        (
            Just(v),
            proptest::collection::vec(strategy::packet(v), 1..5),
        )
    })
}

/// Decodes until the buffer is exhausted, incomplete or rejected; must not panic.
fn drain(bytes: &[u8], version: Option<ProtocolVersion>) {
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(_)) = decode(&mut buf, version, MAX) {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_inverts_encode((v, packet) in versioned_packet()) {
        let mut buf = encode_checked(&packet, v);
        let decoded = decode(&mut buf, reading_version(&packet, v), MAX).unwrap();
        prop_assert_eq!(decoded, Some(packet));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn publish_view_encodes_like_the_packet((v, packet) in versioned_packet()) {
        if let Packet::Publish(p) = &packet {
            let mut whole = BytesMut::new();
            mqtt::encode(&packet, v, &mut whole).unwrap();
            let mut viewed = BytesMut::new();
            mqtt::encode_publish(&p.view(), v, &mut viewed).unwrap();
            prop_assert_eq!(&whole, &viewed);
            prop_assert_eq!(mqtt::publish_len(&p.view(), v), whole.len());
        }
    }

    #[test]
    fn connect_decodes_on_an_open_connection_too((v, packet) in versioned_packet()) {
        let mut buf = encode_checked(&packet, v);
        let decoded = decode(&mut buf, Some(v), MAX).unwrap();
        prop_assert_eq!(decoded, Some(packet));
    }

    #[test]
    fn split_anywhere_is_incomplete_until_whole((v, packet) in versioned_packet()) {
        let bytes = encode_checked(&packet, v);
        let version = reading_version(&packet, v);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            prop_assert_eq!(decode(&mut buf, version, MAX).unwrap(), None);
            prop_assert_eq!(buf.len(), cut, "an incomplete packet must not be consumed");
            buf.extend_from_slice(&bytes[cut..]);
            prop_assert_eq!(decode(&mut buf, version, MAX).unwrap(), Some(packet.clone()));
        }
    }

    #[test]
    fn back_to_back_packets_decode_in_order((v, packets) in packet_stream()) {
        let mut buf = BytesMut::new();
        for p in &packets {
            buf.extend_from_slice(&encode_checked(p, v));
        }
        for p in &packets {
            let decoded = decode(&mut buf, Some(v), MAX).unwrap();
            prop_assert_eq!(decoded.as_ref(), Some(p));
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn limit_is_exact((v, packet) in versioned_packet()) {
        let bytes = encode_checked(&packet, v);
        let version = Some(v);
        let mut at_limit = bytes.clone();
        prop_assert!(decode(&mut at_limit, version, bytes.len()).unwrap().is_some());
        let mut over = bytes.clone();
        let too_large = matches!(decode(&mut over, version, bytes.len() - 1), Err(mqtt::DecodeError::TooLarge { .. }));
        prop_assert!(too_large);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        drain(&bytes, None);
        drain(&bytes, Some(ProtocolVersion::V311));
        drain(&bytes, Some(ProtocolVersion::V5));
    }

    #[test]
    fn mutated_packets_never_panic(
        (v, packet) in versioned_packet(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        keep in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode_checked(&packet, v).to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(keep.index(bytes.len() + 1));
        for version in [None, Some(ProtocolVersion::V311), Some(ProtocolVersion::V5)] {
            let mut buf = BytesMut::from(&bytes[..]);
            if let Ok(Some(decoded)) = decode(&mut buf, version, MAX) {
                common::assert_reencodes(&decoded, reading_version_of(&decoded, version.unwrap_or(v)));
            }
        }
    }
}

/// The version a decoded packet re-encodes with: CONNECT carries its own.
fn reading_version_of(packet: &Packet, fallback: ProtocolVersion) -> ProtocolVersion {
    match packet {
        Packet::Connect(c) => c.protocol,
        _ => fallback,
    }
}
