//! Properties strategies: every field with a valid value, then trimmed to what the
//! packet kind allows (MQTT 5.0 §2.2.2.2), written out independently of the crate's
//! own table so the two cross-check each other.

use bytes::Bytes;
use mqtt::{Properties, ProtocolVersion};
use proptest::prelude::*;
use proptest::{collection::vec, option};

use super::{bytes, text};

/// Which property block is generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    Ack,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Auth,
}

/// Properties valid in a `ctx` block; always empty on 3.1.1.
pub(crate) fn properties(v: ProtocolVersion, ctx: Ctx) -> BoxedStrategy<Properties> {
    match v {
        ProtocolVersion::V311 => Just(Properties::default()).boxed(),
        ProtocolVersion::V5 => prop_oneof![
            1 => Just(Properties::default()),
            3 => everything().prop_map(move |p| trim(p, ctx)),
        ]
        .boxed(),
    }
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    option::of(0u8..=1)
}

fn string() -> impl Strategy<Value = Option<String>> {
    option::of(text())
}

fn binary() -> impl Strategy<Value = Option<Bytes>> {
    option::of(bytes())
}

/// Every property set to a valid value (or absent).
fn everything() -> impl Strategy<Value = Properties> {
    let a = (
        flag(),
        option::of(any::<u32>()),
        string(),
        string(),
        binary(),
        vec(1u32..=268_435_455, 0..3),
    );
    let b = (
        option::of(any::<u32>()),
        string(),
        option::of(any::<u16>()),
        string(),
        binary(),
        flag(),
    );
    let c = (
        option::of(any::<u32>()),
        flag(),
        string(),
        string(),
        string(),
        option::of(1u16..),
    );
    let d = (
        option::of(any::<u16>()),
        option::of(any::<u16>()),
        flag(),
        flag(),
        vec((text(), text()), 0..3),
    );
    let e = (option::of(1u32..), flag(), flag(), flag());
    (a, b, c, d, e).prop_map(|(a, b, c, d, e)| Properties {
        payload_format_indicator: a.0,
        message_expiry_interval: a.1,
        content_type: a.2,
        response_topic: a.3,
        correlation_data: a.4,
        subscription_identifiers: a.5,
        session_expiry_interval: b.0,
        assigned_client_identifier: b.1,
        server_keep_alive: b.2,
        authentication_method: b.3,
        authentication_data: b.4,
        request_problem_information: b.5,
        will_delay_interval: c.0,
        request_response_information: c.1,
        response_information: c.2,
        server_reference: c.3,
        reason_string: c.4,
        receive_maximum: c.5,
        topic_alias_maximum: d.0,
        topic_alias: d.1,
        maximum_qos: d.2,
        retain_available: d.3,
        user_properties: d.4,
        maximum_packet_size: e.0,
        wildcard_subscription_available: e.1,
        subscription_identifier_available: e.2,
        shared_subscription_available: e.3,
    })
}

/// Keeps only the properties allowed in `ctx`.
fn trim(p: Properties, ctx: Ctx) -> Properties {
    let mut out = Properties {
        user_properties: p.user_properties.clone(),
        ..Properties::default()
    };
    match ctx {
        Ctx::Connect => connect(&p, &mut out),
        Ctx::Will => will(&p, &mut out),
        Ctx::ConnAck => connack(&p, &mut out),
        Ctx::Publish => publish(&p, &mut out),
        Ctx::Ack => out.reason_string = p.reason_string,
        Ctx::Subscribe => {
            out.subscription_identifiers = p.subscription_identifiers.into_iter().take(1).collect()
        }
        Ctx::Unsubscribe => {}
        Ctx::Disconnect => {
            out.session_expiry_interval = p.session_expiry_interval;
            out.reason_string = p.reason_string;
            out.server_reference = p.server_reference;
        }
        Ctx::Auth => {
            out.authentication_method = p.authentication_method;
            out.authentication_data = p.authentication_data;
            out.reason_string = p.reason_string;
        }
    }
    out
}

fn connect(p: &Properties, out: &mut Properties) {
    out.session_expiry_interval = p.session_expiry_interval;
    out.receive_maximum = p.receive_maximum;
    out.maximum_packet_size = p.maximum_packet_size;
    out.topic_alias_maximum = p.topic_alias_maximum;
    out.request_response_information = p.request_response_information;
    out.request_problem_information = p.request_problem_information;
    out.authentication_method = p.authentication_method.clone();
    out.authentication_data = p.authentication_data.clone();
}

fn will(p: &Properties, out: &mut Properties) {
    out.will_delay_interval = p.will_delay_interval;
    out.payload_format_indicator = p.payload_format_indicator;
    out.message_expiry_interval = p.message_expiry_interval;
    out.content_type = p.content_type.clone();
    out.response_topic = p.response_topic.clone();
    out.correlation_data = p.correlation_data.clone();
}

fn connack(p: &Properties, out: &mut Properties) {
    out.session_expiry_interval = p.session_expiry_interval;
    out.receive_maximum = p.receive_maximum;
    out.maximum_qos = p.maximum_qos;
    out.retain_available = p.retain_available;
    out.maximum_packet_size = p.maximum_packet_size;
    out.assigned_client_identifier = p.assigned_client_identifier.clone();
    out.topic_alias_maximum = p.topic_alias_maximum;
    out.reason_string = p.reason_string.clone();
    out.wildcard_subscription_available = p.wildcard_subscription_available;
    out.subscription_identifier_available = p.subscription_identifier_available;
    out.shared_subscription_available = p.shared_subscription_available;
    out.server_keep_alive = p.server_keep_alive;
    out.response_information = p.response_information.clone();
    out.server_reference = p.server_reference.clone();
    out.authentication_method = p.authentication_method.clone();
    out.authentication_data = p.authentication_data.clone();
}

fn publish(p: &Properties, out: &mut Properties) {
    out.payload_format_indicator = p.payload_format_indicator;
    out.message_expiry_interval = p.message_expiry_interval;
    out.topic_alias = p.topic_alias;
    out.response_topic = p.response_topic.clone();
    out.correlation_data = p.correlation_data.clone();
    out.subscription_identifiers = p.subscription_identifiers.clone();
    out.content_type = p.content_type.clone();
}
