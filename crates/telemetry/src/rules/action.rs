//! What a rule does when it matches, and the checks each action passes at load so the
//! pipeline never meets a malformed one at run time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::template::{check_template, TemplateError};

/// Webhook deliveries tried before giving up, unless the rule says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Delay before the first webhook retry, unless the rule says otherwise.
pub const DEFAULT_BACKOFF_MS: u64 = 500;
/// Most webhook attempts a rule may ask for; more only hides a dead endpoint.
const MAX_ATTEMPTS_LIMIT: u32 = 20;
/// Longest first backoff a rule may ask for.
const MAX_FIRST_BACKOFF_MS: u64 = 60_000;
/// Longest direct-method timeout, as in Azure IoT Hub (`responseTimeoutInSeconds`).
const MAX_METHOD_TIMEOUT_S: u64 = 300;
/// Direct-method timeout unless the rule says otherwise.
const DEFAULT_METHOD_TIMEOUT_S: u64 = 30;
/// Largest C2D payload, serialized, as in Azure IoT Hub.
const MAX_C2D_BYTES: usize = 64 * 1024;
/// Longest MQTT topic name.
const MAX_TOPIC_LEN: usize = 65_535;

/// One step of a rule, written as a table with a `type` key (`type = "webhook"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Store the numbers among the selected fields (every number in the body for
    /// `SELECT *`; see `Matched::numeric_fields`) in the time-series store. Written with
    /// braces so that, like the other actions, unknown fields are refused.
    Store {},
    /// Publish the projection to an MQTT topic; `topic` is a template (`{deviceId}`,
    /// `{rule}`, `{field.path}`).
    Republish {
        /// Topic name template, no wildcards.
        topic: String,
        /// QoS of the publish (0, 1 or 2).
        #[serde(default)]
        qos: u8,
    },
    /// POST the projection to a URL, retrying with exponential backoff.
    Webhook {
        /// `http://` or `https://` URL with a host.
        url: String,
        /// Deliveries tried in all, at least 1.
        #[serde(default = "default_max_attempts")]
        max_attempts: u32,
        /// Delay before the first retry; doubles per retry up to `MAX_BACKOFF_MS`.
        #[serde(default = "default_backoff_ms")]
        backoff_ms: u64,
    },
    /// Send a cloud-to-device message to the device the message came from.
    C2d {
        /// The message body, sent as JSON.
        payload: Value,
        /// Application properties of the message.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        properties: BTreeMap<String, String>,
    },
    /// Invoke a direct method on the device.
    Method {
        /// Method name.
        name: String,
        /// Request payload (JSON; absent means `null`).
        #[serde(default, skip_serializing_if = "Value::is_null")]
        payload: Value,
        /// Seconds to wait for the device's answer, 1 to 300.
        #[serde(default = "default_method_timeout")]
        timeout_s: u64,
    },
    /// Merge a patch into the device twin's desired properties.
    PatchDesired {
        /// The JSON merge patch; a non-empty object.
        patch: Map<String, Value>,
    },
    /// Raise an alert for operators.
    Alert {
        /// How urgent it is.
        severity: Severity,
        /// Message template (`{deviceId}`, `{rule}`, `{field.path}`).
        message: String,
    },
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth looking at soon.
    Warning,
    /// Needs someone now.
    Critical,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// A template has unbalanced braces or an empty placeholder.
    #[error("{field}: {error}")]
    Template {
        /// Which field holds the template.
        field: &'static str,
        /// What is wrong with it.
        error: TemplateError,
    },
    /// The republish topic is not a valid MQTT topic name.
    #[error("topic: {0}")]
    Topic(&'static str),
    /// QoS above 2.
    #[error("qos must be 0, 1 or 2, not {0}")]
    Qos(u8),
    /// The webhook URL is unusable.
    #[error("url {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A number outside its allowed range.
    #[error("{field} must be between {min} and {max}, not {value}")]
    Range {
        /// Which field.
        field: &'static str,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
        /// As given.
        value: u64,
    },
    /// A required text field is empty, or a patch has no members.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The C2D payload is larger than IoT Hub accepts.
    #[error("payload is {0} bytes serialized; the limit is {MAX_C2D_BYTES}")]
    TooLarge(usize),
    /// Desired properties may not set `$`-prefixed (system) members.
    #[error("patch member {0:?}: names starting with '$' are reserved")]
    ReservedMember(String),
}

/// Serde default for [`Action::Webhook`]'s `max_attempts`.
fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

/// Serde default for [`Action::Webhook`]'s `backoff_ms`.
fn default_backoff_ms() -> u64 {
    DEFAULT_BACKOFF_MS
}

/// Serde default for [`Action::Method`]'s `timeout_s`.
fn default_method_timeout() -> u64 {
    DEFAULT_METHOD_TIMEOUT_S
}

impl Action {
    /// The action's `type` as written in configuration, for messages and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Store {} => "store",
            Action::Republish { .. } => "republish",
            Action::Webhook { .. } => "webhook",
            Action::C2d { .. } => "c2d",
            Action::Method { .. } => "method",
            Action::PatchDesired { .. } => "patch_desired",
            Action::Alert { .. } => "alert",
        }
    }

    /// Checks the action's fields; [`super::RuleSet::load`] calls this for every action.
    pub fn validate(&self) -> Result<(), ActionError> {
        match self {
            Action::Store {} => Ok(()),
            Action::Republish { topic, qos } => validate_republish(topic, *qos),
            Action::Webhook {
                url,
                max_attempts,
                backoff_ms,
            } => validate_webhook(url, *max_attempts, *backoff_ms),
            Action::C2d { payload, .. } => validate_c2d(payload),
            Action::Method {
                name, timeout_s, ..
            } => validate_method(name, *timeout_s),
            Action::PatchDesired { patch } => validate_patch(patch),
            Action::Alert { message, .. } => validate_alert(message),
        }
    }
}

/// A template check, naming the field.
fn template(field: &'static str, text: &str) -> Result<(), ActionError> {
    check_template(text).map_err(|error| ActionError::Template { field, error })
}

/// `value` must lie in `min..=max`.
fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ActionError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(ActionError::Range {
        field,
        min,
        max,
        value,
    })
}

/// A topic template must be a valid topic name before and (see `render_topic`) after
/// rendering: not empty, no wildcards, no NUL, not too long.
fn validate_republish(topic: &str, qos: u8) -> Result<(), ActionError> {
    if qos > 2 {
        return Err(ActionError::Qos(qos));
    }
    template("topic", topic)?;
    check_topic_name(topic).map_err(ActionError::Topic)
}

/// Is `topic` a valid MQTT topic name (as opposed to a filter)?
pub(super) fn check_topic_name(topic: &str) -> Result<(), &'static str> {
    if topic.is_empty() {
        return Err("must not be empty");
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err("longer than 65535 bytes");
    }
    if topic.contains(['+', '#']) {
        return Err("wildcards '+' and '#' are not allowed in a topic name");
    }
    if topic.contains('\0') {
        return Err("NUL is not allowed");
    }
    Ok(())
}

/// The URL must be `http://` or `https://` with a host, an optional numeric port and no
/// spaces.
fn validate_webhook(url: &str, attempts: u32, backoff_ms: u64) -> Result<(), ActionError> {
    check_url(url).map_err(|reason| ActionError::Url {
        url: url.to_owned(),
        reason,
    })?;
    range(
        "max_attempts",
        attempts.into(),
        1,
        MAX_ATTEMPTS_LIMIT.into(),
    )?;
    range("backoff_ms", backoff_ms, 1, MAX_FIRST_BACKOFF_MS)
}

/// Checks the parts of an http(s) URL that decide whether a request can be made.
fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = split_port(host_port);
    if host.is_empty() || host == "[]" {
        return Err("has no host");
    }
    match port {
        Some(port) if port.parse::<u16>().map_or(true, |p| p == 0) => Err("has a bad port"),
        _ => Ok(()),
    }
}

/// Splits `host:port`, leaving IPv6 literals (`[::1]:80`) whole.
fn split_port(host_port: &str) -> (&str, Option<&str>) {
    match host_port.rfind(':') {
        Some(at) if !host_port.get(at..).unwrap_or_default().contains(']') => (
            host_port.get(..at).unwrap_or_default(),
            host_port.get(at + 1..),
        ),
        _ => (host_port, None),
    }
}

/// The payload must fit IoT Hub's C2D size limit.
fn validate_c2d(payload: &Value) -> Result<(), ActionError> {
    let size = payload.to_string().len();
    if size > MAX_C2D_BYTES {
        return Err(ActionError::TooLarge(size));
    }
    Ok(())
}

/// A method needs a name and a timeout IoT Hub accepts.
fn validate_method(name: &str, timeout_s: u64) -> Result<(), ActionError> {
    if name.trim().is_empty() {
        return Err(ActionError::Empty("name"));
    }
    range("timeout_s", timeout_s, 1, MAX_METHOD_TIMEOUT_S)
}

/// A patch must change something and not touch system members.
fn validate_patch(patch: &Map<String, Value>) -> Result<(), ActionError> {
    if patch.is_empty() {
        return Err(ActionError::Empty("patch"));
    }
    match patch.keys().find(|k| k.starts_with('$')) {
        Some(key) => Err(ActionError::ReservedMember(key.clone())),
        None => Ok(()),
    }
}

/// An alert needs a message and a well-formed template.
fn validate_alert(message: &str) -> Result<(), ActionError> {
    if message.trim().is_empty() {
        return Err(ActionError::Empty("message"));
    }
    template("message", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let good = [
            "http://example.com",
            "https://hooks.example.com:8443/x?y=1",
            "http://user:pw@10.0.0.1/a",
            "http://[::1]:8080/",
            "https://[fe80::1]/hook",
        ];
        for url in good {
            assert_eq!(check_url(url), Ok(()), "{url}");
        }
        let bad = [
            ("ftp://example.com", "must start with http:// or https://"),
            ("http://", "has no host"),
            ("https:///path", "has no host"),
            ("http://:80/", "has no host"),
            ("http://host:99999/", "has a bad port"),
            ("http://host:/", "has a bad port"),
            (
                "http://ho st/",
                "must not contain spaces or control characters",
            ),
            ("example.com", "must start with http:// or https://"),
        ];
        for (url, reason) in bad {
            assert_eq!(check_url(url), Err(reason), "{url}");
        }
    }

    #[test]
    fn topics() {
        assert_eq!(check_topic_name("alerts/{deviceId}"), Ok(()));
        assert!(check_topic_name("a/+/b").is_err());
        assert!(check_topic_name("a/#").is_err());
        assert!(check_topic_name("").is_err());
        assert_eq!(
            validate_republish("x/{rule", 0),
            Err(ActionError::Template {
                field: "topic",
                error: TemplateError::Unclosed { position: 2 }
            })
        );
        assert_eq!(validate_republish("x", 3), Err(ActionError::Qos(3)));
    }

    #[test]
    fn ranges_and_emptiness() {
        assert!(validate_webhook("http://h", 0, 500).is_err());
        assert!(validate_webhook("http://h", 1, 0).is_err());
        assert!(validate_method("", 30).is_err());
        assert!(validate_method("reboot", 301).is_err());
        assert!(validate_patch(&Map::new()).is_err());
        let mut patch = Map::new();
        patch.insert("$version".into(), Value::from(1));
        assert_eq!(
            validate_patch(&patch),
            Err(ActionError::ReservedMember("$version".into()))
        );
        assert!(validate_alert(" ").is_err());
        let big = Value::String("x".repeat(MAX_C2D_BYTES));
        assert!(matches!(validate_c2d(&big), Err(ActionError::TooLarge(_))));
    }
}
