//! The rollout engine: which devices of a target group to update next, when to move to
//! the next phase, and when to stop. A pure state machine: events in (membership,
//! device reports, offline/anomaly signals, the clock), [`Action`]s out; no I/O, no
//! clock of its own. The whole state serializes (serde), so the hub persists it after
//! each step and a restarted hub carries on where it stopped.
//!
//! How it proceeds: phase `k` covers `ceil(phases[k] × members)` devices in total,
//! taken in a fixed pseudo-random order (a hash of the rollout's seed and the device
//! id). Assigned devices are notified at most `max_concurrent` at a time. When every
//! assigned device has finished and enough succeeded, the phase soaks for `soak_ms`,
//! still watched by the gates, then the next phase starts. After each event the health
//! gates (`gate.rs`) compare updated devices with the rest; a breach pauses the rollout
//! or cancels it and rolls the updated devices back, by policy. Devices that join the
//! group later are taken up by the current phase's share (dynamic groups).
//!
//! Layout: `spec` (parameters and their parsing), `device` (per-device state and
//! reports), `gate` (health gates), this file (the engine), `progress` (counts for
//! `rollout status`), `registry` (the hub's persisted rollouts).

mod device;
mod gate;
mod progress;
mod registry;
mod spec;
#[cfg(test)]
pub(crate) mod tests;
mod window;
#[cfg(test)]
mod window_tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use device::{Device, DeviceState, Report};
pub use gate::Breach;
pub use progress::{PhaseProgress, Progress};
pub use registry::{RegistryError, RolloutRecord, Rollouts, MAX_EVENTS, MAX_NAME_LEN};
pub use spec::{parse_percent, parse_phases, Policy, RolloutSpec, SpecError, MAX_PHASES};
pub use window::{open_at, Window, MAX_WINDOWS};

use gate::Counts;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Status {
    /// Notifying devices and watching the gates.
    Running,
    /// Stopped by an operator or a breach; `resume` continues.
    Paused {
        /// The breach that paused it; `None` when an operator did.
        breach: Option<Breach>,
    },
    /// Every phase finished and soaked.
    Completed,
    /// Stopped for good.
    Cancelled {
        /// The breach that cancelled it; `None` when an operator did.
        breach: Option<Breach>,
    },
}

/// Something the hub must do or announce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// Offer the update to a device (write its desired `firmware` property); the device
    /// waits `start_delay_ms` before downloading.
    Notify {
        /// The device.
        device: String,
        /// Its random start delay.
        start_delay_ms: u64,
    },
    /// Tell a device to go back to its previous image.
    RollBack {
        /// The device.
        device: String,
    },
    /// Announce a change (as a hub event).
    Event(RolloutEvent),
}

/// Rollout changes worth an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "event")]
pub enum RolloutEvent {
    /// A phase began notifying devices.
    PhaseStarted {
        /// Its index.
        phase: usize,
    },
    /// A phase finished and is soaking.
    Soaking {
        /// Its index.
        phase: usize,
        /// Until when, in ms.
        until_ms: u64,
    },
    /// A gate was breached; the policy was applied.
    Breached {
        /// Which gate.
        breach: Breach,
        /// What was done.
        policy: Policy,
    },
    /// An operator paused it.
    Paused,
    /// An operator resumed it.
    Resumed,
    /// An operator cancelled it.
    Cancelled,
    /// Every phase finished.
    Completed,
}

/// A rollout's whole state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Its parameters.
    pub spec: RolloutSpec,
    /// Orders the devices and their start delays.
    pub seed: u64,
    /// Where it stands.
    pub status: Status,
    /// The current phase.
    pub phase: usize,
    /// When the current phase's soak ends, once it finished.
    pub soak_until_ms: Option<u64>,
    /// Failures an operator accepted by resuming after a breach; the failure gate
    /// counts only those beyond.
    pub accepted_failures: usize,
    /// Every device that was ever a member of the target group.
    pub devices: BTreeMap<String, Device>,
}

/// FNV-1a over the seed and the id: a stable pseudo-random rank for a device.
fn rank(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_be_bytes().iter().chain(id.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Rollout {
    /// A rollout over the group's current `members`; nothing is notified until the
    /// first [`Rollout::tick`].
    pub fn new(
        spec: RolloutSpec,
        seed: u64,
        members: impl IntoIterator<Item = String>,
    ) -> Result<Rollout, SpecError> {
        spec.check()?;
        let devices = members.into_iter().map(|id| (id, Device::new())).collect();
        Ok(Rollout {
            spec,
            seed,
            status: Status::Running,
            phase: 0,
            soak_until_ms: None,
            accepted_failures: 0,
            devices,
        })
    }

    /// The target group's members now: joiners become pending, leavers stop counting.
    pub fn set_members(&mut self, members: &BTreeSet<String>, now_ms: u64) -> Vec<Action> {
        let mut joined = false;
        for (id, device) in &mut self.devices {
            device.in_group = members.contains(id);
        }
        for id in members {
            if !self.devices.contains_key(id) {
                self.devices.insert(id.clone(), Device::new());
                joined = true;
            }
        }
        if joined && self.status == Status::Completed {
            self.status = Status::Running;
            self.soak_until_ms = None;
        }
        self.step(now_ms)
    }

    /// A device's report about the update.
    pub fn report(&mut self, device: &str, report: Report, now_ms: u64) -> Vec<Action> {
        if let Some(d) = self.devices.get_mut(device) {
            d.apply(report);
        }
        self.step(now_ms)
    }

    /// A device went offline (`true`) or came back.
    pub fn set_offline(&mut self, device: &str, offline: bool, now_ms: u64) -> Vec<Action> {
        if let Some(d) = self.devices.get_mut(device) {
            d.offline = offline;
        }
        self.step(now_ms)
    }

    /// Which members are offline now (all others online), e.g. from a membership
    /// refresh; one engine step for the lot.
    pub fn set_offline_all(&mut self, offline: &BTreeSet<String>, now_ms: u64) -> Vec<Action> {
        for (id, d) in &mut self.devices {
            d.offline = offline.contains(id);
        }
        self.step(now_ms)
    }

    /// The data pipeline raised an anomaly for a device.
    pub fn anomaly(&mut self, device: &str, now_ms: u64) -> Vec<Action> {
        if let Some(d) = self.devices.get_mut(device) {
            d.anomalous = true;
        }
        self.step(now_ms)
    }

    /// A device reported its boot counter (`firmware.boots`), for the reboot gate.
    pub fn boots(&mut self, device: &str, count: u64, now_ms: u64) -> Vec<Action> {
        match self.devices.get_mut(device) {
            Some(d) if d.boots.map(|(_, last)| last) != Some(count) => d.boots_reported(count),
            _ => return Vec::new(),
        }
        self.step(now_ms)
    }

    /// The clock: timeouts, soak ends, and whatever the last events made possible.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        self.step(now_ms)
    }

    /// An operator pauses a running rollout.
    pub fn pause(&mut self) -> Vec<Action> {
        if self.status != Status::Running {
            return Vec::new();
        }
        self.status = Status::Paused { breach: None };
        vec![Action::Event(RolloutEvent::Paused)]
    }

    /// An operator resumes a paused rollout; failures so far are accepted.
    pub fn resume(&mut self, now_ms: u64) -> Vec<Action> {
        if !matches!(self.status, Status::Paused { .. }) {
            return Vec::new();
        }
        self.accepted_failures = Counts::of(self.members()).failed;
        self.status = Status::Running;
        let mut actions = vec![Action::Event(RolloutEvent::Resumed)];
        actions.extend(self.step(now_ms));
        actions
    }

    /// An operator cancels; with `roll_back`, updated devices are told to roll back.
    pub fn cancel(&mut self, roll_back: bool) -> Vec<Action> {
        if matches!(self.status, Status::Cancelled { .. } | Status::Completed) {
            return Vec::new();
        }
        self.status = Status::Cancelled { breach: None };
        let mut actions = vec![Action::Event(RolloutEvent::Cancelled)];
        if roll_back {
            actions.extend(self.roll_back());
        }
        actions
    }

    /// Group members (devices that left are not).
    fn members(&self) -> impl Iterator<Item = &Device> {
        self.devices.values().filter(|d| d.in_group)
    }

    /// How many members phase `phase` covers in total (at least one per phase while
    /// the group has members).
    fn target(&self, phase: usize) -> usize {
        let members = self.members().count();
        let share = self.spec.phases.get(phase).copied().unwrap_or(1.0);
        ((share * members as f64).ceil() as usize).clamp(members.min(1), members)
    }

    /// Runs the engine after any event.
    fn step(&mut self, now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.status != Status::Running {
            return actions;
        }
        self.expire(now_ms);
        // Each pass either stops, waits, or advances a phase; phases are finite.
        for _ in 0..=self.spec.phases.len() {
            if let Some(breach) = self.breach() {
                actions.extend(self.breached(breach));
                return actions;
            }
            self.assign();
            actions.extend(self.notify(now_ms));
            if !self.advance(now_ms, &mut actions) {
                break;
            }
        }
        actions
    }

    /// Fails in-progress devices past the device timeout.
    fn expire(&mut self, now_ms: u64) {
        let timeout = self.spec.device_timeout_ms;
        for d in self.devices.values_mut() {
            let late = d
                .state
                .notified_at()
                .is_some_and(|at| now_ms.saturating_sub(at) > timeout);
            if late {
                d.state = DeviceState::Failed {
                    reason: format!("no result within {} s", timeout / 1000),
                };
            }
        }
    }

    /// The first gate breached, counting only failures beyond the accepted ones.
    fn breach(&self) -> Option<Breach> {
        let mut counts = Counts::of(self.members());
        counts.failed = counts.failed.saturating_sub(self.accepted_failures);
        gate::check(&self.spec, &counts)
    }

    /// Applies the policy to a breach.
    fn breached(&mut self, breach: Breach) -> Vec<Action> {
        let policy = self.spec.policy;
        let mut actions = vec![Action::Event(RolloutEvent::Breached {
            breach: breach.clone(),
            policy,
        })];
        match policy {
            Policy::Pause => {
                self.status = Status::Paused {
                    breach: Some(breach),
                }
            }
            Policy::Rollback => {
                self.status = Status::Cancelled {
                    breach: Some(breach),
                };
                actions.extend(self.roll_back());
            }
        }
        actions
    }

    /// Tells every device that has or may be getting the new image to roll back.
    fn roll_back(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        for (id, d) in &mut self.devices {
            if d.state.in_progress() || d.state == DeviceState::Succeeded {
                d.state = DeviceState::RollingBack;
                actions.push(Action::RollBack { device: id.clone() });
            }
        }
        actions
    }

    /// Pending members, best-ranked first.
    fn ranked(&self, assigned: bool) -> Vec<String> {
        let mut ids: Vec<(u64, &String)> = self
            .devices
            .iter()
            .filter(|(_, d)| {
                d.in_group && d.state == DeviceState::Pending && d.phase.is_some() == assigned
            })
            .map(|(id, _)| (rank(self.seed, id), id))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// Assigns pending members to the current phase up to its target.
    fn assign(&mut self) {
        let assigned = self.members().filter(|d| d.phase.is_some()).count();
        let missing = self.target(self.phase).saturating_sub(assigned);
        let phase = self.phase;
        for id in self.ranked(false).into_iter().take(missing) {
            if let Some(d) = self.devices.get_mut(&id) {
                d.phase = Some(phase);
            }
        }
    }

    /// Notifies assigned devices while fewer than `max_concurrent` are in progress,
    /// and only inside a maintenance window.
    fn notify(&mut self, now_ms: u64) -> Vec<Action> {
        if !window::open_at(&self.spec.windows, now_ms) {
            return Vec::new();
        }
        let busy = self.members().filter(|d| d.state.in_progress()).count();
        let room = self.spec.max_concurrent.saturating_sub(busy);
        let mut actions = Vec::new();
        for id in self.ranked(true).into_iter().take(room) {
            if let Some(d) = self.devices.get_mut(&id) {
                d.state = DeviceState::Notified { at_ms: now_ms };
            }
            let start_delay_ms = match self.spec.max_start_delay_ms {
                0 => 0,
                max => rank(self.seed ^ 0x5eed, &id) % max,
            };
            actions.push(Action::Notify {
                device: id,
                start_delay_ms,
            });
        }
        actions
    }

    /// Soaks a finished phase, then moves on; returns whether a new phase started.
    fn advance(&mut self, now_ms: u64, actions: &mut Vec<Action>) -> bool {
        let assigned: Vec<&Device> = self.members().filter(|d| d.phase.is_some()).collect();
        let finished = assigned.len() >= self.target(self.phase)
            && assigned
                .iter()
                .all(|d| matches!(d.state, DeviceState::Succeeded | DeviceState::Failed { .. }));
        if !finished {
            // New members (dynamic groups) reopen a soaking phase; its soak restarts.
            self.soak_until_ms = None;
            return false;
        }
        let succeeded = assigned
            .iter()
            .filter(|d| d.state == DeviceState::Succeeded)
            .count();
        let rate = if assigned.is_empty() {
            1.0
        } else {
            succeeded as f64 / assigned.len() as f64
        };
        if rate < self.spec.min_success {
            let min = self.spec.min_success;
            actions.extend(self.breached(Breach::TooFewSuccesses { rate, min }));
            return false;
        }
        let until_ms = match self.soak_until_ms {
            Some(until_ms) => until_ms,
            None => {
                let until_ms = now_ms.saturating_add(self.spec.soak_ms);
                self.soak_until_ms = Some(until_ms);
                let phase = self.phase;
                actions.push(Action::Event(RolloutEvent::Soaking { phase, until_ms }));
                until_ms
            }
        };
        if now_ms < until_ms {
            return false;
        }
        self.soak_until_ms = None;
        if self.phase + 1 < self.spec.phases.len() {
            self.phase += 1;
            let phase = self.phase;
            actions.push(Action::Event(RolloutEvent::PhaseStarted { phase }));
            true
        } else {
            self.status = Status::Completed;
            actions.push(Action::Event(RolloutEvent::Completed));
            false
        }
    }

    /// Per-phase counts, for `rollout status`.
    pub fn progress(&self) -> Progress {
        progress::of(self)
    }

    /// Whether a running rollout has devices to notify but is outside its windows.
    pub fn waiting_for_window(&self, now_ms: u64) -> bool {
        self.status == Status::Running
            && !window::open_at(&self.spec.windows, now_ms)
            && self
                .devices
                .values()
                .any(|d| d.in_group && d.phase.is_some() && d.state == DeviceState::Pending)
    }
}
