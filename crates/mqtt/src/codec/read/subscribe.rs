//! Reading SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (MQTT 5.0 §3.8-3.11).
//!
//! Topic filters are only checked to be UTF-8 strings here; whether a filter is valid
//! is the broker's call, answered per filter in SUBACK.

use alloc::vec::Vec;

use super::{properties, Context, Reader};
use crate::codec::reasons::{self, Codes};
use crate::{
    DecodeError, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// Reads SUBSCRIBE: identifier, properties, then at least one filter with options.
pub(super) fn subscribe(r: &mut Reader, v: ProtocolVersion) -> Result<Subscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = properties(r, v, Context::Subscribe)?;
    let mut subscriptions = Vec::new();
    while !r.is_empty() {
        let filter = r.str()?;
        let options = options(r.u8()?, v)?;
        subscriptions.push(Subscription { filter, options });
    }
    if subscriptions.is_empty() {
        return Err(DecodeError::Protocol(
            "SUBSCRIBE without topic filters [MQTT-3.8.3-3]",
        ));
    }
    Ok(Subscribe {
        packet_id,
        subscriptions,
        properties,
    })
}

/// Subscription options byte: only the QoS bits exist on 3.1.1 [MQTT-3.8.3-4]; v5 keeps
/// bits 6-7 reserved [MQTT-3.8.3-5] and forbids QoS 3 and retain handling 3.
fn options(byte: u8, v: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = match v {
        ProtocolVersion::V311 => 0xFC,
        ProtocolVersion::V5 => 0xC0,
    };
    if byte & reserved != 0 {
        return Err(DecodeError::Malformed(
            "subscription options reserved bits set [MQTT-3.8.3-5]",
        ));
    }
    let qos = QoS::from_bits(byte & 0x03)
        .ok_or(DecodeError::Malformed("subscription QoS 3 [MQTT-3-8.3-4]"))?;
    let retain_handling = match (byte >> 4) & 0x03 {
        0 => RetainHandling::OnSubscribe,
        1 => RetainHandling::OnNewSubscribe,
        2 => RetainHandling::Never,
        _ => return Err(DecodeError::Malformed("retain handling 3 [MQTT-3.8.3.1]")),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0x04 != 0,
        retain_as_published: byte & 0x08 != 0,
        retain_handling,
    })
}

/// Reads SUBACK: identifier, properties, one return/reason code per filter.
pub(super) fn suback(r: &mut Reader, v: ProtocolVersion) -> Result<SubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = properties(r, v, Context::Ack)?;
    let mut codes = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        let byte = r.u8()?;
        codes.push(match v {
            ProtocolVersion::V311 => reasons::suback_v311(byte)?,
            ProtocolVersion::V5 => Codes::SubAck.check(byte)?,
        });
    }
    Ok(SubAck {
        packet_id,
        codes,
        properties,
    })
}

/// Reads UNSUBSCRIBE: identifier, properties, at least one filter [MQTT-3.10.3-2].
pub(super) fn unsubscribe(r: &mut Reader, v: ProtocolVersion) -> Result<Unsubscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = properties(r, v, Context::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.str()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol(
            "UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]",
        ));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

/// Reads UNSUBACK: on 3.1.1 just the identifier; on v5 properties and one code per
/// filter.
pub(super) fn unsuback(r: &mut Reader, v: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = properties(r, v, Context::Ack)?;
    let mut codes: Vec<ReasonCode> = Vec::new();
    if v == ProtocolVersion::V5 {
        while !r.is_empty() {
            codes.push(Codes::UnsubAck.check(r.u8()?)?);
        }
    }
    Ok(UnsubAck {
        packet_id,
        codes,
        properties,
    })
}
