//! The authentication and authorization hooks, driven in-process with a codec-level
//! client and a small test policy: who is admitted and with which code, what a denied
//! PUBLISH or SUBSCRIBE gets on each protocol version, topic aliases and shared
//! subscriptions checked on the real topic and inner filter, the denial limit, the Last
//! Will, credentials that expire while connected, and the metrics.
#![allow(clippy::unwrap_used, missing_docs)]

mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use broker::auth::{
    AuthFuture, Authenticator, Authorizer, Credentials, Identity, IdentityKind, Refusal,
};
use broker::{metrics::Metrics, Broker, Config};
use bytes::Bytes;
use client::{connect_packet, Client};
use mqtt::{
    Connect, Packet, Properties, ProtocolVersion::*, Publish, QoS, ReasonCode, Subscribe,
    Subscription, SubscriptionOptions, Will,
};

/// Passwords: `good` admits a device named by the client id, `expiring` one whose
/// credentials end in 1.5 s, `reader` a read-only service; anything else is refused.
struct TestAuth;

impl Authenticator for TestAuth {
    fn authenticate<'a>(&'a self, c: &'a Credentials<'a>) -> AuthFuture<'a> {
        Box::pin(async move {
            let device = |expires_at| Identity {
                id: Arc::from(c.client_id),
                kind: IdentityKind::Device,
                group: None,
                expires_at,
            };
            match c.password {
                Some(b"good") => Ok(device(None)),
                Some(b"expiring") => Ok(device(Some(
                    SystemTime::now() + Duration::from_millis(1500),
                ))),
                Some(b"expired") => Ok(device(Some(SystemTime::now() - Duration::from_secs(1)))),
                Some(b"reader") => Ok(Identity::new(
                    "svc",
                    IdentityKind::Service { may_publish: false },
                )),
                Some(b"disabled") => Err(Refusal::banned("device disabled")),
                None => Err(Refusal::not_authorized("no credentials")),
                Some(_) => Err(Refusal::bad_credentials("bad signature")),
            }
        })
    }
}

/// Devices may use `own/{id}/…` only; others follow the built-in policy.
struct OwnTopics;

impl Authorizer for OwnTopics {
    fn may_publish(&self, identity: &Identity, topic: &str) -> bool {
        match identity.kind {
            IdentityKind::Device => topic.starts_with(&format!("own/{}/", identity.id)),
            _ => broker::auth::default_decision(identity, true),
        }
    }
    fn may_subscribe(&self, identity: &Identity, filter: &str) -> bool {
        match identity.kind {
            IdentityKind::Device => {
                let prefix = format!("own/{}/", identity.id);
                filter.starts_with(&prefix) && !filter.contains('+') && !filter.contains('#')
                    || filter == format!("{prefix}#")
            }
            _ => broker::auth::default_decision(identity, false),
        }
    }
}

async fn start(dir: &std::path::Path, dev: bool) -> (Broker, Arc<Metrics>) {
    let config = Config {
        data_dir: dir.to_path_buf(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        dev,
        authenticator: Some(Arc::new(TestAuth)),
        authorizer: Some(Arc::new(OwnTopics)),
        ..Config::default()
    };
    let metrics = Arc::new(Metrics::default());
    (
        Broker::start(config, metrics.clone()).await.unwrap(),
        metrics,
    )
}

fn with_password(version: mqtt::ProtocolVersion, id: &str, password: &str) -> Connect {
    Connect {
        username: Some(id.into()),
        password: Some(Bytes::copy_from_slice(password.as_bytes())),
        ..connect_packet(version, id, true)
    }
}

async fn device(addr: SocketAddr, version: mqtt::ProtocolVersion, id: &str) -> Client {
    let (c, ack) = Client::connect_with(addr, with_password(version, id, "good")).await;
    assert_eq!(ack.code, ReasonCode::SUCCESS);
    c
}

/// Sends a PUBLISH and returns the acknowledgement packet (QoS 1/2) or nothing.
async fn publish_raw(c: &mut Client, p: Publish) -> Option<Packet> {
    let qos = p.qos;
    c.send(&Packet::Publish(p)).await;
    match qos {
        QoS::AtMostOnce => None,
        _ => c.recv().await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_authenticators_code_on_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (b, metrics) = start(dir.path(), false).await;
    let addr = b.local_addr();
    for (password, v5, v311) in [
        (
            Some("bad"),
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        ),
        (
            Some("disabled"),
            ReasonCode::BANNED,
            ReasonCode::NOT_AUTHORIZED,
        ),
        (
            Some("expired"),
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        ),
        (None, ReasonCode::NOT_AUTHORIZED, ReasonCode::NOT_AUTHORIZED),
    ] {
        for (version, code) in [(V5, v5), (V311, v311)] {
            let connect = match password {
                Some(p) => with_password(version, "d", p),
                None => connect_packet(version, "d", true),
            };
            let (mut c, ack) = Client::connect_with(addr, connect).await;
            assert_eq!(ack.code, code, "{password:?} {version:?}");
            assert!(c.recv().await.is_none(), "closed after the refusal");
        }
    }
    assert_eq!(metrics.auth_refusals.get("bad signature"), 2);
    assert_eq!(metrics.auth_refusals.get("device disabled"), 2);
    assert_eq!(metrics.auth_refusals.get("token expired"), 2);
    let text = metrics.render();
    assert!(
        text.contains("bosun_auth_refusals_total{reason=\"no credentials\"} 2"),
        "{text}"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_admits_anonymous_loopback_clients_and_checks_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start(dir.path(), true).await;
    let addr = b.local_addr();
    // No credentials: anonymous and unrestricted, as before.
    let (mut anon, ack) = Client::connect(addr, V5, "anon", true).await;
    assert_eq!(ack.code, ReasonCode::SUCCESS);
    assert_eq!(
        anon.subscribe("#", QoS::AtLeastOnce).await,
        [ReasonCode::GRANTED_QOS_1]
    );
    // Credentials go to the authenticator even in dev mode.
    let (_, ack) = Client::connect_with(addr, with_password(V5, "d", "bad")).await;
    assert_eq!(ack.code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    let mut d = device(addr, V5, "d").await;
    assert_eq!(
        d.subscribe("#", QoS::AtLeastOnce).await,
        [ReasonCode::NOT_AUTHORIZED]
    );
    anon.disconnect().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_publishes_get_the_answers_each_version_allows() {
    let dir = tempfile::tempdir().unwrap();
    let (b, metrics) = start(dir.path(), false).await;
    let addr = b.local_addr();
    let mut watcher = device(addr, V5, "b").await;
    watcher.subscribe("own/b/#", QoS::AtLeastOnce).await;

    let mut v5 = device(addr, V5, "a").await;
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let p = v5.publish_packet("own/b/x", b"spoof", qos, false);
        match publish_raw(&mut v5, p).await {
            Some(Packet::PubAck(a) | Packet::PubRec(a)) => {
                assert_eq!(a.code, ReasonCode::NOT_AUTHORIZED, "{qos:?}")
            }
            other => panic!("{qos:?}: {other:?}"),
        }
    }
    let p = v5.publish_packet("own/b/x", b"spoof", QoS::AtMostOnce, false);
    publish_raw(&mut v5, p).await;
    // Allowed publishes still flow.
    v5.publish("own/a/x", b"mine", QoS::AtLeastOnce, false)
        .await;

    let mut v311 = device(addr, V311, "c").await;
    // 3.1.1 has no negative acknowledgement: acknowledged as usual, then dropped.
    v311.publish("own/b/x", b"spoof", QoS::AtLeastOnce, false)
        .await;
    v311.publish("own/b/x", b"spoof", QoS::ExactlyOnce, false)
        .await;

    assert!(
        watcher
            .recv_within(Duration::from_millis(300))
            .await
            .is_err(),
        "a denied publish was routed"
    );
    assert_eq!(metrics.acl_denied_publish.get(), 5);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_alias_is_checked_on_the_topic_it_stands_for() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start(dir.path(), false).await;
    let addr = b.local_addr();
    let mut watcher = device(addr, V5, "b").await;
    watcher.subscribe("own/b/#", QoS::AtLeastOnce).await;
    let mut a = device(addr, V5, "a").await;
    let aliased = |a: &mut Client, topic: &str| {
        let mut p = a.publish_packet(topic, b"x", QoS::AtLeastOnce, false);
        p.properties.topic_alias = Some(1);
        p
    };
    // Alias 1 set on an allowed topic, then re-pointed at B's topic, then used alone.
    let p = aliased(&mut a, "own/a/x");
    assert!(
        matches!(publish_raw(&mut a, p).await, Some(Packet::PubAck(x)) if x.code == ReasonCode::SUCCESS)
    );
    let p = aliased(&mut a, "own/b/x");
    assert!(
        matches!(publish_raw(&mut a, p).await, Some(Packet::PubAck(x)) if x.code == ReasonCode::NOT_AUTHORIZED)
    );
    let p = aliased(&mut a, "");
    assert!(
        matches!(publish_raw(&mut a, p).await, Some(Packet::PubAck(x)) if x.code == ReasonCode::NOT_AUTHORIZED)
    );
    assert!(watcher
        .recv_within(Duration::from_millis(300))
        .await
        .is_err());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_filters_fail_in_suback_and_shared_ones_are_judged_by_their_inner_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (b, metrics) = start(dir.path(), false).await;
    let addr = b.local_addr();
    for version in [V5, V311] {
        let mut a = device(addr, version, "a").await;
        let packet_id = a.id();
        let filters = [
            "own/a/x",
            "#",
            "$share/g/own/b/x",
            "$share/g/own/a/x",
            "own/+/x",
        ];
        let s = Subscribe {
            packet_id,
            subscriptions: filters
                .iter()
                .map(|f| Subscription {
                    filter: (*f).into(),
                    options: SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        ..Default::default()
                    },
                })
                .collect(),
            properties: Properties::default(),
        };
        a.send(&Packet::Subscribe(s)).await;
        let denied = if version == V5 {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::UNSPECIFIED_ERROR // 0x80 on the wire
        };
        match a.recv().await {
            Some(Packet::SubAck(ack)) => assert_eq!(
                ack.codes,
                [
                    ReasonCode::GRANTED_QOS_1,
                    denied,
                    denied,
                    ReasonCode::GRANTED_QOS_1,
                    denied
                ],
                "{version:?}"
            ),
            other => panic!("{other:?}"),
        }
        a.disconnect().await;
    }
    assert_eq!(metrics.acl_denied_subscribe.get(), 6);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenth_denial_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start(dir.path(), false).await;
    let mut a = device(b.local_addr(), V5, "a").await;
    for _ in 0..9 {
        assert_eq!(
            a.subscribe("#", QoS::AtMostOnce).await,
            [ReasonCode::NOT_AUTHORIZED]
        );
    }
    let p = a.publish_packet("own/b/x", b"x", QoS::AtMostOnce, false);
    a.send(&Packet::Publish(p)).await;
    match a.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    assert!(a.recv().await.is_none());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_on_another_devices_topic_is_refused_at_connect() {
    let dir = tempfile::tempdir().unwrap();
    let (b, metrics) = start(dir.path(), false).await;
    for (topic, code) in [
        ("own/b/x", ReasonCode::NOT_AUTHORIZED),
        ("own/a/x", ReasonCode::SUCCESS),
    ] {
        let connect = Connect {
            will: Some(Will {
                topic: topic.into(),
                payload: Bytes::from_static(b"bye"),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties::default(),
            }),
            ..with_password(V5, "a", "good")
        };
        let (_, ack) = Client::connect_with(b.local_addr(), connect).await;
        assert_eq!(ack.code, code, "{topic}");
    }
    assert_eq!(metrics.auth_refusals.get("will topic not authorized"), 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_ends_when_its_credentials_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start(dir.path(), false).await;
    let addr = b.local_addr();
    let (mut c, ack) = Client::connect_with(addr, with_password(V5, "a", "expiring")).await;
    assert_eq!(ack.code, ReasonCode::SUCCESS);
    let mut keeps = device(addr, V5, "k").await;
    let started = std::time::Instant::now();
    match c.recv().await {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(d.code, ReasonCode::NOT_AUTHORIZED);
            assert_eq!(d.properties.reason_string.as_deref(), Some("token expired"));
        }
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    // Not before the expiry, and at most one sweep (1 s) after it.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
    assert!(waited <= Duration::from_millis(3500), "{waited:?}");
    // Others are untouched.
    keeps
        .publish("own/k/x", b"x", QoS::AtLeastOnce, false)
        .await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_service_subscribes_but_cannot_publish() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start(dir.path(), false).await;
    let (mut svc, ack) =
        Client::connect_with(b.local_addr(), with_password(V5, "svc", "reader")).await;
    assert_eq!(ack.code, ReasonCode::SUCCESS);
    assert_eq!(
        svc.subscribe("#", QoS::AtLeastOnce).await,
        [ReasonCode::GRANTED_QOS_1]
    );
    let p = svc.publish_packet("any/topic", b"x", QoS::AtLeastOnce, false);
    assert!(
        matches!(publish_raw(&mut svc, p).await, Some(Packet::PubAck(x)) if x.code == ReasonCode::NOT_AUTHORIZED)
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_loses_subscriptions_it_may_no_longer_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = start(dir.path(), true).await;
    let addr = b.local_addr();
    // Made anonymously in dev mode with the device's client id...
    let mut connect = connect_packet(V5, "a", true);
    connect.properties.session_expiry_interval = Some(600);
    let (mut anon, _) = Client::connect_with(addr, connect).await;
    anon.subscribe("#", QoS::AtLeastOnce).await;
    anon.subscribe("own/a/#", QoS::AtLeastOnce).await;
    anon.disconnect().await;
    // ...then resumed by the authenticated device: `#` is gone, its own filter stays.
    let mut resume = with_password(V5, "a", "good");
    resume.clean_start = false;
    resume.properties.session_expiry_interval = Some(600);
    let (mut a, ack) = Client::connect_with(addr, resume).await;
    assert!(ack.session_present);
    let (mut other, _) = Client::connect(addr, V5, "pub", true).await;
    other
        .publish("elsewhere/x", b"no", QoS::AtLeastOnce, false)
        .await;
    other
        .publish("own/a/x", b"yes", QoS::AtLeastOnce, false)
        .await;
    let p = a.expect_publish().await;
    assert_eq!(p.topic, "own/a/x");
    b.shutdown().await;
}
