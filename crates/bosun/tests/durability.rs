//! Durability across `kill -9`: the acceptance tests of the durable log. What the broker
//! acknowledged (PUBACK of a QoS 1 PUBLISH) must survive a crash of the process at any
//! moment: acknowledged messages reach their subscribers, retained messages stay retained,
//! an offline session's queue is still there after the restart.
//!
//! The tests are named `heavy_*` so CI can keep them from running concurrently with each
//! other (they are long and timing-sensitive on 2 cores). Each restarts the broker on the
//! same data directory and the same port, so the clients reconnect by themselves.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::Bosun;
use support::{
    events_in, mosquitto_pub, mosquitto_sub, python, wait_messages, wait_subscribed, Version, STEP,
};

/// Number of messages of the acknowledged-messages test (required by the issue).
const N: usize = 20_000;
/// When the broker is killed: after this many acknowledgements.
const KILL_AFTER_ACKS: usize = 5_000;

/// The numbers in the `field` of JSON lines with `"event": event` (from `scanned` on),
/// added to `into`; returns the new scan position.
fn collect_numbers(
    lines: &[String],
    scanned: usize,
    event: &str,
    into: &mut BTreeMap<u64, usize>,
    field: &str,
) -> usize {
    for v in events_in(&lines[scanned..], event) {
        let number = match &v[field] {
            serde_json::Value::String(s) => s.parse::<u64>().ok(),
            other => other.as_u64(),
        };
        // Failed PUBACKs (reason >= 0x80) are not acknowledgements.
        let failed = v["reason"].as_u64().is_some_and(|r| r >= 0x80);
        if let (Some(n), false) = (number, failed) {
            *into.entry(n).or_default() += 1;
        }
    }
    lines.len()
}

/// Every number acknowledged to a QoS 1 publisher (PUBACK seen) is received by a
/// persistent QoS 1 subscriber, although the broker is killed with SIGKILL mid-stream
/// and restarted on the same data directory and port. Duplicates are allowed (QoS 1) and
/// counted; missing numbers are not.
#[test]
fn heavy_acked_messages_survive_kill9() {
    let started = Instant::now();
    let mut broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let topic = "durable/acked";
    // Subscriber: MQTT 5, session expiry 3600 s; publisher: MQTT 3.1.1 persistent session.
    let sub = python(
        "durable_sub.py",
        addr,
        &[
            "--protocol",
            "5",
            "--client-id",
            "durable-sub",
            "--topic",
            topic,
            "--timeout",
            "58",
        ],
    );
    sub.wait_event("ready", STEP);
    let count = N.to_string();
    let mut publisher = python(
        "durable_pub.py",
        addr,
        &[
            "--protocol",
            "311",
            "--client-id",
            "durable-pub",
            "--topic",
            topic,
            "--count",
            &count,
            "--inflight",
            "100",
            "--timeout",
            "55",
        ],
    );

    publisher.wait_events("a", KILL_AFTER_ACKS, Duration::from_secs(30));
    broker.kill9();
    let acked_at_kill = publisher.events("a").len();
    let killed = started.elapsed();
    let restarted = broker.restart_same();
    let back = started.elapsed();

    publisher.wait_success(Duration::from_secs(50).saturating_sub(started.elapsed()));
    let published = started.elapsed();

    let mut acked = BTreeMap::new();
    collect_numbers(&publisher.stdout_lines(), 0, "a", &mut acked, "i");
    let mut received = BTreeMap::new();
    let mut scanned = 0;
    let mut missing = acked.len();
    let limit = Duration::from_secs(57).saturating_sub(started.elapsed());
    let all_in = sub.try_wait_stdout(limit, |lines| {
        scanned = collect_numbers(lines, scanned, "m", &mut received, "p");
        missing = acked.keys().filter(|n| !received.contains_key(n)).count();
        missing == 0
    });
    let duplicates: usize = received.values().map(|c| c - 1).sum();
    let missing_list: Vec<u64> = acked
        .keys()
        .filter(|n| !received.contains_key(n))
        .copied()
        .take(50)
        .collect();
    eprintln!(
        "killed at {killed:?} with {acked_at_kill} acks, serving again at {back:?}, \
         publisher done at {published:?}, subscriber complete at {:?}; acked {} distinct, \
         received {} distinct, {duplicates} duplicates, {missing} missing",
        started.elapsed(),
        acked.len(),
        received.len()
    );
    assert_eq!(
        acked.len(),
        N,
        "the publisher finished without every PUBACK"
    );
    assert!(
        all_in,
        "{missing} acknowledged messages never reached the subscriber, e.g. {missing_list:?}\n{}",
        sub.dump()
    );
    drop(restarted);
}

/// Retained messages acknowledged before the crash are still retained after it, and a
/// retained message cleared before the crash stays cleared.
#[test]
fn heavy_retained_messages_survive_kill9() {
    let mut broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let topics: Vec<String> = (0..20).map(|i| format!("durable/retained/{i}")).collect();
    for (i, t) in topics.iter().enumerate() {
        let payload = format!("value-{i}");
        let version = if i % 2 == 0 {
            Version::V5
        } else {
            Version::V311
        };
        mosquitto_pub(
            addr,
            version,
            &["-t", t, "-m", &payload, "-r", "-q", "1"],
            None,
        );
    }
    let cleared = "durable/retained/cleared";
    mosquitto_pub(
        addr,
        Version::V5,
        &["-t", cleared, "-m", "old", "-r", "-q", "1"],
        None,
    );
    mosquitto_pub(
        addr,
        Version::V5,
        &["-t", cleared, "-n", "-r", "-q", "1"],
        None,
    );

    broker.kill9();
    let broker = broker.restart_same();

    // 20 retained messages, then the live marker sent after the SUBACK.
    let sub = mosquitto_sub(
        addr,
        Version::V5,
        &["-t", "durable/retained/#", "-q", "1", "-C", "21"],
    );
    wait_subscribed(&sub);
    mosquitto_pub(
        addr,
        Version::V5,
        &["-t", "durable/retained/marker", "-m", "m", "-q", "1"],
        None,
    );
    let got = wait_messages(&sub, 21, STEP);
    let retained: BTreeSet<(String, String)> = got
        .iter()
        .filter(|m| m.retain)
        .map(|m| (m.topic.clone(), m.payload.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = topics
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), format!("value-{i}")))
        .collect();
    assert_eq!(
        retained,
        expected,
        "retained set after kill -9\n{}",
        sub.dump()
    );
    assert!(
        got.iter().all(|m| m.topic != cleared),
        "a cleared retained message came back after kill -9\n{}",
        sub.dump()
    );
    assert_eq!(
        got.last().map(|m| m.topic.as_str()),
        Some("durable/retained/marker")
    );
    drop(broker);
}

/// An offline persistent session's queue (1,000 acknowledged QoS 1 messages) survives
/// kill -9: the client comes back after the restart and gets them all, in order.
#[test]
fn heavy_offline_session_queue_survives_kill9() {
    let mut broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let topic = "durable/queued";
    let id = "durable-offline";
    let mut first = mosquitto_sub(
        addr,
        Version::V311,
        &["-c", "-i", id, "-q", "1", "-t", topic, "-E"],
    );
    first.wait_success(STEP);

    let sent: Vec<String> = (0..1000).map(|i| format!("q-{i}")).collect();
    let stdin: String = sent.iter().map(|l| format!("{l}\n")).collect();
    mosquitto_pub(
        addr,
        Version::V311,
        &["-t", topic, "-q", "1", "-l"],
        Some(&stdin),
    );

    broker.kill9();
    let broker = broker.restart_same();

    let back = mosquitto_sub(
        addr,
        Version::V311,
        &["-c", "-i", id, "-q", "1", "-t", topic, "-C", "1000"],
    );
    let got = wait_messages(&back, 1000, Duration::from_secs(30));
    let payloads: Vec<&str> = got.iter().map(|m| m.payload.as_str()).collect();
    let missing: Vec<&String> = sent
        .iter()
        .filter(|s| !payloads.contains(&s.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} queued messages lost: {missing:?}",
        missing.len()
    );
    assert_eq!(payloads, sent, "queued messages reordered or duplicated");
    drop(broker);
}
