//! Health gates: compare the devices the rollout updated with the rest of the target
//! group, and name the first breach.
//!
//! "Updated" means notified (or later); "the rest" are the group members still
//! pending. An updated device counts as offline only once its update has finished:
//! one that is installing goes offline to reboot, and the device timeout and its own
//! health deadline deal with one that never comes back (with many devices rebooting
//! at once, counting them breached the gate on healthy firmware). Comparing against the rest, not against zero, keeps a
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
    /// Updated devices rebooted (crashed, watchdog) more than the rest.
    Reboots {
        /// Share of updated devices with unexpected reboots.
        updated: f64,
        /// Share of the rest with reboots.
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
    /// Of those, offline after their update finished.
    pub(super) updated_offline: usize,
    /// Of those, with anomalies.
    pub(super) updated_anomalous: usize,
    /// Members still pending.
    pub(super) rest: usize,
    /// Of those, offline.
    pub(super) rest_offline: usize,
    /// Of those, with anomalies.
    pub(super) rest_anomalous: usize,
    /// Updated devices that booted more often than their update's one reboot.
    pub(super) updated_rebooted: usize,
    /// Members of the rest that booted at all since the rollout started.
    pub(super) rest_rebooted: usize,
}

impl Counts {
    /// Counts the members among `devices`.
    pub(super) fn of<'a>(devices: impl Iterator<Item = &'a Device>) -> Counts {
        let mut c = Counts::default();
        for d in devices.filter(|d| d.in_group) {
            if d.state != DeviceState::Pending {
                c.updated += 1;
                c.failed += usize::from(matches!(d.state, DeviceState::Failed { .. }));
                c.updated_offline += usize::from(d.offline && !d.state.in_progress());
                c.updated_anomalous += usize::from(d.anomalous);
                c.updated_rebooted += usize::from(d.boots_since() > 1);
            } else {
                c.rest += 1;
                c.rest_offline += usize::from(d.offline);
                c.rest_anomalous += usize::from(d.anomalous);
                c.rest_rebooted += usize::from(d.boots_since() > 0);
            }
        }
        c
    }
}

/// `part / whole`, 0 for an empty whole.
/// The updated devices' and the rest's shares with a condition, when at least one
/// updated device has it and their share exceeds the rest's by more than `max`:
/// comparing against the rest keeps a site-wide outage from being blamed on firmware.
fn excess(updated_hits: usize, rest_hits: usize, c: &Counts, max: f64) -> Option<(f64, f64)> {
    let (updated, rest) = (share(updated_hits, c.updated), share(rest_hits, c.rest));
    (updated_hits > 0 && updated - rest > max).then_some((updated, rest))
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The first gate `counts` breach under `spec`, if any: failures, then offline, then
/// anomalies, then reboots. An updated device is expected to boot once (into the new
/// image); more boots than that (a crash loop, a watchdog) count against it, as any
/// boot of a device of the rest counts for the rest.
pub(super) fn check(spec: &RolloutSpec, c: &Counts) -> Option<Breach> {
    let rate = share(c.failed, c.updated);
    if c.failed > 0 && rate > spec.max_failure {
        return Some(Breach::Failures {
            rate,
            max: spec.max_failure,
        });
    }
    let max_excess = spec.max_offline_excess;
    if let Some((updated, rest)) = excess(c.updated_offline, c.rest_offline, c, max_excess) {
        return Some(Breach::Offline {
            updated,
            rest,
            max_excess,
        });
    }
    let max_excess = spec.max_anomaly_excess;
    if let Some((updated, rest)) = excess(c.updated_anomalous, c.rest_anomalous, c, max_excess) {
        return Some(Breach::Anomalies {
            updated,
            rest,
            max_excess,
        });
    }
    let max_excess = spec.max_reboot_excess;
    if let Some((updated, rest)) = excess(c.updated_rebooted, c.rest_rebooted, c, max_excess) {
        return Some(Breach::Reboots {
            updated,
            rest,
            max_excess,
        });
    }
    None
}
