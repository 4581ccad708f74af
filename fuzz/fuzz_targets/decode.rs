//! Fuzz target for the MQTT decoder: arbitrary bytes, read as a stream by a fresh
//! connection (CONNECT expected), an MQTT 3.1.1 one and an MQTT 5 one, must never
//! panic; every packet that decodes must re-encode to something that decodes to the
//! same packet, with `encoded_len` equal to the bytes written.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt::{decode, encode, encoded_len, Packet, ProtocolVersion};

/// Large enough never to be the reason a fuzz input is rejected.
const MAX_PACKET_SIZE: usize = 1 << 24;

fuzz_target!(|data: &[u8]| {
    for version in [None, Some(ProtocolVersion::V311), Some(ProtocolVersion::V5)] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decode(&mut buf, version, MAX_PACKET_SIZE) {
            check_reencodes(&packet, version);
        }
    }
});

/// decode(encode(p)) == p, and encoded_len(p) is the number of bytes encode wrote.
fn check_reencodes(packet: &Packet, version: Option<ProtocolVersion>) {
    let (encode_as, read_as) = match (packet, version) {
        (Packet::Connect(c), _) => (c.protocol, None),
        (_, Some(v)) => (v, Some(v)),
        (_, None) => panic!("{} decoded before CONNECT", packet.name()),
    };
    let mut buf = BytesMut::new();
    if let Err(err) = encode(packet, encode_as, &mut buf) {
        panic!("decoded {packet:?} but cannot encode it: {err}");
    }
    assert_eq!(
        encoded_len(packet, encode_as),
        buf.len(),
        "encoded_len of {packet:?}"
    );
    let again = decode(&mut buf, read_as, MAX_PACKET_SIZE);
    assert_eq!(
        again,
        Ok(Some(packet.clone())),
        "re-encoding changed the packet"
    );
    assert!(buf.is_empty(), "re-encoding left bytes behind");
}
