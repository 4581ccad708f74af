//! Writing PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH in their shortest form.

use super::{packet_id, property, Codes, Context, Sink};
use crate::{Ack, Auth, Disconnect, EncodeError, Properties, ProtocolVersion, ReasonCode};

/// A QoS acknowledgement; 3.1.1 carries only the packet identifier.
pub(super) fn ack<S: Sink>(
    s: &mut S,
    a: &Ack,
    v: ProtocolVersion,
    codes: Codes,
) -> Result<(), EncodeError> {
    packet_id(s, a.packet_id)?;
    match v {
        ProtocolVersion::V311 => Ok(()),
        ProtocolVersion::V5 => tail(s, a.code, &a.properties, codes, Context::Ack),
    }
}

/// DISCONNECT; empty on 3.1.1.
pub(super) fn disconnect<S: Sink>(
    s: &mut S,
    d: &Disconnect,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    match v {
        ProtocolVersion::V311 => Ok(()),
        ProtocolVersion::V5 => tail(
            s,
            d.code,
            &d.properties,
            Codes::Disconnect,
            Context::Disconnect,
        ),
    }
}

/// AUTH, which does not exist in 3.1.1.
pub(super) fn auth<S: Sink>(s: &mut S, a: &Auth, v: ProtocolVersion) -> Result<(), EncodeError> {
    match v {
        ProtocolVersion::V311 => Err(EncodeError::Invalid("AUTH does not exist in MQTT 3.1.1")),
        ProtocolVersion::V5 => tail(s, a.code, &a.properties, Codes::Auth, Context::Auth),
    }
}

/// Reason code and properties, leaving out what the receiver assumes by default:
/// nothing for success without properties, no property length when there are none.
fn tail<S: Sink>(
    s: &mut S,
    code: ReasonCode,
    props: &Properties,
    codes: Codes,
    ctx: Context,
) -> Result<(), EncodeError> {
    let byte = codes.check_encode(code)?;
    if code == ReasonCode::SUCCESS && props.is_empty() {
        return Ok(());
    }
    s.put_u8(byte);
    if props.is_empty() {
        return Ok(());
    }
    property::write(s, props, ctx)
}
