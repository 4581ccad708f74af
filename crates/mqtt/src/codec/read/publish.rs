//! Reading PUBLISH (MQTT 5.0 §3.3, 3.1.1 §3.3), including its fixed-header flags and
//! the topic name rules.

use super::{properties, Context, Reader};
use crate::topic::validate_topic_name;
use crate::{DecodeError, Properties, ProtocolVersion, Publish, QoS};

/// Reads PUBLISH; `flags` is the low nibble of the first byte (DUP, QoS, RETAIN).
/// The payload is a slice of the frame, not a copy.
pub(super) fn publish(
    flags: u8,
    r: &mut Reader,
    v: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    let qos = QoS::from_bits((flags >> 1) & 0x03)
        .ok_or(DecodeError::Malformed("PUBLISH QoS 3 [MQTT-3.3.1-4]"))?;
    let dup = flags & 0x08 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::Malformed(
            "DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]",
        ));
    }
    let topic = r.str()?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(r.packet_id()?)
    };
    let properties = properties(r, v, Context::Publish)?;
    check_topic(&topic, &properties)?;
    Ok(Publish {
        dup,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

/// No wildcards in a topic name [MQTT-3.3.2-2]; empty only when a topic alias stands
/// in for it (v5) [MQTT-3.3.2-1], [MQTT-4.7.3-1].
fn check_topic(topic: &str, properties: &Properties) -> Result<(), DecodeError> {
    if topic.is_empty() {
        return match properties.topic_alias {
            Some(_) => Ok(()),
            None => Err(DecodeError::TopicName),
        };
    }
    validate_topic_name(topic).map_err(|_| DecodeError::TopicName)
}
