//! Writing a property block: only the properties the packet may carry, in identifier
//! order, after their exact length.

use alloc::string::String;
use bytes::Bytes;

use super::*;
use crate::codec::sink::{Counter, Sink};
use crate::{EncodeError, Properties};

/// Writes the property length and the properties of `props` allowed in a `ctx` block;
/// fields the specification does not allow there are left out.
pub(crate) fn write<S: Sink>(
    sink: &mut S,
    props: &Properties,
    ctx: Context,
) -> Result<(), EncodeError> {
    let mut counter = Counter::default();
    Block {
        sink: &mut counter,
        ctx,
    }
    .all(props)?;
    let len = u32::try_from(counter.0).map_err(|_| EncodeError::Invalid("properties too long"))?;
    sink.put_varint(len)?;
    Block { sink, ctx }.all(props)
}

/// A property block being written to `sink`.
struct Block<'a, S: Sink> {
    sink: &'a mut S,
    ctx: Context,
}

impl<S: Sink> Block<'_, S> {
    fn all(&mut self, p: &Properties) -> Result<(), EncodeError> {
        self.byte(PAYLOAD_FORMAT_INDICATOR, p.payload_format_indicator);
        self.four(MESSAGE_EXPIRY_INTERVAL, p.message_expiry_interval);
        self.string(CONTENT_TYPE, &p.content_type)?;
        self.string(RESPONSE_TOPIC, &p.response_topic)?;
        self.binary(CORRELATION_DATA, &p.correlation_data)?;
        self.subscription_ids(&p.subscription_identifiers)?;
        self.four(SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
        self.string(ASSIGNED_CLIENT_IDENTIFIER, &p.assigned_client_identifier)?;
        self.two(SERVER_KEEP_ALIVE, p.server_keep_alive);
        self.string(AUTHENTICATION_METHOD, &p.authentication_method)?;
        self.binary(AUTHENTICATION_DATA, &p.authentication_data)?;
        self.byte(REQUEST_PROBLEM_INFORMATION, p.request_problem_information);
        self.four(WILL_DELAY_INTERVAL, p.will_delay_interval);
        self.byte(REQUEST_RESPONSE_INFORMATION, p.request_response_information);
        self.string(RESPONSE_INFORMATION, &p.response_information)?;
        self.string(SERVER_REFERENCE, &p.server_reference)?;
        self.string(REASON_STRING, &p.reason_string)?;
        self.two(RECEIVE_MAXIMUM, p.receive_maximum);
        self.two(TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
        self.two(TOPIC_ALIAS, p.topic_alias);
        self.byte(MAXIMUM_QOS, p.maximum_qos);
        self.byte(RETAIN_AVAILABLE, p.retain_available);
        self.user_properties(&p.user_properties)?;
        self.four(MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
        self.byte(
            WILDCARD_SUBSCRIPTION_AVAILABLE,
            p.wildcard_subscription_available,
        );
        self.byte(
            SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            p.subscription_identifier_available,
        );
        self.byte(
            SHARED_SUBSCRIPTION_AVAILABLE,
            p.shared_subscription_available,
        );
        Ok(())
    }

    /// Writes the identifier if `id` is allowed here; returns whether it did.
    fn id(&mut self, id: u8) -> bool {
        let allowed = self.ctx.allows(id);
        if allowed {
            self.sink.put_u8(id);
        }
        allowed
    }

    fn byte(&mut self, id: u8, value: Option<u8>) {
        if let Some(v) = value.filter(|_| self.id(id)) {
            self.sink.put_u8(v);
        }
    }

    fn two(&mut self, id: u8, value: Option<u16>) {
        if let Some(v) = value.filter(|_| self.id(id)) {
            self.sink.put_u16(v);
        }
    }

    fn four(&mut self, id: u8, value: Option<u32>) {
        if let Some(v) = value.filter(|_| self.id(id)) {
            self.sink.put_u32(v);
        }
    }

    fn string(&mut self, id: u8, value: &Option<String>) -> Result<(), EncodeError> {
        match value {
            Some(v) if self.id(id) => self.sink.put_str(v),
            _ => Ok(()),
        }
    }

    fn binary(&mut self, id: u8, value: &Option<Bytes>) -> Result<(), EncodeError> {
        match value {
            Some(v) if self.id(id) => self.sink.put_bin(v),
            _ => Ok(()),
        }
    }

    fn user_properties(&mut self, pairs: &[(String, String)]) -> Result<(), EncodeError> {
        for (key, value) in pairs {
            if self.id(USER_PROPERTY) {
                self.sink.put_str(key)?;
                self.sink.put_str(value)?;
            }
        }
        Ok(())
    }

    fn subscription_ids(&mut self, ids: &[u32]) -> Result<(), EncodeError> {
        if ids.len() > 1 && self.ctx == Context::Subscribe {
            return Err(EncodeError::Invalid(
                "SUBSCRIBE carries at most one subscription identifier",
            ));
        }
        for &value in ids {
            if value == 0 {
                return Err(EncodeError::Invalid("subscription identifier 0"));
            }
            if self.id(SUBSCRIPTION_IDENTIFIER) {
                self.sink.put_varint(value)?;
            }
        }
        Ok(())
    }
}
