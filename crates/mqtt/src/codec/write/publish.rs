//! Writing PUBLISH.

use super::{packet_id, properties, Context, Sink};
use crate::{EncodeError, ProtocolVersion, PublishView, QoS};

/// First byte: type 3 with DUP (only meaningful, and only allowed, above QoS 0
/// [MQTT-3.3.1-2]), QoS and RETAIN.
pub(crate) fn first_byte(p: &PublishView<'_>) -> u8 {
    let dup = p.dup && p.qos != QoS::AtMostOnce;
    0x30 | (u8::from(dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
}

/// Writes the PUBLISH body; a packet identifier is required above QoS 0 and ignored at
/// QoS 0 [MQTT-2.2.1-2].
pub(crate) fn publish<S: Sink>(
    s: &mut S,
    p: &PublishView<'_>,
    v: ProtocolVersion,
) -> Result<(), EncodeError> {
    s.put_str(p.topic)?;
    if p.qos != QoS::AtMostOnce {
        let id = p.packet_id.ok_or(EncodeError::Invalid(
            "QoS 1/2 PUBLISH without packet identifier",
        ))?;
        packet_id(s, id)?;
    }
    properties(s, p.properties, v, Context::Publish)?;
    s.put_slice(p.payload);
    Ok(())
}
