//! The engine with maintenance windows: outside them a phase notifies nobody, while
//! devices already updating finish; inside them it proceeds.

use super::tests::spec;
use super::*;

const HOUR: u64 = 3_600_000;
/// A midnight UTC.
const DAY: u64 = 20_000 * 24 * HOUR;

fn notified(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify { device, .. } => Some(device.clone()),
            _ => None,
        })
        .collect()
}

fn rollout(window: &str, n: usize) -> Rollout {
    let mut s = spec(&[0.5, 1.0]);
    s.soak_ms = 0;
    s.max_concurrent = 100;
    s.device_timeout_ms = 48 * HOUR;
    s.windows = vec![Window::parse(window).expect("window")];
    Rollout::new(s, 7, (0..n).map(|i| format!("d{i}"))).expect("rollout")
}

#[test]
fn waits_outside_the_window_and_proceeds_inside() {
    let mut r = rollout("01:00-05:00", 10);
    assert!(notified(&r.tick(DAY)).is_empty(), "00:00 is outside");
    assert!(r.waiting_for_window(DAY));
    let first = notified(&r.tick(DAY + HOUR));
    assert_eq!(first.len(), 5, "01:00: phase 1");
    assert!(!r.waiting_for_window(DAY + HOUR));
    // The window closes; the devices already updating finish, nobody new is told.
    let late = DAY + 5 * HOUR;
    let mut actions = Vec::new();
    for id in &first {
        actions.extend(r.report(id, Report::Succeeded, late));
    }
    actions.extend(r.tick(late + HOUR));
    assert!(notified(&actions).is_empty(), "{actions:?}");
    assert_eq!(r.phase, 1, "the phase advanced, its devices wait");
    assert!(r.waiting_for_window(late + HOUR));
    assert_eq!(r.status, Status::Running);
    // The next night.
    let next = notified(&r.tick(DAY + 25 * HOUR));
    assert_eq!(next.len(), 5);
}

#[test]
fn a_window_over_midnight_notifies_on_both_sides() {
    let mut r = rollout("23:00-01:00", 4);
    assert!(notified(&r.tick(DAY + 22 * HOUR)).is_empty());
    let before = notified(&r.tick(DAY + 23 * HOUR + 30 * 60_000));
    assert_eq!(before.len(), 2, "23:30");
    let mut actions = Vec::new();
    for id in &before {
        actions.extend(r.report(id, Report::Succeeded, DAY + 24 * HOUR + 10 * 60_000));
    }
    assert_eq!(notified(&actions).len(), 2, "00:10 the next day: phase 2");
    assert!(notified(&r.tick(DAY + 26 * HOUR)).is_empty());
}

#[test]
fn windows_survive_serialization() {
    let r = rollout("22:00-02:00", 3);
    let json = serde_json::to_string(&r).expect("json");
    assert!(json.contains("\"windows\":[\"22:00-02:00\"]"), "{json}");
    let back: Rollout = serde_json::from_str(&json).expect("back");
    assert_eq!(back, r);
    // Rollouts written before windows existed still load (no windows: any time).
    let old = json.replace(",\"windows\":[\"22:00-02:00\"]", "");
    let back: Rollout = serde_json::from_str(&old).expect("old");
    assert!(back.spec.windows.is_empty());
}
