//! Signed over-the-air firmware updates: what a firmware image is (its [`Manifest`]),
//! who vouches for it (Ed25519 or ECDSA P-256 signatures by publisher keys), and the
//! checks a device makes before and while installing it.
//!
//! Everything here is pure (no network, no clock) except key generation (system RNG)
//! and the hub's [`FirmwareStore`] (files), so the device agent, the hub and the CLI
//! share one implementation of every check. Design and the exact signed bytes:
//! `docs/ota.md`.
//!
//! Layout:
//! - `version`: semantic versions, parsed strictly and ordered as SemVer says.
//! - `key`: key generation, PEM/PKCS#8 files, signing and verification (`ring`).
//! - `manifest`: the manifest, its JSON and its canonical signed bytes.
//! - `check`: [`check_update`], may this device install this image at all.
//! - `verify`: [`ImageVerifier`], the streaming size + SHA-256 + signature check.
//! - `refusal`: [`Refusal`], every reason an update is refused.
//! - `rollout`: the rollout engine, a pure state machine over phases, soak, health
//!   gates and per-device states (not yet driven by the hub).
//! - `twin`: the `firmware` twin property, desired (the update) and reported (progress).
//! - `store`: [`FirmwareStore`], the hub's verified, content-addressed images and its
//!   registered publisher keys.
//! - `presign`: [`UrlSigner`], the per-device presigned download URLs.
//! - `hex`, `pem`: encodings for digests and key files (base64 is the shared `bosun-base64`).
#![forbid(unsafe_code)]

mod check;
pub mod hex;
mod key;
mod manifest;
pub mod pem;
mod presign;
mod refusal;
pub mod rollout;
mod store;
mod twin;
mod verify;
mod version;

#[cfg(test)]
mod test_support;

pub use check::check_update;
pub use key::{Algorithm, KeyError, PublicKey, SigningKey};
pub use manifest::{
    Manifest, ManifestError, Sha256, Signature, MAX_HW, MAX_HW_LEN, MAX_MANIFEST_LEN, SIGNED_DOMAIN,
};
pub use presign::{encode_component, UrlRefusal, UrlSigner, URL_KEY_FILE};
pub use refusal::Refusal;
pub use store::{Firmware, FirmwareStore, PublisherKey, StoreError, MAX_KEY_NAME_LEN};
pub use twin::{DesiredFirmware, ReportedFirmware, UpdateState};
pub use verify::{verify_image, ImageVerifier};
pub use version::{Version, VersionError, MAX_VERSION_LEN};
