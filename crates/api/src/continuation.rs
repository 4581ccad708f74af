//! Continuation tokens: the hub's paging cursor, made opaque to clients.
//!
//! The hub pages by a cursor it understands (the last device id, the last feedback
//! sequence number). Handing that out verbatim would invite clients to build cursors
//! themselves and tie us to the representation, so the API hex-encodes it behind a
//! version prefix; a token that does not decode is a `400`, never a panic.

use crate::problem::Problem;

/// Version prefix: a later format can be told apart and old tokens rejected cleanly.
const PREFIX: &str = "c1";

/// The token a client sees for the hub's cursor `cursor`.
pub(crate) fn encode(cursor: &str) -> String {
    let mut out = String::with_capacity(PREFIX.len() + cursor.len() * 2);
    out.push_str(PREFIX);
    for b in cursor.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The hub's cursor inside a client's token.
pub(crate) fn decode(token: &str) -> Result<String, Problem> {
    let bad = || Problem::bad_request("the continuation token is not one this API handed out");
    let hex = token.strip_prefix(PREFIX).ok_or_else(bad)?;
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_hides_the_cursor() {
        for cursor in ["", "dev-1", "ünïcode/'?%", "12345"] {
            let token = encode(cursor);
            assert!(!token.contains(cursor) || cursor.is_empty());
            assert_eq!(decode(&token).expect("decodes"), cursor);
        }
    }

    #[test]
    fn foreign_tokens_are_rejected() {
        for token in ["", "dev-1", "c1z", "c1abc", "c1zz", "c2", "c1ff", "c1é0"] {
            assert!(decode(token).is_err(), "{token}");
        }
    }
}
