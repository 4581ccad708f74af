//! Encodings of chunk contents and the small byte-level helpers the file formats share.
//!
//! Layout: `bits` (bit writer/reader), `rice` (Rice/zigzag integer codes), `dod`
//! (delta-of-delta timestamps), `xor` (Gorilla values), `values` (XOR or scaled
//! decimals, whichever is smaller), and here: LEB128 varints, a bounds-checked byte
//! reader, and the raw-chunk format (`count`, timestamp column, value column).

pub(crate) mod bits;
pub(crate) mod dod;
pub(crate) mod rice;
pub(crate) mod values;
pub(crate) mod xor;

/// Appends `v` as an LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a varint length and the bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A bounds-checked cursor over bytes read from disk; every read is `None` past the end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// True when every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    /// A little-endian `u64`.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        let bytes: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    /// A little-endian `i64`.
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }

    /// An LEB128 varint of at most 10 bytes.
    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f).checked_shl(7 * i)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A varint that must fit `usize` and not exceed the bytes left (a length or count).
    pub(crate) fn len(&mut self) -> Option<usize> {
        let v = usize::try_from(self.varint()?).ok()?;
        (v <= self.data.len() - self.pos.min(self.data.len())).then_some(v)
    }

    /// Varint-length-prefixed bytes.
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    /// Varint-length-prefixed UTF-8.
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

/// Encodes a raw chunk: varint count, timestamp column, value column (each length-prefixed).
pub(crate) fn encode_chunk(ts: &[i64], values: &[f64]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, ts.len() as u64);
    put_bytes(&mut out, &dod::encode(ts));
    put_bytes(&mut out, &values::encode(values));
    out
}

/// Decodes a chunk written by [`encode_chunk`]; `None` if it is damaged.
pub(crate) fn decode_chunk(bytes: &[u8]) -> Option<(Vec<i64>, Vec<f64>)> {
    let mut r = Reader::new(bytes);
    let n = usize::try_from(r.varint()?).ok()?;
    let ts = dod::decode(r.bytes()?, n)?;
    let values = values::decode(r.bytes()?, n)?;
    Some((ts, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(Reader::new(&out).varint(), Some(v));
        }

        #[test]
        fn chunks_round_trip(points in proptest::collection::vec((any::<i64>(), any::<u64>()), 0..200)) {
            let ts: Vec<i64> = points.iter().map(|p| p.0).collect();
            let values: Vec<f64> = points.iter().map(|p| f64::from_bits(p.1)).collect();
            let (dts, dvalues) = decode_chunk(&encode_chunk(&ts, &values)).ok_or_else(|| TestCaseError::fail("decode"))?;
            prop_assert_eq!(dts, ts);
            let bits: Vec<u64> = dvalues.iter().map(|v| v.to_bits()).collect();
            let expected: Vec<u64> = points.iter().map(|p| p.1).collect();
            prop_assert_eq!(bits, expected);
        }

        #[test]
        fn chunk_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_chunk(&bytes);
        }
    }
}
