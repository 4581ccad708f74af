//! Packet bodies to [`Packet`]s: one module per packet family, dispatched on the
//! control packet type. Each reader consumes exactly its fields; the dispatcher then
//! insists that nothing is left over.

mod ack;
mod connect;
mod publish;
mod subscribe;

use alloc::boxed::Box;

use super::kind::Kind;
use super::property::{self, Context};
use super::reader::Reader;
use super::reasons::Codes;
use crate::{DecodeError, Packet, Properties, ProtocolVersion};

/// Error for anything but CONNECT before the protocol version is known [MQTT-3.1.0-1].
pub(crate) const NOT_CONNECT: DecodeError = DecodeError::Protocol("first packet must be CONNECT");

/// Parses the body of a packet of type `kind` whose first byte had `flags` in its low
/// nibble. `version` is `None` before CONNECT, when only CONNECT is accepted.
pub(crate) fn packet(
    kind: Kind,
    flags: u8,
    mut r: Reader,
    version: Option<ProtocolVersion>,
) -> Result<Packet, DecodeError> {
    let packet = match (kind, version) {
        (Kind::Connect, _) => Packet::Connect(Box::new(connect::connect(&mut r)?)),
        (_, None) => return Err(NOT_CONNECT),
        (_, Some(v)) => after_connect(kind, flags, &mut r, v)?,
    };
    r.finish()?;
    Ok(packet)
}

/// Every packet type but CONNECT, read with the negotiated version.
fn after_connect(
    kind: Kind,
    flags: u8,
    r: &mut Reader,
    v: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    Ok(match kind {
        Kind::Connect => Packet::Connect(Box::new(connect::connect(r)?)),
        Kind::ConnAck => Packet::ConnAck(connect::connack(r, v)?),
        Kind::Publish => Packet::Publish(publish::publish(flags, r, v)?),
        Kind::PubAck => Packet::PubAck(ack::ack(r, v, Codes::PubAckRec)?),
        Kind::PubRec => Packet::PubRec(ack::ack(r, v, Codes::PubAckRec)?),
        Kind::PubRel => Packet::PubRel(ack::ack(r, v, Codes::PubRelComp)?),
        Kind::PubComp => Packet::PubComp(ack::ack(r, v, Codes::PubRelComp)?),
        Kind::Subscribe => Packet::Subscribe(subscribe::subscribe(r, v)?),
        Kind::SubAck => Packet::SubAck(subscribe::suback(r, v)?),
        Kind::Unsubscribe => Packet::Unsubscribe(subscribe::unsubscribe(r, v)?),
        Kind::UnsubAck => Packet::UnsubAck(subscribe::unsuback(r, v)?),
        Kind::PingReq => Packet::PingReq,
        Kind::PingResp => Packet::PingResp,
        Kind::Disconnect => Packet::Disconnect(ack::disconnect(r, v)?),
        Kind::Auth => Packet::Auth(ack::auth(r)?),
    })
}

/// A property block on MQTT 5; nothing on 3.1.1, which has no properties.
fn properties(r: &mut Reader, v: ProtocolVersion, ctx: Context) -> Result<Properties, DecodeError> {
    match v {
        ProtocolVersion::V311 => Ok(Properties::default()),
        ProtocolVersion::V5 => property::read(r, ctx),
    }
}
