//! Reading CONNECT (MQTT 5.0 §3.1, 3.1.1 §3.1) and CONNACK (§3.2).

use super::{properties, Context, Reader};
use crate::codec::reasons::{self, Codes};
use crate::{ConnAck, Connect, DecodeError, ProtocolVersion, QoS, Will};

/// The bits of the CONNECT flags byte [MQTT-3.1.2].
struct Flags {
    clean_start: bool,
    will: bool,
    will_qos: QoS,
    will_retain: bool,
    password: bool,
    username: bool,
}

/// Reads CONNECT; the protocol version comes from the packet itself.
pub(super) fn connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let protocol = protocol(r)?;
    let flags = flags(r.u8()?, protocol)?;
    let keep_alive = r.u16()?;
    let properties = properties(r, protocol, Context::Connect)?;
    let client_id = r.str()?;
    let will = if flags.will {
        Some(will(r, protocol, &flags)?)
    } else {
        None
    };
    let username = if flags.username { Some(r.str()?) } else { None };
    let password = if flags.password { Some(r.bin()?) } else { None };
    Ok(Connect {
        protocol,
        clean_start: flags.clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

/// Protocol name and level [MQTT-3.1.2-1], [MQTT-3.1.2-2]: "MQTT" 4 or 5. MQTT 3.1
/// ("MQIsdp" 3) and other levels are recognised so the server can answer with the
/// right CONNACK code instead of dropping the connection.
fn protocol(r: &mut Reader) -> Result<ProtocolVersion, DecodeError> {
    let name = r.bin()?;
    let level = r.u8()?;
    match (name.as_ref(), level) {
        (b"MQTT", 4) => Ok(ProtocolVersion::V311),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQTT" | b"MQIsdp", level) => Err(DecodeError::UnsupportedVersion(level)),
        _ => Err(DecodeError::Malformed(
            "protocol name is not \"MQTT\" [MQTT-3.1.2-1]",
        )),
    }
}

/// Connect flags with their consistency rules.
fn flags(byte: u8, version: ProtocolVersion) -> Result<Flags, DecodeError> {
    if byte & 0x01 != 0 {
        return Err(DecodeError::Malformed(
            "CONNECT reserved flag set [MQTT-3.1.2-3]",
        ));
    }
    let will = byte & 0x04 != 0;
    let qos_bits = (byte >> 3) & 0x03;
    let will_retain = byte & 0x20 != 0;
    if !will && (qos_bits != 0 || will_retain) {
        return Err(DecodeError::Malformed(
            "will QoS or retain without will flag [MQTT-3.1.2-11]",
        ));
    }
    let will_qos =
        QoS::from_bits(qos_bits).ok_or(DecodeError::Malformed("will QoS 3 [MQTT-3.1.2-12]"))?;
    let username = byte & 0x80 != 0;
    let password = byte & 0x40 != 0;
    if version == ProtocolVersion::V311 && password && !username {
        return Err(DecodeError::Malformed(
            "password without user name [MQTT-3.1.2-22]",
        ));
    }
    Ok(Flags {
        clean_start: byte & 0x02 != 0,
        will,
        will_qos,
        will_retain,
        password,
        username,
    })
}

/// Will properties (v5), topic and payload, in that order [MQTT-3.1.3].
fn will(r: &mut Reader, version: ProtocolVersion, flags: &Flags) -> Result<Will, DecodeError> {
    let properties = properties(r, version, Context::Will)?;
    let topic = r.str()?;
    let payload = r.bin()?;
    Ok(Will {
        topic,
        payload,
        qos: flags.will_qos,
        retain: flags.will_retain,
        properties,
    })
}

/// Reads CONNACK; 3.1.1 return codes are mapped to MQTT 5 reason codes.
pub(super) fn connack(r: &mut Reader, v: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let ack_flags = r.u8()?;
    if ack_flags & 0xFE != 0 {
        return Err(DecodeError::Malformed(
            "CONNACK reserved flags set [MQTT-3.2.2-1]",
        ));
    }
    let code = match v {
        ProtocolVersion::V311 => reasons::connack_v311(r.u8()?)?,
        ProtocolVersion::V5 => Codes::ConnAck.check(r.u8()?)?,
    };
    let properties = properties(r, v, Context::ConnAck)?;
    Ok(ConnAck {
        session_present: ack_flags & 0x01 != 0,
        code,
        properties,
    })
}
