//! Why an update is refused: one typed reason per check, each with a message an operator
//! can act on. The device agent reports these in its twin (`failed: <reason>`) and the
//! hub's upload answers with them.

use crate::key::Algorithm;
use crate::version::Version;

/// Why a manifest or an image is refused. Versions are boxed to keep the `Result`s
/// that carry this small.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The manifest carries no signature.
    #[error("manifest is not signed")]
    Unsigned,
    /// Signed by a key that is not trusted here.
    #[error("signed by key {key_id}, which is not trusted here")]
    UnknownKey {
        /// The id the manifest names.
        key_id: String,
    },
    /// The manifest's algorithm is not the trusted key's.
    #[error("signed with {signed} but key {key_id} is an {key} key")]
    AlgorithmMismatch {
        /// The key's id.
        key_id: String,
        /// What the manifest says.
        signed: Algorithm,
        /// What the key is.
        key: Algorithm,
    },
    /// The signature does not match the manifest (tampered manifest or wrong key).
    #[error("signature does not verify with key {key_id}: manifest tampered with or signed by another key")]
    BadSignature {
        /// The key it was checked against.
        key_id: String,
    },
    /// The image is not built for this hardware.
    #[error("image is for hardware {supported:?}, not {hw:?}")]
    IncompatibleHardware {
        /// This device's hardware id.
        hw: String,
        /// What the manifest lists.
        supported: Vec<String>,
    },
    /// Older than what runs, and the manifest does not allow downgrades.
    #[error(
        "{offered} is older than the running {current} and the manifest does not allow downgrades"
    )]
    Downgrade {
        /// Running version.
        current: Box<Version>,
        /// Offered version.
        offered: Box<Version>,
    },
    /// The same version already runs (a reinstall needs `allowDowngrade`).
    #[error("{current} is already installed")]
    AlreadyInstalled {
        /// Running version.
        current: Box<Version>,
    },
    /// The running version is too old to update to this image directly.
    #[error("updating to this image needs at least {min_from}; {current} runs")]
    BelowMinFrom {
        /// Running version.
        current: Box<Version>,
        /// The manifest's minimum.
        min_from: Box<Version>,
    },
    /// More bytes arrived than the manifest's size.
    #[error("image is longer than the manifest's {expected} bytes")]
    TooLong {
        /// The manifest's size.
        expected: u64,
    },
    /// Fewer bytes arrived than the manifest's size (a cut download).
    #[error("image truncated: {received} of {expected} bytes")]
    Truncated {
        /// The manifest's size.
        expected: u64,
        /// What arrived.
        received: u64,
    },
    /// The bytes are not the ones the manifest describes (tampered or corrupted image).
    #[error(
        "image SHA-256 is {actual}, manifest says {expected}: image tampered with or corrupted"
    )]
    HashMismatch {
        /// The manifest's digest, hex.
        expected: String,
        /// The image's digest, hex.
        actual: String,
    },
}
