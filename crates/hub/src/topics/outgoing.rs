//! Topics the hub publishes to devices, in the exact shapes Azure device SDKs subscribe to.
//!
//! Text that comes from callers or devices (request ids, method names, property bags) is
//! percent-encoded with the RFC 3986 unreserved set, so it can never add a level (`/`), a
//! wildcard (`+`, `#`) or a query (`?`, `&`) to the topic. Request ids and method names
//! made of letters, digits, `-`, `.`, `_`, `~`, which is what SDKs use, are unchanged.

use super::property_bag::{encode_component, encode_property_bag};

/// The answer to a twin GET or reported PATCH:
/// `$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]`.
pub fn twin_response(status: u16, rid: &str, version: Option<u64>) -> String {
    let rid = encode_component(rid);
    match version {
        Some(version) => format!("$iothub/twin/res/{status}/?$rid={rid}&$version={version}"),
        None => format!("$iothub/twin/res/{status}/?$rid={rid}"),
    }
}

/// Where a desired-properties patch is pushed:
/// `$iothub/twin/PATCH/properties/desired/?$version={v}`.
pub fn desired_patch(version: u64) -> String {
    format!("$iothub/twin/PATCH/properties/desired/?$version={version}")
}

/// A direct method call: `$iothub/methods/POST/{name}/?$rid={rid}` (both encoded).
pub fn method_request(name: &str, rid: &str) -> String {
    format!(
        "$iothub/methods/POST/{}/?$rid={}",
        encode_component(name),
        encode_component(rid)
    )
}

/// A cloud-to-device message: `devices/{id}/messages/devicebound/{property bag}`.
///
/// The device id is used as is, because devices subscribe to
/// `devices/{id}/messages/devicebound/#` with their literal id; only characters that
/// would change the topic's structure (`/`, `+`, `#`, control characters) are
/// percent-encoded, and the registry's id rules already exclude those.
pub fn c2d_topic(device_id: &str, properties: &[(String, String)]) -> String {
    let bag = encode_property_bag(properties);
    format!(
        "devices/{}/messages/devicebound/{bag}",
        escape_level(device_id)
    )
}

/// A DPS answer: `$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]`.
pub fn dps_response(status: u16, rid: &str, retry_after: Option<u32>) -> String {
    let rid = encode_component(rid);
    match retry_after {
        Some(seconds) => {
            format!("$dps/registrations/res/{status}/?$rid={rid}&retry-after={seconds}")
        }
        None => format!("$dps/registrations/res/{status}/?$rid={rid}"),
    }
}

/// Percent-encodes only what would break one topic level.
fn escape_level(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '/' | '+' | '#') || c.is_control() {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twin_topics() {
        assert_eq!(
            twin_response(200, "1", None),
            "$iothub/twin/res/200/?$rid=1"
        );
        assert_eq!(
            twin_response(204, "x", Some(7)),
            "$iothub/twin/res/204/?$rid=x&$version=7"
        );
        assert_eq!(
            desired_patch(3),
            "$iothub/twin/PATCH/properties/desired/?$version=3"
        );
    }

    #[test]
    fn method_topics_cannot_be_injected() {
        assert_eq!(
            method_request("reboot", "5"),
            "$iothub/methods/POST/reboot/?$rid=5"
        );
        assert_eq!(
            method_request("a/b+#?", "1&x=2"),
            "$iothub/methods/POST/a%2Fb%2B%23%3F/?$rid=1%26x%3D2"
        );
    }

    #[test]
    fn c2d_topics() {
        let props = vec![(
            "$.to".to_owned(),
            "/devices/d1/messages/devicebound".to_owned(),
        )];
        assert_eq!(
            c2d_topic("d1", &props),
            "devices/d1/messages/devicebound/%24.to=%2Fdevices%2Fd1%2Fmessages%2Fdevicebound"
        );
        assert_eq!(
            c2d_topic("a:b$%", &[]),
            "devices/a:b$%/messages/devicebound/"
        );
        assert_eq!(
            c2d_topic("a/+#", &[]),
            "devices/a%2F%2B%23/messages/devicebound/"
        );
    }

    #[test]
    fn dps_topics() {
        assert_eq!(
            dps_response(202, "9", Some(3)),
            "$dps/registrations/res/202/?$rid=9&retry-after=3"
        );
        assert_eq!(
            dps_response(200, "9", None),
            "$dps/registrations/res/200/?$rid=9"
        );
    }
}
