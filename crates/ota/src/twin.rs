//! The twin property `firmware`: how update metadata reaches a device (desired) and how
//! the device reports its progress (reported). docs/ota.md explains why a twin property
//! rather than a job topic.
//!
//! Shared here so the hub (writing desired, reading reported) and the device agent
//! (the other way round) agree on one JSON shape.

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::rollout::Report;
use crate::version::Version;

/// Desired `firmware`: the update a device should install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredFirmware {
    /// The image's id (its SHA-256, hex).
    pub id: String,
    /// Where to download it (`/api/firmware/{id}/image` on the hub), with `Range`.
    pub url: String,
    /// The signed manifest; the device checks it against its pinned key.
    pub manifest: Manifest,
    /// How long to wait before starting the download, spreading the load.
    #[serde(default)]
    pub start_delay_ms: u64,
    /// The rollout that asked for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// Set (by a merge patch) when the rollout was stopped: go back to the previous
    /// image if this one was installed, and report `rolledBack`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub roll_back: bool,
}

/// Where a device's update stands, as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UpdateState {
    /// Nothing in progress.
    Idle,
    /// Downloading (with `percent`).
    Downloading,
    /// Checking size, hash and signature.
    Verifying,
    /// Writing to the inactive slot.
    Installing,
    /// Rebooting into the new slot.
    Rebooting,
    /// Booted the new image and confirmed health.
    Succeeded,
    /// Failed (with `reason`), on the previous image.
    Failed,
    /// Back on the previous image after a rollback request.
    RolledBack,
}

/// Reported `firmware`: what runs and how the update goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedFirmware {
    /// The running version.
    pub version: Version,
    /// The image the state is about (the desired `firmware.id` it acts on); a state
    /// about another image (an earlier update) is not this rollout's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The update's state.
    pub state: UpdateState,
    /// Download progress, with `downloading`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// Why, with `failed` (a [`crate::Refusal`]'s text, a failed health check…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ReportedFirmware {
    /// What this report means to a rollout; `None` for `idle`.
    pub fn to_report(&self) -> Option<Report> {
        Some(match self.state {
            UpdateState::Idle => return None,
            UpdateState::Downloading => Report::Downloading {
                percent: self.percent.unwrap_or(0),
            },
            UpdateState::Verifying | UpdateState::Installing | UpdateState::Rebooting => {
                Report::Installing
            }
            UpdateState::Succeeded => Report::Succeeded,
            UpdateState::Failed => Report::Failed {
                reason: self
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".to_owned()),
            },
            UpdateState::RolledBack => Report::RolledBack,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reported_json_shape_and_meaning() {
        let r: ReportedFirmware = serde_json::from_value(json!({
            "version": "1.3.0", "state": "downloading", "percent": 40
        }))
        .expect("reported");
        assert_eq!(r.to_report(), Some(Report::Downloading { percent: 40 }));
        let failed: ReportedFirmware = serde_json::from_value(json!({
            "version": "1.3.0", "state": "failed", "reason": "image truncated: 10 of 20 bytes"
        }))
        .expect("reported");
        assert!(matches!(
            failed.to_report(),
            Some(Report::Failed { reason }) if reason.contains("truncated")
        ));
        let idle = json!({ "version": "1.3.0", "state": "idle" });
        let idle: ReportedFirmware = serde_json::from_value(idle).expect("idle");
        assert_eq!(idle.to_report(), None);
        let bad = json!({ "version": "1.3", "state": "idle" });
        assert!(serde_json::from_value::<ReportedFirmware>(bad).is_err());
    }

    #[test]
    fn desired_round_trips() {
        let key = crate::test_support::ed_key();
        let manifest = crate::test_support::signed(&key, b"img", "2.0.0");
        let desired = DesiredFirmware {
            id: manifest.sha256.to_hex(),
            url: format!("/api/firmware/{}/image", manifest.sha256.to_hex()),
            manifest,
            start_delay_ms: 1500,
            rollout: Some("spring".into()),
            roll_back: false,
        };
        let json = serde_json::to_value(&desired).expect("json");
        assert_eq!(json["startDelayMs"], 1500);
        let back: DesiredFirmware = serde_json::from_value(json).expect("back");
        assert_eq!(back, desired);
    }
}
