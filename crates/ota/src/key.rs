//! Publisher keys: generation, PEM files, signing and verification, with `ring`.
//!
//! Two algorithms: Ed25519 (the default: small keys, deterministic signatures) and ECDSA
//! P-256 with SHA-256, ASN.1 DER signatures (what MCUboot-style bootloaders verify).
//! Private keys are PKCS#8 (`PRIVATE KEY` PEM, as `openssl genpkey` writes them); public
//! keys are SubjectPublicKeyInfo (`PUBLIC KEY` PEM, as `openssl pkey -pubout` writes).
//! A key's id is the first 8 bytes of the SHA-256 of its SubjectPublicKeyInfo, in hex:
//! computed, never chosen, so a manifest cannot claim another key's id.

use std::fmt;

use ring::digest::{digest, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING, ED25519,
};
use serde::{Deserialize, Serialize};

use crate::{hex, pem};

/// SubjectPublicKeyInfo header of an Ed25519 key (RFC 8410); the 32-byte key follows.
const ED25519_SPKI: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// SubjectPublicKeyInfo header of a P-256 key (RFC 5480); the 65-byte point follows.
const P256_SPKI: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Start of a PKCS#8 v1 Ed25519 private key (RFC 8410); the 32-byte seed follows.
/// Written in this form because OpenSSL 3 does not read `ring`'s v2 documents.
const ED25519_PKCS8_V1: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Start of the PKCS#8 v2 Ed25519 documents `ring` generates (seed, then public key).
const ED25519_PKCS8_V2: &[u8] = &[
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// `ring`'s v2 Ed25519 document as the equivalent v1 one (same seed); other documents
/// unchanged.
fn ed25519_v1(der: &[u8]) -> Vec<u8> {
    match der.get(16..48) {
        Some(seed) if der.len() == 83 && der.starts_with(ED25519_PKCS8_V2) => {
            [ED25519_PKCS8_V1, seed].concat()
        }
        _ => der.to_vec(),
    }
}

/// A signature algorithm; named in manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032).
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA over P-256 with SHA-256, signature in ASN.1 DER.
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
}

impl Algorithm {
    /// The name used in manifests and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }

    /// Parses [`Algorithm::name`] (also `ecdsa` and `p256` for short).
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "ed25519" => Some(Algorithm::Ed25519),
            "ecdsa-p256-sha256" | "ecdsa" | "p256" => Some(Algorithm::EcdsaP256Sha256),
            _ => None,
        }
    }

    /// The SubjectPublicKeyInfo header and the raw key's length.
    fn spki_layout(self) -> (&'static [u8], usize) {
        match self {
            Algorithm::Ed25519 => (ED25519_SPKI, 32),
            Algorithm::EcdsaP256Sha256 => (P256_SPKI, 65),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be made, read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PEM framing is wrong.
    #[error(transparent)]
    Pem(#[from] pem::PemError),
    /// The DER is not a SubjectPublicKeyInfo of a supported algorithm.
    #[error("not an Ed25519 or ECDSA P-256 public key")]
    PublicKey,
    /// The PKCS#8 document is not an Ed25519 or P-256 private key `ring` accepts.
    #[error("not an Ed25519 or ECDSA P-256 PKCS#8 private key ({0})")]
    PrivateKey(String),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
}

/// A public key that verifies manifests: a registered publisher key on the hub, the key
/// pinned in a device at manufacture.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Which algorithm.
    algorithm: Algorithm,
    /// Its SubjectPublicKeyInfo DER (what the id is computed from).
    spki: Vec<u8>,
}

impl PublicKey {
    /// From SubjectPublicKeyInfo DER.
    pub fn from_der(spki: &[u8]) -> Result<PublicKey, KeyError> {
        for algorithm in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let (header, len) = algorithm.spki_layout();
            if spki.len() == header.len() + len && spki.starts_with(header) {
                return Ok(PublicKey {
                    algorithm,
                    spki: spki.to_vec(),
                });
            }
        }
        Err(KeyError::PublicKey)
    }

    /// From a `PUBLIC KEY` PEM text.
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        PublicKey::from_der(&pem::decode(text, "PUBLIC KEY")?)
    }

    /// As a `PUBLIC KEY` PEM text.
    pub fn to_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.spki)
    }

    /// The algorithm it verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Its id: hex of the first 8 bytes of SHA-256 over the SubjectPublicKeyInfo.
    pub fn id(&self) -> String {
        let d = digest(&SHA256, &self.spki);
        hex::encode(&d.as_ref()[..8])
    }

    /// The raw key (Ed25519: 32 bytes; P-256: the 65-byte uncompressed point), as a
    /// bootloader embeds it.
    pub fn raw(&self) -> &[u8] {
        let (header, _) = self.algorithm.spki_layout();
        &self.spki[header.len()..]
    }

    /// Whether `signature` is this key's signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let raw = self.raw();
        let result = match self.algorithm {
            Algorithm::Ed25519 => UnparsedPublicKey::new(&ED25519, raw).verify(message, signature),
            Algorithm::EcdsaP256Sha256 => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, raw).verify(message, signature)
            }
        };
        result.is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.algorithm, self.id())
    }
}

/// The pair inside a [`SigningKey`].
enum Pair {
    /// Ed25519.
    Ed25519(Ed25519KeyPair),
    /// ECDSA P-256.
    Ecdsa(EcdsaKeyPair),
}

/// A publisher's private key. Lives with the publisher (`bosun firmware sign` runs
/// offline); the hub never needs it.
pub struct SigningKey {
    /// The parsed pair.
    pair: Pair,
    /// The PKCS#8 document it was made from, to write it back out.
    pkcs8: Vec<u8>,
    /// The randomness ECDSA signing needs.
    rng: SystemRandom,
}

impl SigningKey {
    /// A fresh key from the system's random number generator.
    pub fn generate(algorithm: Algorithm) -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let doc = match algorithm {
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            }
        }
        .map_err(|_| KeyError::Random)?;
        SigningKey::from_pkcs8(&ed25519_v1(doc.as_ref()))
    }

    /// From PKCS#8 DER (v1 or v2 for Ed25519; P-256 with its public key).
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let pair = match Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Ok(pair) => Pair::Ed25519(pair),
            Err(ed) => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
                .map(Pair::Ecdsa)
                .map_err(|ec| KeyError::PrivateKey(format!("Ed25519: {ed}; P-256: {ec}")))?,
        };
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
            rng,
        })
    }

    /// From a `PRIVATE KEY` PEM text.
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        SigningKey::from_pkcs8(&pem::decode(text, "PRIVATE KEY")?)
    }

    /// As a `PRIVATE KEY` PEM text (PKCS#8).
    pub fn to_pem(&self) -> String {
        pem::encode("PRIVATE KEY", &self.pkcs8)
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Ed25519(_) => Algorithm::Ed25519,
            Pair::Ecdsa(_) => Algorithm::EcdsaP256Sha256,
        }
    }

    /// The matching public key, to register on the hub and pin in devices.
    pub fn public_key(&self) -> PublicKey {
        let raw = match &self.pair {
            Pair::Ed25519(pair) => pair.public_key().as_ref(),
            Pair::Ecdsa(pair) => pair.public_key().as_ref(),
        };
        let (header, _) = self.algorithm().spki_layout();
        PublicKey {
            algorithm: self.algorithm(),
            spki: [header, raw].concat(),
        }
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Random),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({} {})",
            self.algorithm(),
            self.public_key().id()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_sign_verify_and_round_trip_pem() {
        for algorithm in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let key = SigningKey::generate(algorithm).expect("generate");
            let again = SigningKey::from_pem(&key.to_pem()).expect("read back");
            assert_eq!(again.algorithm(), algorithm);
            let public = PublicKey::from_pem(&again.public_key().to_pem()).expect("public");
            assert_eq!(public, key.public_key());
            assert_eq!(public.id().len(), 16);
            let sig = key.sign(b"hello").expect("sign");
            assert!(public.verify(b"hello", &sig));
            assert!(!public.verify(b"hellO", &sig));
        }
    }

    #[test]
    fn another_key_does_not_verify() {
        let a = SigningKey::generate(Algorithm::Ed25519).expect("a");
        let b = SigningKey::generate(Algorithm::Ed25519).expect("b");
        let sig = a.sign(b"m").expect("sign");
        assert!(!b.public_key().verify(b"m", &sig));
        assert_ne!(a.public_key().id(), b.public_key().id());
    }

    #[test]
    fn refuses_garbage_keys() {
        assert_eq!(PublicKey::from_der(&[0x30, 0x00]), Err(KeyError::PublicKey));
        assert!(matches!(
            SigningKey::from_pkcs8(b"nonsense"),
            Err(KeyError::PrivateKey(_))
        ));
        let public = SigningKey::generate(Algorithm::Ed25519)
            .expect("key")
            .public_key()
            .to_pem();
        assert!(SigningKey::from_pem(&public).is_err());
    }

    /// `openssl genpkey -algorithm ed25519` output (PKCS#8 v1) is accepted.
    #[test]
    fn reads_openssl_style_v1_ed25519() {
        let der = [ED25519_PKCS8_V1, &[7u8; 32]].concat();
        let key = SigningKey::from_pkcs8(&der).expect("v1 key");
        assert_eq!(key.algorithm(), Algorithm::Ed25519);
        // And generated keys are written in that form, with the same public key.
        let generated = SigningKey::generate(Algorithm::Ed25519).expect("key");
        let der = pem::decode(&generated.to_pem(), "PRIVATE KEY").expect("pem");
        assert!(der.starts_with(ED25519_PKCS8_V1) && der.len() == 48);
        let again = SigningKey::from_pkcs8(&der).expect("read back");
        assert_eq!(again.public_key(), generated.public_key());
    }
}
