//! JSON payloads: UTF-8 checked first (so the error says where the bad byte is), parsed
//! with `serde_json`, then held to the [`Limits`] on depth and sizes.

use serde_json::Value;

use super::limits::Limits;
use super::DecodeError;

/// Parses a JSON payload (a leading UTF-8 byte order mark is ignored).
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        position: e.valid_up_to(),
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    limits.check(&value, 1)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_where() {
        let l = Limits::default();
        assert_eq!(
            decode(b"{\"a\": 1,\n \"b\": x}", &l).map_err(|e| match e {
                DecodeError::InvalidJson { line, column, .. } => (line, column),
                _ => (0, 0),
            }),
            Err((2, 7))
        );
        assert_eq!(
            decode(b"[\"ok\", \"\xc3\x28\"]", &l),
            Err(DecodeError::InvalidUtf8 { position: 8 })
        );
        assert!(decode(b"\xef\xbb\xbf{}", &l).is_ok());
        // Numbers JSON cannot hold as a finite double are refused by the parser.
        assert!(decode(b"[1e999]", &l).is_err());
    }
}
