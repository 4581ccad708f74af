//! Record framing: how one opaque record is laid out on disk and read back.
//!
//! This module owns the byte format of a record and nothing else: it knows neither
//! files nor segments. Every record is framed as
//!
//! ```text
//! [len: u32 LE][crc: u32 LE][payload: len bytes]
//! ```
//!
//! where `crc` is the CRC-32 (IEEE) of the four length bytes followed by the payload.
//! Covering the length as well as the payload matters: a file tail that a crash left
//! zero-filled would otherwise decode as an endless run of valid empty records, because
//! the CRC-32 of nothing is zero.

use std::io::{self, Read};

use super::MAX_RECORD_LEN;

/// Bytes of framing in front of every payload.
pub(crate) const HEADER_LEN: usize = 8;

/// Why a frame could not be read back intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    /// The file ends inside a header.
    ShortHeader,
    /// The length field exceeds [`MAX_RECORD_LEN`].
    TooLong(u32),
    /// The file ends inside a payload.
    ShortPayload,
    /// The checksum does not match the length and payload.
    Checksum,
}

impl std::fmt::Display for Defect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Defect::ShortHeader => f.write_str("file ends inside a record header"),
            Defect::TooLong(len) => write!(f, "record length {len} exceeds the maximum"),
            Defect::ShortPayload => f.write_str("file ends inside a record payload"),
            Defect::Checksum => f.write_str("record checksum mismatch"),
        }
    }
}

/// What reading the next frame found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// An intact record; its payload is in the caller's buffer. Carries the framed size.
    Record(u64),
    /// A clean end of file, exactly at a frame boundary.
    End,
    /// A damaged or incomplete frame.
    Bad(Defect),
}

/// The on-disk length field for a payload, or `None` if it is too long to be logged.
pub(crate) fn checked_len(payload_len: usize) -> Option<u32> {
    if payload_len > MAX_RECORD_LEN {
        return None;
    }
    u32::try_from(payload_len).ok()
}

/// Bytes a payload of `payload_len` bytes occupies on disk.
pub(crate) fn framed_len(payload_len: usize) -> usize {
    HEADER_LEN + payload_len
}

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(payload);
    hasher.finalize()
}

/// The frame header for `payload`. `len` must come from [`checked_len`].
pub(crate) fn header(len: u32, payload: &[u8]) -> [u8; HEADER_LEN] {
    let len = len.to_le_bytes();
    let crc = checksum(len, payload).to_le_bytes();
    [
        len[0], len[1], len[2], len[3], crc[0], crc[1], crc[2], crc[3],
    ]
}

/// Appends the framed `payload` to `buf`. `len` must come from [`checked_len`].
pub(crate) fn encode_into(buf: &mut Vec<u8>, len: u32, payload: &[u8]) {
    buf.extend_from_slice(&header(len, payload));
    buf.extend_from_slice(payload);
}

/// Reads into `buf` until it is full or the reader is exhausted; returns bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the next frame from `reader`, leaving its payload in `payload`.
///
/// I/O errors are returned as errors; damage is reported as [`Frame::Bad`] so the caller
/// can decide whether it is a torn tail or corruption.
pub(crate) fn read_frame(reader: &mut impl Read, payload: &mut Vec<u8>) -> io::Result<Frame> {
    let mut header = [0u8; HEADER_LEN];
    match read_up_to(reader, &mut header)? {
        0 => return Ok(Frame::End),
        HEADER_LEN => {}
        _ => return Ok(Frame::Bad(Defect::ShortHeader)),
    }
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let stored_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let len = u32::from_le_bytes(len_bytes);
    if checked_len(len as usize).is_none() {
        return Ok(Frame::Bad(Defect::TooLong(len)));
    }
    payload.clear();
    // `take` + `read_to_end` grows the buffer with the data actually present, so a torn
    // record claiming a large length costs only what is really on disk.
    let got = reader.take(u64::from(len)).read_to_end(payload)?;
    if got < len as usize {
        return Ok(Frame::Bad(Defect::ShortPayload));
    }
    if checksum(len_bytes, payload) != stored_crc {
        return Ok(Frame::Bad(Defect::Checksum));
    }
    Ok(Frame::Record((HEADER_LEN + got) as u64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        for p in payloads {
            encode_into(&mut buf, checked_len(p.len()).unwrap(), p);
        }
        buf
    }

    fn read_all(mut bytes: &[u8]) -> (Vec<Vec<u8>>, Frame) {
        let mut out = Vec::new();
        let mut payload = Vec::new();
        loop {
            match read_frame(&mut bytes, &mut payload).unwrap() {
                Frame::Record(_) => out.push(payload.clone()),
                other => return (out, other),
            }
        }
    }

    #[test]
    fn round_trips_records_including_empty_ones() {
        let bytes = framed(&[b"one", b"", b"three"]);
        let (records, end) = read_all(&bytes);
        assert_eq!(records, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!(end, Frame::End);
    }

    #[test]
    fn zero_filled_tail_is_not_a_record() {
        let (records, end) = read_all(&[0u8; 64]);
        assert!(records.is_empty());
        assert_eq!(end, Frame::Bad(Defect::Checksum));
    }

    #[test]
    fn detects_each_kind_of_damage() {
        let bytes = framed(&[b"hello"]);
        assert_eq!(read_all(&bytes[..5]).1, Frame::Bad(Defect::ShortHeader));
        assert_eq!(read_all(&bytes[..10]).1, Frame::Bad(Defect::ShortPayload));
        let mut flipped = bytes.clone();
        flipped[HEADER_LEN] ^= 1;
        assert_eq!(read_all(&flipped).1, Frame::Bad(Defect::Checksum));
        let mut huge = bytes;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_all(&huge).1, Frame::Bad(Defect::TooLong(u32::MAX)));
    }

    proptest::proptest! {
        /// Whatever prefix of a log survives a crash, and whatever byte in it is damaged,
        /// reading returns an intact prefix of the records written, then stops; it never
        /// panics and never returns a record that was not written.
        #[test]
        fn damaged_tail_yields_a_prefix_of_what_was_written(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 0..12),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            flip in proptest::option::of((proptest::prelude::any::<proptest::sample::Index>(), 1u8..=255)),
        ) {
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let mut bytes = framed(&refs);
            let keep = cut.index(bytes.len() + 1);
            bytes.truncate(keep);
            if let (Some((at, mask)), false) = (flip, bytes.is_empty()) {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
            let (records, _) = read_all(&bytes);
            proptest::prop_assert!(records.len() <= payloads.len());
            for (got, want) in records.iter().zip(&payloads) {
                proptest::prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn rejects_oversized_payloads_at_encode_time() {
        assert!(checked_len(MAX_RECORD_LEN).is_some());
        assert!(checked_len(MAX_RECORD_LEN + 1).is_none());
    }
}
