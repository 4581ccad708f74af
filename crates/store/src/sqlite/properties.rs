//! The text encoding of a C2D message's application properties.
//!
//! Properties are an ordered list of (key, value) pairs that may repeat keys and hold
//! any characters, so neither a map nor a separator-joined string fits. Each string is
//! written as its UTF-8 length in bytes, a colon, then the bytes: `[("a", "x=1")]`
//! becomes `1:a3:x=1`. No character needs escaping, decoding never has to guess, and
//! the column stays legible in the `sqlite3` shell. A second table would cost a join on
//! every delivery for data that is always read whole.

use crate::traits::StoreError;

/// Encodes properties for the `c2d_queue.properties` column.
pub(super) fn encode(properties: &[(String, String)]) -> String {
    let mut out = String::new();
    for (key, value) in properties {
        push_string(&mut out, key);
        push_string(&mut out, value);
    }
    out
}

/// Appends one length-prefixed string.
fn push_string(out: &mut String, s: &str) {
    out.push_str(&s.len().to_string());
    out.push(':');
    out.push_str(s);
}

/// Decodes a column written by [`encode`]; anything else is reported, since a message
/// delivered with silently mangled properties is worse than one not delivered.
pub(super) fn decode(text: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut rest = text;
    let mut properties = Vec::new();
    while !rest.is_empty() {
        let (key, after_key) = take_string(rest)?;
        let (value, after_value) = take_string(after_key)?;
        properties.push((key.to_owned(), value.to_owned()));
        rest = after_value;
    }
    Ok(properties)
}

/// Splits one length-prefixed string off the front of `text`.
fn take_string(text: &str) -> Result<(&str, &str), StoreError> {
    let (digits, after_colon) = text
        .split_once(':')
        .ok_or_else(|| corrupt(text, "missing ':' after length"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(corrupt(text, "length is not a decimal number"));
    }
    let len: usize = digits
        .parse()
        .map_err(|_| corrupt(text, "length out of range"))?;
    // `get` is None past the end or inside a multi-byte character.
    let value = after_colon
        .get(..len)
        .ok_or_else(|| corrupt(text, "length runs past the end or splits a character"))?;
    Ok((value, &after_colon[len..]))
}

/// A backend error quoting the start of the bad column.
fn corrupt(at: &str, why: &str) -> StoreError {
    let excerpt: String = at.chars().take(40).collect();
    StoreError::Backend(format!("corrupt C2D properties ({why}) at {excerpt:?}"))
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
    fn encoding_is_length_prefixed() {
        assert_eq!(encode(&pairs(&[("a", "x=1"), ("", "é")])), "1:a3:x=10:2:é");
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn awkward_strings_roundtrip() {
        let properties = pairs(&[
            ("a&b=c", "line\nbreak"),
            ("3:", ":"),
            ("a", "a"),
            ("ключ", "值 🚀"),
            ("", ""),
            ("nul", "\0"),
        ]);
        assert_eq!(decode(&encode(&properties)).expect("decode"), properties);
    }

    #[test]
    fn malformed_text_is_an_error() {
        for bad in [
            "x",
            "1:a",
            "1:a2:b",
            "-1:a0:",
            "9:short0:",
            "1:é0:",
            "+1:a0:",
            ":a",
        ] {
            assert!(
                matches!(decode(bad), Err(StoreError::Backend(_))),
                "{bad:?} decoded"
            );
        }
    }

    proptest! {
        #[test]
        fn any_properties_roundtrip(properties in proptest::collection::vec((".*", ".*"), 0..8)) {
            prop_assert_eq!(decode(&encode(&properties)).expect("decode"), properties);
        }
    }
}
