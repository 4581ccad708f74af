//! Health gates: compare the devices the rollout updated with the rest of the target
//! group, and name the first breach.
//!
//! "Updated" means notified (or later); "the rest" are the group members still
//! pending. Comparing against the rest, not against zero, keeps a
//! site-wide outage (every device offline) from being blamed on the firmware.

use serde::{Deserialize, Serialize};

use super::device::{Device, DeviceState};
use super::spec::RolloutSpec;

/// Why a rollout stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "gate")]
pub enum Breach {
    /// Too many updated devices failed.
    Failures {
        /// Failed / updated.
        rate: f64,
        /// The spec's maximum.
        max: f64,
    },
    /// Updated devices went offline more than the rest.
    Offline {
        /// Offline share of the updated devices.
        updated: f64,
        /// Offline share of the rest.
        rest: f64,
        /// The spec's maximum excess.
        max_excess: f64,
    },
    /// Updated devices raised anomalies more than the rest.
    Anomalies {
        /// Share of updated devices with anomalies.
        updated: f64,
        /// Share of the rest.
        rest: f64,
        /// The spec's maximum excess.
        max_excess: f64,
    },
    /// A finished phase had too few successes to advance.
    TooFewSuccesses {
        /// Succeeded / phase devices.
        rate: f64,
        /// The spec's minimum.
        min: f64,
    },
}

/// Counts over the group members.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    /// Members notified so far.
    pub(super) updated: usize,
    /// Of those, failed.
    pub(super) failed: usize,
    /// Of those, offline.
    pub(super) updated_offline: usize,
    /// Of those, with anomalies.
    pub(super) updated_anomalous: usize,
    /// Members still pending.
    pub(super) rest: usize,
    /// Of those, offline.
    pub(super) rest_offline: usize,
    /// Of those, with anomalies.
    pub(super) rest_anomalous: usize,
}

impl Counts {
    /// Counts the members among `devices`.
    pub(super) fn of<'a>(devices: impl Iterator<Item = &'a Device>) -> Counts {
        let mut c = Counts::default();
        for d in devices.filter(|d| d.in_group) {
            if d.state != DeviceState::Pending {
                c.updated += 1;
                c.failed += usize::from(matches!(d.state, DeviceState::Failed { .. }));
                c.updated_offline += usize::from(d.offline);
                c.updated_anomalous += usize::from(d.anomalous);
            } else {
                c.rest += 1;
                c.rest_offline += usize::from(d.offline);
                c.rest_anomalous += usize::from(d.anomalous);
            }
        }
        c
    }
}

/// `part / whole`, 0 for an empty whole.
fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The first gate `counts` breach under `spec`, if any: failures, then offline, then
/// anomalies.
pub(super) fn check(spec: &RolloutSpec, c: &Counts) -> Option<Breach> {
    let rate = share(c.failed, c.updated);
    if c.failed > 0 && rate > spec.max_failure {
        return Some(Breach::Failures {
            rate,
            max: spec.max_failure,
        });
    }
    let (updated, rest) = (
        share(c.updated_offline, c.updated),
        share(c.rest_offline, c.rest),
    );
    if c.updated_offline > 0 && updated - rest > spec.max_offline_excess {
        return Some(Breach::Offline {
            updated,
            rest,
            max_excess: spec.max_offline_excess,
        });
    }
    let (updated, rest) = (
        share(c.updated_anomalous, c.updated),
        share(c.rest_anomalous, c.rest),
    );
    if c.updated_anomalous > 0 && updated - rest > spec.max_anomaly_excess {
        return Some(Breach::Anomalies {
            updated,
            rest,
            max_excess: spec.max_anomaly_excess,
        });
    }
    None
}
