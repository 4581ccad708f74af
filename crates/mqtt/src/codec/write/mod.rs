//! [`Packet`]s to bytes: the first byte, and one body writer per packet family.
//!
//! Writers are generic over [`Sink`] so the same code yields both the bytes and their
//! exact count; every check that can fail runs in both passes, so a packet that
//! measures successfully also writes successfully.

mod ack;
mod connect;
pub(crate) mod publish;
mod subscribe;

use super::kind::Kind;
use super::property::{self, Context};
use super::reasons::Codes;
use super::sink::Sink;
use crate::{EncodeError, Packet, PacketId, Properties, ProtocolVersion};

/// The first byte: packet type and flags.
pub(crate) fn first_byte(packet: &Packet) -> u8 {
    match packet {
        Packet::Publish(p) => publish::first_byte(&p.view()),
        other => Kind::of(other).first_byte(),
    }
}

/// Writes everything after the remaining length.
pub(crate) fn body<S: Sink>(
    s: &mut S,
    packet: &Packet,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(c) => connect::connect(s, c, v),
        Packet::ConnAck(c) => connect::connack(s, c, v),
        Packet::Publish(p) => publish::publish(s, &p.view(), v),
        Packet::PubAck(a) | Packet::PubRec(a) => ack::ack(s, a, v, Codes::PubAckRec),
        Packet::PubRel(a) | Packet::PubComp(a) => ack::ack(s, a, v, Codes::PubRelComp),
        Packet::Subscribe(x) => subscribe::subscribe(s, x, v),
        Packet::SubAck(x) => subscribe::suback(s, x, v),
        Packet::Unsubscribe(x) => subscribe::unsubscribe(s, x, v),
        Packet::UnsubAck(x) => subscribe::unsuback(s, x, v),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(d) => ack::disconnect(s, d, v),
        Packet::Auth(a) => ack::auth(s, a, v),
    }
}

/// A property block on MQTT 5; nothing on 3.1.1.
fn properties<S: Sink>(
    s: &mut S,
    props: &Properties,
    v: ProtocolVersion,
    ctx: Context,
) -> Result<(), EncodeError> {
    match v {
        ProtocolVersion::V311 => Ok(()),
        ProtocolVersion::V5 => property::write(s, props, ctx),
    }
}

/// Writes a packet identifier, which must be non-zero [MQTT-2.2.1-3].
fn packet_id<S: Sink>(s: &mut S, id: PacketId) -> Result<(), EncodeError> {
    if id == 0 {
        return Err(EncodeError::Invalid("packet identifier 0"));
    }
    s.put_u16(id);
    Ok(())
}
