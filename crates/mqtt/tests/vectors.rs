//! Hand-assembled byte vectors, laid out field by field after the examples and tables
//! of the MQTT 3.1.1 and 5.0 specifications: each must decode to the expected packet,
//! and re-encoding must reproduce the same bytes where the encoding is canonical.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{decode_one, encode_checked, hex, MAX};
use mqtt::*;

const V311: Option<ProtocolVersion> = Some(ProtocolVersion::V311);
const V5: Option<ProtocolVersion> = Some(ProtocolVersion::V5);

/// Decodes `text`, compares with `expected`, and checks that encoding gives the bytes back.
fn exact(text: &str, version: Option<ProtocolVersion>, expected: Packet) {
    let packet = decode_one(text, version).unwrap();
    assert_eq!(packet, expected);
    let encode_as = match &packet {
        Packet::Connect(c) => c.protocol,
        _ => version.unwrap(),
    };
    assert_eq!(encode_checked(&packet, encode_as), hex(text));
}

fn user(k: &str, v: &str) -> (String, String) {
    (k.into(), v.into())
}

#[test]
fn connect_v311() {
    let text =
        "10 1F  0004 4D515454  04  C2  003C  0007 636C69656E7431  0004 75736572  0004 70617373";
    exact(
        text,
        None,
        Packet::Connect(Box::new(Connect {
            protocol: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 60,
            client_id: "client1".into(),
            will: None,
            username: Some("user".into()),
            password: Some(Bytes::from_static(b"pass")),
            properties: Properties::default(),
        })),
    );
}

#[test]
fn connect_v5_with_properties_and_will() {
    let text = "10 2F  0004 4D515454  05  2E  001E \
                0F  11 00000E10  21 0014  26 0001 6B 0001 76 \
                0003 646576 \
                05  18 00000005  0003 6C7774  0003 627965";
    exact(
        text,
        None,
        Packet::Connect(Box::new(Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 30,
            client_id: "dev".into(),
            will: Some(Will {
                topic: "lwt".into(),
                payload: Bytes::from_static(b"bye"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties {
                    will_delay_interval: Some(5),
                    ..Properties::default()
                },
            }),
            username: None,
            password: None,
            properties: Properties {
                session_expiry_interval: Some(3600),
                receive_maximum: Some(20),
                user_properties: vec![user("k", "v")],
                ..Properties::default()
            },
        })),
    );
}

#[test]
fn connect_v5_password_without_username_is_allowed() {
    let packet = decode_one(
        "10 12  0004 4D515454  05  40  0000  00  0000  0003 707764",
        None,
    )
    .unwrap();
    let Packet::Connect(c) = packet else {
        panic!("not CONNECT")
    };
    assert_eq!(c.password.as_deref(), Some(&b"pwd"[..]));
    assert_eq!(c.username, None);
}

#[test]
fn second_connect_is_returned_as_a_packet() {
    let text = "10 0C  0004 4D515454  04  02  003C  0000";
    assert!(matches!(
        decode_one(text, V311).unwrap(),
        Packet::Connect(_)
    ));
}

#[test]
fn connack_v311() {
    let expect = |session_present, code| {
        Packet::ConnAck(ConnAck {
            session_present,
            code,
            properties: Properties::default(),
        })
    };
    exact("20 02 01 00", V311, expect(true, ReasonCode::SUCCESS));
    exact(
        "20 02 00 01",
        V311,
        expect(false, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
    );
    exact(
        "20 02 00 02",
        V311,
        expect(false, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
    );
    exact(
        "20 02 00 03",
        V311,
        expect(false, ReasonCode::SERVER_UNAVAILABLE),
    );
    exact(
        "20 02 00 04",
        V311,
        expect(false, ReasonCode::BAD_USER_NAME_OR_PASSWORD),
    );
    exact(
        "20 02 00 05",
        V311,
        expect(false, ReasonCode::NOT_AUTHORIZED),
    );
}

#[test]
fn connack_v5_with_properties() {
    exact(
        "20 0E  00 00  0B  12 0003 616263  13 003C  24 01",
        V5,
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode::SUCCESS,
            properties: Properties {
                assigned_client_identifier: Some("abc".into()),
                server_keep_alive: Some(60),
                maximum_qos: Some(1),
                ..Properties::default()
            },
        }),
    );
}

#[test]
fn publish_v311_qos0() {
    exact(
        "30 0A  0003 612F62  68656C6C6F",
        V311,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "a/b".into(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from_static(b"hello"),
        }),
    );
}

#[test]
fn publish_v5_with_properties() {
    exact(
        "33 1B  0003 612F62  000A  11  01 01  02 0000003C  03 0004 74657874  23 0005  6869",
        V5,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "a/b".into(),
            packet_id: Some(10),
            properties: Properties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                content_type: Some("text".into()),
                topic_alias: Some(5),
                ..Properties::default()
            },
            payload: Bytes::from_static(b"hi"),
        }),
    );
}

#[test]
fn publish_v5_empty_topic_with_alias() {
    let packet = decode_one("30 06  0000  03 23 0001", V5).unwrap();
    let Packet::Publish(p) = packet else {
        panic!("not PUBLISH")
    };
    assert_eq!(p.topic, "");
    assert_eq!(p.properties.topic_alias, Some(1));
}

#[test]
fn publish_v5_topic_alias_zero_is_left_to_the_broker() {
    let packet = decode_one("30 09  0003 612F62  03 23 0000", V5).unwrap();
    let Packet::Publish(p) = packet else {
        panic!("not PUBLISH")
    };
    assert_eq!(p.properties.topic_alias, Some(0));
}

#[test]
fn publish_v5_repeats_subscription_identifiers_and_user_properties() {
    let text = "30 18  0003 612F62  12  0B 01  0B 02  26 0001 61 0001 62  26 0001 61 0001 63";
    let Packet::Publish(p) = decode_one(text, V5).unwrap() else {
        panic!("not PUBLISH")
    };
    assert_eq!(p.properties.subscription_identifiers, vec![1, 2]);
    assert_eq!(
        p.properties.user_properties,
        vec![user("a", "b"), user("a", "c")]
    );
}

#[test]
fn publish_payload_shares_the_receive_buffer() {
    let mut buf = hex("30 0A  0003 612F62  68656C6C6F");
    let range = buf.as_ptr_range();
    let Some(Packet::Publish(p)) = decode(&mut buf, V311, MAX).unwrap() else {
        panic!("not PUBLISH")
    };
    assert!(range.contains(&p.payload.as_ptr()), "payload was copied");
}

#[test]
fn acks_v311() {
    exact("40 02 0005", V311, Packet::PubAck(Ack::success(5)));
    exact("50 02 0005", V311, Packet::PubRec(Ack::success(5)));
    exact("62 02 0005", V311, Packet::PubRel(Ack::success(5)));
    exact("70 02 0005", V311, Packet::PubComp(Ack::success(5)));
}

#[test]
fn acks_v5_short_forms() {
    exact("40 02 0005", V5, Packet::PubAck(Ack::success(5)));
    let no_match = Ack {
        packet_id: 5,
        code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        properties: Properties::default(),
    };
    exact("40 03 0005 10", V5, Packet::PubAck(no_match));
    let not_found = Ack {
        packet_id: 5,
        code: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        properties: Properties::default(),
    };
    exact("62 03 0005 92", V5, Packet::PubRel(not_found));
    // Success with an explicit empty property block is accepted, then written short.
    assert_eq!(
        decode_one("40 04 0005 00 00", V5).unwrap(),
        Packet::PubAck(Ack::success(5))
    );
}

#[test]
fn puback_v5_with_reason_string() {
    let properties = Properties {
        reason_string: Some("no".into()),
        ..Properties::default()
    };
    let ack = Ack {
        packet_id: 1,
        code: ReasonCode::QUOTA_EXCEEDED,
        properties,
    };
    exact("40 09 0001 97 05 1F 0002 6E6F", V5, Packet::PubAck(ack));
}

#[test]
fn subscribe_v311() {
    let subscription = |filter: &str, qos| Subscription {
        filter: filter.into(),
        options: SubscriptionOptions {
            qos,
            ..Default::default()
        },
    };
    exact(
        "82 0E  0001  0003 612F62 01  0003 632F23 02",
        V311,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            subscriptions: vec![
                subscription("a/b", QoS::AtLeastOnce),
                subscription("c/#", QoS::ExactlyOnce),
            ],
            properties: Properties::default(),
        }),
    );
}

#[test]
fn subscribe_v5_with_options_and_identifier() {
    exact(
        "82 0B  0003  02 0B 07  0003 612F2B 2D",
        V5,
        Packet::Subscribe(Subscribe {
            packet_id: 3,
            subscriptions: vec![Subscription {
                filter: "a/+".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::Never,
                },
            }],
            properties: Properties {
                subscription_identifiers: vec![7],
                ..Properties::default()
            },
        }),
    );
}

#[test]
fn suback_v311() {
    let codes = vec![
        ReasonCode::GRANTED_QOS_0,
        ReasonCode::GRANTED_QOS_1,
        ReasonCode::UNSPECIFIED_ERROR,
    ];
    exact(
        "90 05 0001 00 01 80",
        V311,
        Packet::SubAck(SubAck {
            packet_id: 1,
            codes,
            properties: Properties::default(),
        }),
    );
}

#[test]
fn suback_v5() {
    let codes = vec![
        ReasonCode::GRANTED_QOS_0,
        ReasonCode::GRANTED_QOS_1,
        ReasonCode::NOT_AUTHORIZED,
    ];
    exact(
        "90 06 0001 00 00 01 87",
        V5,
        Packet::SubAck(SubAck {
            packet_id: 1,
            codes,
            properties: Properties::default(),
        }),
    );
}

#[test]
fn unsubscribe_and_unsuback() {
    let unsubscribe = Unsubscribe {
        packet_id: 2,
        filters: vec!["a/#".into()],
        properties: Properties::default(),
    };
    exact(
        "A2 07 0002 0003 612F23",
        V311,
        Packet::Unsubscribe(unsubscribe.clone()),
    );
    exact(
        "A2 08 0002 00 0003 612F23",
        V5,
        Packet::Unsubscribe(unsubscribe),
    );
    let v311 = UnsubAck {
        packet_id: 2,
        codes: vec![],
        properties: Properties::default(),
    };
    exact("B0 02 0002", V311, Packet::UnsubAck(v311));
    let v5 = UnsubAck {
        packet_id: 2,
        codes: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
        properties: Properties::default(),
    };
    exact("B0 05 0002 00 00 11", V5, Packet::UnsubAck(v5));
}

#[test]
fn ping() {
    exact("C0 00", V311, Packet::PingReq);
    exact("D0 00", V5, Packet::PingResp);
}

#[test]
fn disconnect_forms() {
    let normal = Disconnect {
        code: ReasonCode::NORMAL_DISCONNECTION,
        properties: Properties::default(),
    };
    exact("E0 00", V311, Packet::Disconnect(normal.clone()));
    exact("E0 00", V5, Packet::Disconnect(normal));
    let taken_over = Disconnect {
        code: ReasonCode::SESSION_TAKEN_OVER,
        properties: Properties::default(),
    };
    exact("E0 01 8E", V5, Packet::Disconnect(taken_over));
    let with_expiry = Disconnect {
        code: ReasonCode::NORMAL_DISCONNECTION,
        properties: Properties {
            session_expiry_interval: Some(0),
            ..Properties::default()
        },
    };
    exact(
        "E0 07 00 05 11 00000000",
        V5,
        Packet::Disconnect(with_expiry),
    );
}

#[test]
fn auth_forms() {
    exact(
        "F0 00",
        V5,
        Packet::Auth(Auth {
            code: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }),
    );
    let properties = Properties {
        authentication_method: Some("X".into()),
        ..Properties::default()
    };
    exact(
        "F0 06 18 04 15 0001 58",
        V5,
        Packet::Auth(Auth {
            code: ReasonCode::CONTINUE_AUTHENTICATION,
            properties,
        }),
    );
}

#[test]
fn encoder_uses_v311_return_codes() {
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        code: ReasonCode::BANNED,
        properties: Properties::default(),
    });
    assert_eq!(
        encode_checked(&connack, ProtocolVersion::V311),
        hex("20 02 00 05")
    );
    let suback = Packet::SubAck(SubAck {
        packet_id: 1,
        codes: vec![ReasonCode::QUOTA_EXCEEDED],
        properties: Properties::default(),
    });
    assert_eq!(
        encode_checked(&suback, ProtocolVersion::V311),
        hex("90 03 0001 80")
    );
}

#[test]
fn encoder_leaves_out_properties_the_packet_cannot_carry() {
    let properties = Properties {
        session_expiry_interval: Some(9),
        reason_string: Some("r".into()),
        ..Properties::default()
    };
    let ack = Packet::PubAck(Ack {
        packet_id: 1,
        code: ReasonCode::UNSPECIFIED_ERROR,
        properties,
    });
    assert_eq!(
        encode_checked(&ack, ProtocolVersion::V5),
        hex("40 08 0001 80 04 1F 0001 72")
    );
}

#[test]
fn encoder_rejects_invalid_packets() {
    let publish = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::new(),
    };
    let mut buf = bytes::BytesMut::new();
    let no_id = Packet::Publish(publish.clone());
    assert!(matches!(
        encode(&no_id, ProtocolVersion::V5, &mut buf),
        Err(EncodeError::Invalid(_))
    ));
    assert_eq!(encoded_len(&no_id, ProtocolVersion::V5), usize::MAX);
    let long_topic = Packet::Publish(Publish {
        topic: "t".repeat(65_536),
        packet_id: Some(1),
        ..publish.clone()
    });
    assert!(matches!(
        encode(&long_topic, ProtocolVersion::V5, &mut buf),
        Err(EncodeError::Invalid(_))
    ));
    let huge = Packet::Publish(Publish {
        packet_id: Some(1),
        payload: Bytes::from(vec![0; 268_435_455]),
        ..publish
    });
    assert!(matches!(
        encode(&huge, ProtocolVersion::V5, &mut buf),
        Err(EncodeError::Invalid(_))
    ));
    assert!(buf.is_empty(), "a failed encode must not append anything");
}

#[test]
fn largest_remaining_length_encodes() {
    // A QoS 0 PUBLISH whose body is exactly 268,435,455 bytes: topic "t" (3 bytes),
    // empty property block (1 byte), payload for the rest.
    let publish = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from(vec![0; 268_435_455 - 4]),
    };
    let packet = Packet::Publish(publish);
    assert_eq!(
        encoded_len(&packet, ProtocolVersion::V5),
        1 + 4 + 268_435_455
    );
    let mut buf = bytes::BytesMut::new();
    encode(&packet, ProtocolVersion::V5, &mut buf).unwrap();
    assert_eq!(&buf[..5], &[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
}
