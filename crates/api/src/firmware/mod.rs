//! Firmware for over-the-air updates: publisher keys, signed images and their download,
//! served from the hub's firmware store (`ota::FirmwareStore`, files under
//! `DATA_DIR/firmware/`).
//!
//! The store verifies every upload (signature by a registered key, size, SHA-256) and
//! this module maps its refusals to problem documents: a bad manifest or key is `400`,
//! an upload that does not verify is `422` with the reason in `detail`. Images are
//! downloaded with `Range` support so a device resumes a cut download. Without a
//! store (the in-process control-plane tests) these operations answer 503.
//!
//! Rollouts (`/api/rollouts`) update a device group phase by phase through the desired
//! twin property `firmware`; `driver` keeps them moving (see docs/ota.md).
//!
//! Layout: `keys` (publisher keys), `images` (upload, list, manifest, download),
//! `range` (the `Range` header), `rate` (the download rate limit), `rollouts` (their
//! operations), `driver` (the task feeding them events and the clock), `table` (rows
//! and body schemas).

mod driver;
mod images;
mod keys;
mod range;
mod rate;
mod rollouts;
mod table;
#[cfg(test)]
mod tests;

use std::future::Future;

use axum::http::StatusCode;
use ota::rollout::RegistryError;
use ota::{FirmwareStore, StoreError};

use crate::problem::Problem;
use crate::{ApiState, ControlPlane};

pub use rate::DownloadLimit;
pub(crate) use table::{components, table};

/// The store, or 503 when this server runs without one.
fn store<H>(state: &ApiState<H>) -> Result<FirmwareStore, Problem> {
    state.firmware.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-firmware-store",
            "Firmware store not available",
            "this server runs without a firmware store",
        )
    })
}

/// The task that keeps rollouts moving, when the API has a firmware store; the binary
/// spawns it once.
pub fn rollout_driver<H: ControlPlane>(
    state: &ApiState<H>,
) -> Option<impl Future<Output = ()> + Send + 'static> {
    let store = state.firmware.clone()?;
    Some(driver::drive(state.hub.clone(), store, state.data.clone()))
}

/// Runs a store operation (blocking file I/O) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Problem::internal)?
        .map_err(Problem::from)
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        let detail = e.to_string();
        match e {
            StoreError::Manifest(_) => Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-manifest",
                "Malformed firmware manifest",
                detail,
            ),
            StoreError::Refused(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "firmware-refused",
                "Firmware refused",
                detail,
            ),
            StoreError::Key(_) | StoreError::KeyName => Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-public-key",
                "Bad publisher key",
                detail,
            ),
            StoreError::NotFound(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "no-such-firmware",
                "No such firmware or key",
                detail,
            ),
            StoreError::Conflict(_) => Problem::new(
                StatusCode::CONFLICT,
                "firmware-conflict",
                "Image stored with another manifest",
                detail,
            ),
            StoreError::Rollouts(e) => e.into(),
            e @ StoreError::Io { .. } => Problem::internal(e),
        }
    }
}

impl From<RegistryError> for Problem {
    fn from(e: RegistryError) -> Problem {
        let detail = e.to_string();
        match e {
            RegistryError::Name => Problem::bad_request(detail),
            RegistryError::Exists(_) => Problem::new(
                StatusCode::CONFLICT,
                "rollout-exists",
                "Rollout exists",
                detail,
            ),
            RegistryError::NotFound(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "no-such-rollout",
                "No such rollout",
                detail,
            ),
            e @ RegistryError::Io { .. } => Problem::internal(e),
        }
    }
}
