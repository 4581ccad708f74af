//! Numbers into JSON: NaN and infinities refused, `f32`s written as their shortest
//! decimal.

use std::fmt::Write;

use serde_json::{Number, Value};

use super::DecodeError;

/// A JSON number from a float, refusing NaN and infinities (the caller adds the path).
pub(crate) fn finite(v: f64) -> Result<Value, DecodeError> {
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(DecodeError::non_finite)
}

/// A JSON number from an `f32`, as the `f64` nearest to the shortest decimal that reads
/// back as the same `f32` (`0.21`, not `0.20999999344348907`): what a device printing
/// its own JSON would send, what a person reading the body expects, and what a rule
/// `x.rms >= 0.21` needs to see for a device that measured 0.21.
pub(crate) fn finite_f32(v: f32) -> Result<Value, DecodeError> {
    if !v.is_finite() {
        return Err(DecodeError::non_finite());
    }
    finite(shortest_f64(v))
}

/// Exact powers of ten representable in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// See [`finite_f32`]. Rounding `v` to `p` significant digits is one multiplication (or
/// division) by an exact power of ten, and turning the digits back into an `f64` is one
/// correctly rounded division (or multiplication), so a candidate that converts back to
/// `v` is exactly what parsing that decimal would give. More digits never stop a
/// candidate from converting back, so the fewest digits that work are found by binary
/// search over 1..=10 — several times cheaper than formatting and parsing, which remains
/// the fallback outside 10^-13..10^23, where the powers of ten would not be exact.
fn shortest_f64(v: f32) -> f64 {
    let x = f64::from(v);
    if x == 0.0 {
        return x;
    }
    let exp = x.abs().log10().floor() as i32;
    // Every digit count must have its power of ten in the table, or a "does not work"
    // could mean "out of range" and mislead the search.
    if !(-13..=22).contains(&exp) {
        return format_and_parse(v);
    }
    let round_to = |digits: i32| -> Option<f64> {
        let k = digits - 1 - exp;
        let pow = *POW10.get(k.unsigned_abs() as usize)?;
        let candidate = if k >= 0 {
            (x * pow).round() / pow
        } else {
            (x / pow).round() * pow
        };
        (candidate as f32 == v).then_some(candidate)
    };
    if let Some(mut best) = round_to(10) {
        let (mut lo, mut hi) = (1, 10);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match round_to(mid) {
                Some(candidate) => {
                    best = candidate;
                    hi = mid;
                }
                None => lo = mid + 1,
            }
        }
        return best;
    }
    format_and_parse(v)
}

/// The slow path of [`shortest_f64`], formatted on the stack (no allocation).
fn format_and_parse(v: f32) -> f64 {
    let x = f64::from(v);
    let mut buf = StackText::default();
    match write!(buf, "{v}") {
        Ok(()) => buf.as_str().parse::<f64>().unwrap_or(x),
        Err(_) => x,
    }
}

/// A small `fmt::Write` target on the stack (the longest `f32` Display is 48 bytes:
/// `f32::MAX` written out in full).
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        Self {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    proptest! {
        #[test]
        fn shortest_matches_format_and_parse(bits in any::<u32>()) {
            let v = f32::from_bits(bits);
            if !v.is_finite() {
                return Ok(());
            }
            let slow = v.to_string().parse::<f64>().unwrap_or(f64::NAN);
            prop_assert_eq!(shortest_f64(v).to_bits(), slow.to_bits(), "{}", v);
        }
    }

    #[test]
    fn floats() {
        assert_eq!(finite_f32(0.1), Ok(json!(0.1)));
        assert_eq!(finite_f32(f32::MAX), Ok(json!(3.4028235e38)));
        assert_eq!(
            finite_f32(-f32::MIN_POSITIVE / 8.0),
            Ok(json!(-1.469368e-39))
        );
        assert_eq!(finite_f32(1000.0), Ok(json!(1000.0)));
        // Found by the property test: past 10^22 only the slow path is exact.
        assert_eq!(finite_f32(1.2184859e30), Ok(json!(1.2184859e30)));
        assert_eq!(finite_f32(f32::from_bits(1)), Ok(json!(1e-45)));
        assert_eq!(finite(f64::NAN), Err(DecodeError::non_finite()));
        assert_eq!(
            finite_f32(f32::NEG_INFINITY),
            Err(DecodeError::non_finite())
        );
    }
}
