//! Writing CONNECT and CONNACK.

use super::{properties, Context, Sink};
use crate::codec::reasons::Codes;
use crate::{ConnAck, Connect, EncodeError, ProtocolVersion};

/// Writes CONNECT; its `protocol` must be the version being encoded.
pub(super) fn connect<S: Sink>(
    s: &mut S,
    c: &Connect,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    if c.protocol != v {
        return Err(EncodeError::Invalid(
            "CONNECT protocol differs from the encoding version",
        ));
    }
    s.put_str("MQTT")?;
    s.put_u8(v.level());
    s.put_u8(flags(c, v)?);
    s.put_u16(c.keep_alive);
    properties(s, &c.properties, v, Context::Connect)?;
    s.put_str(&c.client_id)?;
    if let Some(will) = &c.will {
        properties(s, &will.properties, v, Context::Will)?;
        s.put_str(&will.topic)?;
        s.put_bin(&will.payload)?;
    }
    if let Some(username) = &c.username {
        s.put_str(username)?;
    }
    if let Some(password) = &c.password {
        s.put_bin(password)?;
    }
    Ok(())
}

/// The connect flags byte [MQTT-3.1.2].
fn flags(c: &Connect, v: ProtocolVersion) -> Result<u8, EncodeError> {
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(will) = &c.will {
        flags |= 0x04 | ((will.qos as u8) << 3) | (u8::from(will.retain) << 5);
    }
    if c.password.is_some() {
        if v == ProtocolVersion::V311 && c.username.is_none() {
            return Err(EncodeError::Invalid(
                "3.1.1 password without user name [MQTT-3.1.2-22]",
            ));
        }
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    Ok(flags)
}

/// Writes CONNACK; on 3.1.1 the reason code becomes a return code 0..=5.
pub(super) fn connack<S: Sink>(
    s: &mut S,
    c: &ConnAck,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    s.put_u8(u8::from(c.session_present));
    let code = match v {
        ProtocolVersion::V311 => c.code.connack_v311(),
        ProtocolVersion::V5 => Codes::ConnAck.check_encode(c.code)?,
    };
    s.put_u8(code);
    properties(s, &c.properties, v, Context::ConnAck)
}
