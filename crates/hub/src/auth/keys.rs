//! Symmetric device keys: 32 random bytes from the operating system, as base64, and
//! the checks a key given by an operator must pass.

use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of a generated key (256 bits, HMAC-SHA256's block-size-safe key length).
const KEY_BYTES: usize = 32;
/// Shortest and longest decoded key accepted from an operator (IoT Hub's bounds).
const KEY_BYTES_ACCEPTED: std::ops::RangeInclusive<usize> = 16..=64;

/// Why a key cannot be used or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64.
    #[error("a symmetric key must be base64")]
    NotBase64,
    /// Decodes to fewer than 16 or more than 64 bytes.
    #[error("a symmetric key must decode to 16 to 64 bytes")]
    Length,
    /// The system's random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// A new key: [`KEY_BYTES`] from the system's generator, base64.
pub fn generate_key() -> Result<String, KeyError> {
    let mut bytes = [0u8; KEY_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Random)?;
    Ok(crate::base64::encode(&bytes))
}

/// Checks a key an operator gave (base64 of 16 to 64 bytes).
pub fn check_key(key: &str) -> Result<(), KeyError> {
    let bytes = crate::base64::decode(key).map_err(|_| KeyError::NotBase64)?;
    if KEY_BYTES_ACCEPTED.contains(&bytes.len()) {
        Ok(())
    } else {
        Err(KeyError::Length)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_fresh_and_valid() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(crate::base64::decode(&a).unwrap().len(), KEY_BYTES);
        assert!(check_key(&a).is_ok());
    }

    #[test]
    fn operator_keys_are_checked() {
        assert_eq!(check_key("not base64!"), Err(KeyError::NotBase64));
        assert_eq!(check_key("c2hvcnQ="), Err(KeyError::Length));
        assert_eq!(
            check_key(&crate::base64::encode(&[7; 65])),
            Err(KeyError::Length)
        );
        assert!(check_key(&crate::base64::encode(&[7; 16])).is_ok());
    }
}
