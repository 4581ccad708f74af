//! Base64 (RFC 4648 §4, standard alphabet): binary C2D payloads in JSON
//! (`payloadBase64` in the API) and the symmetric keys and signatures of SAS tokens.
//!
//! One implementation for the hub, the API, the OTA manifests (PEM key bodies,
//! signatures) and the broker's WebSocket handshake. Written here rather than pulled in
//! from crates.io: it is a few dozen lines and has exhaustive tests; its own crate so
//! that crates which must not depend on the hub (the broker, OTA) share it too.
#![forbid(unsafe_code)]

/// The standard alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a text is not base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// More than two `=`, or padding that does not make a multiple of four.
    #[error("bad base64 padding")]
    Padding,
    /// A character outside the alphabet, at this byte offset.
    #[error("bad base64 character at offset {0}")]
    Character(usize),
    /// A length no encoder produces (or non-zero bits in the last character).
    #[error("bad base64 length")]
    Length,
}

/// Encodes with `=` padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = (n >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes, with or without padding; whitespace and other characters are errors.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let trimmed = text.trim_end_matches('=');
    if text.len() - trimmed.len() > 2 || (text.len() != trimmed.len() && text.len() % 4 != 0) {
        return Err(Base64Error::Padding);
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (i, c) in trimmed.bytes().enumerate() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or(Base64Error::Character(i))?;
        acc = (acc << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Six leftover bits cannot come from whole bytes; non-zero leftovers mean the text
    // was not produced by an encoder.
    if bits >= 6 || acc != 0 {
        return Err(Base64Error::Length);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).expect(encoded), plain.as_bytes());
            assert_eq!(
                decode(encoded.trim_end_matches('=')).expect(encoded),
                plain.as_bytes()
            );
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        for len in 0..bytes.len() {
            let slice = &bytes[..len];
            assert_eq!(decode(&encode(slice)).expect("round trip"), slice);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in ["Z", "Zm9v=", "Zg===", "Zh==", "Zm 9v", "Zm9v!", "=", "Zg=a"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
