//! proptest strategies for every packet type of both protocol versions, producing only
//! values that are valid for that version and packet, so that decoding an encoding must
//! give the packet back unchanged.
#![allow(dead_code)]

mod properties;

use bytes::Bytes;
use mqtt::*;
use proptest::prelude::*;
use proptest::{collection::vec, option, sample::select};

pub(crate) use properties::{properties, Ctx};

/// Any packet valid on a `v` connection.
pub(crate) fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(v).prop_map(|c| Packet::Connect(Box::new(c))),
        connack(v).prop_map(Packet::ConnAck),
        publish(v).prop_map(Packet::Publish),
        ack(v, PUBACK).prop_map(Packet::PubAck),
        ack(v, PUBACK).prop_map(Packet::PubRec),
        ack(v, PUBREL).prop_map(Packet::PubRel),
        ack(v, PUBREL).prop_map(Packet::PubComp),
        subscribe(v).prop_map(Packet::Subscribe),
        suback(v).prop_map(Packet::SubAck),
        unsubscribe(v).prop_map(Packet::Unsubscribe),
        unsuback(v).prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(v).prop_map(Packet::Disconnect),
    ];
    match v {
        ProtocolVersion::V311 => common.boxed(),
        ProtocolVersion::V5 => {
            prop_oneof![14 => common, 1 => auth().prop_map(Packet::Auth)].boxed()
        }
    }
}

const CONNACK_V5: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const CONNACK_V311: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL: &[u8] = &[0x00, 0x92];
const SUBACK_V5: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const SUBACK_V311: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

/// A reason code from `allowed`.
fn code(allowed: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    select(allowed).prop_map(ReasonCode)
}

/// Any UTF-8 string without U+0000, including multi-byte characters.
pub(crate) fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/$ _.é€😀-]{0,12}"
}

/// A non-empty topic name: no wildcards.
pub(crate) fn topic() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/$ _é€-]{1,12}"
}

/// Arbitrary binary data.
pub(crate) fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    select(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][..])
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    1..=u16::MAX
}

fn connect(v: ProtocolVersion) -> impl Strategy<Value = Connect> {
    let head = (any::<bool>(), any::<u16>(), text(), option::of(will(v)));
    let credentials = (
        option::of(text()),
        option::of(bytes()),
        properties(v, Ctx::Connect),
    );
    (head, credentials).prop_map(
        move |((clean_start, keep_alive, client_id, will), (username, password, properties))| {
            // 3.1.1 forbids a password without a user name [MQTT-3.1.2-22].
            let username = match (v, &username, &password) {
                (ProtocolVersion::V311, None, Some(_)) => Some(String::from("user")),
                _ => username,
            };
            Connect {
                protocol: v,
                clean_start,
                keep_alive,
                client_id,
                will,
                username,
                password,
                properties,
            }
        },
    )
}

fn will(v: ProtocolVersion) -> impl Strategy<Value = Will> {
    (
        topic(),
        bytes(),
        qos(),
        any::<bool>(),
        properties(v, Ctx::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

fn connack(v: ProtocolVersion) -> impl Strategy<Value = ConnAck> {
    let codes = match v {
        ProtocolVersion::V311 => CONNACK_V311,
        ProtocolVersion::V5 => CONNACK_V5,
    };
    (any::<bool>(), code(codes), properties(v, Ctx::ConnAck)).prop_map(
        |(session_present, code, properties)| ConnAck {
            session_present,
            code,
            properties,
        },
    )
}

fn publish(v: ProtocolVersion) -> impl Strategy<Value = Publish> {
    let flags = (any::<bool>(), qos(), any::<bool>(), packet_id());
    (
        flags,
        topic(),
        any::<bool>(),
        properties(v, Ctx::Publish),
        bytes(),
    )
        .prop_map(
            |((dup, qos, retain, id), topic, alias_only, properties, payload)| {
                let at_most_once = qos == QoS::AtMostOnce;
                // An empty topic name is only valid with a topic alias (v5).
                let topic = if alias_only && properties.topic_alias.is_some() {
                    String::new()
                } else {
                    topic
                };
                Publish {
                    dup: dup && !at_most_once,
                    qos,
                    retain,
                    topic,
                    packet_id: (!at_most_once).then_some(id),
                    properties,
                    payload,
                }
            },
        )
}

fn ack(v: ProtocolVersion, codes: &'static [u8]) -> impl Strategy<Value = Ack> {
    let codes = if v == ProtocolVersion::V311 {
        &codes[..1]
    } else {
        codes
    };
    (packet_id(), code(codes), properties(v, Ctx::Ack)).prop_map(|(packet_id, code, properties)| {
        Ack {
            packet_id,
            code,
            properties,
        }
    })
}

fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Subscribe> {
    (
        packet_id(),
        vec(subscription(v), 1..4),
        properties(v, Ctx::Subscribe),
    )
        .prop_map(|(packet_id, subscriptions, properties)| Subscribe {
            packet_id,
            subscriptions,
            properties,
        })
}

fn subscription(v: ProtocolVersion) -> impl Strategy<Value = Subscription> {
    let handling = select(
        &[
            RetainHandling::OnSubscribe,
            RetainHandling::OnNewSubscribe,
            RetainHandling::Never,
        ][..],
    );
    (text(), qos(), any::<bool>(), any::<bool>(), handling).prop_map(
        move |(filter, qos, no_local, rap, rh)| {
            let options = match v {
                ProtocolVersion::V311 => SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
                ProtocolVersion::V5 => SubscriptionOptions {
                    qos,
                    no_local,
                    retain_as_published: rap,
                    retain_handling: rh,
                },
            };
            Subscription { filter, options }
        },
    )
}

fn suback(v: ProtocolVersion) -> impl Strategy<Value = SubAck> {
    let codes = match v {
        ProtocolVersion::V311 => SUBACK_V311,
        ProtocolVersion::V5 => SUBACK_V5,
    };
    (packet_id(), vec(code(codes), 0..4), properties(v, Ctx::Ack)).prop_map(
        |(packet_id, codes, properties)| SubAck {
            packet_id,
            codes,
            properties,
        },
    )
}

fn unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Unsubscribe> {
    (
        packet_id(),
        vec(text(), 1..4),
        properties(v, Ctx::Unsubscribe),
    )
        .prop_map(|(packet_id, filters, properties)| Unsubscribe {
            packet_id,
            filters,
            properties,
        })
}

fn unsuback(v: ProtocolVersion) -> impl Strategy<Value = UnsubAck> {
    let max_codes = if v == ProtocolVersion::V311 { 0 } else { 4 };
    (
        packet_id(),
        vec(code(UNSUBACK), 0..=max_codes),
        properties(v, Ctx::Ack),
    )
        .prop_map(|(packet_id, codes, properties)| UnsubAck {
            packet_id,
            codes,
            properties,
        })
}

fn disconnect(v: ProtocolVersion) -> impl Strategy<Value = Disconnect> {
    let codes = if v == ProtocolVersion::V311 {
        &DISCONNECT[..1]
    } else {
        DISCONNECT
    };
    (code(codes), properties(v, Ctx::Disconnect))
        .prop_map(|(code, properties)| Disconnect { code, properties })
}

fn auth() -> impl Strategy<Value = Auth> {
    (code(AUTH), properties(ProtocolVersion::V5, Ctx::Auth))
        .prop_map(|(code, properties)| Auth { code, properties })
}
