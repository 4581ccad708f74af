//! Raw sample records: headerless little-endian `f32`, one channel.
//!
//! The format of the CWRU copy in `shared/data/cwru` and the natural one for raw
//! captures uploaded by a device (no header to version, any tool can read it:
//! `numpy.fromfile(path, '<f4')`). Decoding works without `std`; reading a file needs it.

/// Iterates over the samples in `bytes`; a trailing partial sample (fewer than four
/// bytes) is ignored rather than treated as an error, as a torn capture would end.
pub fn samples_le(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a whole record file into memory.
#[cfg(feature = "std")]
pub fn read_f32_le(path: impl AsRef<std::path::Path>) -> std::io::Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    Ok(samples_le(&bytes).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_little_endian_and_drops_torn_tail() {
        let mut bytes = Vec::new();
        for x in [1.0f32, -2.5, f32::MAX] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        bytes.push(0xff);
        assert_eq!(
            samples_le(&bytes).collect::<Vec<_>>(),
            vec![1.0, -2.5, f32::MAX]
        );
    }
}
