//! Generic CBOR (RFC 8949) → JSON value, for devices that send their own CBOR maps.
//!
//! The mapping: integers and floats (half, single, double) become numbers (a negative
//! integer below `i64::MIN` becomes the nearest float), text stays text, byte strings
//! become base64 text, `null` and `undefined` become `null`, maps become objects whose
//! keys are text or integers written in decimal (a later duplicate key wins). Tags are
//! ignored: the tagged item stands for itself (a date string stays a string, a bignum
//! stays its bytes). Indefinite-length strings, arrays and maps are accepted.
//!
//! Written by hand rather than with a CBOR crate because what matters here is the
//! bounds: nothing is allocated from a length the payload claims (only as items
//! actually arrive), nesting, array and map sizes are checked against [`Limits`] as the
//! decoder goes, NaN and infinities are refused with their path, and every read is
//! bounds-checked, so no input can panic or exhaust memory.

use serde_json::{Map, Value};

use super::deadletter::base64;
use super::limits::Limits;
use super::number::finite;
use super::DecodeError;

/// Decodes one CBOR data item spanning all of `bytes`.
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        limits,
    };
    let value = reader.item(1)?;
    if reader.pos != bytes.len() {
        return Err(reader.malformed("bytes after the data item"));
    }
    Ok(value)
}

/// A data item's head: major type and argument (or `None` for indefinite length).
struct Head {
    major: u8,
    info: u8,
    arg: Option<u64>,
}

/// Marker for the "break" stop code (0xff) that ends an indefinite-length item.
const BREAK: u8 = 0xff;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    limits: &'a Limits,
}

impl Reader<'_> {
    fn malformed(&self, message: &'static str) -> DecodeError {
        DecodeError::CborMalformed {
            position: self.pos,
            message,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::CborTruncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::CborTruncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::CborTruncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::CborTruncated)
    }

    /// A big-endian unsigned integer of `n` (1, 2, 4 or 8) bytes.
    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn head(&mut self) -> Result<Head, DecodeError> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => Some(u64::from(info)),
            24 => Some(self.uint(1)?),
            25 => Some(self.uint(2)?),
            26 => Some(self.uint(4)?),
            27 => Some(self.uint(8)?),
            31 if matches!(major, 2..=5 | 7) => None,
            _ => {
                self.pos -= 1;
                return Err(self.malformed("reserved additional information"));
            }
        };
        Ok(Head { major, info, arg })
    }

    /// One data item at nesting level `depth`.
    fn item(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        let head = self.head()?;
        match (head.major, head.arg) {
            (0, Some(n)) => Ok(Value::from(n)),
            (1, Some(n)) => Ok(negative(n)),
            (2, _) => Ok(Value::String(base64::encode(&self.string(2, head.arg)?))),
            (3, _) => {
                let bytes = self.string(3, head.arg)?;
                String::from_utf8(bytes).map(Value::String).map_err(|_| {
                    DecodeError::CborMalformed {
                        position: start,
                        message: "text string is not UTF-8",
                    }
                })
            }
            (4, len) => self.array(len, depth),
            (5, len) => self.map(len, depth),
            // A tag: nesting like a container so that a chain of tags cannot recurse
            // without bound; the tagged item stands for itself.
            (6, _) => {
                self.limits.enter(depth)?;
                self.item(depth + 1)
            }
            (7, arg) => self.simple(head.info, arg, start),
            _ => {
                self.pos = start;
                Err(self.malformed("unexpected break"))
            }
        }
    }

    /// The bytes of a (possibly indefinite, chunked) byte or text string.
    fn string(&mut self, major: u8, len: Option<u64>) -> Result<Vec<u8>, DecodeError> {
        if let Some(len) = len {
            let len = usize::try_from(len).map_err(|_| DecodeError::CborTruncated)?;
            return Ok(self.take(len)?.to_vec());
        }
        let mut out = Vec::new();
        loop {
            if self.peek()? == BREAK {
                self.pos += 1;
                return Ok(out);
            }
            let chunk = self.head()?;
            match (chunk.major == major, chunk.arg) {
                (true, Some(len)) => {
                    let len = usize::try_from(len).map_err(|_| DecodeError::CborTruncated)?;
                    out.extend_from_slice(self.take(len)?);
                }
                _ => return Err(self.malformed("bad chunk in an indefinite-length string")),
            }
        }
    }

    /// True (and consumes it) if the next byte ends an indefinite-length container.
    fn at_end(&mut self, len: Option<u64>, count: u64) -> Result<bool, DecodeError> {
        match len {
            Some(len) => Ok(count >= len),
            None if self.peek()? == BREAK => {
                self.pos += 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn array(&mut self, len: Option<u64>, depth: usize) -> Result<Value, DecodeError> {
        self.limits.enter(depth)?;
        let limit = self.limits.max_array_len as u64;
        if len.is_some_and(|n| n > limit) {
            return Err(self.limits.array_too_long());
        }
        let mut items = Vec::new();
        let mut count = 0u64;
        while !self.at_end(len, count)? {
            if count >= limit {
                return Err(self.limits.array_too_long());
            }
            let item = self
                .item(depth + 1)
                .map_err(|e| e.within(&count.to_string()))?;
            items.push(item);
            count += 1;
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: Option<u64>, depth: usize) -> Result<Value, DecodeError> {
        self.limits.enter(depth)?;
        let limit = self.limits.max_object_len as u64;
        if len.is_some_and(|n| n > limit) {
            return Err(self.limits.object_too_large());
        }
        let mut map = Map::new();
        let mut count = 0u64;
        while !self.at_end(len, count)? {
            if count >= limit {
                return Err(self.limits.object_too_large());
            }
            let key = self.key()?;
            let value = self.item(depth + 1).map_err(|e| e.within(&key))?;
            map.insert(key, value);
            count += 1;
        }
        Ok(Value::Object(map))
    }

    /// A map key: text, or an integer written in decimal.
    fn key(&mut self) -> Result<String, DecodeError> {
        let start = self.pos;
        let head = self.head()?;
        match (head.major, head.arg) {
            (0, Some(n)) => Ok(n.to_string()),
            (1, Some(n)) => Ok(format!("-{}", u128::from(n) + 1)),
            (3, len) => {
                String::from_utf8(self.string(3, len)?).map_err(|_| DecodeError::CborMalformed {
                    position: start,
                    message: "text string is not UTF-8",
                })
            }
            _ => {
                self.pos = start;
                Err(self.malformed("map key is neither text nor an integer"))
            }
        }
    }

    /// Major type 7: simple values and floats.
    fn simple(&mut self, info: u8, arg: Option<u64>, start: usize) -> Result<Value, DecodeError> {
        let arg = arg.unwrap_or(0);
        match info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 | 23 => Ok(Value::Null),
            25 => finite(half(arg as u16)),
            26 => finite(f64::from(f32::from_bits(arg as u32))),
            27 => finite(f64::from_bits(arg)),
            31 => {
                self.pos = start;
                Err(self.malformed("unexpected break"))
            }
            _ => {
                self.pos = start;
                Err(self.malformed("unassigned simple value"))
            }
        }
    }
}

/// CBOR negative integer `-1 - n`; as a float below `i64::MIN`.
fn negative(n: u64) -> Value {
    match i64::try_from(n) {
        Ok(n) => Value::from(-1 - n),
        Err(_) => finite(-1.0 - n as f64).unwrap_or(Value::Null),
    }
}

/// IEEE 754 half precision to `f64` (RFC 8949 Appendix D).
fn half(bits: u16) -> f64 {
    let exp = (bits >> 10) & 0x1f;
    let mant = f64::from(bits & 0x3ff);
    let magnitude = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (mant + 1024.0) * 2f64.powi(i32::from(exp) - 25),
    };
    if bits & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Minimal CBOR encoder for tests: definite lengths, doubles for floats.
    pub(crate) fn encode(value: &Value, out: &mut Vec<u8>) {
        fn head(out: &mut Vec<u8>, major: u8, n: u64) {
            let m = major << 5;
            match n {
                0..=23 => out.push(m | n as u8),
                24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
                0x100..=0xffff => {
                    out.push(m | 25);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
                0x1_0000..=0xffff_ffff => {
                    out.push(m | 26);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                }
                _ => {
                    out.push(m | 27);
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
        }
        match value {
            Value::Null => out.push(0xf6),
            Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    head(out, 0, u);
                } else if let Some(i) = n.as_i64() {
                    head(out, 1, (-1 - i) as u64);
                } else {
                    out.push(0xfb);
                    out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_be_bytes());
                }
            }
            Value::String(s) => {
                head(out, 3, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Array(items) => {
                head(out, 4, items.len() as u64);
                items.iter().for_each(|v| encode(v, out));
            }
            Value::Object(map) => {
                head(out, 5, map.len() as u64);
                for (k, v) in map {
                    encode(&Value::String(k.clone()), out);
                    encode(v, out);
                }
            }
        }
    }

    fn dec(bytes: &[u8]) -> Result<Value, DecodeError> {
        decode(bytes, &Limits::default())
    }

    #[test]
    fn rfc_8949_appendix_a_examples() {
        let cases: &[(&[u8], Value)] = &[
            (&[0x00], json!(0)),
            (&[0x18, 0x64], json!(100)),
            (
                &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                json!(u64::MAX),
            ),
            (&[0x38, 0x63], json!(-100)),
            (&[0xf9, 0x3c, 0x00], json!(1.0)),
            (&[0xf9, 0x80, 0x00], json!(-0.0)),
            (&[0xf9, 0x7b, 0xff], json!(65504.0)),
            (&[0xf9, 0x00, 0x01], json!(5.960464477539063e-8)),
            (&[0xfa, 0x47, 0xc3, 0x50, 0x00], json!(100000.0)),
            (
                &[0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a],
                json!(1.1),
            ),
            (&[0xf4], json!(false)),
            (&[0xf7], Value::Null),
            (&[0x44, 1, 2, 3, 4], json!("AQIDBA==")),
            (&[0x62, 0xc3, 0xbc], json!("ü")),
            (&[0x82, 0x01, 0x82, 0x02, 0x03], json!([1, [2, 3]])),
            (&[0xa2, 0x01, 0x02, 0x20, 0x04], json!({"1": 2, "-1": 4})),
            (
                &[
                    0x7f, 0x65, b's', b't', b'r', b'e', b'a', 0x64, b'm', b'i', b'n', b'g', 0xff,
                ],
                json!("streaming"),
            ),
            (
                &[0x9f, 0x01, 0x82, 0x02, 0x03, 0x9f, 0x04, 0x05, 0xff, 0xff],
                json!([1, [2, 3], [4, 5]]),
            ),
            (
                &[
                    0xbf, 0x61, b'a', 0x01, 0x61, b'b', 0x9f, 0x02, 0x03, 0xff, 0xff,
                ],
                json!({"a": 1, "b": [2, 3]}),
            ),
            // Tag 1 (epoch time) is ignored: the number stands for itself.
            (&[0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0], json!(1363896240)),
        ];
        for (bytes, want) in cases {
            assert_eq!(dec(bytes).as_ref(), Ok(want), "{bytes:02x?}");
        }
    }

    #[test]
    fn refusals() {
        let reason = |b: &[u8]| dec(b).map_err(|e| e.reason());
        assert_eq!(reason(&[0x18]), Err("cbor_truncated"));
        assert_eq!(reason(&[0x82, 0x01]), Err("cbor_truncated"));
        assert_eq!(reason(&[0x01, 0x02]), Err("cbor_malformed"));
        assert_eq!(reason(&[0x1c]), Err("cbor_malformed"));
        assert_eq!(reason(&[0xff]), Err("cbor_malformed"));
        assert_eq!(reason(&[0x62, 0xff, 0xfe]), Err("cbor_malformed"));
        assert_eq!(reason(&[0xa1, 0xf5, 0x01]), Err("cbor_malformed"));
        assert_eq!(reason(&[0x5f, 0x61, b'a', 0xff]), Err("cbor_malformed"));
        // A header claiming 2^64-1 items is refused before anything is allocated.
        let huge = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(reason(&huge), Err("array_too_long"));
        let nan = [0xa1, 0x61, b'x', 0x81, 0xf9, 0x7e, 0x00];
        assert_eq!(
            dec(&nan),
            Err(DecodeError::NonFinite { path: "x.0".into() })
        );
        let deep = vec![0x81; 100];
        assert_eq!(reason(&deep), Err("too_deep"));
        let tags = vec![0xc1; 100];
        assert_eq!(reason(&tags), Err("too_deep"));
    }

    pub(crate) fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| finite(f).unwrap_or(Value::Null)),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips(value in json_value()) {
            let mut bytes = Vec::new();
            encode(&value, &mut bytes);
            prop_assert_eq!(dec(&bytes), Ok(value));
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = dec(&bytes);
        }
    }
}
