//! One target device's part in a rollout: its update state, as driven by what the
//! device reports in its twin, and the health signals the gates compare.

use serde::{Deserialize, Serialize};

/// Where a device is in the update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum DeviceState {
    /// Not yet asked to update.
    Pending,
    /// Told about the update (desired twin property written) at this time.
    Notified {
        /// When, in ms.
        at_ms: u64,
    },
    /// Downloading the image.
    Downloading {
        /// Progress in percent.
        percent: u8,
        /// When it was notified, in ms (for the timeout).
        since_ms: u64,
    },
    /// Verified and written to the inactive slot, rebooting into it.
    Installed {
        /// When it was notified, in ms (for the timeout).
        since_ms: u64,
    },
    /// Running the new image and healthy.
    Succeeded,
    /// The update failed (the device rolled back by itself, or refused the image).
    Failed {
        /// The device's reason, or the hub's (timeout).
        reason: String,
    },
    /// Told to roll back after a breach; rolled back when it reports so.
    RollingBack,
    /// Back on its previous image after a breach.
    RolledBack,
}

impl DeviceState {
    /// Notified and not yet finished: counts against `max_concurrent`.
    pub fn in_progress(&self) -> bool {
        matches!(
            self,
            DeviceState::Notified { .. }
                | DeviceState::Downloading { .. }
                | DeviceState::Installed { .. }
        )
    }

    /// When an in-progress device was notified.
    pub(super) fn notified_at(&self) -> Option<u64> {
        match self {
            DeviceState::Notified { at_ms } => Some(*at_ms),
            DeviceState::Downloading { since_ms, .. } | DeviceState::Installed { since_ms } => {
                Some(*since_ms)
            }
            _ => None,
        }
    }
}

/// What a device reports about the update (its twin's reported `firmware` state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Report {
    /// Downloading, with progress.
    Downloading {
        /// Percent.
        percent: u8,
    },
    /// Verifying, installing or rebooting: the image is in the inactive slot.
    Installing,
    /// Booted the new image and confirmed health.
    Succeeded,
    /// Failed, with the device's reason (a refusal, a failed health check…).
    Failed {
        /// Why.
        reason: String,
    },
    /// Back on the previous image after a rollback request.
    RolledBack,
}

/// A target device: its state and health signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Update state.
    pub state: DeviceState,
    /// The phase it was assigned to; `None` while pending.
    pub phase: Option<usize>,
    /// Whether it is offline now.
    pub offline: bool,
    /// Whether it raised an anomaly since the rollout started.
    pub anomalous: bool,
    /// Whether it still belongs to the target group (leavers are kept for the record
    /// but no longer notified or counted).
    pub in_group: bool,
    /// Its boot counter (reported `firmware.boots`): the first value seen during the
    /// rollout and the latest; `None` until it reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boots: Option<(u64, u64)>,
}

impl Device {
    /// A new, pending member of the target group.
    pub(super) fn new() -> Device {
        Device {
            state: DeviceState::Pending,
            phase: None,
            offline: false,
            anomalous: false,
            in_group: true,
            boots: None,
        }
    }

    /// Records a reported boot counter (a counter that went backwards, e.g. after a
    /// factory reset, starts a new baseline).
    pub(super) fn boots_reported(&mut self, count: u64) {
        self.boots = match self.boots {
            Some((first, _)) if count >= first => Some((first, count)),
            _ => Some((count, count)),
        };
    }

    /// Boots since the rollout first heard of its counter.
    pub(super) fn boots_since(&self) -> u64 {
        self.boots
            .map_or(0, |(first, last)| last.saturating_sub(first))
    }

    /// Applies a report; returns whether it changed anything. Reports that make no
    /// sense in the current state (a success from a device never notified) are ignored.
    pub(super) fn apply(&mut self, report: Report) -> bool {
        let since = self.state.notified_at();
        let next = match (report, since, &self.state) {
            (Report::Downloading { percent }, Some(since_ms), _) => DeviceState::Downloading {
                percent: percent.min(100),
                since_ms,
            },
            (Report::Installing, Some(since_ms), _) => DeviceState::Installed { since_ms },
            (Report::Succeeded, Some(_), _) => DeviceState::Succeeded,
            (Report::Failed { reason }, Some(_), _) => DeviceState::Failed { reason },
            (Report::RolledBack, _, DeviceState::RollingBack) => DeviceState::RolledBack,
            _ => return false,
        };
        let changed = next != self.state;
        self.state = next;
        changed
    }
}
