//! Bit-level writer and reader shared by the column codecs.
//!
//! Bits are packed most-significant first, so a stream reads in the order it was
//! written. The reader is bounds-checked: running off the end is `None`, never a panic,
//! because chunk bytes come from disk and may be damaged.

/// Appends bit fields to a byte vector.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    /// Bits already used in the last byte of `buf` (8 when a new byte is needed).
    used: u32,
}

impl BitWriter {
    /// An empty writer.
    pub(crate) fn new() -> BitWriter {
        BitWriter {
            buf: Vec::new(),
            used: 8,
        }
    }

    /// Writes the low `n` bits of `value` (`n` ≤ 64), most significant first.
    pub(crate) fn write(&mut self, value: u64, n: u32) {
        let mut remaining = n.min(64);
        while remaining > 0 {
            if self.used == 8 {
                self.buf.push(0);
                self.used = 0;
            }
            let free = 8 - self.used;
            let take = free.min(remaining);
            let shift = remaining - take;
            let bits = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= bits << (free - take);
            }
            self.used += take;
            remaining -= take;
        }
    }

    /// Writes one bit.
    pub(crate) fn bit(&mut self, one: bool) {
        self.write(u64::from(one), 1);
    }

    /// The packed bytes; the last byte is zero-padded.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads bit fields written by [`BitWriter`].
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub(crate) fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }

    /// Reads `n` bits (`n` ≤ 64), or `None` past the end.
    pub(crate) fn read(&mut self, n: u32) -> Option<u64> {
        if n > 64 {
            return None;
        }
        let mut out = 0u64;
        let mut remaining = n;
        while remaining > 0 {
            let byte = *self.data.get(self.pos / 8)?;
            let offset = (self.pos % 8) as u32;
            let avail = 8 - offset;
            let take = avail.min(remaining);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            out = if take == 64 {
                bits
            } else {
                (out << take) | bits
            };
            self.pos += take as usize;
            remaining -= take;
        }
        Some(out)
    }

    /// Reads one bit.
    pub(crate) fn bit(&mut self) -> Option<bool> {
        self.read(1).map(|b| b == 1)
    }

    /// Bits not yet read (including the padding of the last byte).
    pub(crate) fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fields_round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..64)) {
            let mut w = BitWriter::new();
            for (v, n) in &fields {
                w.write(*v, *n);
            }
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for (v, n) in &fields {
                let mask = if *n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.read(*n), Some(v & mask));
            }
        }
    }
}
