//! What a rollout is asked to do: phases, soak, thresholds, pacing and the breach
//! policy. Checked once at creation so the engine never meets a nonsensical spec.

use serde::{Deserialize, Serialize};

use super::window::{Window, MAX_WINDOWS};

/// Most phases a rollout may have.
pub const MAX_PHASES: usize = 20;

/// What to do when a health gate is breached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Policy {
    /// Stop notifying devices and wait for an operator (`resume` or `cancel`).
    Pause,
    /// Cancel and tell every updated device to roll back to its previous slot.
    Rollback,
}

/// A rollout's parameters. Rates are fractions in `0.0..=1.0`; times are milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Cumulative share of the target group updated by the end of each phase, strictly
    /// increasing, the last one `1.0` (`1%,10%,50%,100%` → `[0.01, 0.1, 0.5, 1.0]`).
    pub phases: Vec<f64>,
    /// How long a finished phase is watched before the next one starts.
    pub soak_ms: u64,
    /// Breach when more than this share of the updated devices failed.
    pub max_failure: f64,
    /// A finished phase advances only if at least this share of its devices succeeded.
    pub min_success: f64,
    /// Breach when the updated devices' offline share exceeds the others' by more.
    pub max_offline_excess: f64,
    /// Breach when the updated devices' share with anomalies exceeds the others' by more.
    pub max_anomaly_excess: f64,
    /// Breach when the updated devices' share with unexpected reboots (reported boot
    /// counters) exceeds the others' by more; rollouts stored before this gate load
    /// with 1.0 (off).
    #[serde(default = "gate_off")]
    pub max_reboot_excess: f64,
    /// Most devices updating (notified, not yet finished) at once.
    pub max_concurrent: usize,
    /// Each notification carries a start delay below this, so devices do not all
    /// download at the same instant.
    pub max_start_delay_ms: u64,
    /// A notified device that reports no result within this is counted as failed.
    pub device_timeout_ms: u64,
    /// What a breach does.
    pub policy: Policy,
    /// Daily UTC windows in which devices may be notified; empty: any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
}

/// Why a spec is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad rollout spec: {0}")]
pub struct SpecError(pub String);

impl RolloutSpec {
    /// Checks the spec's invariants (see the fields).
    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |why: &str| Err(SpecError(why.to_owned()));
        if self.phases.is_empty() || self.phases.len() > MAX_PHASES {
            return bad("needs 1 to 20 phases");
        }
        let increasing = self.phases.windows(2).all(|w| w[0] < w[1]);
        let in_range = self.phases.iter().all(|p| *p > 0.0 && *p <= 1.0);
        if !increasing || !in_range || self.phases.last() != Some(&1.0) {
            return bad("phases must increase, each above 0%, and end at 100%");
        }
        let rates = [
            self.max_failure,
            self.min_success,
            self.max_offline_excess,
            self.max_anomaly_excess,
            self.max_reboot_excess,
        ];
        if !rates.iter().all(|r| (0.0..=1.0).contains(r)) {
            return bad("rates must be between 0% and 100%");
        }
        if self.max_concurrent == 0 {
            return bad("max concurrent must be at least 1");
        }
        if self.windows.len() > MAX_WINDOWS {
            return bad("at most 24 maintenance windows");
        }
        Ok(())
    }
}

/// The default of a gate added after rollouts were stored: never breached.
fn gate_off() -> f64 {
    1.0
}

/// Parses a percentage list such as `1%,10%,50%,100%` into phase fractions.
pub fn parse_phases(text: &str) -> Result<Vec<f64>, SpecError> {
    text.split(',').map(|p| parse_percent(p.trim())).collect()
}

/// Parses `2%` or `2.5%` as a fraction (`0.02`, `0.025`).
pub fn parse_percent(text: &str) -> Result<f64, SpecError> {
    let number = text
        .strip_suffix('%')
        .ok_or_else(|| SpecError(format!("{text:?} is not a percentage like 10%")))?;
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && (0.0..=100.0).contains(&n) => Ok(n / 100.0),
        _ => Err(SpecError(format!(
            "{text:?} is not a percentage from 0% to 100%"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_phases_and_percentages() {
        assert_eq!(
            parse_phases("1%, 10%,50%,100%"),
            Ok(vec![0.01, 0.1, 0.5, 1.0])
        );
        assert_eq!(parse_percent("2.5%"), Ok(0.025));
        for bad in ["10", "x%", "101%", "-1%", "NaN%", ""] {
            assert!(parse_percent(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checks_phases() {
        let mut spec = crate::rollout::tests::spec(&[0.1, 1.0]);
        assert_eq!(spec.check(), Ok(()));
        for phases in [vec![], vec![0.5], vec![0.5, 0.2, 1.0], vec![0.0, 1.0]] {
            spec.phases = phases;
            assert!(spec.check().is_err(), "{:?}", spec.phases);
        }
    }
}
