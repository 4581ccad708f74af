//! The firmware manifest: what an image is, what it may replace, and who signed it.
//!
//! JSON on the wire (camelCase, unknown fields refused):
//!
//! ```json
//! {"version":"1.4.0","hw":["sensor-v2"],"size":184320,"sha256":"9f…",
//!  "minFrom":"1.2.0","allowDowngrade":false,
//!  "signature":{"algorithm":"ed25519","keyId":"3b0c…","value":"base64…"}}
//! ```
//!
//! The signature covers [`Manifest::signed_bytes`], a fixed binary layout rather than the
//! JSON text, so that key order, whitespace or number spelling can never make two
//! readers disagree about what was signed. The image itself is covered through its size
//! and SHA-256, which the device checks while it downloads (`verify.rs`).

use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use crate::hex;
use crate::key::{Algorithm, KeyError, PublicKey, SigningKey};
use crate::refusal::Refusal;
use crate::version::Version;

/// Domain separation: these bytes start every signed manifest, so a signature made for
/// anything else (another format, another version of this one) never verifies.
pub const SIGNED_DOMAIN: &[u8] = b"bosun-ota-manifest-v1\n";
/// Largest manifest JSON accepted, in bytes.
pub const MAX_MANIFEST_LEN: usize = 16 * 1024;
/// Most hardware ids one manifest may name.
pub const MAX_HW: usize = 32;
/// Longest hardware id, in bytes.
pub const MAX_HW_LEN: usize = 64;

/// Why a manifest could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the manifest's shape (the text says where and why).
    #[error("malformed manifest: {0}")]
    Json(String),
    /// Over [`MAX_MANIFEST_LEN`].
    #[error("manifest over {MAX_MANIFEST_LEN} bytes")]
    TooLong,
    /// A hardware list that is empty, too long, or has a bad id.
    #[error("bad hardware list: {0}")]
    Hardware(&'static str),
}

/// A SHA-256 digest; lower-case hex in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256 {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, bytes).as_ref());
        Sha256(out)
    }

    /// Lower-case hex (64 characters); also the image's id in the hub's store.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// From 64 lower-case hex characters.
    pub fn from_hex(text: &str) -> Option<Sha256> {
        hex::decode(text)?.try_into().ok().map(Sha256)
    }
}

impl Serialize for Sha256 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Sha256, D::Error> {
        let text = String::deserialize(d)?;
        Sha256::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("sha256 must be 64 lower-case hex digits"))
    }
}

/// A manifest's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signature {
    /// The algorithm; also inside the signed bytes, so it cannot be swapped.
    pub algorithm: Algorithm,
    /// The signing key's id ([`PublicKey::id`]); picks the key to verify with.
    pub key_id: String,
    /// The signature, base64 (Ed25519: 64 bytes; ECDSA: ASN.1 DER).
    pub value: String,
}

/// A firmware image's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// The image's version.
    pub version: Version,
    /// Hardware ids it runs on (a device reports its own; one must match exactly).
    pub hw: Vec<String>,
    /// The image's length in bytes.
    pub size: u64,
    /// The image's SHA-256.
    pub sha256: Sha256,
    /// Oldest version that may update to this one (e.g. a needed data migration);
    /// `None`: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_from: Option<Version>,
    /// Whether a device running a newer (or the same) version may install this one.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// The publisher's signature; `None` until signed (and refused everywhere then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Manifest {
    /// An unsigned manifest describing `image`.
    pub fn describe(image: &[u8], version: Version, hw: Vec<String>) -> Manifest {
        Manifest {
            version,
            hw,
            size: image.len() as u64,
            sha256: Sha256::of(image),
            min_from: None,
            allow_downgrade: false,
            signature: None,
        }
    }

    /// Reads and checks a manifest's JSON; never panics, whatever the input.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLong);
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        manifest.check_hw()?;
        Ok(manifest)
    }

    /// As JSON (pretty, for files and humans).
    pub fn to_json(&self) -> String {
        // Serializing this type cannot fail: every field is a string, number or bool.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Hardware ids: 1 to [`MAX_HW`], each 1 to [`MAX_HW_LEN`] bytes of `[A-Za-z0-9._-]`.
    fn check_hw(&self) -> Result<(), ManifestError> {
        if self.hw.is_empty() {
            return Err(ManifestError::Hardware("names no hardware"));
        }
        if self.hw.len() > MAX_HW {
            return Err(ManifestError::Hardware("names too many hardware ids"));
        }
        let good = |id: &String| {
            !id.is_empty()
                && id.len() <= MAX_HW_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if !self.hw.iter().all(good) {
            return Err(ManifestError::Hardware(
                "ids are 1-64 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        Ok(())
    }

    /// The bytes a signature covers, for a signature by `algorithm` with key `key_id`:
    ///
    /// ```text
    /// "bosun-ota-manifest-v1\n"
    /// str(version)                       canonical SemVer text
    /// u32 n, then n × str(hw id)          in the manifest's order
    /// u64 size
    /// 32 bytes sha256                     raw digest
    /// u8 0 | u8 1 str(min_from)
    /// u8 allow_downgrade (0 | 1)
    /// str(algorithm name)                 "ed25519" | "ecdsa-p256-sha256"
    /// str(key id)
    /// ```
    ///
    /// Integers are big-endian; `str(s)` is a `u32` byte length then the UTF-8 bytes.
    pub fn signed_bytes(&self, algorithm: Algorithm, key_id: &str) -> Vec<u8> {
        let mut out = SIGNED_DOMAIN.to_vec();
        let put_str = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u32).to_be_bytes());
            out.extend(s.as_bytes());
        };
        put_str(&mut out, &self.version.to_string());
        out.extend((self.hw.len() as u32).to_be_bytes());
        for hw in &self.hw {
            put_str(&mut out, hw);
        }
        out.extend(self.size.to_be_bytes());
        out.extend(self.sha256.0);
        match &self.min_from {
            Some(v) => {
                out.push(1);
                put_str(&mut out, &v.to_string());
            }
            None => out.push(0),
        }
        out.push(u8::from(self.allow_downgrade));
        put_str(&mut out, algorithm.name());
        put_str(&mut out, key_id);
        out
    }

    /// Signs (replacing any earlier signature).
    pub fn sign(mut self, key: &SigningKey) -> Result<Manifest, KeyError> {
        let key_id = key.public_key().id();
        let bytes = self.signed_bytes(key.algorithm(), &key_id);
        self.signature = Some(Signature {
            algorithm: key.algorithm(),
            key_id,
            value: base64::encode(&key.sign(&bytes)?),
        });
        Ok(self)
    }

    /// Checks the signature against `trusted` keys; returns the key that signed.
    pub fn verify_signature<'k>(&self, trusted: &'k [PublicKey]) -> Result<&'k PublicKey, Refusal> {
        let sig = self.signature.as_ref().ok_or(Refusal::Unsigned)?;
        let key = trusted
            .iter()
            .find(|k| k.id() == sig.key_id)
            .ok_or_else(|| Refusal::UnknownKey {
                key_id: sig.key_id.clone(),
            })?;
        if key.algorithm() != sig.algorithm {
            return Err(Refusal::AlgorithmMismatch {
                key_id: sig.key_id.clone(),
                signed: sig.algorithm,
                key: key.algorithm(),
            });
        }
        let bad = || Refusal::BadSignature {
            key_id: sig.key_id.clone(),
        };
        let value = base64::decode(&sig.value).map_err(|_| bad())?;
        let bytes = self.signed_bytes(sig.algorithm, &sig.key_id);
        if key.verify(&bytes, &value) {
            Ok(key)
        } else {
            Err(bad())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ec_key, ed_key, signed};
    use proptest::prelude::*;

    #[test]
    fn json_round_trips_and_is_camel_case() {
        let m = signed(&ed_key(), b"image", "1.2.3");
        let json = m.to_json();
        assert!(json.contains("\"allowDowngrade\": false"), "{json}");
        assert_eq!(Manifest::from_json(json.as_bytes()), Ok(m));
    }

    #[test]
    fn verifies_with_either_algorithm() {
        for key in [ed_key(), ec_key()] {
            let m = signed(&key, b"image", "1.0.0");
            let trusted = [key.public_key()];
            assert_eq!(m.verify_signature(&trusted), Ok(&trusted[0]));
        }
    }

    #[test]
    fn refuses_unsigned_unknown_and_wrong_key() {
        let key = ed_key();
        let m = signed(&key, b"image", "1.0.0");
        let mut unsigned = m.clone();
        unsigned.signature = None;
        assert_eq!(
            unsigned.verify_signature(&[key.public_key()]),
            Err(Refusal::Unsigned)
        );
        let other = ed_key().public_key();
        assert!(matches!(
            m.verify_signature(std::slice::from_ref(&other)),
            Err(Refusal::UnknownKey { .. })
        ));
        // The wrong key claiming the right id still fails the signature check.
        let forged = signed(&ed_key(), b"image", "1.0.0");
        let mut claimed = forged.clone();
        if let Some(sig) = claimed.signature.as_mut() {
            sig.key_id = key.public_key().id();
        }
        assert!(matches!(
            claimed.verify_signature(&[key.public_key()]),
            Err(Refusal::BadSignature { .. })
        ));
    }

    #[test]
    fn refuses_bad_shapes() {
        for bad in [
            &b"{}"[..],
            b"[]",
            b"{\"version\":\"1.0\",\"hw\":[\"a\"],\"size\":1,\"sha256\":\"00\"}",
        ] {
            assert!(matches!(
                Manifest::from_json(bad),
                Err(ManifestError::Json(_))
            ));
        }
        let mut m = Manifest::describe(b"x", Version::parse("1.0.0").expect("v"), vec![]);
        let json = m.to_json();
        assert!(matches!(
            Manifest::from_json(json.as_bytes()),
            Err(ManifestError::Hardware(_))
        ));
        m.hw = vec!["bad id".into()];
        assert!(Manifest::from_json(m.to_json().as_bytes()).is_err());
        assert_eq!(
            Manifest::from_json(&vec![b' '; MAX_MANIFEST_LEN + 1]),
            Err(ManifestError::TooLong)
        );
    }

    /// Every field of the manifest changes the signed bytes, so none can be altered.
    #[test]
    fn every_field_is_signed() {
        let key = ed_key();
        let trusted = [key.public_key()];
        let m = signed(&key, b"image", "1.0.0");
        let edits: Vec<fn(&mut Manifest)> = vec![
            |m| m.version = Version::parse("1.0.1").expect("v"),
            |m| m.hw.push("other".into()),
            |m| m.hw[0] = "hw-b".into(),
            |m| m.size += 1,
            |m| m.sha256.0[0] ^= 1,
            |m| m.min_from = Some(Version::parse("0.1.0").expect("v")),
            |m| m.allow_downgrade = true,
        ];
        for edit in edits {
            let mut changed = m.clone();
            edit(&mut changed);
            assert!(changed.verify_signature(&trusted).is_err(), "{changed:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Manifest::from_json(&bytes);
        }

        #[test]
        fn arbitrary_manifest_like_json_never_panics(
            version in "\\PC{0,12}", hw in proptest::collection::vec("\\PC{0,8}", 0..4),
            size in any::<u64>(), sha in "[0-9a-f]{0,66}", sig in "\\PC{0,90}",
        ) {
            let json = serde_json::json!({
                "version": version, "hw": hw, "size": size, "sha256": sha,
                "signature": {"algorithm": "ed25519", "keyId": "00", "value": sig},
            });
            if let Ok(m) = Manifest::from_json(json.to_string().as_bytes()) {
                let _ = m.verify_signature(&[ed_key().public_key()]);
            }
        }

        #[test]
        fn tampered_manifests_never_verify(flip in 0usize..400, bit in 0u8..8) {
            let key = ed_key();
            let m = signed(&key, b"image", "2.0.0-rc.1");
            let mut json = m.to_json().into_bytes();
            let at = flip % json.len();
            json[at] ^= 1 << bit;
            if let Ok(t) = Manifest::from_json(&json) {
                // Some flips are invisible after parsing (whitespace, escapes); any
                // change the parser sees must break the signature.
                if t != m {
                    prop_assert!(t.verify_signature(&[key.public_key()]).is_err());
                }
            }
        }
    }
}
