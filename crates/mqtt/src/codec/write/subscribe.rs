//! Writing SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.

use super::{packet_id, properties, Codes, Context, Sink};
use crate::{
    EncodeError, ProtocolVersion, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};

/// SUBSCRIBE, which needs at least one filter [MQTT-3.8.3-3].
pub(super) fn subscribe<S: Sink>(
    s: &mut S,
    x: &Subscribe,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    packet_id(s, x.packet_id)?;
    properties(s, &x.properties, v, Context::Subscribe)?;
    if x.subscriptions.is_empty() {
        return Err(EncodeError::Invalid("SUBSCRIBE without topic filters"));
    }
    for sub in &x.subscriptions {
        s.put_str(&sub.filter)?;
        s.put_u8(options(sub.options, v));
    }
    Ok(())
}

/// Subscription options byte; only the QoS exists on 3.1.1.
fn options(o: SubscriptionOptions, v: ProtocolVersion) -> u8 {
    let qos = o.qos as u8;
    if v == ProtocolVersion::V311 {
        return qos;
    }
    let retain_handling = match o.retain_handling {
        RetainHandling::OnSubscribe => 0,
        RetainHandling::OnNewSubscribe => 1,
        RetainHandling::Never => 2,
    };
    qos | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | (retain_handling << 4)
}

/// SUBACK; on 3.1.1 every failure becomes 0x80.
pub(super) fn suback<S: Sink>(
    s: &mut S,
    x: &SubAck,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    packet_id(s, x.packet_id)?;
    properties(s, &x.properties, v, Context::Ack)?;
    for &code in &x.codes {
        let byte = match v {
            ProtocolVersion::V311 => code.suback_v311(),
            ProtocolVersion::V5 => Codes::SubAck.check_encode(code)?,
        };
        if !matches!(byte, 0..=2 | 0x80..) {
            return Err(EncodeError::Invalid(
                "SUBACK code is neither a QoS nor a failure",
            ));
        }
        s.put_u8(byte);
    }
    Ok(())
}

/// UNSUBSCRIBE, which needs at least one filter [MQTT-3.10.3-2].
pub(super) fn unsubscribe<S: Sink>(
    s: &mut S,
    x: &Unsubscribe,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    packet_id(s, x.packet_id)?;
    properties(s, &x.properties, v, Context::Unsubscribe)?;
    if x.filters.is_empty() {
        return Err(EncodeError::Invalid("UNSUBSCRIBE without topic filters"));
    }
    for filter in &x.filters {
        s.put_str(filter)?;
    }
    Ok(())
}

/// UNSUBACK; 3.1.1 has no payload, v5 one reason code per filter.
pub(super) fn unsuback<S: Sink>(
    s: &mut S,
    x: &UnsubAck,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    packet_id(s, x.packet_id)?;
    if v == ProtocolVersion::V311 {
        return Ok(());
    }
    properties(s, &x.properties, v, Context::Ack)?;
    for &code in &x.codes {
        s.put_u8(Codes::UnsubAck.check_encode(code)?);
    }
    Ok(())
}
