//! The Azure IoT Hub device topics the simulated devices use, built and recognised as
//! plain strings (the benchmark must not share code with the server it measures).
//!
//! Topics from the hub are untrusted input: every parser returns `None` for anything
//! it does not recognise instead of failing.

/// Filters every device subscribes to, with the QoS it asks for: twin answers, desired
/// property updates, direct-method requests.
pub(crate) const SUBSCRIPTIONS: [(&str, mqtt::QoS); 3] = [
    ("$iothub/twin/res/#", mqtt::QoS::AtMostOnce),
    (
        "$iothub/twin/PATCH/properties/desired/#",
        mqtt::QoS::AtLeastOnce,
    ),
    ("$iothub/methods/POST/#", mqtt::QoS::AtMostOnce),
];

/// Where a device sends a reported-properties patch.
pub(crate) fn reported_patch(rid: u64) -> String {
    format!("$iothub/twin/PATCH/properties/reported/?$rid={rid}")
}

/// Where a device asks for its whole twin.
pub(crate) fn twin_get(rid: u64) -> String {
    format!("$iothub/twin/GET/?$rid={rid}")
}

/// Where a device answers a method call (`rid` as it came in the request).
pub(crate) fn method_response(status: u16, rid: &str) -> String {
    format!("$iothub/methods/res/{status}/?$rid={rid}")
}

/// `$iothub/twin/res/{status}/?$rid={rid}[&…]`: status and request id of a twin answer.
pub(crate) fn twin_answer(topic: &str) -> Option<(u16, u64)> {
    let rest = topic.strip_prefix("$iothub/twin/res/")?;
    let (status, query) = rest.split_once("/?")?;
    let rid = parameter(query, "$rid")?.parse().ok()?;
    Some((status.parse().ok()?, rid))
}

/// Whether a topic carries a desired-properties update.
pub(crate) fn is_desired_update(topic: &str) -> bool {
    topic.starts_with("$iothub/twin/PATCH/properties/desired/")
}

/// `$iothub/methods/POST/{name}/?$rid={rid}`: the request id of a method call.
pub(crate) fn method_request(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("$iothub/methods/POST/")?;
    let (name, query) = rest.split_once("/?")?;
    if name.is_empty() {
        return None;
    }
    parameter(query, "$rid").filter(|rid| !rid.is_empty())
}

/// The value of `name` in an `a=b&c=d` query.
fn parameter<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twin_answers() {
        assert_eq!(
            twin_answer("$iothub/twin/res/204/?$rid=17&$version=3"),
            Some((204, 17))
        );
        assert_eq!(twin_answer("$iothub/twin/res/200/?$rid=0"), Some((200, 0)));
        assert_eq!(twin_answer("$iothub/twin/res/abc/?$rid=1"), None);
        assert_eq!(twin_answer("$iothub/twin/res/204/?$version=3"), None);
        assert_eq!(twin_answer("$iothub/twin/res/204"), None);
    }

    #[test]
    fn method_requests() {
        assert_eq!(
            method_request("$iothub/methods/POST/reboot/?$rid=42"),
            Some("42")
        );
        assert_eq!(method_request("$iothub/methods/POST//?$rid=42"), None);
        assert_eq!(method_request("$iothub/methods/POST/reboot/?$rid="), None);
        assert_eq!(method_request("$iothub/methods/res/200/?$rid=1"), None);
    }

    #[test]
    fn outgoing_topics() {
        assert_eq!(
            reported_patch(5),
            "$iothub/twin/PATCH/properties/reported/?$rid=5"
        );
        assert_eq!(twin_get(9), "$iothub/twin/GET/?$rid=9");
        assert_eq!(method_response(200, "7"), "$iothub/methods/res/200/?$rid=7");
        assert!(is_desired_update(
            "$iothub/twin/PATCH/properties/desired/?$version=2"
        ));
    }
}
