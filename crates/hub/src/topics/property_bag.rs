//! Property bags: the `k=v&k2=v2` strings IoT Hub puts in topic names (telemetry and C2D
//! application/system properties, and the `?$rid=...` query of twin and method topics).
//!
//! Encoding percent-encodes every byte outside RFC 3986's unreserved set
//! (`A-Z a-z 0-9 - . _ ~`), so encoded text never contains a topic separator (`/`), a
//! wildcard (`+`, `#`), `?`, `&` or `=`. Decoding accepts any percent-encoded UTF-8 and,
//! unlike HTML forms, leaves `+` as it is.

use super::TopicError;

/// Encodes properties as `k=v&k2=v2`, percent-encoding names and values. Entries with an
/// empty name are left out: a bag cannot carry them (decoding refuses `=v`).
pub fn encode_property_bag(props: &[(String, String)]) -> String {
    let mut out = String::new();
    for (key, value) in props.iter().filter(|(k, _)| !k.is_empty()) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode_component(key));
        out.push('=');
        out.push_str(&encode_component(value));
    }
    out
}

/// Decodes `k=v&k2=v2` into pairs in order. Empty segments (`a=1&&b=2`, a trailing `&`)
/// are skipped; a segment without `=` is a property with an empty value.
pub fn decode_property_bag(s: &str) -> Result<Vec<(String, String)>, TopicError> {
    let mut props = Vec::new();
    let mut offset = 0;
    for segment in s.split('&') {
        if !segment.is_empty() {
            let (key, value) = segment.split_once('=').unwrap_or((segment, ""));
            let key = decode_component(key, offset)?;
            if key.is_empty() {
                return Err(TopicError::EmptyPropertyName);
            }
            let value = decode_component(value, offset + key_len(segment))?;
            props.push((key, value));
        }
        offset += segment.len() + 1;
    }
    Ok(props)
}

/// Length of a segment's `k=` prefix, to place errors inside values.
fn key_len(segment: &str) -> usize {
    segment.find('=').map_or(segment.len(), |i| i + 1)
}

/// Percent-encodes every byte outside the RFC 3986 unreserved set.
pub(super) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0x0f));
        }
    }
    out
}

/// Uppercase hex digit for a nibble (0–15).
fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).map_or('0', |c| c.to_ascii_uppercase())
}

/// Percent-decodes `text`, which starts at byte `offset` of the bag (for error positions).
fn decode_component(text: &str, offset: usize) -> Result<String, TopicError> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let position = offset + (text.len() - rest.len());
            let decoded = match tail {
                [high, low, ..] => hex_value(*high)
                    .zip(hex_value(*low))
                    .map(|(h, l)| h << 4 | l),
                _ => None,
            };
            bytes.push(decoded.ok_or(TopicError::BadPercentEncoding(position))?);
            rest = tail.get(2..).unwrap_or_default();
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| TopicError::InvalidUtf8)
}

/// Value of one hex digit (either case).
fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn encodes_reserved_characters() {
        let props = pairs(&[
            ("$.ct", "application/json"),
            ("a b", "x+y#?&=~"),
            ("", "dropped"),
        ]);
        assert_eq!(
            encode_property_bag(&props),
            "%24.ct=application%2Fjson&a%20b=x%2By%23%3F%26%3D~"
        );
        assert_eq!(encode_property_bag(&pairs(&[("k", "é")])), "k=%C3%A9");
    }

    #[test]
    fn decodes_sdk_output() -> Result<(), TopicError> {
        let decoded = decode_property_bag("%24.ct=application%2Fjson&%24.ce=utf-8&key=value")?;
        assert_eq!(
            decoded,
            pairs(&[
                ("$.ct", "application/json"),
                ("$.ce", "utf-8"),
                ("key", "value")
            ])
        );
        // The C SDK leaves `$` unencoded; `+` stays a plus; bare keys have empty values.
        let decoded = decode_property_bag("$.ct=a+b&&flag&x=%c3%a9&")?;
        assert_eq!(decoded, pairs(&[("$.ct", "a+b"), ("flag", ""), ("x", "é")]));
        Ok(())
    }

    #[test]
    fn refuses_malformed_bags() {
        assert_eq!(
            decode_property_bag("a=1&b=%2"),
            Err(TopicError::BadPercentEncoding(6))
        );
        assert_eq!(
            decode_property_bag("a=%zz"),
            Err(TopicError::BadPercentEncoding(2))
        );
        assert_eq!(
            decode_property_bag("%4"),
            Err(TopicError::BadPercentEncoding(0))
        );
        assert_eq!(decode_property_bag("a=%FF"), Err(TopicError::InvalidUtf8));
        assert_eq!(
            decode_property_bag("=v"),
            Err(TopicError::EmptyPropertyName)
        );
    }

    proptest! {
        #[test]
        fn roundtrips(props in prop::collection::vec(("\\PC{1,8}", "\\PC{0,8}"), 0..6)) {
            let encoded = encode_property_bag(&props);
            prop_assert!(!encoded.contains(['/', '+', '#', '?', ' ']));
            prop_assert_eq!(decode_property_bag(&encoded), Ok(props));
        }

        #[test]
        fn decode_never_panics(text in "\\PC{0,32}|[%0-9a-fA-F&=]{0,32}") {
            if let Err(TopicError::BadPercentEncoding(position)) = decode_property_bag(&text) {
                prop_assert!(position < text.len());
            }
        }
    }
}
