//! The control packet type in the high nibble of the first byte, and the flag bits
//! each type requires in the low nibble (MQTT 5.0 §2.1.3, MQTT 3.1.1 §2.2.2).

use crate::{DecodeError, Packet, ProtocolVersion};

/// Control packet type, numbered as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl Kind {
    /// Reads and checks the first byte of a packet.
    ///
    /// Type 0 is reserved, and so is 15 on an MQTT 3.1.1 connection (it became AUTH in
    /// 5.0). Flags other than PUBLISH's are fixed [MQTT-2.2.2-1], [MQTT-2.2.2-2].
    pub(crate) fn from_first_byte(
        byte: u8,
        version: Option<ProtocolVersion>,
    ) -> Result<Kind, DecodeError> {
        let kind = Kind::from_type(byte >> 4)?;
        if kind == Kind::Auth && version == Some(ProtocolVersion::V311) {
            return Err(DecodeError::Malformed(
                "packet type 15 is reserved in MQTT 3.1.1",
            ));
        }
        match kind.fixed_flags() {
            Some(flags) if byte & 0x0F != flags => Err(DecodeError::Malformed(
                "invalid fixed header flags [MQTT-2.2.2-2]",
            )),
            _ => Ok(kind),
        }
    }

    /// The type of `packet`.
    pub(crate) fn of(packet: &Packet) -> Kind {
        match packet {
            Packet::Connect(_) => Kind::Connect,
            Packet::ConnAck(_) => Kind::ConnAck,
            Packet::Publish(_) => Kind::Publish,
            Packet::PubAck(_) => Kind::PubAck,
            Packet::PubRec(_) => Kind::PubRec,
            Packet::PubRel(_) => Kind::PubRel,
            Packet::PubComp(_) => Kind::PubComp,
            Packet::Subscribe(_) => Kind::Subscribe,
            Packet::SubAck(_) => Kind::SubAck,
            Packet::Unsubscribe(_) => Kind::Unsubscribe,
            Packet::UnsubAck(_) => Kind::UnsubAck,
            Packet::PingReq => Kind::PingReq,
            Packet::PingResp => Kind::PingResp,
            Packet::Disconnect(_) => Kind::Disconnect,
            Packet::Auth(_) => Kind::Auth,
        }
    }

    /// The first byte of every packet of this type except PUBLISH, whose flags vary.
    pub(crate) fn first_byte(self) -> u8 {
        ((self as u8) << 4) | self.fixed_flags().unwrap_or(0)
    }

    /// Required low nibble; `None` for PUBLISH, whose flags carry DUP, QoS and RETAIN.
    fn fixed_flags(self) -> Option<u8> {
        match self {
            Kind::Publish => None,
            Kind::PubRel | Kind::Subscribe | Kind::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }

    fn from_type(ty: u8) -> Result<Kind, DecodeError> {
        const TYPES: [Kind; 15] = [
            Kind::Connect,
            Kind::ConnAck,
            Kind::Publish,
            Kind::PubAck,
            Kind::PubRec,
            Kind::PubRel,
            Kind::PubComp,
            Kind::Subscribe,
            Kind::SubAck,
            Kind::Unsubscribe,
            Kind::UnsubAck,
            Kind::PingReq,
            Kind::PingResp,
            Kind::Disconnect,
            Kind::Auth,
        ];
        usize::from(ty)
            .checked_sub(1)
            .and_then(|i| TYPES.get(i))
            .copied()
            .ok_or(DecodeError::Malformed("packet type 0 is reserved"))
    }
}
