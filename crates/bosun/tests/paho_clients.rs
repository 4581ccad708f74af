//! Interoperability with Eclipse paho-mqtt (Python, 2.x) over MQTT 3.1.1 and 5.0: shared
//! subscriptions, request/response properties, topic aliases, message expiry, QoS 2
//! exactly-once, session takeover, authorization, graceful shutdown. The paho scripts live
//! in `tests/clients/` and print JSON lines; each test starts its own broker.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::Bosun;
use serde_json::Value;
use support::raw::{self, Conn};
use support::{python, wait_until, Client, Version, STEP};

/// Starts `sub.py` and waits until all its subscriptions are acknowledged.
fn paho_sub(broker: &Bosun, version: Version, args: &[&str]) -> Client {
    let mut all = vec!["--protocol", version.paho(), "--timeout", "45"];
    all.extend_from_slice(args);
    let sub = python("sub.py", broker.mqtt_addr(), &all);
    sub.wait_event("ready", STEP);
    sub
}

/// Runs `pub.py` to completion (every message acknowledged).
fn paho_pub(broker: &Bosun, version: Version, args: &[&str]) -> Client {
    let mut all = vec!["--protocol", version.paho(), "--timeout", "25"];
    all.extend_from_slice(args);
    let mut publisher = python("pub.py", broker.mqtt_addr(), &all);
    publisher.wait_success(STEP * 2);
    publisher
}

fn payloads(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["payload"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Members of a shared subscription share the messages: each gets some, together they get
/// every one exactly once (all online, QoS 1) [MQTT-4.8.2].
#[test]
fn shared_subscription_splits_messages_between_members_v5() {
    let broker = Bosun::start(&[]);
    let filter = "$share/g/shared/split/#";
    let a = paho_sub(&broker, Version::V5, &["--topic", filter, "--qos", "1"]);
    let b = paho_sub(&broker, Version::V5, &["--topic", filter, "--qos", "1"]);

    paho_pub(
        &broker,
        Version::V5,
        &["--topic", "shared/split/x", "--qos", "1", "--count", "100"],
    );

    let total = || a.events("message").len() + b.events("message").len();
    wait_until(STEP, || total() >= 100);
    let (got_a, got_b) = (
        payloads(&a.events("message")),
        payloads(&b.events("message")),
    );
    let dump = format!("{}\n{}", a.dump(), b.dump());
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members should get messages: a={} b={}\n{dump}",
        got_a.len(),
        got_b.len()
    );
    let distinct: BTreeSet<&String> = got_a.iter().chain(&got_b).collect();
    assert_eq!(distinct.len(), 100, "messages missing\n{dump}");
    assert_eq!(
        got_a.len() + got_b.len(),
        100,
        "duplicates across members\n{dump}"
    );
}

/// When a member's session ends with QoS 1 messages unacknowledged, the broker SHOULD give
/// them to another member [MQTT-4.8.2 "If the Client's Session terminates before the
/// Client reconnects, the Server SHOULD send the Application Message to another Client that
/// is subscribed to the same Shared Subscription"]. The departing member is a raw client
/// that never sends PUBACK (paho always acknowledges), has Receive Maximum 10 and session
/// expiry 0, and drops its TCP connection mid-stream.
#[test]
fn shared_subscription_gives_unacked_messages_of_a_departed_member_to_another_v5() {
    let broker = Bosun::start(&[]);
    let filter = "$share/g/shared/failover/#";

    // Receive Maximum (0x21) = 10.
    let (mut silent, _) = Conn::connect_v5(broker.mqtt_addr(), "silent-member", &[0x21, 0, 10]);
    silent.send(&raw::subscribe_v5(1, filter, 1));
    silent.expect(raw::SUBACK, STEP);
    let member = paho_sub(&broker, Version::V5, &["--topic", filter, "--qos", "1"]);

    let publisher = paho_pub(
        &broker,
        Version::V5,
        &[
            "--topic",
            "shared/failover/x",
            "--qos",
            "1",
            "--count",
            "100",
        ],
    );

    // Read what the silent member is given (never acknowledging it) until its Receive
    // Maximum of 10 is used up (no more can come [MQTT-3.3.4-7]), or the two members hold
    // all 100 between them.
    let mut held = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && held.len() < 10
        && held.len() + member.events("message").len() < 100
    {
        match silent.read(Duration::from_millis(100)) {
            Ok(p) if p.kind() == raw::PUBLISH => {
                let payload = p.publish_payload_v5().unwrap_or_default();
                held.insert(String::from_utf8_lossy(&payload).into_owned());
            }
            Ok(_) | Err(raw::End::TimedOut) => {}
            Err(end) => panic!("the silent member was disconnected: {end:?}"),
        }
    }
    assert!(
        !held.is_empty(),
        "the silent member was never given a message, the failover is not exercised\n{}\n{}",
        member.dump(),
        publisher.dump()
    );
    eprintln!(
        "silent member holds {} unacknowledged messages; dropping it",
        held.len()
    );
    drop(silent);

    let member_has_all = || {
        payloads(&member.events("message"))
            .into_iter()
            .collect::<BTreeSet<_>>()
            .len()
            >= 100
    };
    let complete = wait_until(STEP, member_has_all);
    let got: BTreeSet<String> = payloads(&member.events("message")).into_iter().collect();
    let missing: Vec<String> = (0..100)
        .map(|i| format!("msg-{i}"))
        .filter(|m| !got.contains(m))
        .collect();
    assert!(
        complete,
        "after the silent member left, the remaining member lacks {} messages: {missing:?} \
         (the silent member held {held:?})\n{}",
        missing.len(),
        member.dump()
    );
}

/// v5 request/response: Response Topic, Correlation Data, User Properties (order kept,
/// [MQTT-3.3.2-18]), Content Type and Payload Format Indicator reach the responder
/// unaltered, and the responder's echo reaches the requester with the same Correlation
/// Data [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-19], [MQTT-3.3.2-20].
#[test]
fn request_response_properties_travel_end_to_end_v5() {
    let broker = Bosun::start(&[]);
    let addr = broker.mqtt_addr();
    let mut responder = python(
        "reqresp.py",
        addr,
        &[
            "--role",
            "responder",
            "--request-topic",
            "svc/echo",
            "--timeout",
            "30",
        ],
    );
    responder.wait_event("ready", STEP);
    let mut requester = python(
        "reqresp.py",
        addr,
        &[
            "--role",
            "requester",
            "--request-topic",
            "svc/echo",
            "--response-topic",
            "svc/echo/reply/42",
            "--correlation-data",
            "req-42",
            "--user-prop",
            "trace=abc",
            "--user-prop",
            "trace=def",
            "--user-prop",
            "lang=fr",
            "--content-type",
            "application/x-bosun",
            "--payload",
            "ping",
            "--timeout",
            "30",
        ],
    );
    requester.wait_success(STEP);
    responder.wait_success(STEP);
    let dump = format!("{}\n{}", requester.dump(), responder.dump());

    let request = responder.wait_event("request", STEP);
    let props = &request["props"];
    assert_eq!(props["ResponseTopic"], "svc/echo/reply/42", "{dump}");
    assert_eq!(props["CorrelationData"], "req-42", "{dump}");
    assert_eq!(props["ContentType"], "application/x-bosun", "{dump}");
    assert_eq!(props["PayloadFormatIndicator"], 1, "{dump}");
    let user = serde_json::json!([["trace", "abc"], ["trace", "def"], ["lang", "fr"]]);
    assert_eq!(
        props["UserProperty"], user,
        "user properties lost or reordered\n{dump}"
    );

    let response = requester.wait_event("response", STEP);
    assert_eq!(response["topic"], "svc/echo/reply/42", "{dump}");
    assert_eq!(response["payload"], "echo:ping", "{dump}");
    let props = &response["props"];
    assert_eq!(props["CorrelationData"], "req-42", "{dump}");
    assert_eq!(props["UserProperty"], user, "{dump}");
    assert_eq!(props["ContentType"], "application/x-bosun", "{dump}");
    assert_eq!(props["PayloadFormatIndicator"], 1, "{dump}");
}

/// A publisher using a Topic Alias (first PUBLISH: topic + alias; later ones: empty topic +
/// alias) is understood [MQTT-3.3.2-12]; subscribers that set no Topic Alias Maximum get
/// the full topic name on every message and never a Topic Alias [MQTT-3.3.2-11].
fn publisher_topic_alias_is_resolved_for(subscriber: Version) {
    let broker = Bosun::start(&[]);
    let sub = paho_sub(
        &broker,
        subscriber,
        &["--topic", "alias/in/#", "--qos", "1"],
    );
    paho_pub(
        &broker,
        Version::V5,
        &[
            "--topic",
            "alias/in/sensor-7",
            "--qos",
            "1",
            "--count",
            "5",
            "--topic-alias",
            "1",
        ],
    );
    let got = sub.wait_events("message", 5, STEP);
    for m in &got {
        assert_eq!(m["wire_topic"], "alias/in/sensor-7", "{}", sub.dump());
        assert!(
            m["alias"].is_null(),
            "alias sent to a client that allows none\n{}",
            sub.dump()
        );
    }
    assert_eq!(
        payloads(&got),
        (0..5).map(|i| format!("msg-{i}")).collect::<Vec<_>>(),
        "{}",
        sub.dump()
    );
}

#[test]
fn publisher_topic_alias_is_resolved_for_v5_subscriber() {
    publisher_topic_alias_is_resolved_for(Version::V5);
}

#[test]
fn publisher_topic_alias_is_resolved_for_v311_subscriber() {
    publisher_topic_alias_is_resolved_for(Version::V311);
}

/// A subscriber announcing Topic Alias Maximum 2 may receive aliases from the broker; every
/// alias is within 1..=2 [MQTT-3.3.2-10] and every message resolves to its real topic (the
/// script resolves aliases itself: paho 2.x reports the wire topic as is).
#[test]
fn broker_topic_aliases_resolve_to_the_real_topic_v5() {
    let broker = Bosun::start(&[]);
    let sub = paho_sub(
        &broker,
        Version::V5,
        &[
            "--topic",
            "alias/out/#",
            "--qos",
            "1",
            "--topic-alias-max",
            "2",
        ],
    );
    let topics = ["alias/out/a", "alias/out/b", "alias/out/c"];
    for round in 0..2 {
        for t in topics {
            let payload = format!("{t}#{round}");
            paho_pub(
                &broker,
                Version::V5,
                &["--topic", t, "--payload", &payload, "--qos", "1"],
            );
        }
    }
    let got = sub.wait_events("message", 6, STEP);
    assert!(
        sub.events("error").is_empty(),
        "unresolvable alias\n{}",
        sub.dump()
    );
    for m in &got {
        let payload = m["payload"].as_str().unwrap_or_default();
        let expected = payload.split('#').next().unwrap_or_default();
        assert_eq!(
            m["topic"],
            expected,
            "wrong topic after alias resolution\n{}",
            sub.dump()
        );
        if let Some(alias) = m["alias"].as_u64() {
            assert!(
                (1..=2).contains(&alias),
                "alias {alias} out of range\n{}",
                sub.dump()
            );
        }
    }
    eprintln!(
        "broker used aliases on {} of {} messages",
        got.iter().filter(|m| !m["alias"].is_null()).count(),
        got.len()
    );
}

/// A message whose Message Expiry Interval passed while the session was offline is not
/// delivered [MQTT-3.3.2-5]; one still valid is, with its interval reduced by the time it
/// waited [MQTT-3.3.2-6].
#[test]
fn expired_message_is_not_delivered_to_returning_session_v5() {
    let broker = Bosun::start(&[]);
    let id = "expiry-session";
    let session = [
        "--client-id",
        id,
        "--no-clean",
        "--session-expiry",
        "300",
        "--topic",
        "expiry/t",
        "--qos",
        "1",
    ];
    let mut args: Vec<&str> = session.to_vec();
    args.extend([
        "--exit-after-subscribe",
        "--protocol",
        "5",
        "--timeout",
        "20",
    ]);
    let mut first = python("sub.py", broker.mqtt_addr(), &args);
    first.wait_success(STEP);

    paho_pub(
        &broker,
        Version::V5,
        &[
            "--topic",
            "expiry/t",
            "--payload",
            "short",
            "--message-expiry",
            "1",
        ],
    );
    let short_acked = Instant::now();
    paho_pub(
        &broker,
        Version::V5,
        &[
            "--topic",
            "expiry/t",
            "--payload",
            "long",
            "--message-expiry",
            "60",
        ],
    );
    // The only time-based condition in this suite: the 1 s expiry must have passed.
    wait_until(Duration::from_secs(5), || {
        short_acked.elapsed() >= Duration::from_millis(2100)
    });

    let mut args: Vec<&str> = session.to_vec();
    args.extend(["--count", "1", "--protocol", "5", "--timeout", "20"]);
    let mut back = python("sub.py", broker.mqtt_addr(), &args);
    back.wait_success(STEP);
    let got = back.events("message");
    let connected = back.wait_event("connected", STEP);
    assert!(!got.is_empty(), "nothing delivered\n{}", back.dump());
    assert_eq!(
        connected["session_present"],
        true,
        "session lost\n{}",
        back.dump()
    );
    assert_eq!(
        got[0]["payload"],
        "long",
        "the first queued message delivered should be the unexpired one\n{}",
        back.dump()
    );
    let expiry = got[0]["props"]["MessageExpiryInterval"].as_u64();
    assert!(
        matches!(expiry, Some(1..=60)),
        "Message Expiry Interval must be forwarded, reduced by the waiting time: {expiry:?}\n{}",
        back.dump()
    );
    eprintln!("forwarded Message Expiry Interval: {expiry:?} (published with 60)");
}

/// QoS 2 delivers each message exactly once [MQTT-4.3.3]: 200 numbered messages then an
/// end marker; the subscriber counts every payload it was handed.
fn qos2_delivers_exactly_once(version: Version) {
    let broker = Bosun::start(&[]);
    let topic = format!("exactly/once/{}", version.paho());
    let sub = paho_sub(
        &broker,
        version,
        &["--topic", &topic, "--qos", "2", "--until-payload", "END"],
    );
    paho_pub(
        &broker,
        version,
        &["--topic", &topic, "--qos", "2", "--count", "200"],
    );
    paho_pub(
        &broker,
        version,
        &["--topic", &topic, "--qos", "2", "--payload", "END"],
    );
    sub.wait_event("done", STEP);

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in sub.events("message") {
        assert_eq!(m["qos"], 2, "delivered below QoS 2: {m}");
        *counts
            .entry(m["payload"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    let missing: Vec<String> = (0..200)
        .map(|i| format!("msg-{i}"))
        .filter(|m| !counts.contains_key(m))
        .collect();
    assert!(
        dups.is_empty(),
        "duplicates at QoS 2: {dups:?}\n{}",
        sub.dump()
    );
    assert!(
        missing.is_empty(),
        "missing at QoS 2: {missing:?}\n{}",
        sub.dump()
    );
}

#[test]
fn qos2_delivers_exactly_once_v311() {
    qos2_delivers_exactly_once(Version::V311);
}

#[test]
fn qos2_delivers_exactly_once_v5() {
    qos2_delivers_exactly_once(Version::V5);
}

/// A second connection with the same Client Identifier takes the session over; the first
/// connection is closed [MQTT-3.1.4-3], in v5 with DISCONNECT 0x8E Session taken over.
fn session_takeover(version: Version) -> Value {
    let broker = Bosun::start(&[]);
    let args = [
        "--protocol",
        version.paho(),
        "--client-id",
        "same-id",
        "--wait-disconnect",
        "--timeout",
        "30",
    ];
    let mut first = python("probe.py", broker.mqtt_addr(), &args);
    let connack = first.wait_event("connack", STEP);
    assert_eq!(connack["reason"], 0, "{}", first.dump());
    let second = python("probe.py", broker.mqtt_addr(), &args);
    let connack = second.wait_event("connack", STEP);
    assert_eq!(connack["reason"], 0, "{}", second.dump());

    let gone = first.wait_event("disconnected", STEP);
    first.wait_success(STEP);
    assert!(
        second.events("disconnected").is_empty(),
        "the new connection was closed instead of the old one\n{}",
        second.dump()
    );
    gone
}

#[test]
fn session_takeover_disconnects_first_client_with_0x8e_v5() {
    let gone = session_takeover(Version::V5);
    assert_eq!(gone["from_server"], true, "no DISCONNECT packet: {gone}");
    assert_eq!(
        gone["reason"], 0x8E,
        "expected 0x8E Session taken over: {gone}"
    );
}

#[test]
fn session_takeover_closes_first_client_v311() {
    session_takeover(Version::V311);
}

/// Without `--dev`, an anonymous client is refused: v5 CONNACK 0x87 Not authorized,
/// 3.1.1 CONNACK return code 5 Not authorized.
fn anonymous_refused(version: Version) -> Value {
    let broker = Bosun::launch(&[]).no_dev().start();
    let mut probe = python(
        "probe.py",
        broker.mqtt_addr(),
        &[
            "--protocol",
            version.paho(),
            "--client-id",
            "anon",
            "--timeout",
            "20",
        ],
    );
    let connack = probe.wait_event("connack", STEP);
    probe.wait_success(STEP);
    connack
}

#[test]
fn anonymous_client_is_not_authorized_without_dev_v5() {
    let connack = anonymous_refused(Version::V5);
    assert_eq!(connack["reason"], 0x87, "expected CONNACK 0x87: {connack}");
}

#[test]
fn anonymous_client_is_not_authorized_without_dev_v311() {
    let connack = anonymous_refused(Version::V311);
    assert_eq!(
        connack["raw_rc"], 5,
        "expected CONNACK return code 5: {connack}"
    );
}

/// On SIGTERM the broker tells v5 clients why it goes: DISCONNECT 0x8B Server shutting down.
#[test]
fn graceful_shutdown_sends_disconnect_0x8b_v5() {
    let mut broker = Bosun::start(&[]);
    let mut probe = python(
        "probe.py",
        broker.mqtt_addr(),
        &[
            "--protocol",
            "5",
            "--client-id",
            "stays",
            "--wait-disconnect",
            "--timeout",
            "30",
        ],
    );
    let connack = probe.wait_event("connack", STEP);
    assert_eq!(connack["reason"], 0, "{}", probe.dump());
    let status = broker.terminate();
    let gone = probe.wait_event("disconnected", STEP);
    probe.wait_success(STEP);
    assert_eq!(
        gone["from_server"], true,
        "no DISCONNECT packet before close: {gone}"
    );
    assert_eq!(
        gone["reason"], 0x8B,
        "expected 0x8B Server shutting down: {gone}"
    );
    assert!(
        status.success(),
        "bosun exited with {status} on SIGTERM\n{}",
        broker.stderr()
    );
}
