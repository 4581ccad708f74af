//! MQTT 5 and session features, each pinned by a test that fails if it breaks:
//! redelivery with DUP, will delay and DISCONNECT 0x04, session expiry, the queue
//! overflow policy and its metric, the client's maximum packet size, No Local,
//! Retain As Published and Retain Handling.
#![allow(clippy::unwrap_used, missing_docs)]

mod client;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use broker::config::OverflowPolicy;
use broker::{metrics::Metrics, Broker, Config};
use bytes::Bytes;
use client::{connect_packet, Client};
use mqtt::{
    Disconnect, Packet, Properties, ProtocolVersion::*, QoS, ReasonCode, RetainHandling,
    SubscriptionOptions, Will,
};

const QUIET: Duration = Duration::from_millis(300);

async fn start_with(dir: &Path, tune: impl FnOnce(&mut Config)) -> (Broker, Arc<Metrics>) {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        dev: true,
        ..Config::default()
    };
    tune(&mut config);
    let metrics = Arc::new(Metrics::default());
    (
        Broker::start(config, metrics.clone()).await.unwrap(),
        metrics,
    )
}

fn persistent(id: &str, expiry: u32) -> mqtt::Connect {
    let mut c = connect_packet(V5, id, false);
    c.properties.session_expiry_interval = Some(expiry);
    c
}

fn will(topic: &str, delay: Option<u32>) -> Will {
    Will {
        topic: topic.into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: delay,
            ..Default::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_message_is_resent_with_dup_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start_with(dir.path(), |_| {}).await;
    let (mut sub, _) = Client::connect_with(b.local_addr(), persistent("dup", 60)).await;
    sub.subscribe("d", QoS::AtLeastOnce).await;
    let (mut publ, _) = Client::connect(b.local_addr(), V5, "p", true).await;
    publ.publish("d", b"x", QoS::AtLeastOnce, false).await;
    let first = match sub.recv().await {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    assert!(!first.dup);
    drop(sub); // no PUBACK
    let (mut sub, ack) = Client::connect_with(b.local_addr(), persistent("dup", 60)).await;
    assert!(ack.session_present);
    let again = sub.expect_publish().await;
    assert!(again.dup, "redelivery must set DUP [MQTT-3.3.1-1]");
    assert_eq!(
        again.packet_id, first.packet_id,
        "same packet identifier [MQTT-4.4.0-1]"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_waits_and_is_cancelled_by_reconnecting() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start_with(dir.path(), |_| {}).await;
    let (mut watcher, _) = Client::connect(b.local_addr(), V5, "w", true).await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    // Delayed 1 s: the client comes back within it, so no will.
    let mut c = persistent("back", 60);
    c.will = Some(will("will/back", Some(1)));
    let (gone, _) = Client::connect_with(b.local_addr(), c.clone()).await;
    drop(gone);
    let (_back, _) = Client::connect_with(b.local_addr(), persistent("back", 60)).await;
    // Delayed 1 s and never back: the will arrives after the delay.
    let mut c = persistent("away", 60);
    c.will = Some(will("will/away", Some(1)));
    let (gone, _) = Client::connect_with(b.local_addr(), c).await;
    let lost = std::time::Instant::now();
    drop(gone);
    let p = watcher.expect_publish().await;
    assert_eq!(p.topic, "will/away");
    assert!(
        lost.elapsed() >= Duration::from_millis(900),
        "will came after {:?}",
        lost.elapsed()
    );
    assert!(
        watcher
            .recv_within(Duration::from_millis(1500))
            .await
            .is_err(),
        "the cancelled will was published"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_with_will_message_publishes_the_will() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start_with(dir.path(), |_| {}).await;
    let (mut watcher, _) = Client::connect(b.local_addr(), V5, "w", true).await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    let mut c = connect_packet(V5, "leaver", true);
    c.will = Some(will("will/leaver", None));
    let (mut leaver, _) = Client::connect_with(b.local_addr(), c).await;
    let d = Disconnect {
        code: ReasonCode::DISCONNECT_WITH_WILL,
        properties: Properties::default(),
    };
    leaver.send(&Packet::Disconnect(d)).await;
    assert_eq!(watcher.expect_publish().await.topic, "will/leaver");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ends_when_its_expiry_interval_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (b, metrics) = start_with(dir.path(), |_| {}).await;
    let (c, _) = Client::connect_with(b.local_addr(), persistent("brief", 1)).await;
    c.disconnect().await;
    let (c, ack) = Client::connect_with(b.local_addr(), persistent("brief", 1)).await;
    assert!(
        ack.session_present,
        "within the interval the session is kept"
    );
    c.disconnect().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metrics.sessions.get() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "session never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, ack) = Client::connect_with(b.local_addr(), persistent("brief", 1)).await;
    assert!(
        !ack.session_present,
        "after the interval it is gone [MQTT-3.1.2-23]"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_by_policy_and_counts_it() {
    for (policy, first_kept) in [
        (OverflowPolicy::DropOldest, 7),
        (OverflowPolicy::DropNewest, 0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (b, metrics) = start_with(dir.path(), |c| {
            c.max_queued_messages = 3;
            c.overflow = policy;
        })
        .await;
        let (mut sub, _) = Client::connect_with(b.local_addr(), persistent("slow", 60)).await;
        sub.subscribe("q", QoS::AtLeastOnce).await;
        sub.disconnect().await;
        let (mut publ, _) = Client::connect(b.local_addr(), V5, "p", true).await;
        for i in 0..10 {
            publ.publish("q", format!("{i}").as_bytes(), QoS::AtLeastOnce, false)
                .await;
        }
        assert_eq!(metrics.dropped_queue_full.get(), 7, "{policy:?}");
        let (mut sub, _) = Client::connect_with(b.local_addr(), persistent("slow", 60)).await;
        for i in first_kept..first_kept + 3 {
            assert_eq!(
                sub.expect_publish().await.payload,
                format!("{i}").as_bytes(),
                "{policy:?}"
            );
        }
        assert!(sub.recv_within(QUIET).await.is_err());
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_clients_maximum_packet_size_are_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (b, metrics) = start_with(dir.path(), |_| {}).await;
    let mut c = connect_packet(V5, "tiny", true);
    c.properties.maximum_packet_size = Some(64);
    let (mut tiny, _) = Client::connect_with(b.local_addr(), c).await;
    tiny.subscribe("m", QoS::AtLeastOnce).await;
    let (mut publ, _) = Client::connect(b.local_addr(), V5, "p", true).await;
    publ.publish("m", &[b'x'; 200], QoS::AtLeastOnce, false)
        .await;
    publ.publish("m", b"small", QoS::AtLeastOnce, false).await;
    assert_eq!(
        tiny.expect_publish().await.payload,
        "small",
        "[MQTT-3.1.2-25]"
    );
    assert_eq!(metrics.dropped_too_large.get(), 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_keeps_a_clients_own_messages_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start_with(dir.path(), |_| {}).await;
    let (mut c, _) = Client::connect(b.local_addr(), V5, "echo", true).await;
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        ..Default::default()
    };
    c.subscribe_with("n", options, Properties::default()).await;
    c.publish("n", b"mine", QoS::AtLeastOnce, false).await;
    assert!(
        c.recv_within(QUIET).await.is_err(),
        "own message delivered despite No Local"
    );
    let (mut other, _) = Client::connect(b.local_addr(), V5, "other", true).await;
    other.publish("n", b"theirs", QoS::AtLeastOnce, false).await;
    assert_eq!(c.expect_publish().await.payload, "theirs");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_as_published_keeps_the_flag_on_live_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start_with(dir.path(), |_| {}).await;
    let (mut keep, _) = Client::connect(b.local_addr(), V5, "keep", true).await;
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_as_published: true,
        ..Default::default()
    };
    keep.subscribe_with("r", options, Properties::default())
        .await;
    let (mut plain, _) = Client::connect(b.local_addr(), V5, "plain", true).await;
    plain.subscribe("r", QoS::AtLeastOnce).await;
    let (mut publ, _) = Client::connect(b.local_addr(), V5, "p", true).await;
    publ.publish("r", b"state", QoS::AtLeastOnce, true).await;
    assert!(keep.expect_publish().await.retain, "Retain As Published");
    assert!(
        !plain.expect_publish().await.retain,
        "[MQTT-3.3.1-12]: cleared by default"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_handling_0_1_2() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start_with(dir.path(), |_| {}).await;
    let (mut publ, _) = Client::connect(b.local_addr(), V5, "p", true).await;
    publ.publish("h", b"kept", QoS::AtLeastOnce, true).await;
    let (mut c, _) = Client::connect(b.local_addr(), V5, "c", true).await;
    let with = |rh| SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_handling: rh,
        ..Default::default()
    };
    // 2: never.
    c.subscribe_with("h", with(RetainHandling::Never), Properties::default())
        .await;
    assert!(
        c.recv_within(QUIET).await.is_err(),
        "retain handling 2 sent the retained message"
    );
    // 1: only for a new subscription; this one exists already.
    c.subscribe_with(
        "h",
        with(RetainHandling::OnNewSubscribe),
        Properties::default(),
    )
    .await;
    assert!(
        c.recv_within(QUIET).await.is_err(),
        "retain handling 1 on an existing subscription"
    );
    // 0: on every subscribe.
    c.subscribe_with(
        "h",
        with(RetainHandling::OnSubscribe),
        Properties::default(),
    )
    .await;
    assert_eq!(c.expect_publish().await.payload, "kept");
    // 1 on a new subscription: sent.
    c.subscribe_with(
        "h/#",
        with(RetainHandling::OnNewSubscribe),
        Properties::default(),
    )
    .await;
    assert_eq!(c.expect_publish().await.payload, "kept");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_subscription_has_a_reason_string_only_when_problem_information_is_wanted() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start_with(dir.path(), |_| {}).await;
    for (wanted, expect_reason) in [(None, true), (Some(0), false)] {
        let mut c = connect_packet(V5, "picky", true);
        c.properties.request_problem_information = wanted;
        let (mut client, _) = Client::connect_with(b.local_addr(), c).await;
        let sub = mqtt::Subscribe {
            packet_id: 1,
            subscriptions: vec![mqtt::Subscription {
                filter: "a/#/b".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            }],
            properties: Properties::default(),
        };
        client.send(&Packet::Subscribe(sub)).await;
        match client.recv().await {
            Some(Packet::SubAck(ack)) => {
                assert_eq!(ack.codes, vec![ReasonCode::TOPIC_FILTER_INVALID]);
                assert_eq!(
                    ack.properties.reason_string.is_some(),
                    expect_reason,
                    "{wanted:?}"
                );
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
        client.disconnect().await;
    }
    b.shutdown().await;
}
