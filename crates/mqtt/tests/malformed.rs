//! One test per rule the decoder enforces, each asserting the exact [`DecodeError`]
//! variant (and so the reason code the broker will send) for a minimal offending
//! vector. Spec ids name the rule broken.
#![allow(clippy::unwrap_used)]

mod common;

use common::{decode_err, decode_one, hex};
use mqtt::{decode, DecodeError, Packet, ProtocolVersion, ReasonCode};

const NONE: Option<ProtocolVersion> = None;
const V311: Option<ProtocolVersion> = Some(ProtocolVersion::V311);
const V5: Option<ProtocolVersion> = Some(ProtocolVersion::V5);

/// Declares tests asserting that a vector fails with a given error kind.
macro_rules! rejects {
    ($($name:ident: $version:expr, $hex:expr => $kind:ident;)*) => {$(
        #[test]
        fn $name() {
            let err = decode_err($hex, $version);
            assert!(matches!(err, DecodeError::$kind { .. }), "{err:?}");
        }
    )*};
}

rejects! {
    // Fixed header [MQTT-2.2.2-2].
    pubrel_flags_zero: V311, "60 02 0001" => Malformed;
    subscribe_flags_zero: V311, "80 06 0001 0001 61 00" => Malformed;
    unsubscribe_flags_zero: V311, "A0 05 0001 0001 61" => Malformed;
    puback_flags_set: V5, "42 02 0001" => Malformed;
    pingreq_flags_set: V311, "C1 00" => Malformed;
    connect_flags_set: NONE, "11 0C 0004 4D515454 04 02 003C 0000" => Malformed;
    packet_type_zero: V5, "00 00" => Malformed;
    packet_type_fifteen_in_v311: V311, "F0 00" => Malformed;
    publish_qos_3: V311, "36 05 0003 612F62" => Malformed;
    publish_dup_with_qos_0: V311, "38 05 0003 612F62" => Malformed;

    // Remaining length [MQTT-1.5.5].
    remaining_length_five_bytes: V311, "30 FF FF FF FF 7F" => Malformed;
    remaining_length_not_minimal: V311, "C0 80 00" => Malformed;

    // Framing: every packet ends where its fields end.
    pingreq_with_body: V311, "C0 01 00" => Malformed;
    disconnect_v311_with_body: V311, "E0 01 00" => Malformed;
    connack_v311_trailing_byte: V311, "20 03 00 00 00" => Malformed;
    string_longer_than_packet: V311, "30 04 0005 6162" => Malformed;
    property_block_longer_than_packet: V5, "40 05 0001 00 05 1F" => Malformed;

    // UTF-8 strings [MQTT-1.5.4-1], [MQTT-1.5.4-2].
    topic_invalid_utf8: V311, "30 05 0003 61FF62" => Malformed;
    topic_surrogate: V311, "30 05 0003 EDA080" => Malformed;
    topic_with_nul: V311, "30 05 0003 610062" => Malformed;
    client_id_with_nul: NONE, "10 0D 0004 4D515454 04 02 003C 0001 00" => Malformed;
    user_property_invalid_utf8: V5, "40 0B 0001 00 07 26 0001 C3 0001 61" => Malformed;

    // Packet identifiers [MQTT-2.2.1-3].
    puback_id_zero: V311, "40 02 0000" => Protocol;
    pubrel_id_zero: V5, "62 02 0000" => Protocol;
    publish_qos1_id_zero: V311, "32 07 0003 612F62 0000" => Protocol;
    subscribe_id_zero: V311, "82 06 0000 0001 61 00" => Protocol;
    unsubscribe_id_zero: V311, "A2 05 0000 0001 61" => Protocol;
    suback_id_zero: V311, "90 03 0000 00" => Protocol;
    unsuback_id_zero: V311, "B0 02 0000" => Protocol;

    // SUBSCRIBE / UNSUBSCRIBE payloads [MQTT-3.8.3-3], [MQTT-3.10.3-2].
    subscribe_without_filters: V311, "82 02 0001" => Protocol;
    subscribe_v5_without_filters: V5, "82 03 0001 00" => Protocol;
    unsubscribe_without_filters: V311, "A2 02 0001" => Protocol;
    subscribe_filter_without_options: V311, "82 05 0001 0001 61" => Malformed;
    options_v311_upper_bits: V311, "82 06 0001 0001 61 04" => Malformed;
    options_v311_qos_3: V311, "82 06 0001 0001 61 03" => Malformed;
    options_v5_reserved_bits: V5, "82 07 0001 00 0001 61 40" => Malformed;
    options_v5_qos_3: V5, "82 07 0001 00 0001 61 03" => Malformed;
    options_v5_retain_handling_3: V5, "82 07 0001 00 0001 61 30" => Malformed;

    // Topic names [MQTT-3.3.2-2], [MQTT-4.7.3-1].
    topic_with_hash: V311, "30 05 0003 612F23" => TopicName;
    topic_with_plus: V5, "30 06 0003 2B2F62 00" => TopicName;
    topic_empty_v311: V311, "30 02 0000" => TopicName;
    topic_empty_v5_without_alias: V5, "30 03 0000 00" => TopicName;

    // CONNECT [MQTT-3.1.2-1] .. [MQTT-3.1.2-22].
    connect_mqtt_3_1: NONE, "10 0E 0006 4D5149736470 03 02 003C 0000" => UnsupportedVersion;
    connect_level_6: NONE, "10 0C 0004 4D515454 06 02 003C 0000" => UnsupportedVersion;
    connect_other_protocol_name: NONE, "10 0C 0004 4D515458 04 02 003C 0000" => Malformed;
    connect_reserved_flag: NONE, "10 0C 0004 4D515454 04 03 003C 0000" => Malformed;
    connect_will_qos_without_will: NONE, "10 0C 0004 4D515454 04 08 003C 0000" => Malformed;
    connect_will_retain_without_will: NONE, "10 0C 0004 4D515454 04 20 003C 0000" => Malformed;
    connect_will_qos_3: NONE, "10 11 0004 4D515454 04 1C 003C 0000 0001 74 0000" => Malformed;
    connect_v311_password_without_username: NONE, "10 11 0004 4D515454 04 40 003C 0000 0003 707764" => Malformed;
    connect_truncated: NONE, "10 0A 0004 4D515454 04 02 003C" => Malformed;
    first_packet_not_connect: NONE, "C0 00" => Protocol;
    first_packet_auth: NONE, "F0 00" => Protocol;

    // v5 properties [MQTT-2.2.2-1], §2.2.2.2.
    property_unknown_id: V5, "40 06 0001 00 02 05 00" => Malformed;
    property_not_allowed_on_packet: V5, "30 0B 0003 612F62 05 11 00000001" => Protocol;
    property_reason_string_twice: V5, "40 0C 0001 00 08 1F 0001 61 1F 0001 62" => Protocol;
    property_content_type_twice: V5, "30 0E 0003 612F62 08 03 0001 61 03 0001 62" => Protocol;
    property_subscription_id_twice_in_subscribe: V5, "82 0A 0001 04 0B 01 0B 02 0001 61 00" => Protocol;
    property_subscription_id_zero: V5, "30 08 0003 612F62 02 0B 00" => Protocol;
    property_payload_format_2: V5, "30 08 0003 612F62 02 01 02" => Protocol;
    property_receive_maximum_0: NONE, "10 10 0004 4D515454 05 02 003C 03 21 0000 0000" => Protocol;
    property_maximum_packet_size_0: NONE, "10 12 0004 4D515454 05 02 003C 05 27 00000000 0000" => Protocol;
    property_request_problem_information_2: NONE, "10 0F 0004 4D515454 05 02 003C 02 17 02 0000" => Protocol;
    property_request_response_information_2: NONE, "10 0F 0004 4D515454 05 02 003C 02 19 02 0000" => Protocol;
    property_maximum_qos_2: V5, "20 05 00 00 02 24 02" => Protocol;
    property_retain_available_2: V5, "20 05 00 00 02 25 02" => Protocol;
    property_wildcard_available_2: V5, "20 05 00 00 02 28 02" => Protocol;
    property_subscription_id_available_2: V5, "20 05 00 00 02 29 02" => Protocol;
    property_shared_available_2: V5, "20 05 00 00 02 2A 02" => Protocol;
    will_property_session_expiry: NONE, "10 18 0004 4D515454 05 06 003C 00 0000 05 11 00000001 0001 74 0000" => Protocol;

    // Reason codes per packet (MQTT 5.0 §3.x tables).
    puback_reason_not_allowed: V5, "40 03 0001 92" => Malformed;
    pubrec_reason_not_allowed: V5, "50 03 0001 01" => Malformed;
    pubrel_reason_not_allowed: V5, "62 03 0001 10" => Malformed;
    pubcomp_reason_not_allowed: V5, "70 03 0001 80" => Malformed;
    connack_v5_reason_not_allowed: V5, "20 03 00 10 00" => Malformed;
    suback_v5_reason_not_allowed: V5, "90 04 0001 00 03" => Malformed;
    unsuback_v5_reason_not_allowed: V5, "B0 04 0001 00 01" => Malformed;
    disconnect_reason_not_allowed: V5, "E0 01 01" => Malformed;
    auth_reason_not_allowed: V5, "F0 01 10" => Malformed;
    connack_reserved_flags: V311, "20 02 02 00" => Malformed;

    // MQTT 3.1.1 acknowledgement shapes.
    puback_v311_length_3: V311, "40 03 0001 00" => Malformed;
    pubrel_v311_length_4: V311, "62 04 0001 00 00" => Malformed;
    unsuback_v311_with_codes: V311, "B0 03 0001 00" => Malformed;
    connack_v311_return_code_6: V311, "20 02 00 06" => Malformed;
    suback_v311_code_3: V311, "90 03 0001 03" => Malformed;
    suback_v311_code_0x87: V311, "90 03 0001 87" => Malformed;
}

#[test]
fn connect_unsupported_versions_report_their_level() {
    let mqtt_3_1 = decode_err("10 0E 0006 4D5149736470 03 02 003C 0000", NONE);
    assert_eq!(mqtt_3_1, DecodeError::UnsupportedVersion(3));
    assert_eq!(
        mqtt_3_1.reason_code(),
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
    );
    let level_6 = decode_err("10 0C 0004 4D515454 06 02 003C 0000", NONE);
    assert_eq!(level_6, DecodeError::UnsupportedVersion(6));
}

#[test]
fn first_packet_error_message() {
    assert_eq!(
        decode_err("30 05 0003 612F62", NONE),
        DecodeError::Protocol("first packet must be CONNECT")
    );
}

#[test]
fn too_large_before_the_body_arrives() {
    let mut buf = hex("30 FF 7F");
    let err = decode(&mut buf, V5, 1000).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooLarge {
            size: 3 + 16_383,
            max: 1000
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::PACKET_TOO_LARGE);
}

#[test]
fn reason_codes_of_errors() {
    assert_eq!(
        decode_err("C0 01 00", V311).reason_code(),
        ReasonCode::MALFORMED_PACKET
    );
    assert_eq!(
        decode_err("40 02 0000", V311).reason_code(),
        ReasonCode::PROTOCOL_ERROR
    );
    assert_eq!(
        decode_err("30 05 0003 612F23", V311).reason_code(),
        ReasonCode::TOPIC_NAME_INVALID
    );
}

#[test]
fn legal_repeats_and_values_are_accepted() {
    // Two user properties on PUBACK, topic alias 0 left to the broker.
    assert!(decode_one("40 12 0001 00 0E 26 0001 61 0001 62 26 0001 61 0001 63", V5).is_ok());
    assert!(matches!(
        decode_one("30 09 0003 612F62 03 23 0000", V5).unwrap(),
        Packet::Publish(_)
    ));
    // AUTH exists in v5.
    assert!(matches!(decode_one("F0 00", V5).unwrap(), Packet::Auth(_)));
}
