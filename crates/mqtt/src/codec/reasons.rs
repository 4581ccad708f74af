//! Which MQTT 5 reason codes each packet may carry (MQTT 5.0 §3.2.2.2, §3.4.2.1,
//! §3.5.2.1, §3.6.2.1, §3.7.2.1, §3.9.3, §3.11.3, §3.14.2.1, §3.15.2.1), and the
//! MQTT 3.1.1 return codes that map onto them. Shared by the decoder (which rejects
//! other values as malformed) and the encoder (which refuses to send them).

use crate::{DecodeError, EncodeError, ReasonCode};

/// Packets that carry a reason code; PUBACK/PUBREC and PUBREL/PUBCOMP share a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codes {
    ConnAck,
    PubAckRec,
    PubRelComp,
    SubAck,
    UnsubAck,
    Disconnect,
    Auth,
}

const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_PUBREC: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_PUBCOMP: &[u8] = &[0x00, 0x92];
const SUBACK: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

/// MQTT 3.1.1 CONNACK return codes 0..=5, by value (MQTT 3.1.1 §3.2.2.3).
const CONNACK_V311: [ReasonCode; 6] = [
    ReasonCode::SUCCESS,
    ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
    ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
    ReasonCode::SERVER_UNAVAILABLE,
    ReasonCode::BAD_USER_NAME_OR_PASSWORD,
    ReasonCode::NOT_AUTHORIZED,
];

impl Codes {
    fn allowed(self) -> &'static [u8] {
        match self {
            Codes::ConnAck => CONNACK,
            Codes::PubAckRec => PUBACK_PUBREC,
            Codes::PubRelComp => PUBREL_PUBCOMP,
            Codes::SubAck => SUBACK,
            Codes::UnsubAck => UNSUBACK,
            Codes::Disconnect => DISCONNECT,
            Codes::Auth => AUTH,
        }
    }

    /// Decoder side: a v5 reason code byte not allowed on this packet is malformed.
    pub(crate) fn check(self, byte: u8) -> Result<ReasonCode, DecodeError> {
        if self.allowed().contains(&byte) {
            Ok(ReasonCode(byte))
        } else {
            Err(DecodeError::Malformed(
                "reason code not allowed on this packet",
            ))
        }
    }

    /// Encoder side: refuse to write a reason code the peer would reject.
    pub(crate) fn check_encode(self, code: ReasonCode) -> Result<u8, EncodeError> {
        if self.allowed().contains(&code.0) {
            Ok(code.0)
        } else {
            Err(EncodeError::Invalid(
                "reason code not allowed on this packet",
            ))
        }
    }
}

/// Maps an MQTT 3.1.1 CONNACK return code to its MQTT 5 reason code.
pub(crate) fn connack_v311(byte: u8) -> Result<ReasonCode, DecodeError> {
    CONNACK_V311
        .get(usize::from(byte))
        .copied()
        .ok_or(DecodeError::Malformed(
            "CONNACK return code above 5 [MQTT-3.2.2.3]",
        ))
}

/// Maps an MQTT 3.1.1 SUBACK return code (granted QoS or 0x80) [MQTT-3.9.3-2].
pub(crate) fn suback_v311(byte: u8) -> Result<ReasonCode, DecodeError> {
    match byte {
        0..=2 => Ok(ReasonCode(byte)),
        0x80 => Ok(ReasonCode::UNSPECIFIED_ERROR),
        _ => Err(DecodeError::Malformed(
            "SUBACK return code not 0, 1, 2 or 0x80 [MQTT-3.9.3-2]",
        )),
    }
}
