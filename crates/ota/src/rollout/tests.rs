//! The engine driven by simulated fleets: good firmware reaches every device, bad
//! firmware is stopped inside the first phase, and the invariants hold for any fleet.

use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;

use super::*;

const MINUTE: u64 = 60_000;

/// A spec with these phases: 10 min soak, 2% failures, 95% success, 5 at a time.
pub(crate) fn spec(phases: &[f64]) -> RolloutSpec {
    RolloutSpec {
        phases: phases.to_vec(),
        soak_ms: 10 * MINUTE,
        max_failure: 0.02,
        min_success: 0.95,
        max_offline_excess: 0.2,
        max_anomaly_excess: 0.2,
        max_reboot_excess: 0.2,
        max_concurrent: 5,
        max_start_delay_ms: 30_000,
        device_timeout_ms: 30 * MINUTE,
        policy: Policy::Pause,
        windows: Vec::new(),
    }
}

fn fleet(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("dev-{i:04}")).collect()
}

/// What a simulation saw.
struct Outcome {
    /// Devices ever notified.
    touched: BTreeSet<String>,
    /// Most devices in progress at once.
    max_busy: usize,
    /// Every action.
    actions: Vec<Action>,
}

/// Runs `r` one simulated minute at a time: each notified device reports downloading,
/// then `fate(id)`, a minute later.
fn simulate(r: &mut Rollout, fate: impl Fn(&str) -> Report, minutes: u64) -> Outcome {
    simulate_from(r, fate, 1, minutes, Vec::new())
}

/// [`simulate`] from minute `from`, with `earlier` actions (notifications) to act on.
fn simulate_from(
    r: &mut Rollout,
    fate: impl Fn(&str) -> Report,
    from: u64,
    minutes: u64,
    earlier: Vec<Action>,
) -> Outcome {
    let mut out = Outcome {
        touched: BTreeSet::new(),
        max_busy: 0,
        actions: Vec::new(),
    };
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut pending = earlier;
    for minute in from..from + minutes {
        let now = minute * MINUTE;
        let mut actions = std::mem::take(&mut pending);
        actions.extend(r.tick(now));
        while let Some(id) = queue.pop_front() {
            actions.extend(r.report(&id, Report::Downloading { percent: 50 }, now));
            actions.extend(r.report(&id, fate(&id), now));
        }
        for a in &actions {
            if let Action::Notify { device, .. } = a {
                out.touched.insert(device.clone());
                queue.push_back(device.clone());
            }
        }
        let busy = r.devices.values().filter(|d| d.state.in_progress()).count();
        out.max_busy = out.max_busy.max(busy);
        out.actions.extend(actions);
        if r.status != Status::Running {
            break;
        }
    }
    out
}

/// The devices the rollout's first tick notifies.
fn notified_at_start(r: &mut Rollout) -> Vec<String> {
    r.tick(0)
        .into_iter()
        .filter_map(|a| match a {
            Action::Notify { device, .. } => Some(device),
            _ => None,
        })
        .collect()
}

fn good(_: &str) -> Report {
    Report::Succeeded
}

fn bad(_: &str) -> Report {
    Report::Failed {
        reason: "health check failed after boot".into(),
    }
}

#[test]
fn good_firmware_reaches_every_device_phase_by_phase() {
    let mut r = Rollout::new(spec(&[0.01, 0.1, 0.5, 1.0]), 7, fleet(200)).expect("spec");
    let out = simulate(&mut r, good, 1000);
    assert_eq!(r.status, Status::Completed);
    assert_eq!(out.touched.len(), 200);
    assert!(out.max_busy <= 5);
    let p = r.progress();
    let targets: Vec<usize> = p.phases.iter().map(|p| p.target).collect();
    assert_eq!(targets, vec![2, 18, 80, 100]);
    assert!(p.phases.iter().all(|p| p.succeeded == p.target));
    let soaks = out
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Event(RolloutEvent::Soaking { .. })))
        .count();
    assert_eq!(soaks, 4);
}

#[test]
fn bad_firmware_is_stopped_in_the_first_phase() {
    let mut r = Rollout::new(spec(&[0.01, 0.1, 1.0]), 7, fleet(500)).expect("spec");
    let out = simulate(&mut r, bad, 1000);
    assert!(matches!(
        r.status,
        Status::Paused {
            breach: Some(Breach::Failures { .. })
        }
    ));
    assert!(out.touched.len() <= 5, "{}", out.touched.len());
    assert_eq!(r.phase, 0);
    // Resuming accepts the failures so far, and the next failure pauses it again.
    let actions = r.resume(2000 * MINUTE);
    assert!(actions.contains(&Action::Event(RolloutEvent::Resumed)));
    let out = simulate(&mut r, bad, 1000);
    assert!(matches!(r.status, Status::Paused { .. }));
    assert!(out.touched.len() <= 5);
}

#[test]
fn rollback_policy_cancels_and_rolls_back_updated_devices() {
    let mut s = spec(&[0.1, 1.0]);
    s.policy = Policy::Rollback;
    s.max_failure = 0.2;
    let mut r = Rollout::new(s, 1, fleet(50)).expect("spec");
    // The first five succeed, later ones fail.
    let out = simulate(
        &mut r,
        |id| {
            if id < "dev-0010" {
                good(id)
            } else {
                bad(id)
            }
        },
        1000,
    );
    assert!(matches!(r.status, Status::Cancelled { breach: Some(_) }));
    let rolled: Vec<&Action> = out
        .actions
        .iter()
        .filter(|a| matches!(a, Action::RollBack { .. }))
        .collect();
    assert!(!rolled.is_empty());
    for a in rolled {
        if let Action::RollBack { device } = a {
            let before = r.devices[device].clone();
            assert_eq!(before.state, DeviceState::RollingBack);
            r.report(device, Report::RolledBack, 0);
            assert_eq!(r.devices[device].state, DeviceState::RolledBack);
        }
    }
}

#[test]
fn devices_joining_later_are_updated() {
    let mut r = Rollout::new(spec(&[0.5, 1.0]), 3, fleet(10)).expect("spec");
    simulate(&mut r, good, 1000);
    assert_eq!(r.status, Status::Completed);
    let members: BTreeSet<String> = fleet(14).into_iter().collect();
    let joined = r.set_members(&members, 2000 * MINUTE);
    assert_eq!(r.status, Status::Running);
    let out = simulate_from(&mut r, good, 2000, 1000, joined);
    assert_eq!(r.status, Status::Completed);
    assert_eq!(out.touched.len(), 4);
}

#[test]
fn silent_devices_time_out_as_failures() {
    let mut r = Rollout::new(spec(&[1.0]), 3, fleet(3)).expect("spec");
    let notified = r.tick(0);
    assert_eq!(notified.len(), 3);
    assert!(r.tick(10 * MINUTE).is_empty());
    let actions = r.tick(31 * MINUTE);
    assert!(matches!(
        actions.first(),
        Some(Action::Event(RolloutEvent::Breached { .. }))
    ));
    assert!(matches!(
        &r.devices["dev-0000"].state,
        DeviceState::Failed { reason } if reason.contains("no result")
    ));
}

#[test]
fn updated_devices_going_offline_breach_the_offline_gate() {
    let mut r = Rollout::new(spec(&[0.1, 1.0]), 3, fleet(100)).expect("spec");
    let notified = notified_at_start(&mut r);
    assert_eq!(notified.len(), 5);
    // A site-wide outage (the rest offline too) is not blamed on the firmware.
    for id in fleet(100) {
        r.set_offline(&id, true, MINUTE);
    }
    assert_eq!(r.status, Status::Running);
    for id in fleet(100) {
        r.set_offline(&id, false, MINUTE);
    }
    // Devices installing go offline to reboot: expected, not a breach (the device
    // timeout and their own health deadline cover one that never comes back).
    for id in &notified {
        r.set_offline(id, true, MINUTE);
    }
    assert_eq!(r.status, Status::Running);
    for id in &notified {
        r.set_offline(id, false, MINUTE);
    }
    // Devices that finished their update and then drop off are.
    r.report(&notified[0], Report::Succeeded, MINUTE);
    r.report(&notified[1], Report::Succeeded, MINUTE);
    r.set_offline(&notified[0], true, MINUTE);
    r.set_offline(&notified[1], true, MINUTE);
    assert!(matches!(
        r.status,
        Status::Paused {
            breach: Some(Breach::Offline { .. })
        }
    ));
}

#[test]
fn operators_pause_resume_and_cancel() {
    let mut r = Rollout::new(spec(&[1.0]), 3, fleet(20)).expect("spec");
    assert_eq!(r.pause(), vec![Action::Event(RolloutEvent::Paused)]);
    assert!(r.tick(0).is_empty(), "paused rollouts notify nobody");
    let actions = r.resume(0);
    assert_eq!(actions.len(), 6, "{actions:?}"); // Resumed + 5 notifications
    let actions = r.cancel(true);
    let rollbacks = actions
        .iter()
        .filter(|a| matches!(a, Action::RollBack { .. }))
        .count();
    assert_eq!(rollbacks, 5);
    assert!(r.tick(MINUTE).is_empty());
}

#[test]
fn state_survives_serialization_mid_rollout() {
    let mut r = Rollout::new(spec(&[0.1, 1.0]), 9, fleet(30)).expect("spec");
    simulate(&mut r, good, 3);
    let json = serde_json::to_string(&r).expect("serialize");
    let mut restored: Rollout = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(restored, r);
    let a = simulate(&mut r, good, 1000);
    let b = simulate(&mut restored, good, 1000);
    assert_eq!(a.touched, b.touched);
    assert_eq!(r, restored);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any fleet and phases: good firmware completes on every device; bad firmware
    /// never touches more than the first phase (nor more than max_concurrent); at no
    /// time are more than max_concurrent devices updating.
    #[test]
    fn phases_bound_the_damage(
        n in 1usize..300,
        first in 1u32..60,
        concurrent in 1usize..20,
        seed in any::<u64>(),
    ) {
        let mut s = spec(&[f64::from(first) / 100.0, 0.6, 1.0]);
        s.max_concurrent = concurrent;
        let mut r = Rollout::new(s.clone(), seed, fleet(n)).expect("spec");
        let out = simulate(&mut r, good, 5000);
        prop_assert_eq!(&r.status, &Status::Completed);
        prop_assert_eq!(out.touched.len(), n);
        prop_assert!(out.max_busy <= concurrent);

        let mut r = Rollout::new(s, seed, fleet(n)).expect("spec");
        let phase_one = r.target(0);
        let out = simulate(&mut r, bad, 5000);
        let stopped = matches!(r.status, Status::Paused { breach: Some(_) });
        prop_assert!(stopped);
        prop_assert!(out.touched.len() <= phase_one.min(concurrent));
    }
}

#[test]
fn updated_devices_rebooting_more_than_the_rest_breach_the_reboot_gate() {
    let mut r = Rollout::new(spec(&[0.1, 1.0]), 3, fleet(100)).expect("spec");
    let notified = notified_at_start(&mut r);
    // Everyone reports a counter; the update's own reboot is expected.
    for id in fleet(100) {
        r.boots(&id, 7, MINUTE);
    }
    for id in &notified {
        r.report(id, Report::Succeeded, MINUTE);
        r.boots(id, 8, MINUTE);
    }
    assert_eq!(r.status, Status::Running);
    // Reboots everywhere (a power cut at the site) are not the firmware's doing.
    for id in fleet(100) {
        r.boots(&id, 9, 2 * MINUTE);
    }
    assert_eq!(r.status, Status::Running, "{:?}", r.status);
    // Three of the ten updated devices keep rebooting while the rest stay up.
    let mut r2 = Rollout::new(spec(&[0.1, 1.0]), 3, fleet(100)).expect("spec");
    let first = notified_at_start(&mut r2);
    for id in fleet(100) {
        r2.boots(&id, 1, MINUTE);
    }
    for id in &first {
        r2.report(id, Report::Succeeded, MINUTE);
        r2.boots(id, 2, MINUTE);
    }
    r2.boots(&first[0], 5, 2 * MINUTE);
    r2.boots(&first[1], 4, 2 * MINUTE);
    assert_eq!(r2.status, Status::Running, "2 of 10 is not over 20 %");
    r2.boots(&first[2], 4, 2 * MINUTE);
    let Status::Paused {
        breach: Some(Breach::Reboots { updated, rest, .. }),
    } = r2.status.clone()
    else {
        panic!("{:?}", r2.status)
    };
    assert!(updated > 0.2 && rest == 0.0, "{updated} {rest}");
    // A counter that went backwards starts a new baseline, never a negative count.
    let mut d = super::device::Device::new();
    d.boots_reported(10);
    d.boots_reported(3);
    assert_eq!(d.boots_since(), 0);
}
