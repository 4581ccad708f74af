//! What a device may publish and subscribe to: its own IoT Hub topics, plus rules an
//! operator grants in the configuration (`[acl] device_publish`, `device_subscribe`).
//!
//! Rules are topic filters whose levels may contain `{id}` (the device's id) and
//! `{group}` (its registry group). They are split into levels once, at start, and
//! matched level by level without building strings on the publish path.
//!
//! - **Publish**: the topic must match one rule (MQTT matching: `+` one level, `#` the
//!   rest).
//! - **Subscribe**: the filter must be *covered* by one rule: every topic the filter
//!   can match, the rule matches too. So `#`, `devices/+/…` or a filter naming another
//!   device are refused even though they overlap the device's own topics.
//!
//! Exactness: an id or group is compared as a whole level, never as a pattern, and a
//! rule that would substitute an id or group that is empty or contains `/`, `+` or `#`
//! grants nothing (ids cannot contain them; group names are not checked when set), so
//! nothing a device is called can widen a rule.

use std::borrow::Cow;

/// Built-in publish rules: telemetry, twin requests, method answers. Provisioning
/// (`$dps/…`) is not a device's business: registration clients have their own rules
/// (`provisioning.rs`).
pub const DEVICE_PUBLISH: &[&str] = &[
    "devices/{id}/messages/events/#",
    "$iothub/twin/GET/#",
    "$iothub/twin/PATCH/properties/reported/#",
    "$iothub/methods/res/#",
];

/// Built-in subscribe rules: C2D, twin answers and desired updates, method requests. Answers on the shared `$iothub/…` filters reach only the
/// device they are for: the hub sends them to one client (`send_to`).
pub const DEVICE_SUBSCRIBE: &[&str] = &[
    "devices/{id}/messages/devicebound/#",
    "$iothub/twin/res/#",
    "$iothub/twin/PATCH/properties/desired/#",
    "$iothub/methods/POST/#",
];

/// Why a configured rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ACL rule {rule:?}: {reason}")]
pub struct AclError {
    /// The rule as configured.
    pub rule: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// One level of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    /// Text without placeholders.
    Text(String),
    /// Exactly `{id}`.
    Id,
    /// Exactly `{group}`.
    Group,
    /// Text with placeholders inside it (`fleet-{group}`): substituted per check.
    Mixed(String),
    /// `+`.
    Plus,
    /// `#` (always the last level).
    Hash,
}

/// A rule, split into levels.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    levels: Vec<Level>,
}

/// The device and the values its rules are instantiated with.
#[derive(Clone, Copy)]
struct Subject<'a> {
    id: &'a str,
    group: Option<&'a str>,
}

/// Whether `value` may stand in for a whole level (or part of one) of a rule.
fn substitutable(value: &str) -> bool {
    !value.is_empty() && !value.contains(['/', '+', '#', '\0'])
}

impl Rule {
    fn parse(rule: &str) -> Result<Rule, AclError> {
        let error = |reason| AclError {
            rule: rule.to_string(),
            reason,
        };
        // Valid once the placeholders are filled in with an ordinary name?
        let sample = rule.replace("{id}", "x").replace("{group}", "x");
        if sample.contains(['{', '}']) {
            return Err(error("only {id} and {group} may be substituted"));
        }
        mqtt::topic::validate_topic_filter(&sample)
            .map_err(|_| error("not a valid topic filter"))?;
        if sample.starts_with("$share/") {
            return Err(error("a rule cannot be a shared subscription"));
        }
        let levels = rule
            .split('/')
            .map(|level| match level {
                "+" => Level::Plus,
                "#" => Level::Hash,
                "{id}" => Level::Id,
                "{group}" => Level::Group,
                _ if level.contains('{') => Level::Mixed(level.to_string()),
                _ => Level::Text(level.to_string()),
            })
            .collect();
        Ok(Rule { levels })
    }

    /// The literal a non-wildcard level stands for, or `None` when the rule grants
    /// nothing to this subject (no group, or a value that could widen it).
    fn literal<'a>(level: &'a Level, subject: Subject<'a>) -> Option<Cow<'a, str>> {
        match level {
            Level::Text(text) => Some(Cow::Borrowed(text)),
            Level::Id => substitutable(subject.id).then_some(Cow::Borrowed(subject.id)),
            Level::Group => subject
                .group
                .filter(|g| substitutable(g))
                .map(Cow::Borrowed),
            Level::Mixed(text) => {
                let mut out = text.clone();
                if text.contains("{id}") {
                    if !substitutable(subject.id) {
                        return None;
                    }
                    out = out.replace("{id}", subject.id);
                }
                if text.contains("{group}") {
                    let group = subject.group.filter(|g| substitutable(g))?;
                    out = out.replace("{group}", group);
                }
                Some(Cow::Owned(out))
            }
            Level::Plus | Level::Hash => None,
        }
    }

    /// Whether the first level is a wildcard, which never matches a `$` topic
    /// [MQTT-4.7.2-1].
    fn starts_with_wildcard(&self) -> bool {
        matches!(self.levels.first(), Some(Level::Plus | Level::Hash))
    }

    /// MQTT matching of the instantiated rule against a topic name.
    fn matches(&self, subject: Subject<'_>, topic: &str) -> bool {
        if topic.starts_with('$') && self.starts_with_wildcard() {
            return false;
        }
        let mut topic_levels = topic.split('/');
        for level in &self.levels {
            match level {
                Level::Hash => return true,
                Level::Plus => {
                    if topic_levels.next().is_none() {
                        return false;
                    }
                }
                other => {
                    let Some(want) = Rule::literal(other, subject) else {
                        return false;
                    };
                    if topic_levels.next() != Some(&*want) {
                        return false;
                    }
                }
            }
        }
        topic_levels.next().is_none()
    }

    /// Whether every topic `filter` (a valid, non-shared filter) matches is matched by
    /// the instantiated rule.
    fn covers(&self, subject: Subject<'_>, filter: &str) -> bool {
        if filter.starts_with('$') && self.starts_with_wildcard() {
            return false;
        }
        let mut filter_levels = filter.split('/');
        for level in &self.levels {
            if *level == Level::Hash {
                // `a/#` also matches `a`, so it covers a filter that ended already.
                return true;
            }
            let Some(requested) = filter_levels.next() else {
                return false;
            };
            match level {
                // `+` covers one level of anything, but not `#` (many levels).
                Level::Plus => {
                    if requested == "#" {
                        return false;
                    }
                }
                other => {
                    // A literal covers only itself: `+` and `#` in the request are
                    // wider, and a literal never equals them (see `substitutable`).
                    let Some(want) = Rule::literal(other, subject) else {
                        return false;
                    };
                    if requested != want {
                        return false;
                    }
                }
            }
        }
        filter_levels.next().is_none()
    }
}

/// The device topic rules: built-in ones plus those the operator configured.
#[derive(Debug, Clone)]
pub struct DeviceAcl {
    publish: Vec<Rule>,
    subscribe: Vec<Rule>,
}

impl Default for DeviceAcl {
    fn default() -> DeviceAcl {
        // The built-in rules are constants checked by the tests.
        DeviceAcl::new(&[], &[]).unwrap_or(DeviceAcl {
            publish: Vec::new(),
            subscribe: Vec::new(),
        })
    }
}

impl DeviceAcl {
    /// The built-in rules plus `extra_publish` and `extra_subscribe` (filters with
    /// `{id}` and `{group}`); an error names the first rule that cannot be used.
    pub fn new(
        extra_publish: &[String],
        extra_subscribe: &[String],
    ) -> Result<DeviceAcl, AclError> {
        let parse = |builtin: &[&str], extra: &[String]| -> Result<Vec<Rule>, AclError> {
            builtin
                .iter()
                .copied()
                .chain(extra.iter().map(String::as_str))
                .map(Rule::parse)
                .collect()
        };
        Ok(DeviceAcl {
            publish: parse(DEVICE_PUBLISH, extra_publish)?,
            subscribe: parse(DEVICE_SUBSCRIBE, extra_subscribe)?,
        })
    }

    /// May device `id` (of `group`) publish to `topic`?
    pub fn may_publish(&self, id: &str, group: Option<&str>, topic: &str) -> bool {
        let subject = Subject { id, group };
        self.publish.iter().any(|r| r.matches(subject, topic))
    }

    /// May device `id` (of `group`) subscribe to `filter` (not shared)? An invalid
    /// filter is refused (the broker validates first; this is defence in depth).
    pub fn may_subscribe(&self, id: &str, group: Option<&str>, filter: &str) -> bool {
        if mqtt::topic::validate_topic_filter(filter).is_err() {
            return false;
        }
        let subject = Subject { id, group };
        self.subscribe.iter().any(|r| r.covers(subject, filter))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acl() -> DeviceAcl {
        DeviceAcl::new(
            &["fleet/{group}/status/{id}".into()],
            &["fleet/{group}/broadcast".into(), "cfg/x-{group}/+".into()],
        )
        .unwrap()
    }

    #[test]
    fn a_device_publishes_only_its_own_topics() {
        let acl = acl();
        for topic in [
            "devices/A/messages/events",
            "devices/A/messages/events/",
            "devices/A/messages/events/%24.ct=application%2Fjson",
            "$iothub/twin/GET/?$rid=1",
            "$iothub/twin/PATCH/properties/reported/?$rid=2",
            "$iothub/methods/res/200/?$rid=3",
            "fleet/g1/status/A",
        ] {
            assert!(acl.may_publish("A", Some("g1"), topic), "{topic}");
        }
        for topic in [
            "devices/B/messages/events/",
            "devices/A/messages/devicebound/x",
            "devices/A",
            "devices/A/messages/eventsX",
            "devices/a/messages/events/",
            "$iothub/twin/res/200/?$rid=1",
            "$dps/registrations/PUT/iotdps-register/?$rid=4",
            "$iothub/twin/PATCH/properties/desired/x",
            "$iothub/methods/POST/m",
            "fleet/g2/status/A",
            "fleet/g1/status/B",
            "other/topic",
        ] {
            assert!(!acl.may_publish("A", Some("g1"), topic), "{topic}");
        }
        assert!(!acl.may_publish("A", None, "fleet/g1/status/A"));
    }

    #[test]
    fn a_device_subscribes_only_to_filters_inside_its_namespace() {
        let acl = acl();
        for filter in [
            "devices/A/messages/devicebound/#",
            "devices/A/messages/devicebound/+",
            "devices/A/messages/devicebound",
            "devices/A/messages/devicebound/x/y",
            "$iothub/twin/res/#",
            "$iothub/twin/res/+/x",
            "$iothub/twin/PATCH/properties/desired/#",
            "$iothub/methods/POST/#",
            "$iothub/methods/POST/+",
            "fleet/g1/broadcast",
            "cfg/x-g1/+",
            "cfg/x-g1/a",
        ] {
            assert!(acl.may_subscribe("A", Some("g1"), filter), "{filter}");
        }
        for filter in [
            "#",
            "+/#",
            "devices/#",
            "devices/+/messages/devicebound/#",
            "devices/B/messages/devicebound/#",
            "devices/A/messages/#",
            "devices/A/messages/+/#",
            "devices/A/#",
            "devices/A%2FB/messages/devicebound/#",
            "devices/A/messages/devicebound/#/x",
            "$iothub/#",
            "$iothub/+/res/#",
            "$iothub/twin/#",
            "$iothub/methods/res/#",
            "$dps/registrations/res/#",
            "fleet/g2/broadcast",
            "fleet/+/broadcast",
            "cfg/x-g1/#",
            "cfg/x-g1/a/b",
        ] {
            assert!(!acl.may_subscribe("A", Some("g1"), filter), "{filter}");
        }
        let long = format!("devices/{}/messages/devicebound/#", "A".repeat(10_000));
        assert!(!acl.may_subscribe("A", None, &long));
    }

    #[test]
    fn ids_and_groups_never_act_as_patterns() {
        let acl = acl();
        // A group that could widen a rule grants nothing.
        for group in ["+", "#", "a/b", ""] {
            assert!(!acl.may_subscribe("A", Some(group), "fleet/+/broadcast"));
            assert!(!acl.may_subscribe("A", Some(group), &format!("fleet/{group}/broadcast")));
        }
        // An id with regex-like or escape characters matches only itself.
        let id = "a.*%2F(x)?";
        assert!(acl.may_subscribe(id, None, &format!("devices/{id}/messages/devicebound/#")));
        assert!(!acl.may_subscribe(id, None, "devices/aXX%2F(x)/messages/devicebound/#"));
        assert!(!acl.may_publish(id, None, "devices/abc/messages/events/"));
        // Ids that could never exist grant nothing either.
        for bad in ["+", "#", "a/b", ""] {
            assert!(!acl.may_subscribe(bad, None, "devices/+/messages/devicebound/#"));
            assert!(!acl.may_publish(bad, None, "devices/x/messages/events/"));
        }
    }

    #[test]
    fn bad_rules_are_refused_at_start() {
        for rule in ["a/#/b", "a/{name}", "a/{id", "$share/g/x", "a+"] {
            assert!(DeviceAcl::new(&[rule.into()], &[]).is_err(), "{rule}");
        }
        assert!(DeviceAcl::new(&[], &["x/{id}/#".into()]).is_ok());
    }

    /// Whether device `id` may read `topic` at all (the definition the ACL must keep
    /// to, written independently of it).
    fn readable(id: &str, topic: &str) -> bool {
        let levels: Vec<&str> = topic.split('/').collect();
        let starts =
            |prefix: &[&str]| levels.len() >= prefix.len() && levels[..prefix.len()] == *prefix;
        starts(&["devices", id, "messages", "devicebound"])
            || starts(&["$iothub", "twin", "res"])
            || starts(&["$iothub", "twin", "PATCH", "properties", "desired"])
            || starts(&["$iothub", "methods", "POST"])
    }

    /// Levels to build filters and topics from: the namespace's words, the device's
    /// id, another id, look-alikes, and wildcards (filters only).
    fn level(id: &'static str) -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "devices",
            id,
            "B",
            "A%2FB",
            "messages",
            "devicebound",
            "events",
            "$iothub",
            "twin",
            "res",
            "PATCH",
            "properties",
            "desired",
            "methods",
            "POST",
            "$dps",
            "registrations",
            "",
            "x",
        ])
    }

    fn filter_levels(id: &'static str) -> impl Strategy<Value = Vec<&'static str>> {
        prop::collection::vec(
            prop_oneof![6 => level(id), 1 => Just("+"), 1 => Just("#")],
            1..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn an_allowed_filter_matches_nothing_outside_the_namespace(
            filter in filter_levels("A"),
            topics in prop::collection::vec(prop::collection::vec(level("A"), 1..9), 64),
        ) {
            let filter = filter.join("/");
            prop_assume!(mqtt::topic::validate_topic_filter(&filter).is_ok());
            let acl = DeviceAcl::default();
            if acl.may_subscribe("A", None, &filter) {
                for topic in topics {
                    let topic = topic.join("/");
                    if mqtt::topic::matches(&filter, &topic) {
                        prop_assert!(readable("A", &topic), "{filter} matches {topic}");
                    }
                }
            }
        }

        #[test]
        fn a_filter_the_namespace_covers_is_allowed(
            prefix in prop::sample::select(vec![
                "devices/A/messages/devicebound", "$iothub/twin/res",
                "$iothub/twin/PATCH/properties/desired", "$iothub/methods/POST",
            ]),
            rest in prop::collection::vec(prop_oneof![level("A"), Just("+")], 0..4),
            hash in any::<bool>(),
        ) {
            let mut filter = prefix.to_string();
            for level in rest {
                filter = format!("{filter}/{level}");
            }
            if hash {
                filter.push_str("/#");
            }
            prop_assert!(DeviceAcl::default().may_subscribe("A", None, &filter), "{filter}");
        }

        #[test]
        fn publishing_follows_the_namespace(topic in prop::collection::vec(level("A"), 1..8)) {
            let topic = topic.join("/");
            let levels: Vec<&str> = topic.split('/').collect();
            let starts = |prefix: &[&str]| levels.len() >= prefix.len() && levels[..prefix.len()] == *prefix;
            let expected = starts(&["devices", "A", "messages", "events"])
                || starts(&["$iothub", "twin", "GET"])
                || starts(&["$iothub", "twin", "PATCH", "properties", "reported"])
                || starts(&["$iothub", "methods", "res"]);
            prop_assert_eq!(DeviceAcl::default().may_publish("A", None, &topic), expected, "{}", topic);
        }
    }
}
