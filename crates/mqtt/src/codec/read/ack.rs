//! Reading the packets made of an optional reason code and optional properties:
//! PUBACK, PUBREC, PUBREL, PUBCOMP (after a packet identifier), DISCONNECT and AUTH
//! (MQTT 5.0 §3.4-3.7, §3.14, §3.15).

use super::{property, Context, Reader};
use crate::codec::reasons::Codes;
use crate::{Ack, Auth, DecodeError, Disconnect, Properties, ProtocolVersion, ReasonCode};

/// PUBACK, PUBREC, PUBREL or PUBCOMP; on 3.1.1 only the packet identifier exists.
pub(super) fn ack(r: &mut Reader, v: ProtocolVersion, codes: Codes) -> Result<Ack, DecodeError> {
    let packet_id = r.packet_id()?;
    let (code, properties) = match v {
        ProtocolVersion::V311 => (ReasonCode::SUCCESS, Properties::default()),
        ProtocolVersion::V5 => tail(r, codes, Context::Ack)?,
    };
    Ok(Ack {
        packet_id,
        code,
        properties,
    })
}

/// DISCONNECT; empty on 3.1.1, and an empty v5 one means normal disconnection
/// [MQTT-3.14.2.1].
pub(super) fn disconnect(r: &mut Reader, v: ProtocolVersion) -> Result<Disconnect, DecodeError> {
    let (code, properties) = match v {
        ProtocolVersion::V311 => (ReasonCode::NORMAL_DISCONNECTION, Properties::default()),
        ProtocolVersion::V5 => tail(r, Codes::Disconnect, Context::Disconnect)?,
    };
    Ok(Disconnect { code, properties })
}

/// AUTH (v5 only; type 15 is rejected on 3.1.1 before reaching here); empty means
/// success [MQTT-3.15.2.1].
pub(super) fn auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let (code, properties) = tail(r, Codes::Auth, Context::Auth)?;
    Ok(Auth { code, properties })
}

/// The reason code and property block, each omitted when the packet ends first: no
/// code means success, no property length means no properties [MQTT-3.4.2.1].
fn tail(
    r: &mut Reader,
    codes: Codes,
    ctx: Context,
) -> Result<(ReasonCode, Properties), DecodeError> {
    if r.is_empty() {
        return Ok((ReasonCode::SUCCESS, Properties::default()));
    }
    let code = codes.check(r.u8()?)?;
    if r.is_empty() {
        return Ok((code, Properties::default()));
    }
    Ok((code, property::read(r, ctx)?))
}
