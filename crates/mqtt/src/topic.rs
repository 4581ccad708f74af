//! Topic names and topic filters: validation, wildcard matching and shared
//! subscriptions.
//!
//! Every component that touches topics (the decoder, the broker's subscription tree,
//! the device SDK's local dispatch) must agree on what a valid topic is and on what a
//! filter matches, or messages get lost or leak across tenants. This module is the
//! single owner of those rules; nothing here allocates.
//!
//! Spec ids are cited with MQTT 3.1.1 numbering, as used across bosun. MQTT 5.0
//! renumbered the wildcard rules: 3.1.1's [MQTT-4.7.1-2] and [MQTT-4.7.1-3] are 5.0's
//! [MQTT-4.7.1-1] and [MQTT-4.7.1-2]; the rules themselves are unchanged.

use thiserror::Error;

/// Longest topic name or filter that fits in an MQTT UTF-8 string (a 16-bit length
/// prefix) [MQTT-1.5.3].
pub const MAX_TOPIC_LEN: usize = u16::MAX as usize;

/// Prefix that turns a topic filter into a shared subscription [MQTT-4.8.2-1].
pub const SHARE_PREFIX: &str = "$share/";

/// Why a topic name or filter was rejected; the variant names the rule broken so the
/// caller can log it and answer with `TOPIC_NAME_INVALID` (PUBLISH) or
/// `TOPIC_FILTER_INVALID` (SUBSCRIBE, UNSUBSCRIBE).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum TopicError {
    /// Topic names and filters are at least one character long [MQTT-4.7.3-1].
    #[error("topic is empty [MQTT-4.7.3-1]")]
    Empty,
    /// The string does not fit the 16-bit length prefix of the wire format.
    #[error("topic is {len} bytes long, the maximum is 65535 [MQTT-1.5.3]")]
    TooLong {
        /// Length of the rejected string in bytes.
        len: usize,
    },
    /// U+0000 is forbidden in every UTF-8 string of the protocol [MQTT-1.5.3-2].
    #[error("topic contains U+0000 [MQTT-1.5.3-2]")]
    NullCharacter,
    /// Wildcards are only meaningful in filters, never in a published topic
    /// [MQTT-3.3.2-2].
    #[error("topic name contains a wildcard character [MQTT-3.3.2-2]")]
    WildcardInTopicName,
    /// `#` must be a whole level and the last one [MQTT-4.7.1-2].
    #[error("'#' is not alone in the last level of the filter [MQTT-4.7.1-2]")]
    MultiLevelWildcardMisplaced,
    /// `+` must occupy a whole level [MQTT-4.7.1-3].
    #[error("'+' does not occupy a whole level of the filter [MQTT-4.7.1-3]")]
    SingleLevelWildcardMisplaced,
    /// `$share/` must be followed by a non-empty share name [MQTT-4.8.2-1].
    #[error("shared subscription has an empty share name [MQTT-4.8.2-1]")]
    ShareNameEmpty,
    /// The share name may not contain `/`, `+` or `#` [MQTT-4.8.2-2].
    #[error("share name contains '+' or '#' [MQTT-4.8.2-2]")]
    ShareNameInvalid,
    /// The share name must be followed by `/` and a non-empty topic filter
    /// [MQTT-4.8.2-2].
    #[error("shared subscription has no topic filter after the share name [MQTT-4.8.2-2]")]
    SharedFilterMissing,
}

/// Checks a topic name as carried by PUBLISH (and by a Will), so that it can be matched
/// against filters; an empty name with a topic alias is handled by the alias table
/// before this is called.
pub fn validate_topic_name(topic: &str) -> Result<(), TopicError> {
    check_string(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::WildcardInTopicName);
    }
    Ok(())
}

/// Checks a plain (non-shared) topic filter as carried by SUBSCRIBE and UNSUBSCRIBE.
///
/// A `$share/...` filter is accepted here as an ordinary filter whose first level is
/// `$share`; use [`parse_shared`] to apply the shared subscription rules as well.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_string(filter)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        check_filter_level(level, levels.peek().is_none())?;
    }
    Ok(())
}

/// Rules shared by names and filters: length and U+0000.
fn check_string(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: s.len() });
    }
    if s.contains('\0') {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// Wildcard placement within one level of a filter.
fn check_filter_level(level: &str, is_last: bool) -> Result<(), TopicError> {
    match level {
        "+" => Ok(()),
        "#" if is_last => Ok(()),
        "#" => Err(TopicError::MultiLevelWildcardMisplaced),
        _ if level.contains('#') => Err(TopicError::MultiLevelWildcardMisplaced),
        _ if level.contains('+') => Err(TopicError::SingleLevelWildcardMisplaced),
        _ => Ok(()),
    }
}

/// Whether `filter` selects messages published to `topic`.
///
/// Both arguments are assumed valid ([`validate_topic_filter`],
/// [`validate_topic_name`]); a shared filter must be reduced to its inner filter with
/// [`parse_shared`] first. The rules applied:
/// - `+` matches exactly one level, including an empty one (`a/+` matches `a/`);
/// - `#` matches any number of remaining levels, including none, so `sport/#` also
///   matches `sport` [MQTT-4.7.1-2];
/// - a filter starting with a wildcard never matches a topic starting with `$`, which
///   keeps `$SYS/...` and friends out of `#` subscriptions [MQTT-4.7.2-1].
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        if filter_level == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(level) if filter_level == "+" || filter_level == level => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// A shared subscription `$share/{group}/{filter}`, borrowed from the filter string
/// the client sent.
///
/// Messages matching `filter` go to one member of `group` rather than to every
/// subscriber [MQTT-4.8.2].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SharedFilter<'a> {
    /// The share name: subscriptions with the same name and filter form one group.
    pub group: &'a str,
    /// The topic filter messages are matched against.
    pub filter: &'a str,
}

/// Splits a shared subscription into its share name and filter, validating both.
///
/// Returns `Ok(None)` for a filter that is not shared (does not start with
/// `$share/`), after validating it with [`validate_topic_filter`]: one call is enough
/// to check any filter received in SUBSCRIBE.
pub fn parse_shared(filter: &str) -> Result<Option<SharedFilter<'_>>, TopicError> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        validate_topic_filter(filter)?;
        return Ok(None);
    };
    check_string(filter)?;
    let (group, inner) = rest
        .split_once('/')
        .ok_or_else(|| missing_filter_error(rest))?;
    check_share_name(group)?;
    if inner.is_empty() {
        return Err(TopicError::SharedFilterMissing);
    }
    validate_topic_filter(inner)?;
    Ok(Some(SharedFilter {
        group,
        filter: inner,
    }))
}

/// The error for `$share/{rest}` where `rest` has no `/`: an empty share name is
/// reported first since it is the earlier mistake.
fn missing_filter_error(rest: &str) -> TopicError {
    match check_share_name(rest) {
        Err(e) => e,
        Ok(()) => TopicError::SharedFilterMissing,
    }
}

/// Share name rules [MQTT-4.8.2-1] [MQTT-4.8.2-2]; `/` cannot occur since the name
/// ends at the first `/`.
fn check_share_name(group: &str) -> Result<(), TopicError> {
    if group.is_empty() {
        return Err(TopicError::ShareNameEmpty);
    }
    if group.contains(['+', '#']) {
        return Err(TopicError::ShareNameInvalid);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topic_names() {
        assert_eq!(validate_topic_name("a/b"), Ok(()));
        assert_eq!(validate_topic_name("/"), Ok(()));
        assert_eq!(validate_topic_name("$SYS/uptime"), Ok(()));
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(
            validate_topic_name("a/+"),
            Err(TopicError::WildcardInTopicName)
        );
        assert_eq!(
            validate_topic_name("a#"),
            Err(TopicError::WildcardInTopicName)
        );
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::NullCharacter));
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            validate_topic_name(&long),
            Err(TopicError::TooLong {
                len: MAX_TOPIC_LEN + 1
            })
        );
        assert_eq!(validate_topic_name(&long[1..]), Ok(()));
    }

    #[test]
    fn topic_filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/+",
            "/+",
            "a/+/b/#",
            "a//b",
            "$SYS/#",
            "sport/tennis/+",
        ] {
            assert_eq!(validate_topic_filter(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_topic_filter(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_filter("a\0"), Err(TopicError::NullCharacter));
        for bad in ["#/a", "a/#/b", "a#", "a/b#", "##"] {
            assert_eq!(
                validate_topic_filter(bad),
                Err(TopicError::MultiLevelWildcardMisplaced),
                "{bad}"
            );
        }
        for bad in ["a+", "a/+b", "++", "+a/b"] {
            assert_eq!(
                validate_topic_filter(bad),
                Err(TopicError::SingleLevelWildcardMisplaced),
                "{bad}"
            );
        }
    }

    #[test]
    fn matching_examples() {
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking"
        ));
        assert!(matches("sport/#", "sport"));
        assert!(matches("#", "sport"));
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(matches("a/b", "a/b"));
    }

    #[test]
    fn dollar_topics_hidden_from_leading_wildcards() {
        assert!(!matches("#", "$SYS/uptime"));
        assert!(!matches("+/uptime", "$SYS/uptime"));
        assert!(matches("$SYS/#", "$SYS/uptime"));
        assert!(matches("$SYS/+", "$SYS/uptime"));
        assert!(matches("a/#", "a/$b"));
        assert!(matches("a/+", "a/$b"));
    }

    #[test]
    fn shared_filters() {
        assert_eq!(parse_shared("a/b"), Ok(None));
        assert_eq!(parse_shared("$share"), Ok(None));
        assert_eq!(parse_shared("$shared/g/a"), Ok(None));
        assert_eq!(
            parse_shared("$share/g/a/+/#"),
            Ok(Some(SharedFilter {
                group: "g",
                filter: "a/+/#"
            }))
        );
        assert_eq!(
            parse_shared("$share/g//"),
            Ok(Some(SharedFilter {
                group: "g",
                filter: "/"
            }))
        );
        assert_eq!(
            parse_shared("$share/g"),
            Err(TopicError::SharedFilterMissing)
        );
        assert_eq!(
            parse_shared("$share/g/"),
            Err(TopicError::SharedFilterMissing)
        );
        assert_eq!(parse_shared("$share/"), Err(TopicError::ShareNameEmpty));
        assert_eq!(parse_shared("$share//a"), Err(TopicError::ShareNameEmpty));
        assert_eq!(
            parse_shared("$share/+/a"),
            Err(TopicError::ShareNameInvalid)
        );
        assert_eq!(
            parse_shared("$share/g#/a"),
            Err(TopicError::ShareNameInvalid)
        );
        assert_eq!(parse_shared("$share/g+"), Err(TopicError::ShareNameInvalid));
        assert_eq!(
            parse_shared("$share/g/a#"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(parse_shared("$share/g/a\0"), Err(TopicError::NullCharacter));
        assert_eq!(
            parse_shared("a/#/b"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
    }

    /// Independent formulation of the matching rules, level list against level list.
    fn reference_matches(filter: &[&str], topic: &[&str]) -> bool {
        let leading_wildcard = matches!(filter.first(), Some(&"+") | Some(&"#"));
        let dollar = topic.first().is_some_and(|l| l.starts_with('$'));
        !(leading_wildcard && dollar) && reference_levels(filter, topic)
    }

    fn reference_levels(filter: &[&str], topic: &[&str]) -> bool {
        match (filter.split_first(), topic.split_first()) {
            (None, None) => true,
            (Some((&"#", _)), _) => true,
            (Some((&f, f_rest)), Some((&t, t_rest))) => {
                (f == "+" || f == t) && reference_levels(f_rest, t_rest)
            }
            _ => false,
        }
    }

    fn topic_levels() -> impl Strategy<Value = Vec<&'static str>> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "", "$s"]), 1..5)
            .prop_filter("a topic is not empty", |levels| levels != &[""])
    }

    fn filter_levels() -> impl Strategy<Value = Vec<&'static str>> {
        let body = prop::collection::vec(prop::sample::select(vec!["a", "b", "", "+", "$s"]), 0..5);
        (body, any::<bool>()).prop_filter_map("a filter is not empty", |(mut levels, hash)| {
            if hash {
                levels.push("#");
            }
            (!levels.is_empty() && levels != [""]).then_some(levels)
        })
    }

    proptest! {
        #[test]
        fn matches_agrees_with_reference(filter in filter_levels(), topic in topic_levels()) {
            let f = filter.join("/");
            let t = topic.join("/");
            prop_assert_eq!(validate_topic_filter(&f), Ok(()));
            prop_assert_eq!(validate_topic_name(&t), Ok(()));
            prop_assert_eq!(matches(&f, &t), reference_matches(&filter, &topic), "{} vs {}", f, t);
        }

        #[test]
        fn a_topic_used_as_filter_matches_itself(topic in topic_levels()) {
            let t = topic.join("/");
            prop_assert!(matches(&t, &t));
        }

        #[test]
        fn validation_never_panics(s in "\\PC*") {
            let _ = validate_topic_name(&s);
            let _ = validate_topic_filter(&s);
            let _ = parse_shared(&s);
        }

        #[test]
        fn shared_roundtrip(group in "[a-z]{1,4}", filter in filter_levels()) {
            let inner = filter.join("/");
            let full = format!("$share/{group}/{inner}");
            let parsed = parse_shared(&full).unwrap().unwrap();
            prop_assert_eq!(parsed, SharedFilter { group: &group, filter: &inner });
        }
    }
}
