//! Streaming image verification: the device feeds the image as it arrives (chunks of any
//! size) and learns at the end whether it is exactly the signed image.
//!
//! Memory stays constant (a SHA-256 state), so a microcontroller can verify an image
//! larger than its RAM while writing it to the inactive slot. Bytes beyond the manifest's
//! size are refused at once, without hashing them. After a dropped connection the agent
//! resumes the download with a Range request and re-feeds what is already in the slot
//! (the hash state itself is not persisted).

use ring::digest::{Context, SHA256};

use crate::key::PublicKey;
use crate::manifest::{Manifest, Sha256};
use crate::refusal::Refusal;

/// Checks an image against its manifest while it streams in.
pub struct ImageVerifier {
    /// The manifest the image must match.
    manifest: Manifest,
    /// Bytes fed so far.
    received: u64,
    /// SHA-256 over those bytes.
    hash: Context,
}

impl ImageVerifier {
    /// Starts verifying an image described by `manifest`.
    pub fn new(manifest: Manifest) -> ImageVerifier {
        ImageVerifier {
            manifest,
            received: 0,
            hash: Context::new(&SHA256),
        }
    }

    /// Feeds the next bytes; refuses as soon as the image is longer than announced.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), Refusal> {
        let total = self.received.saturating_add(chunk.len() as u64);
        if total > self.manifest.size {
            return Err(Refusal::TooLong {
                expected: self.manifest.size,
            });
        }
        self.hash.update(chunk);
        self.received = total;
        Ok(())
    }

    /// Bytes fed so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Download progress in whole percent (100 for an empty image), for the twin's
    /// `downloading` state.
    pub fn percent(&self) -> u8 {
        match self.manifest.size {
            0 => 100,
            size => (self.received.saturating_mul(100) / size).min(100) as u8,
        }
    }

    /// Ends the stream: the size, then the hash, then the manifest's signature against
    /// `trusted` must all match. Returns the key that signed.
    pub fn finish(self, trusted: &[PublicKey]) -> Result<PublicKey, Refusal> {
        if self.received != self.manifest.size {
            return Err(Refusal::Truncated {
                expected: self.manifest.size,
                received: self.received,
            });
        }
        let mut actual = [0u8; 32];
        actual.copy_from_slice(self.hash.finish().as_ref());
        if actual != self.manifest.sha256.0 {
            return Err(Refusal::HashMismatch {
                expected: self.manifest.sha256.to_hex(),
                actual: Sha256(actual).to_hex(),
            });
        }
        self.manifest.verify_signature(trusted).cloned()
    }
}

/// Verifies a whole image in memory (the hub's upload, `bosun firmware verify`).
pub fn verify_image(
    manifest: &Manifest,
    image: &[u8],
    trusted: &[PublicKey],
) -> Result<PublicKey, Refusal> {
    let mut v = ImageVerifier::new(manifest.clone());
    v.update(image)?;
    v.finish(trusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ed_key, signed};
    use proptest::prelude::*;

    #[test]
    fn accepts_the_signed_image_in_any_chunking() {
        let key = ed_key();
        let image: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let m = signed(&key, &image, "1.0.0");
        for size in [1, 7, 4096, 5000] {
            let mut v = ImageVerifier::new(m.clone());
            for chunk in image.chunks(size) {
                v.update(chunk).expect("chunk");
            }
            assert_eq!(v.percent(), 100);
            assert_eq!(v.finish(&[key.public_key()]), Ok(key.public_key()));
        }
    }

    #[test]
    fn refuses_truncated_long_tampered_and_wrong_key() {
        let key = ed_key();
        let image = b"firmware image bytes".to_vec();
        let m = signed(&key, &image, "1.0.0");
        let trusted = [key.public_key()];
        let cut = verify_image(&m, &image[..10], &trusted);
        assert_eq!(
            cut,
            Err(Refusal::Truncated {
                expected: 20,
                received: 10
            })
        );
        let long = [&image[..], b"!"].concat();
        assert_eq!(
            verify_image(&m, &long, &trusted),
            Err(Refusal::TooLong { expected: 20 })
        );
        let mut tampered = image.clone();
        tampered[3] ^= 0x20;
        let r = verify_image(&m, &tampered, &trusted);
        assert!(matches!(r, Err(Refusal::HashMismatch { .. })), "{r:?}");
        let r = verify_image(&m, &image, &[ed_key().public_key()]);
        assert!(matches!(r, Err(Refusal::UnknownKey { .. })), "{r:?}");
    }

    #[test]
    fn reports_progress() {
        let image = [0u8; 200];
        let mut v = ImageVerifier::new(signed(&ed_key(), &image, "1.0.0"));
        v.update(&image[..50]).expect("chunk");
        assert_eq!((v.received(), v.percent()), (50, 25));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any change to any byte of the image, or any cut, is refused.
        #[test]
        fn tampered_images_never_verify(
            image in proptest::collection::vec(any::<u8>(), 1..512),
            at in any::<usize>(), flip in 1u8..=255, cut in any::<usize>(),
        ) {
            let key = ed_key();
            let m = signed(&key, &image, "1.0.0");
            let trusted = [key.public_key()];
            prop_assert!(verify_image(&m, &image, &trusted).is_ok());
            let mut bad = image.clone();
            let i = at % bad.len();
            bad[i] ^= flip;
            prop_assert!(verify_image(&m, &bad, &trusted).is_err());
            let short = &image[..cut % image.len()];
            prop_assert!(verify_image(&m, short, &trusted).is_err());
        }
    }
}
