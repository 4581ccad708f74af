//! Presigned image URLs: how a device, which has no API token, is allowed to download
//! the one image its rollout offers it.
//!
//! The hub signs `(image id, device id, expiry)` with HMAC-SHA256 under a secret of its
//! own (`url.key` in the firmware directory, 32 random bytes, mode 0600, made at first
//! start) and writes the resulting URL into that device's desired `firmware`; the
//! image route accepts the URL until it expires. Azure Device Update hands devices
//! blob SAS URLs the same way. docs/ota.md gives the reasoning.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::hex;

/// The secret's file name in the firmware directory.
pub const URL_KEY_FILE: &str = "url.key";
/// Domain separation of the signed bytes.
const DOMAIN: &[u8] = b"bosun-firmware-url-v1\n";
/// Secret length in bytes.
const SECRET_LEN: usize = 32;

/// Why a presigned URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// The expiry has passed.
    #[error("the download URL expired at {expires} (now {now}); the hub re-signs it when it notifies the device again")]
    Expired {
        /// The URL's expiry, seconds since the epoch.
        expires: u64,
        /// The time of the check.
        now: u64,
    },
    /// The signature is not the hub's for this image, device and expiry.
    #[error("the download URL's signature is not valid for this image, device and expiry")]
    BadSignature,
}

/// Signs and checks presigned image URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    /// A signer over `secret` (tests; the hub uses [`UrlSigner::open_or_create`]).
    pub fn new(secret: &[u8]) -> UrlSigner {
        UrlSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Reads `dir/url.key`, or creates it (mode 0600) with fresh random bytes.
    pub fn open_or_create(dir: &Path) -> io::Result<UrlSigner> {
        let path = dir.join(URL_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let secret = hex::decode(text.trim())
                    .filter(|s| s.len() == SECRET_LEN)
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: not {SECRET_LEN} hex bytes", path.display()),
                        )
                    })?;
                Ok(UrlSigner::new(&secret))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut secret = [0u8; SECRET_LEN];
                SystemRandom::new()
                    .fill(&mut secret)
                    .map_err(|_| io::Error::other("no system randomness"))?;
                write_private(&path, hex::encode(&secret).as_bytes())?;
                Ok(UrlSigner::new(&secret))
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes signed for one URL.
    fn message(image: &str, device: &str, expires: u64) -> Vec<u8> {
        let mut m = DOMAIN.to_vec();
        for part in [image, device] {
            m.extend_from_slice(&(part.len() as u32).to_be_bytes());
            m.extend_from_slice(part.as_bytes());
        }
        m.extend_from_slice(&expires.to_be_bytes());
        m
    }

    /// The signature (hex) for `device` downloading `image` until `expires`.
    pub fn sign(&self, image: &str, device: &str, expires: u64) -> String {
        let tag = hmac::sign(&self.key, &UrlSigner::message(image, device, expires));
        hex::encode(tag.as_ref())
    }

    /// The presigned URL (a path on the hub's API).
    pub fn url(&self, image: &str, device: &str, expires: u64) -> String {
        let sig = self.sign(image, device, expires);
        format!(
            "/api/firmware/{image}/image?device={}&expires={expires}&sig={sig}",
            encode_component(device)
        )
    }

    /// Checks a URL's parameters at `now` (seconds since the epoch); constant-time
    /// comparison of the signature.
    pub fn verify(
        &self,
        image: &str,
        device: &str,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> Result<(), UrlRefusal> {
        let tag = hex::decode(sig).ok_or(UrlRefusal::BadSignature)?;
        hmac::verify(&self.key, &UrlSigner::message(image, device, expires), &tag)
            .map_err(|_| UrlRefusal::BadSignature)?;
        if now > expires {
            return Err(UrlRefusal::Expired { expires, now });
        }
        Ok(())
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Creates `path` with `bytes`, readable by the owner only, never replacing a file.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signs_verifies_and_expires() {
        let s = UrlSigner::new(b"secret");
        let sig = s.sign("img", "dev-1", 100);
        assert_eq!(s.verify("img", "dev-1", 100, &sig, 50), Ok(()));
        assert_eq!(
            s.verify("img", "dev-2", 100, &sig, 50),
            Err(UrlRefusal::BadSignature)
        );
        assert_eq!(
            s.verify("im", "gdev-1", 100, &sig, 50),
            Err(UrlRefusal::BadSignature)
        );
        assert_eq!(
            s.verify("img", "dev-1", 101, &sig, 50),
            Err(UrlRefusal::BadSignature)
        );
        assert_eq!(
            s.verify("img", "dev-1", 100, "zz", 50),
            Err(UrlRefusal::BadSignature)
        );
        assert!(matches!(
            s.verify("img", "dev-1", 100, &sig, 101),
            Err(UrlRefusal::Expired { .. })
        ));
        assert_eq!(
            UrlSigner::new(b"other").verify("img", "dev-1", 100, &sig, 50),
            Err(UrlRefusal::BadSignature)
        );
        let url = s.url("img", "a b/c", 7);
        assert!(
            url.starts_with("/api/firmware/img/image?device=a%20b%2Fc&expires=7&sig="),
            "{url}"
        );
    }

    #[test]
    fn the_secret_is_made_once_and_private() {
        let dir = tempfile::tempdir().expect("dir");
        let a = UrlSigner::open_or_create(dir.path()).expect("create");
        let b = UrlSigner::open_or_create(dir.path()).expect("reopen");
        assert_eq!(a.sign("i", "d", 1), b.sign("i", "d", 1));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(dir.path().join(URL_KEY_FILE)).expect("meta");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        fs::write(dir.path().join(URL_KEY_FILE), "short").expect("corrupt");
        assert!(UrlSigner::open_or_create(dir.path()).is_err());
    }

    proptest! {
        /// Any signature but the right one is refused; verification never panics.
        #[test]
        fn only_the_right_signature_verifies(image in ".{0,40}", device in ".{0,40}", expires in any::<u64>(), sig in ".{0,80}") {
            let s = UrlSigner::new(b"k");
            let good = s.sign(&image, &device, expires);
            prop_assert_eq!(s.verify(&image, &device, expires, &good, 0), Ok(()));
            if sig != good {
                prop_assert!(s.verify(&image, &device, expires, &sig, 0).is_err());
            }
        }
    }
}
