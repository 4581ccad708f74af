//! A rollout's progress in numbers: per phase, how many devices are pending, updating,
//! done or failed, for the API and `bosun rollout status`.

use serde::Serialize;

use super::device::DeviceState;
use super::{Rollout, Status};

/// One phase's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseProgress {
    /// Devices this phase covers (beyond the earlier phases).
    pub target: usize,
    /// Assigned, not yet notified.
    pub pending: usize,
    /// Notified, downloading or installing.
    pub in_progress: usize,
    /// Running the new image.
    pub succeeded: usize,
    /// Failed.
    pub failed: usize,
    /// Rolling back or rolled back.
    pub rolled_back: usize,
}

/// A rollout's progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Where it stands.
    pub status: Status,
    /// The current phase.
    pub phase: usize,
    /// Group members now.
    pub members: usize,
    /// Members not yet assigned to any phase.
    pub unassigned: usize,
    /// Per phase, in order.
    pub phases: Vec<PhaseProgress>,
}

/// Counts `rollout`'s members by phase and state.
pub(super) fn of(rollout: &Rollout) -> Progress {
    let mut phases = vec![PhaseProgress::default(); rollout.spec.phases.len()];
    let mut before = 0;
    for (k, p) in phases.iter_mut().enumerate() {
        let total = rollout.target(k);
        p.target = total.saturating_sub(before);
        before = before.max(total);
    }
    let mut unassigned = 0;
    let mut members = 0;
    for d in rollout.members() {
        members += 1;
        let Some(p) = d.phase.and_then(|k| phases.get_mut(k)) else {
            unassigned += 1;
            continue;
        };
        match &d.state {
            DeviceState::Pending => p.pending += 1,
            s if s.in_progress() => p.in_progress += 1,
            DeviceState::Succeeded => p.succeeded += 1,
            DeviceState::Failed { .. } => p.failed += 1,
            _ => p.rolled_back += 1,
        }
    }
    Progress {
        status: rollout.status.clone(),
        phase: rollout.phase,
        members,
        unassigned,
        phases,
    }
}
