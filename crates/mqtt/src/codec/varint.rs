//! Variable Byte Integer [MQTT-1.5.5] (MQTT 3.1.1 §2.2.3): the 1-4 byte little-endian
//! base-128 encoding used for the remaining length, property lengths and subscription
//! identifiers. Decoding works on a plain slice so the fixed header can be checked before
//! the body has arrived.

use crate::DecodeError;

/// Largest value four bytes can carry: 268,435,455.
pub(crate) const MAX: u32 = 0x0FFF_FFFF;

/// Most bytes a Variable Byte Integer may use.
const MAX_BYTES: usize = 4;

/// Reads a Variable Byte Integer from the front of `bytes`.
///
/// `Ok(None)` means the bytes end before the last byte of the integer (more may
/// arrive); otherwise returns the value and how many bytes it used.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().take(MAX_BYTES).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // A trailing zero group means a shorter encoding existed [MQTT-1.5.5-1].
            if i > 0 && byte == 0 {
                return Err(DecodeError::Malformed(
                    "variable byte integer not minimal [MQTT-1.5.5-1]",
                ));
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= MAX_BYTES {
        return Err(DecodeError::Malformed(
            "variable byte integer longer than 4 bytes [MQTT-1.5.5]",
        ));
    }
    Ok(None)
}

/// Number of bytes the encoding of `value` takes (values above [`MAX`] count as 4; the
/// writer rejects them).
pub(crate) fn len(value: u32) -> usize {
    match value {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        0x4000..=0x1F_FFFF => 3,
        _ => 4,
    }
}

/// Encodes `value` (at most [`MAX`]) into its 1-4 bytes; returns the buffer and the
/// number of bytes used.
pub(crate) fn to_bytes(mut value: u32) -> ([u8; MAX_BYTES], usize) {
    let mut out = [0u8; MAX_BYTES];
    let mut used = 0;
    for slot in out.iter_mut() {
        let mut byte = (value & 0x7F) as u8;
        value >>= 7;
        if value != 0 {
            byte |= 0x80;
        }
        *slot = byte;
        used += 1;
        if value == 0 {
            break;
        }
    }
    (out, used)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EDGES: [(u32, usize); 8] = [
        (0, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (2_097_151, 3),
        (2_097_152, 4),
        (268_435_455, 4),
    ];

    #[test]
    fn edges_round_trip_with_expected_length() {
        for (value, expected) in EDGES {
            let (bytes, used) = to_bytes(value);
            assert_eq!(used, expected, "length of {value}");
            assert_eq!(len(value), expected, "len() of {value}");
            assert_eq!(parse(&bytes[..used]).unwrap(), Some((value, used)));
        }
    }

    #[test]
    fn spec_examples() {
        assert_eq!(to_bytes(128).0[..2], [0x80, 0x01]);
        assert_eq!(to_bytes(268_435_455).0, [0xFF, 0xFF, 0xFF, 0x7F]);
    }

    #[test]
    fn five_bytes_rejected() {
        let err = parse(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(_)));
    }

    #[test]
    fn four_continuation_bytes_rejected_without_fifth() {
        assert!(parse(&[0x80, 0x80, 0x80, 0x80]).is_err());
    }

    #[test]
    fn truncated_is_incomplete() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[0x80]).unwrap(), None);
        assert_eq!(parse(&[0xFF, 0xFF, 0xFF]).unwrap(), None);
    }

    #[test]
    fn non_minimal_rejected() {
        assert!(parse(&[0x80, 0x00]).is_err());
        assert!(parse(&[0xFF, 0x80, 0x00]).is_err());
    }
}
