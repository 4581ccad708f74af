//! The `Range` request header (RFC 9110 §14), for resuming image downloads.
//!
//! Only a single byte range is honoured (`bytes=500-`, `bytes=500-999`, `bytes=-500`),
//! which is what a resuming download sends. Anything else that is not understood
//! (several ranges, another unit, bad syntax) is ignored and the whole image is sent,
//! as RFC 9110 §14.2 allows; a range wholly past the end is unsatisfiable (416).

/// What to send for a request's `Range` header against an image of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// The whole image (no usable `Range`).
    Full,
    /// Bytes `start..=end` (206 with `Content-Range`).
    Part {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// Nothing of the image is in the range (416 with `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// Decides what `header` asks of an image of `len` bytes.
pub(super) fn answer(header: Option<&str>, len: u64) -> Answer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Answer::Full;
    };
    if spec.contains(',') {
        return Answer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Answer::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-N`: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => Answer::Unsatisfiable,
            Some(_) if len == 0 => Answer::Unsatisfiable,
            Some(n) => Answer::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => Answer::Full,
        },
        // `N-` or `N-M`.
        (false, open) => {
            let Some(start) = number(first) else {
                return Answer::Full;
            };
            let end = if open { Some(u64::MAX) } else { number(last) };
            match end {
                Some(end) if end < start => Answer::Full,
                Some(_) if start >= len => Answer::Unsatisfiable,
                Some(end) => Answer::Part {
                    start,
                    end: end.min(len - 1),
                },
                None => Answer::Full,
            }
        }
        (true, true) => Answer::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        let part = |start, end| Answer::Part { start, end };
        assert_eq!(answer(Some("bytes=0-99"), 1000), part(0, 99));
        assert_eq!(answer(Some("bytes=500-"), 1000), part(500, 999));
        assert_eq!(answer(Some("bytes=900-5000"), 1000), part(900, 999));
        assert_eq!(answer(Some("bytes=-100"), 1000), part(900, 999));
        assert_eq!(answer(Some("bytes=-5000"), 1000), part(0, 999));
        assert_eq!(answer(Some("bytes= 10 - 19 "), 1000), part(10, 19));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(answer(Some("bytes=1000-"), 1000), Answer::Unsatisfiable);
        assert_eq!(answer(Some("bytes=-0"), 1000), Answer::Unsatisfiable);
        assert_eq!(answer(Some("bytes=0-"), 0), Answer::Unsatisfiable);
        for ignored in [
            None,
            Some("bytes=0-1,5-6"),
            Some("items=0-1"),
            Some("bytes=5-1"),
            Some("bytes=x-"),
            Some("bytes=-"),
            Some("bytes=1"),
            Some("bytes=99999999999999999999999-"),
        ] {
            assert_eq!(answer(ignored, 1000), Answer::Full, "{ignored:?}");
        }
    }
}
