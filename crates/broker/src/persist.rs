//! Records of the durable log: what the router writes so that sessions, subscriptions,
//! undelivered messages and retained messages survive a crash.
//!
//! The log itself stores opaque bytes; this module owns their meaning. The encoding is a
//! compact tag-length format private to bosun (versioned by the leading tag byte), read
//! back with a bounds-checked reader so a damaged record is an error, never a panic.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// A record could not be read back.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("bad log record: {0}")]
pub struct RecordError(&'static str);

/// One delivery target of a durable message: a persistent session and how it gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Client identifier of the session.
    pub client_id: String,
    /// QoS of the delivery.
    pub qos: u8,
    /// RETAIN flag to deliver with.
    pub retain: bool,
    /// Subscription identifiers to deliver with.
    pub sub_ids: Vec<u32>,
}

/// A message as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Log-wide message identifier, increasing.
    pub id: u64,
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS as published.
    pub qos: u8,
    /// The message (also) sets the retained message of its topic.
    pub retain: bool,
    /// Wall-clock expiry, seconds since the Unix epoch; 0 for none.
    pub expiry_unix: u64,
    /// Payload format indicator, content type, response topic, correlation data and user
    /// properties travel with the message.
    pub payload_format: Option<u8>,
    /// Content type property.
    pub content_type: Option<String>,
    /// Response topic property.
    pub response_topic: Option<String>,
    /// Correlation data property.
    pub correlation_data: Option<Bytes>,
    /// User properties.
    pub user_properties: Vec<(String, String)>,
    /// Persistent sessions that must still receive it.
    pub targets: Vec<Target>,
}

/// Everything the router logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A persistent session exists (created, or its expiry changed).
    Session {
        /// Client identifier.
        client_id: String,
        /// Session expiry interval in seconds.
        expiry: u32,
    },
    /// A persistent session ended; everything about it is forgotten.
    SessionEnd {
        /// Client identifier.
        client_id: String,
    },
    /// A persistent session subscribed.
    Subscribe {
        /// Client identifier.
        client_id: String,
        /// Topic filter, as sent (including `$share/…`).
        filter: String,
        /// Subscription options byte as on the wire (v5 layout).
        options: u8,
        /// Subscription identifier, 0 for none.
        sub_id: u32,
    },
    /// A persistent session unsubscribed.
    Unsubscribe {
        /// Client identifier.
        client_id: String,
        /// Topic filter.
        filter: String,
    },
    /// A message that persistent sessions must receive, or a retained message.
    Message(Box<StoredMessage>),
    /// A session no longer needs message `id` (acknowledged, expired or dropped).
    Ack {
        /// Client identifier.
        client_id: String,
        /// Message identifier.
        id: u64,
    },
}

const TAG_SESSION: u8 = 1;
const TAG_SESSION_END: u8 = 2;
const TAG_SUBSCRIBE: u8 = 3;
const TAG_UNSUBSCRIBE: u8 = 4;
const TAG_MESSAGE: u8 = 5;
const TAG_ACK: u8 = 6;

impl Record {
    /// Serializes the record for [`crate::log::Log::append`].
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.size_hint());
        match self {
            Record::Session { client_id, expiry } => {
                b.put_u8(TAG_SESSION);
                put_str(&mut b, client_id);
                b.put_u32(*expiry);
            }
            Record::SessionEnd { client_id } => {
                b.put_u8(TAG_SESSION_END);
                put_str(&mut b, client_id);
            }
            Record::Subscribe {
                client_id,
                filter,
                options,
                sub_id,
            } => {
                b.put_u8(TAG_SUBSCRIBE);
                put_str(&mut b, client_id);
                put_str(&mut b, filter);
                b.put_u8(*options);
                b.put_u32(*sub_id);
            }
            Record::Unsubscribe { client_id, filter } => {
                b.put_u8(TAG_UNSUBSCRIBE);
                put_str(&mut b, client_id);
                put_str(&mut b, filter);
            }
            Record::Message(m) => encode_message(&mut b, m),
            Record::Ack { client_id, id } => {
                b.put_u8(TAG_ACK);
                put_str(&mut b, client_id);
                b.put_u64(*id);
            }
        }
        b.freeze()
    }

    /// Bytes to reserve before encoding, so a message record is written without regrowth.
    fn size_hint(&self) -> usize {
        match self {
            Record::Message(m) => 128 + m.topic.len() + m.payload.len() + 32 * m.targets.len(),
            _ => 64,
        }
    }

    /// Reads a record written by [`Record::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        let mut r = Reader(bytes);
        let record = match r.u8()? {
            TAG_SESSION => Record::Session {
                client_id: r.string()?,
                expiry: r.u32()?,
            },
            TAG_SESSION_END => Record::SessionEnd {
                client_id: r.string()?,
            },
            TAG_SUBSCRIBE => Record::Subscribe {
                client_id: r.string()?,
                filter: r.string()?,
                options: r.u8()?,
                sub_id: r.u32()?,
            },
            TAG_UNSUBSCRIBE => Record::Unsubscribe {
                client_id: r.string()?,
                filter: r.string()?,
            },
            TAG_MESSAGE => Record::Message(Box::new(decode_message(&mut r)?)),
            TAG_ACK => Record::Ack {
                client_id: r.string()?,
                id: r.u64()?,
            },
            _ => return Err(RecordError("unknown tag")),
        };
        if !r.0.is_empty() {
            return Err(RecordError("trailing bytes"));
        }
        Ok(record)
    }
}

fn encode_message(b: &mut BytesMut, m: &StoredMessage) {
    b.put_u8(TAG_MESSAGE);
    b.put_u64(m.id);
    put_str(b, &m.topic);
    put_bytes(b, &m.payload);
    b.put_u8(m.qos | (u8::from(m.retain) << 2));
    b.put_u64(m.expiry_unix);
    b.put_u8(m.payload_format.map_or(0xFF, |v| v));
    put_opt_str(b, m.content_type.as_deref());
    put_opt_str(b, m.response_topic.as_deref());
    match &m.correlation_data {
        Some(d) => {
            b.put_u8(1);
            put_bytes(b, d);
        }
        None => b.put_u8(0),
    }
    b.put_u32(m.user_properties.len() as u32);
    for (k, v) in &m.user_properties {
        put_str(b, k);
        put_str(b, v);
    }
    b.put_u32(m.targets.len() as u32);
    for t in &m.targets {
        put_str(b, &t.client_id);
        b.put_u8(t.qos | (u8::from(t.retain) << 2));
        b.put_u32(t.sub_ids.len() as u32);
        for id in &t.sub_ids {
            b.put_u32(*id);
        }
    }
}

fn decode_message(r: &mut Reader<'_>) -> Result<StoredMessage, RecordError> {
    let id = r.u64()?;
    let topic = r.string()?;
    let payload = Bytes::copy_from_slice(r.bytes()?);
    let flags = r.u8()?;
    let expiry_unix = r.u64()?;
    let payload_format = match r.u8()? {
        0xFF => None,
        v => Some(v),
    };
    let content_type = r.opt_string()?;
    let response_topic = r.opt_string()?;
    let correlation_data = match r.u8()? {
        0 => None,
        _ => Some(Bytes::copy_from_slice(r.bytes()?)),
    };
    let mut user_properties = Vec::new();
    for _ in 0..r.count()? {
        user_properties.push((r.string()?, r.string()?));
    }
    let mut targets = Vec::new();
    for _ in 0..r.count()? {
        let client_id = r.string()?;
        let tflags = r.u8()?;
        let mut sub_ids = Vec::new();
        for _ in 0..r.count()? {
            sub_ids.push(r.u32()?);
        }
        targets.push(Target {
            client_id,
            qos: tflags & 3,
            retain: tflags & 4 != 0,
            sub_ids,
        });
    }
    Ok(StoredMessage {
        id,
        topic,
        payload,
        qos: flags & 3,
        retain: flags & 4 != 0,
        expiry_unix,
        payload_format,
        content_type,
        response_topic,
        correlation_data,
        user_properties,
        targets,
    })
}

fn put_str(b: &mut BytesMut, s: &str) {
    put_bytes(b, s.as_bytes());
}

fn put_opt_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            b.put_u8(1);
            put_str(b, s);
        }
        None => b.put_u8(0),
    }
}

fn put_bytes(b: &mut BytesMut, s: &[u8]) {
    b.put_u32(s.len() as u32);
    b.put_slice(s);
}

/// Bounds-checked reader over one record.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// A repetition count; bounded by the bytes left so a bad count cannot make us spin.
    fn count(&mut self) -> Result<usize, RecordError> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err(RecordError("count larger than record"));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, RecordError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| RecordError("invalid UTF-8"))
    }
    fn opt_string(&mut self) -> Result<Option<String>, RecordError> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.string().map(Some),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message() -> impl Strategy<Value = StoredMessage> {
        (
            any::<u64>(),
            ".{0,20}",
            proptest::collection::vec(any::<u8>(), 0..64),
            0u8..3,
            any::<bool>(),
        )
            .prop_map(|(id, topic, payload, qos, retain)| StoredMessage {
                id,
                topic,
                payload: Bytes::from(payload),
                qos,
                retain,
                expiry_unix: id / 3,
                payload_format: Some(1),
                content_type: Some("application/cbor".into()),
                response_topic: None,
                correlation_data: Some(Bytes::from_static(b"c")),
                user_properties: vec![("k".into(), "v".into())],
                targets: vec![Target {
                    client_id: "dev-1".into(),
                    qos: 1,
                    retain: false,
                    sub_ids: vec![7],
                }],
            })
    }

    proptest! {
        #[test]
        fn message_round_trips(m in message()) {
            let r = Record::Message(Box::new(m));
            prop_assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Record::decode(&bytes);
        }
    }

    #[test]
    fn small_records_round_trip() {
        for r in [
            Record::Session {
                client_id: "a".into(),
                expiry: 60,
            },
            Record::SessionEnd {
                client_id: "a".into(),
            },
            Record::Subscribe {
                client_id: "a".into(),
                filter: "t/#".into(),
                options: 1,
                sub_id: 3,
            },
            Record::Unsubscribe {
                client_id: "a".into(),
                filter: "t/#".into(),
            },
            Record::Ack {
                client_id: "a".into(),
                id: 9,
            },
        ] {
            assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn truncated_record_is_an_error() {
        let r = Record::Subscribe {
            client_id: "a".into(),
            filter: "t".into(),
            options: 1,
            sub_id: 3,
        }
        .encode();
        assert!(Record::decode(&r[..r.len() - 1]).is_err());
    }
}
