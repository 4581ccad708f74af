//! The device's side of the Azure IoT Hub topics: what it subscribes to, the topics it
//! publishes on, and the parse of what the hub sends it.
//!
//! The hub's `hub::topics` formats the cloud side; here are the mirror images. Property
//! bags and query strings are decoded with the hub's own `decode_property_bag`, so both
//! sides agree on escaping. Parsing never panics: an unknown topic is
//! [`Incoming::Other`].

use hub::auth::percent_encode;
use hub::topics::decode_property_bag;

/// Filters a device subscribes to (C2D is added per device id by [`subscriptions`]).
const FIXED_SUBSCRIPTIONS: [&str; 3] = [
    "$iothub/twin/res/#",
    "$iothub/twin/PATCH/properties/desired/#",
    "$iothub/methods/POST/#",
];

/// Every filter the agent subscribes to.
pub fn subscriptions(device_id: &str) -> Vec<String> {
    let mut filters = vec![format!("devices/{device_id}/messages/devicebound/#")];
    filters.extend(FIXED_SUBSCRIPTIONS.iter().map(|f| (*f).to_owned()));
    filters
}

/// `devices/{id}/messages/events/{bag}`: telemetry with system (`$.ct`) and application
/// properties in the topic's property bag, values percent-encoded.
pub fn telemetry(device_id: &str, properties: &[(&str, &str)]) -> String {
    let bag: Vec<String> = properties
        .iter()
        .map(|(k, v)| format!("{}={}", encode_key(k), percent_encode(v)))
        .collect();
    format!("devices/{device_id}/messages/events/{}", bag.join("&"))
}

/// Keys are percent-encoded like values except `$`, which the Azure SDKs leave as is
/// in `$.ct` and `$.ce`.
fn encode_key(key: &str) -> String {
    percent_encode(key).replace("%24", "$")
}

/// `$iothub/twin/GET/?$rid={rid}`.
pub fn twin_get(rid: u64) -> String {
    format!("$iothub/twin/GET/?$rid={rid}")
}

/// `$iothub/twin/PATCH/properties/reported/?$rid={rid}`.
pub fn twin_report(rid: u64) -> String {
    format!("$iothub/twin/PATCH/properties/reported/?$rid={rid}")
}

/// `$iothub/methods/res/{status}/?$rid={rid}` (the rid as the hub sent it).
pub fn method_response(status: u16, rid: &str) -> String {
    format!("$iothub/methods/res/{status}/?$rid={}", percent_encode(rid))
}

/// A message from the hub, classified by topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A cloud-to-device message, with its property bag (`$.mid`, application
    /// properties) decoded.
    C2d {
        /// Properties from the topic.
        properties: Vec<(String, String)>,
    },
    /// An answer to a twin GET or reported PATCH.
    TwinResponse {
        /// HTTP-like status.
        status: u16,
        /// The request id it answers.
        rid: String,
    },
    /// A desired-properties patch pushed by the hub.
    DesiredPatch,
    /// A direct method call.
    Method {
        /// Method name (decoded).
        name: String,
        /// Request id to answer with.
        rid: String,
    },
    /// Anything else (ignored).
    Other,
}

/// Classifies `topic` for device `device_id`.
pub fn parse_incoming(device_id: &str, topic: &str) -> Incoming {
    let c2d_prefix = format!("devices/{device_id}/messages/devicebound/");
    if let Some(bag) = topic.strip_prefix(&c2d_prefix) {
        return match decode_property_bag(bag) {
            Ok(properties) => Incoming::C2d { properties },
            Err(_) => Incoming::C2d {
                properties: Vec::new(),
            },
        };
    }
    if let Some(rest) = topic.strip_prefix("$iothub/twin/res/") {
        let (status, query) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(status) = status.parse() else {
            return Incoming::Other;
        };
        return match query_value(query, "$rid") {
            Some(rid) => Incoming::TwinResponse { status, rid },
            None => Incoming::Other,
        };
    }
    if topic.starts_with("$iothub/twin/PATCH/properties/desired/") {
        return Incoming::DesiredPatch;
    }
    if let Some(rest) = topic.strip_prefix("$iothub/methods/POST/") {
        let (name, query) = rest.split_once('/').unwrap_or((rest, ""));
        let name = hub::auth::percent_decode(name).unwrap_or_default();
        return match query_value(query, "$rid") {
            Some(rid) if !name.is_empty() => Incoming::Method { name, rid },
            _ => Incoming::Other,
        };
    }
    Incoming::Other
}

/// The value of `name` in a `?k=v&…` query.
pub(crate) fn query_value(query: &str, name: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    decode_property_bag(query)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn telemetry_topic_carries_the_content_type() {
        assert_eq!(
            telemetry("d1", &[("$.ct", "application/vnd.bosun.features+cbor")]),
            "devices/d1/messages/events/$.ct=application%2Fvnd.bosun.features%2Bcbor"
        );
        // The hub reads it back.
        let topic = telemetry("d1", &[("$.ct", "a/b+c"), ("chunk", "3")]);
        match hub::topics::parse(&topic) {
            Some(Ok(hub::topics::DeviceTopic::Telemetry {
                device_id,
                properties,
            })) => {
                assert_eq!(device_id, "d1");
                assert_eq!(
                    properties,
                    [
                        ("$.ct".to_owned(), "a/b+c".to_owned()),
                        ("chunk".into(), "3".into())
                    ]
                );
            }
            other => panic!("hub parsed {other:?}"),
        }
    }

    #[test]
    fn classifies_what_the_hub_sends() {
        let c2d = hub::topics::c2d_topic("d1", &[("$.mid".into(), "m 1".into())]);
        assert_eq!(
            parse_incoming("d1", &c2d),
            Incoming::C2d {
                properties: vec![("$.mid".into(), "m 1".into())]
            }
        );
        assert_eq!(
            parse_incoming("d1", &hub::topics::twin_response(200, "7", Some(3))),
            Incoming::TwinResponse {
                status: 200,
                rid: "7".into()
            }
        );
        assert_eq!(
            parse_incoming("d1", &hub::topics::desired_patch(4)),
            Incoming::DesiredPatch
        );
        assert_eq!(
            parse_incoming("d1", &hub::topics::method_request("re boot", "r/1")),
            Incoming::Method {
                name: "re boot".into(),
                rid: "r/1".into()
            }
        );
        assert_eq!(
            parse_incoming("d1", "devices/d2/messages/devicebound/"),
            Incoming::Other
        );
        assert_eq!(
            parse_incoming("d1", "$iothub/twin/res/abc/?$rid=1"),
            Incoming::Other
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(topic in ".{0,80}") {
            let _ = parse_incoming("d1", &topic);
        }

        #[test]
        fn method_rids_round_trip(rid in "[ -~]{1,20}", name in "[a-zA-Z0-9 _.-]{1,12}") {
            let topic = hub::topics::method_request(&name, &rid);
            prop_assert_eq!(
                parse_incoming("d1", &topic),
                Incoming::Method { name: name.clone(), rid: rid.clone() }
            );
            let answer = method_response(200, &rid);
            let parsed = hub::topics::parse(&answer);
            let ok = matches!(
                parsed,
                Some(Ok(hub::topics::DeviceTopic::MethodResponse { status: 200, rid: ref r })) if *r == rid
            );
            prop_assert!(ok, "{:?}", parsed);
        }
    }
}
