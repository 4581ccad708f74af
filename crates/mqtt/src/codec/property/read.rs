//! Reading a property block: length, then identifier/value pairs, with the per-packet
//! allow list, the no-duplicates rule and the value range checks of MQTT 5.0 §3.

use super::*;
use crate::codec::reader::Reader;
use crate::codec::varint;
use crate::{DecodeError, Properties};

/// Reads the property length and the properties of a `ctx` block.
pub(crate) fn read(r: &mut Reader, ctx: Context) -> Result<Properties, DecodeError> {
    let len =
        usize::try_from(r.varint()?).map_err(|_| DecodeError::Malformed("property length"))?;
    let mut block = Reader::new(r.take(len)?);
    let mut props = Properties::default();
    let mut seen: u64 = 0;
    while !block.is_empty() {
        let id = block.u8()?;
        if !is_known(id) {
            return Err(DecodeError::Malformed("unknown property identifier"));
        }
        if !ctx.allows(id) {
            return Err(DecodeError::Protocol(
                "property not allowed on this packet [MQTT-2.2.2.2]",
            ));
        }
        if seen & (1 << id) != 0 && !ctx.repeats(id) {
            return Err(DecodeError::Protocol("property included more than once"));
        }
        seen |= 1 << id;
        read_value(&mut block, id, &mut props)?;
    }
    Ok(props)
}

/// Whether `id` names an MQTT 5 property at all.
fn is_known(id: u8) -> bool {
    matches!(id, 0x01..=0x03 | 0x08 | 0x09 | 0x0B | 0x11..=0x13 | 0x15..=0x1A | 0x1C | 0x1F | 0x21..=0x2A)
}

/// Reads the value of property `id` into its field.
fn read_value(r: &mut Reader, id: u8, p: &mut Properties) -> Result<(), DecodeError> {
    match id {
        PAYLOAD_FORMAT_INDICATOR => p.payload_format_indicator = Some(flag(r)?),
        MESSAGE_EXPIRY_INTERVAL => p.message_expiry_interval = Some(r.u32()?),
        CONTENT_TYPE => p.content_type = Some(r.str()?),
        RESPONSE_TOPIC => p.response_topic = Some(r.str()?),
        CORRELATION_DATA => p.correlation_data = Some(r.bin()?),
        SUBSCRIPTION_IDENTIFIER => p.subscription_identifiers.push(subscription_id(r)?),
        SESSION_EXPIRY_INTERVAL => p.session_expiry_interval = Some(r.u32()?),
        ASSIGNED_CLIENT_IDENTIFIER => p.assigned_client_identifier = Some(r.str()?),
        SERVER_KEEP_ALIVE => p.server_keep_alive = Some(r.u16()?),
        AUTHENTICATION_METHOD => p.authentication_method = Some(r.str()?),
        AUTHENTICATION_DATA => p.authentication_data = Some(r.bin()?),
        REQUEST_PROBLEM_INFORMATION => p.request_problem_information = Some(flag(r)?),
        WILL_DELAY_INTERVAL => p.will_delay_interval = Some(r.u32()?),
        REQUEST_RESPONSE_INFORMATION => p.request_response_information = Some(flag(r)?),
        RESPONSE_INFORMATION => p.response_information = Some(r.str()?),
        SERVER_REFERENCE => p.server_reference = Some(r.str()?),
        REASON_STRING => p.reason_string = Some(r.str()?),
        RECEIVE_MAXIMUM => {
            p.receive_maximum = Some(non_zero_u16(r, "receive maximum 0 [MQTT-3.1.2-26]")?)
        }
        TOPIC_ALIAS_MAXIMUM => p.topic_alias_maximum = Some(r.u16()?),
        // 0 is kept: the broker answers it with TOPIC_ALIAS_INVALID [MQTT-3.3.2-8].
        TOPIC_ALIAS => p.topic_alias = Some(r.u16()?),
        MAXIMUM_QOS => p.maximum_qos = Some(flag(r)?),
        RETAIN_AVAILABLE => p.retain_available = Some(flag(r)?),
        USER_PROPERTY => p.user_properties.push((r.str()?, r.str()?)),
        MAXIMUM_PACKET_SIZE => p.maximum_packet_size = Some(non_zero_u32(r)?),
        WILDCARD_SUBSCRIPTION_AVAILABLE => p.wildcard_subscription_available = Some(flag(r)?),
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => p.subscription_identifier_available = Some(flag(r)?),
        SHARED_SUBSCRIPTION_AVAILABLE => p.shared_subscription_available = Some(flag(r)?),
        _ => return Err(DecodeError::Malformed("unknown property identifier")),
    }
    Ok(())
}

/// A byte property whose only values are 0 and 1 (payload format, request flags,
/// maximum QoS, availability flags); anything else is a protocol error.
fn flag(r: &mut Reader) -> Result<u8, DecodeError> {
    match r.u8()? {
        v @ (0 | 1) => Ok(v),
        _ => Err(DecodeError::Protocol("property value other than 0 or 1")),
    }
}

fn non_zero_u16(r: &mut Reader, why: &'static str) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::Protocol(why)),
        v => Ok(v),
    }
}

fn non_zero_u32(r: &mut Reader) -> Result<u32, DecodeError> {
    match r.u32()? {
        0 => Err(DecodeError::Protocol(
            "maximum packet size 0 [MQTT-3.1.2-24]",
        )),
        v => Ok(v),
    }
}

/// Subscription identifier: 1..=268,435,455 [MQTT-3.8.2.1.2].
fn subscription_id(r: &mut Reader) -> Result<u32, DecodeError> {
    match r.varint()? {
        0 => Err(DecodeError::Protocol("subscription identifier 0")),
        v if v > varint::MAX => Err(DecodeError::Protocol("subscription identifier too large")),
        v => Ok(v),
    }
}
