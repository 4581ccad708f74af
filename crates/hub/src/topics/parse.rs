//! Incoming topics: what a device published to.
//!
//! Namespaces: everything under `$iothub/` and `$dps/` belongs to the hub (anything there
//! that is not a known shape is an error); `devices/{id}/messages/events` with or without
//! a trailing `/` and property bag is telemetry. All other topics, including other
//! `devices/...` topics, are ordinary MQTT topics the hub ignores.

use super::property_bag::decode_property_bag;
use super::{DeviceTopic, TopicError};

/// Classifies a topic a device published to. `None`: not a hub topic (ordinary MQTT).
/// `Some(Err(_))`: a hub topic that is malformed or not for devices to publish to.
pub fn parse(topic: &str) -> Option<Result<DeviceTopic, TopicError>> {
    if let Some(rest) = topic.strip_prefix("$iothub/") {
        return Some(parse_iothub(rest));
    }
    if let Some(rest) = topic.strip_prefix("$dps/") {
        return Some(parse_dps(rest));
    }
    parse_telemetry(topic)
}

/// Parses the part after `$iothub/`.
fn parse_iothub(rest: &str) -> Result<DeviceTopic, TopicError> {
    let (segments, query) = split(rest);
    match segments.as_slice() {
        ["twin", "GET"] => Ok(DeviceTopic::TwinGet { rid: rid(query)? }),
        ["twin", "PATCH", "properties", "reported"] => {
            Ok(DeviceTopic::TwinPatchReported { rid: rid(query)? })
        }
        ["methods", "res", status] => {
            let status = status
                .parse()
                .map_err(|_| TopicError::BadStatus((*status).to_owned()))?;
            Ok(DeviceTopic::MethodResponse {
                status,
                rid: rid(query)?,
            })
        }
        _ => Err(TopicError::Unknown),
    }
}

/// Parses the part after `$dps/`.
fn parse_dps(rest: &str) -> Result<DeviceTopic, TopicError> {
    let (segments, query) = split(rest);
    match segments.as_slice() {
        ["registrations", "PUT", "iotdps-register"] => {
            Ok(DeviceTopic::DpsRegister { rid: rid(query)? })
        }
        ["registrations", "GET", "iotdps-get-operationstatus"] => Ok(DeviceTopic::DpsPoll {
            rid: rid(query)?,
            operation_id: parameter(query, "operationId")?,
        }),
        _ => Err(TopicError::Unknown),
    }
}

/// Parses `devices/{id}/messages/events[/[bag]]`, or `None` for other topics.
fn parse_telemetry(topic: &str) -> Option<Result<DeviceTopic, TopicError>> {
    let (device_id, rest) = topic.strip_prefix("devices/")?.split_once('/')?;
    let bag = match rest.strip_prefix("messages/events") {
        Some("") => "",
        Some(tail) => tail.strip_prefix('/')?,
        None => return None,
    };
    if device_id.is_empty() {
        return Some(Err(TopicError::EmptyDeviceId));
    }
    // Some SDKs end the bag with a '/'.
    let bag = bag.strip_suffix('/').unwrap_or(bag);
    let telemetry = decode_property_bag(bag).map(|properties| DeviceTopic::Telemetry {
        device_id: device_id.to_owned(),
        properties,
    });
    Some(telemetry)
}

/// Splits `a/b/c/?query` into path segments (a trailing `/` ignored) and the query.
fn split(rest: &str) -> (Vec<&str>, &str) {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_suffix('/').unwrap_or(path);
    (path.split('/').collect(), query)
}

/// The `$rid` parameter, which every request topic must carry.
fn rid(query: &str) -> Result<String, TopicError> {
    parameter(query, "$rid")
}

/// A required, non-empty query parameter (the first if repeated).
fn parameter(query: &str, name: &'static str) -> Result<String, TopicError> {
    decode_property_bag(query)?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
        .ok_or(TopicError::MissingParameter(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(topic: &str) -> Option<DeviceTopic> {
        parse(topic).and_then(Result::ok)
    }

    fn telemetry(device_id: &str, properties: &[(&str, &str)]) -> DeviceTopic {
        let properties = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DeviceTopic::Telemetry {
            device_id: device_id.to_owned(),
            properties,
        }
    }

    #[test]
    fn twin_and_method_topics() {
        assert_eq!(
            ok("$iothub/twin/GET/?$rid=1"),
            Some(DeviceTopic::TwinGet { rid: "1".into() })
        );
        assert_eq!(
            ok("$iothub/twin/PATCH/properties/reported/?$rid=a7&$version=3"),
            Some(DeviceTopic::TwinPatchReported { rid: "a7".into() })
        );
        assert_eq!(
            ok("$iothub/methods/res/-200/?$rid=%24x"),
            Some(DeviceTopic::MethodResponse {
                status: -200,
                rid: "$x".into()
            })
        );
    }

    #[test]
    fn dps_topics() {
        assert_eq!(
            ok("$dps/registrations/PUT/iotdps-register/?$rid=1"),
            Some(DeviceTopic::DpsRegister { rid: "1".into() })
        );
        assert_eq!(
            ok("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=4.abc"),
            Some(DeviceTopic::DpsPoll {
                rid: "2".into(),
                operation_id: "4.abc".into()
            })
        );
    }

    #[test]
    fn telemetry_topics() {
        let python_sdk =
            "devices/dev1/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&key=value";
        let expected = telemetry(
            "dev1",
            &[
                ("$.ct", "application/json"),
                ("$.ce", "utf-8"),
                ("key", "value"),
            ],
        );
        assert_eq!(ok(python_sdk), Some(expected));
        assert_eq!(
            ok("devices/dev1/messages/events/"),
            Some(telemetry("dev1", &[]))
        );
        assert_eq!(
            ok("devices/dev1/messages/events"),
            Some(telemetry("dev1", &[]))
        );
        assert_eq!(
            ok("devices/d/messages/events/a=1/"),
            Some(telemetry("d", &[("a", "1")]))
        );
    }

    #[test]
    fn ordinary_topics_are_not_hub_topics() {
        for topic in [
            "sensors/1",
            "devices/dev1/messages/eventsX",
            "devices/a/b/messages/events",
            "devices/x",
            "",
            "$SYS/x",
        ] {
            assert_eq!(parse(topic), None, "{topic}");
        }
    }

    #[test]
    fn malformed_hub_topics() {
        let cases = [
            ("$iothub/twin/GET/", TopicError::MissingParameter("$rid")),
            (
                "$iothub/twin/GET/?$rid=",
                TopicError::MissingParameter("$rid"),
            ),
            (
                "$iothub/methods/res/ok/?$rid=1",
                TopicError::BadStatus("ok".into()),
            ),
            (
                "$iothub/methods/res/99999999999/?$rid=1",
                TopicError::BadStatus("99999999999".into()),
            ),
            ("$iothub/twin/res/200/?$rid=1", TopicError::Unknown),
            ("$iothub/methods/POST/x/?$rid=1", TopicError::Unknown),
            (
                "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1",
                TopicError::MissingParameter("operationId"),
            ),
            (
                "$iothub/twin/GET/?$rid=%G1",
                TopicError::BadPercentEncoding(5),
            ),
            ("devices//messages/events/", TopicError::EmptyDeviceId),
            ("devices/d/messages/events/a=%FF", TopicError::InvalidUtf8),
        ];
        for (topic, error) in cases {
            assert_eq!(parse(topic), Some(Err(error)), "{topic}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(topic in "\\PC{0,48}|(\\$iothub/|\\$dps/|devices/)[a-zA-Z/?$=&%0-9.-]{0,40}") {
            let _ = parse(&topic);
        }

        #[test]
        fn telemetry_roundtrips(
            id in "[A-Za-z0-9.:_-]{1,12}",
            props in prop::collection::vec(("\\PC{1,6}", "\\PC{0,6}"), 0..4),
        ) {
            let topic = format!("devices/{id}/messages/events/{}", super::super::encode_property_bag(&props));
            prop_assert_eq!(parse(&topic), Some(Ok(DeviceTopic::Telemetry { device_id: id, properties: props })));
        }
    }
}
