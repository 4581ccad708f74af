//! The broker driven in-process by a codec-level client: QoS flows, sessions,
//! takeover, wills, shared subscriptions, protocol violations and recovery from the log.
//! Real third-party clients are exercised by the `bosun` crate's integration tests.
#![allow(clippy::unwrap_used, missing_docs)]

mod client;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use broker::{metrics::Metrics, Broker, Config};
use bytes::Bytes;
use client::{connect_packet, Client};
use mqtt::{Packet, Properties, ProtocolVersion::*, QoS, ReasonCode, SubscriptionOptions, Will};

async fn start(dir: &Path) -> Broker {
    let config = Config {
        data_dir: dir.to_path_buf(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        dev: true,
        ..Config::default()
    };
    Broker::start(config, Arc::new(Metrics::default()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_0_1_2_are_delivered_on_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    for version in [V311, V5] {
        let (mut sub, ack) = Client::connect(b.local_addr(), version, "sub", true).await;
        assert_eq!(ack.code, ReasonCode::SUCCESS);
        assert_eq!(
            sub.subscribe("t/+", QoS::ExactlyOnce).await,
            vec![ReasonCode::GRANTED_QOS_2]
        );
        let (mut publ, _) = Client::connect(b.local_addr(), version, "pub", true).await;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            publ.publish("t/a", format!("{qos:?}").as_bytes(), qos, false)
                .await;
            let p = sub.expect_publish().await;
            assert_eq!((p.topic.as_str(), p.qos), ("t/a", qos));
            assert_eq!(p.payload, format!("{qos:?}").as_bytes());
        }
        sub.disconnect().await;
        publ.disconnect().await;
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_message_is_sent_on_subscribe_and_cleared_by_empty_payload() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut publ, _) = Client::connect(b.local_addr(), V5, "pub", true).await;
    publ.publish("state/1", b"on", QoS::AtLeastOnce, true).await;
    let (mut sub, _) = Client::connect(b.local_addr(), V5, "sub", true).await;
    sub.subscribe("state/#", QoS::AtLeastOnce).await;
    let p = sub.expect_publish().await;
    assert!(p.retain);
    assert_eq!(p.payload, "on");
    publ.publish("state/1", b"", QoS::AtLeastOnce, true).await;
    let _live = sub.expect_publish().await;
    let (mut late, _) = Client::connect(b.local_addr(), V5, "late", true).await;
    late.subscribe("state/#", QoS::AtLeastOnce).await;
    assert!(
        late.recv_within(Duration::from_millis(300)).await.is_err(),
        "cleared retained message was sent"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_gets_messages_queued_while_offline() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut sub, _) = Client::connect(b.local_addr(), V311, "dev-7", false).await;
    sub.subscribe("c2d/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let (mut publ, _) = Client::connect(b.local_addr(), V311, "svc", true).await;
    for i in 0..50 {
        publ.publish("c2d/x", format!("{i}").as_bytes(), QoS::AtLeastOnce, false)
            .await;
    }
    let (mut sub, ack) = Client::connect(b.local_addr(), V311, "dev-7", false).await;
    assert!(ack.session_present);
    for i in 0..50 {
        assert_eq!(
            sub.expect_publish().await.payload,
            format!("{i}").as_bytes()
        );
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_takeover_disconnects_the_old_connection_with_0x8e() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut first, _) = Client::connect(b.local_addr(), V5, "same", true).await;
    let (_second, _) = Client::connect(b.local_addr(), V5, "same", true).await;
    match first.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.code, ReasonCode::SESSION_TAKEN_OVER),
        other => panic!("expected DISCONNECT 0x8E, got {other:?}"),
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_on_abrupt_loss_but_not_on_clean_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut sub, _) = Client::connect(b.local_addr(), V5, "watcher", true).await;
    sub.subscribe("will/#", QoS::AtLeastOnce).await;
    let with_will = |id: &str| {
        let mut c = connect_packet(V5, id, true);
        c.will = Some(Will {
            topic: format!("will/{id}"),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        });
        c
    };
    let (clean, _) = Client::connect_with(b.local_addr(), with_will("clean")).await;
    clean.disconnect().await;
    let (abrupt, _) = Client::connect_with(b.local_addr(), with_will("abrupt")).await;
    drop(abrupt);
    let p = sub.expect_publish().await;
    assert_eq!(p.topic, "will/abrupt");
    assert!(sub.recv_within(Duration::from_millis(300)).await.is_err());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_splits_messages_between_members() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut a, _) = Client::connect(b.local_addr(), V5, "a", true).await;
    let (mut c, _) = Client::connect(b.local_addr(), V5, "c", true).await;
    a.subscribe("$share/g/jobs/#", QoS::AtLeastOnce).await;
    c.subscribe("$share/g/jobs/#", QoS::AtLeastOnce).await;
    let (mut publ, _) = Client::connect(b.local_addr(), V5, "p", true).await;
    for i in 0..20 {
        publ.publish("jobs/1", format!("{i}").as_bytes(), QoS::AtLeastOnce, false)
            .await;
    }
    let (mut got_a, mut got_c) = (0, 0);
    while got_a + got_c < 20 {
        tokio::select! {
            _ = a.expect_publish() => got_a += 1,
            _ = c.expect_publish() => got_c += 1,
        }
    }
    assert_eq!((got_a, got_c), (10, 10), "round robin between two members");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_properties_travel_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut sub, _) = Client::connect(b.local_addr(), V5, "sub", true).await;
    let props = Properties {
        subscription_identifiers: vec![42],
        ..Default::default()
    };
    sub.subscribe_with(
        "req/#",
        SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
        props,
    )
    .await;
    let (mut publ, _) = Client::connect(b.local_addr(), V5, "pub", true).await;
    let mut p = publ.publish_packet("req/1", b"{}", QoS::AtLeastOnce, false);
    p.properties.response_topic = Some("resp/1".into());
    p.properties.correlation_data = Some(Bytes::from_static(b"corr"));
    p.properties.content_type = Some("application/json".into());
    p.properties.payload_format_indicator = Some(1);
    p.properties.user_properties = vec![("k".into(), "v".into())];
    p.properties.message_expiry_interval = Some(60);
    publ.publish_done(p).await;
    let got = sub.expect_publish().await;
    assert_eq!(got.properties.response_topic.as_deref(), Some("resp/1"));
    assert_eq!(
        got.properties.correlation_data.as_deref(),
        Some(&b"corr"[..])
    );
    assert_eq!(
        got.properties.content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(got.properties.payload_format_indicator, Some(1));
    assert_eq!(
        got.properties.user_properties,
        vec![("k".to_string(), "v".to_string())]
    );
    assert_eq!(got.properties.subscription_identifiers, vec![42]);
    assert!(got
        .properties
        .message_expiry_interval
        .is_some_and(|e| e <= 60));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceeding_receive_maximum_is_disconnect_0x93() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut c, ack) = Client::connect(b.local_addr(), V5, "greedy", true).await;
    let max = ack.properties.receive_maximum.unwrap();
    for _ in 0..=max {
        let p = c.publish_packet("t", b"x", QoS::ExactlyOnce, false);
        c.send(&Packet::Publish(p)).await;
    }
    loop {
        match c.recv().await {
            Some(Packet::PubRec(_)) => continue,
            Some(Packet::Disconnect(d)) => {
                assert_eq!(d.code, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
                break;
            }
            other => panic!("expected DISCONNECT 0x93, got {other:?}"),
        }
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_client_is_refused_without_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().into(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    let b = Broker::start(config, Arc::new(Metrics::default()))
        .await
        .unwrap();
    let (_, ack) = Client::connect(b.local_addr(), V5, "x", true).await;
    assert_eq!(ack.code, ReasonCode::NOT_AUTHORIZED);
    let (_, ack) = Client::connect(b.local_addr(), V311, "x", true).await;
    assert_eq!(ack.code, ReasonCode::NOT_AUTHORIZED); // return code 5 on the wire
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_queues_and_retained_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut sub, _) = Client::connect(b.local_addr(), V311, "durable", false).await;
    sub.subscribe("d/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let (mut publ, _) = Client::connect(b.local_addr(), V311, "p", true).await;
    for i in 0..100 {
        publ.publish("d/x", format!("{i}").as_bytes(), QoS::AtLeastOnce, false)
            .await;
    }
    // QoS 1: its PUBACK is the promise that it is durable (a QoS 0 publish may still
    // be in the connection task when shutdown starts).
    publ.publish("d/state", b"retained", QoS::AtLeastOnce, true)
        .await;
    drop(publ);
    b.shutdown().await;

    let b = start(dir.path()).await;
    let (mut sub, ack) = Client::connect(b.local_addr(), V311, "durable", false).await;
    assert!(ack.session_present, "session recovered from the log");
    for i in 0..100 {
        assert_eq!(
            sub.expect_publish().await.payload,
            format!("{i}").as_bytes()
        );
    }
    let (mut other, _) = Client::connect(b.local_addr(), V311, "o", true).await;
    other.subscribe("d/state", QoS::AtMostOnce).await;
    assert_eq!(other.expect_publish().await.payload, "retained");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_exactly_the_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let start_small = || async {
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dev: true,
            ..Config::default()
        };
        config.log.compact_bytes = 16 * 1024;
        config.log.segment_bytes = 8 * 1024;
        Broker::start(config, Arc::new(Metrics::default()))
            .await
            .unwrap()
    };
    let b = start_small().await;
    let (sub, _) = Client::connect(b.local_addr(), V5, "keeper", false).await;
    let expiry = Properties {
        session_expiry_interval: Some(3600),
        ..Default::default()
    };
    let mut c = connect_packet(V5, "keeper", false);
    c.properties = expiry;
    sub.disconnect().await;
    let (mut sub, _) = Client::connect_with(b.local_addr(), c.clone()).await;
    sub.subscribe("k/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let (mut publ, _) = Client::connect(b.local_addr(), V5, "p", true).await;
    // 600 messages (~100 KiB of log): several compactions while the session is offline.
    for i in 0..600 {
        publ.publish(
            "k/x",
            format!("{i:0100}").as_bytes(),
            QoS::AtLeastOnce,
            false,
        )
        .await;
    }
    for v in ["a", "b", ""] {
        publ.publish("k/retained", v.as_bytes(), QoS::AtLeastOnce, true)
            .await;
    }
    publ.publish("k/kept", b"kept", QoS::AtLeastOnce, true)
        .await;
    // Take the first 300 and acknowledge them, then restart.
    let (mut sub, _) = Client::connect_with(b.local_addr(), c.clone()).await;
    for i in 0..300 {
        assert_eq!(
            sub.expect_publish().await.payload,
            format!("{i:0100}").as_bytes()
        );
    }
    sub.disconnect().await;
    drop(publ);
    // Compaction runs once the router has seen enough acknowledgements and then
    // writes its snapshot in the background; on a loaded machine that can trail the
    // client by a while, so wait for it (bounded) rather than race it.
    let names = || -> Vec<String> {
        std::fs::read_dir(dir.path().join("log"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !names().iter().any(|n| n.ends_with(".snap")) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.shutdown().await;
    // The snapshot replaced the segments it covered: the first one is gone.
    let names = names();
    assert!(
        names.iter().any(|n| n.ends_with(".snap")),
        "no snapshot: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "00000000000000000000.seg"),
        "compaction did not remove old segments: {names:?}"
    );

    let b = start_small().await;
    let (mut sub, ack) = Client::connect_with(b.local_addr(), c).await;
    assert!(ack.session_present);
    // The rest of the queue, in order; then the retained messages that were still
    // pending for the session (b, the clear, kept) — never the acknowledged ones.
    let first = sub.expect_publish().await;
    let n: usize = std::str::from_utf8(&first.payload)
        .unwrap()
        .parse()
        .unwrap();
    // Acknowledgements still in flight at shutdown may be lost (duplicates are allowed
    // at QoS 1); an unacknowledged message never is.
    assert!(n <= 300, "message {n} came first: 300..{n} were lost");
    for i in n + 1..600 {
        assert_eq!(
            sub.expect_publish().await.payload,
            format!("{i:0100}").as_bytes()
        );
    }
    let (mut late, _) = Client::connect(b.local_addr(), V5, "late", true).await;
    late.subscribe("k/+", QoS::AtLeastOnce).await;
    let retained = late.expect_publish().await;
    assert_eq!(
        (retained.topic.as_str(), &retained.payload[..]),
        ("k/kept", &b"kept"[..])
    );
    assert!(
        late.recv_within(Duration::from_millis(300)).await.is_err(),
        "a cleared retained message came back"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_disconnected_after_one_and_a_half_keep_alives_with_its_will() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let (mut watcher, _) = Client::connect(b.local_addr(), V5, "watcher", true).await;
    watcher.subscribe("lost/#", QoS::AtLeastOnce).await;
    let mut c = connect_packet(V5, "sleepy", true);
    c.keep_alive = 1;
    c.will = Some(Will {
        topic: "lost/sleepy".into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    });
    let started = std::time::Instant::now();
    let (mut sleepy, _) = Client::connect_with(b.local_addr(), c).await;
    match sleepy.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.code, ReasonCode::KEEP_ALIVE_TIMEOUT),
        other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "closed after {waited:?}, before 1.5 x keep-alive"
    );
    assert!(
        waited < Duration::from_millis(3500),
        "closed only after {waited:?}"
    );
    assert_eq!(watcher.expect_publish().await.topic, "lost/sleepy");
    b.shutdown().await;
}
