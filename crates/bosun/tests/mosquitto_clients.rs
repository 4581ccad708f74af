//! Interoperability with the Eclipse Mosquitto command-line clients (`mosquitto_pub`,
//! `mosquitto_sub` 2.0), over MQTT 3.1.1 and 5.0: delivery at each QoS, retained
//! messages, wills and persistent sessions. Each test starts its own `bosun serve --dev`
//! on free loopback ports; failures print the clients' output and the broker's stderr.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use common::Bosun;
use support::{
    mosquitto_pub, mosquitto_sub, wait_messages, wait_subscribed, Received, Version, STEP,
};

/// `n` lines `"<prefix>-0" .. "<prefix>-(n-1)"`, the input of `mosquitto_pub -l`.
fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn stdin_of(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A subscriber at `qos` gets `n` messages published at `qos`, in order, each once, at the
/// QoS they were published with.
fn delivers_at_qos(version: Version, qos: u8) {
    let broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let n = 20;
    let topic = format!("interop/qos{qos}/{}", version.paho());
    let q = qos.to_string();
    let count = n.to_string();
    let sub = mosquitto_sub(addr, version, &["-t", &topic, "-q", &q, "-C", &count]);
    wait_subscribed(&sub);

    let sent = numbered("m", n);
    mosquitto_pub(
        addr,
        version,
        &["-t", &topic, "-q", &q, "-l"],
        Some(&stdin_of(&sent)),
    );

    let got = wait_messages(&sub, n, STEP);
    let payloads: Vec<&str> = got.iter().map(|m| m.payload.as_str()).collect();
    assert_eq!(
        payloads,
        sent,
        "payloads differ (order, loss or duplicates)\n{}",
        sub.dump()
    );
    for m in &got {
        assert_eq!(m.topic, topic, "{m:?}");
        assert_eq!(m.qos, qos, "delivered at another QoS: {m:?}");
        assert!(!m.retain, "live message delivered with RETAIN set: {m:?}");
    }
}

#[test]
fn qos0_delivers_every_message_v311() {
    delivers_at_qos(Version::V311, 0);
}

#[test]
fn qos0_delivers_every_message_v5() {
    delivers_at_qos(Version::V5, 0);
}

#[test]
fn qos1_delivers_every_message_v311() {
    delivers_at_qos(Version::V311, 1);
}

#[test]
fn qos1_delivers_every_message_v5() {
    delivers_at_qos(Version::V5, 1);
}

#[test]
fn qos2_delivers_every_message_v311() {
    delivers_at_qos(Version::V311, 2);
}

#[test]
fn qos2_delivers_every_message_v5() {
    delivers_at_qos(Version::V5, 2);
}

/// A retained message reaches a later subscriber with RETAIN set [MQTT-3.3.1-6]; an empty
/// retained payload clears it [MQTT-3.3.1-10], so a still later subscriber gets only the
/// live marker published after its SUBACK.
fn retained_message_is_kept_then_cleared(version: Version) {
    let broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let topic = format!("interop/retained/{}", version.paho());

    mosquitto_pub(
        addr,
        version,
        &["-t", &topic, "-m", "kept", "-r", "-q", "1"],
        None,
    );

    let late = mosquitto_sub(addr, version, &["-t", &topic, "-q", "1", "-C", "1"]);
    let got = wait_messages(&late, 1, STEP);
    assert_eq!(
        got[0],
        Received {
            retain: true,
            qos: 1,
            topic: topic.clone(),
            payload: "kept".into()
        },
        "a new subscriber must get the retained message with RETAIN set\n{}",
        late.dump()
    );

    // Clear it: a zero-length retained payload.
    mosquitto_pub(addr, version, &["-t", &topic, "-n", "-r", "-q", "1"], None);

    let later = mosquitto_sub(addr, version, &["-t", &topic, "-q", "1", "-C", "1"]);
    wait_subscribed(&later);
    mosquitto_pub(
        addr,
        version,
        &["-t", &topic, "-m", "marker", "-q", "1"],
        None,
    );
    let got = wait_messages(&later, 1, STEP);
    assert_eq!(
        got[0].payload,
        "marker",
        "the retained message should be gone, so the first message is the live marker\n{}",
        later.dump()
    );
    assert!(!got[0].retain, "{:?}", got[0]);
}

#[test]
fn retained_message_is_kept_then_cleared_by_empty_payload_v311() {
    retained_message_is_kept_then_cleared(Version::V311);
}

#[test]
fn retained_message_is_kept_then_cleared_by_empty_payload_v5() {
    retained_message_is_kept_then_cleared(Version::V5);
}

/// The will is published when the connection ends without DISCONNECT [MQTT-3.1.2-8]:
/// here a `mosquitto_sub` with will options is killed with SIGKILL.
fn will_is_published_on_abrupt_disconnect(version: Version) {
    let broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let will_topic = format!("interop/will/abrupt/{}", version.paho());

    let watcher = mosquitto_sub(addr, version, &["-t", &will_topic, "-q", "1", "-C", "1"]);
    wait_subscribed(&watcher);

    let mut doomed = mosquitto_sub(
        addr,
        version,
        &[
            "-t",
            "interop/will/unused",
            "--will-topic",
            &will_topic,
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    );
    wait_subscribed(&doomed);
    doomed.kill9();

    let got = wait_messages(&watcher, 1, STEP);
    assert_eq!(got[0].topic, will_topic, "{}", watcher.dump());
    assert_eq!(got[0].payload, "gone", "{}", watcher.dump());
}

#[test]
fn will_is_published_on_abrupt_disconnect_v311() {
    will_is_published_on_abrupt_disconnect(Version::V311);
}

#[test]
fn will_is_published_on_abrupt_disconnect_v5() {
    will_is_published_on_abrupt_disconnect(Version::V5);
}

/// A client that disconnects with DISCONNECT (reason 0x00 in v5) has its will discarded
/// [MQTT-3.1.2-10], [MQTT-3.14.4-3]: the watcher's first message is the marker sent after.
fn will_is_not_published_on_clean_disconnect(version: Version) {
    let broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let will_topic = format!("interop/will/clean/{}", version.paho());

    let watcher = mosquitto_sub(addr, version, &["-t", &will_topic, "-q", "1", "-C", "1"]);
    wait_subscribed(&watcher);

    // mosquitto_pub connects with the will, publishes, and disconnects cleanly.
    mosquitto_pub(
        addr,
        version,
        &[
            "-t",
            "interop/will/other",
            "-m",
            "hello",
            "-q",
            "1",
            "--will-topic",
            &will_topic,
            "--will-payload",
            "should-not-appear",
            "--will-qos",
            "1",
        ],
        None,
    );
    mosquitto_pub(
        addr,
        version,
        &["-t", &will_topic, "-m", "marker", "-q", "1"],
        None,
    );

    let got = wait_messages(&watcher, 1, STEP);
    assert_eq!(
        got[0].payload,
        "marker",
        "the will of a cleanly disconnected client was published\n{}",
        watcher.dump()
    );
}

#[test]
fn will_is_not_published_on_clean_disconnect_v311() {
    will_is_not_published_on_clean_disconnect(Version::V311);
}

#[test]
fn will_is_not_published_on_clean_disconnect_v5() {
    will_is_not_published_on_clean_disconnect(Version::V5);
}

/// Messages published while a persistent session's client is offline are queued and
/// delivered, all and in order, when it comes back [MQTT-3.1.2-5] (3.1.1: clean session 0;
/// v5: clean start 0 with a session expiry, which `-c` sets).
fn persistent_session_receives_queued_messages(version: Version) {
    let broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let topic = format!("interop/persistent/{}", version.paho());
    let id = format!("persistent-{}", version.paho());
    let n = 50;

    // Subscribe, then leave (-E: exit once the SUBACK arrived).
    let mut first = mosquitto_sub(
        addr,
        version,
        &["-c", "-i", &id, "-q", "1", "-t", &topic, "-E"],
    );
    first.wait_success(STEP);

    let sent = numbered("queued", n);
    mosquitto_pub(
        addr,
        version,
        &["-t", &topic, "-q", "1", "-l"],
        Some(&stdin_of(&sent)),
    );

    let count = n.to_string();
    let back = mosquitto_sub(
        addr,
        version,
        &["-c", "-i", &id, "-q", "1", "-t", &topic, "-C", &count],
    );
    let got = wait_messages(&back, n, STEP);
    let payloads: Vec<&str> = got.iter().map(|m| m.payload.as_str()).collect();
    assert_eq!(
        payloads,
        sent,
        "queued messages lost, duplicated or reordered\n{}",
        back.dump()
    );
}

#[test]
fn persistent_session_receives_queued_messages_v311() {
    persistent_session_receives_queued_messages(Version::V311);
}

#[test]
fn persistent_session_receives_queued_messages_v5() {
    persistent_session_receives_queued_messages(Version::V5);
}
