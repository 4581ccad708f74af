//! Keys and signed manifests for the unit tests.

use crate::key::{Algorithm, SigningKey};
use crate::manifest::Manifest;
use crate::version::Version;

/// A fresh Ed25519 key.
pub(crate) fn ed_key() -> SigningKey {
    SigningKey::generate(Algorithm::Ed25519).expect("ed25519 key")
}

/// A fresh ECDSA P-256 key.
pub(crate) fn ec_key() -> SigningKey {
    SigningKey::generate(Algorithm::EcdsaP256Sha256).expect("p256 key")
}

/// A manifest for `image` at `version` on hardware `hw-a`, signed by `key`.
pub(crate) fn signed(key: &SigningKey, image: &[u8], version: &str) -> Manifest {
    let version = Version::parse(version).expect("version");
    Manifest::describe(image, version, vec!["hw-a".into()])
        .sign(key)
        .expect("sign")
}
