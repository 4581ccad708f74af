//! The in-process service link: consumed and tapped publishes, targeted sends through
//! the client's own subscriptions, delivery receipts, presence events with causes, and
//! administrative disconnects.
#![allow(clippy::unwrap_used, missing_docs)]

mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use broker::service::{DisconnectCause, SendOutcome, ServiceEvent, ServiceHandle, ServiceSpec};
use broker::{metrics::Metrics, Broker, Config};
use bytes::Bytes;
use client::{Client, TIMEOUT};
use mqtt::{Packet, Properties, ProtocolVersion::*, Publish, QoS, ReasonCode};
use tokio::sync::mpsc::Receiver;

async fn start(dir: &std::path::Path) -> (Broker, ServiceHandle, Receiver<ServiceEvent>) {
    start_holding(dir, false).await
}

async fn start_holding(
    dir: &std::path::Path,
    hold_taps: bool,
) -> (Broker, ServiceHandle, Receiver<ServiceEvent>) {
    let config = Config {
        data_dir: dir.to_path_buf(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        dev: true,
        ..Config::default()
    };
    let spec = ServiceSpec {
        consume: vec!["$iothub/#".into()],
        tap: vec!["devices/+/messages/events/#".into()],
        hold_taps,
    };
    Broker::start_with_service(config, Arc::new(Metrics::default()), spec)
        .await
        .unwrap()
}

/// Next event that `pick` accepts, skipping others.
async fn next<T>(rx: &mut Receiver<ServiceEvent>, pick: impl Fn(ServiceEvent) -> Option<T>) -> T {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(t) = pick(rx.recv().await.unwrap()) {
                return t;
            }
        }
    })
    .await
    .unwrap()
}

fn publish(topic: &str, payload: &'static [u8], qos: QoS) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from_static(payload),
    }
}

#[tokio::test]
async fn consumed_topics_reach_only_the_service_and_tapped_ones_both() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _handle, mut events) = start(dir.path()).await;
    let addr = broker.local_addr();
    let (mut spy, _) = Client::connect(addr, V5, "spy", true).await;
    spy.subscribe("#", QoS::AtLeastOnce).await;
    spy.subscribe("$iothub/#", QoS::AtLeastOnce).await;
    let (mut dev, _) = Client::connect(addr, V311, "dev1", true).await;
    let connected = next(&mut events, |e| match e {
        ServiceEvent::Connected { client_id, .. } if &*client_id == "dev1" => Some(()),
        _ => None,
    });
    connected.await;

    dev.publish("$iothub/twin/GET/?$rid=1", b"", QoS::AtLeastOnce, false)
        .await;
    let got = next(&mut events, |e| match e {
        ServiceEvent::Publish(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(&*got.client_id, "dev1");
    assert_eq!(&*got.topic, "$iothub/twin/GET/?$rid=1");

    dev.publish(
        "devices/dev1/messages/events/",
        b"t",
        QoS::AtLeastOnce,
        false,
    )
    .await;
    let tapped = next(&mut events, |e| match e {
        ServiceEvent::Publish(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(&tapped.payload[..], b"t");
    // The spy sees the telemetry but never the consumed request.
    let p = spy.expect_publish().await;
    assert_eq!(p.topic, "devices/dev1/messages/events/");
    assert!(spy.recv_within(Duration::from_millis(300)).await.is_err());
}

/// Publishes one QoS 1 telemetry message as `dev` and returns the service's hold on its
/// acknowledgement.
async fn held_tap(dev: &mut Client, events: &mut Receiver<ServiceEvent>) -> broker::service::Hold {
    let p = dev.publish_packet(
        "devices/dev1/messages/events/",
        b"t",
        QoS::AtLeastOnce,
        false,
    );
    dev.send(&Packet::Publish(p)).await;
    let tapped = next(events, |e| match e {
        ServiceEvent::Publish(p) => Some(p),
        _ => None,
    })
    .await;
    tapped.hold.clone().expect("a held tap")
}

/// With `hold_taps`, a tapped QoS 1 publish is acknowledged only once the service let
/// go of its copy; untapped ones as usual.
#[tokio::test]
async fn held_taps_are_acknowledged_when_the_service_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _handle, mut events) = start_holding(dir.path(), true).await;
    let (mut dev, _) = Client::connect(broker.local_addr(), V5, "dev1", true).await;
    dev.publish("other/topic", b"x", QoS::AtLeastOnce, false)
        .await;

    let hold = held_tap(&mut dev, &mut events).await;
    assert!(
        dev.recv_within(Duration::from_millis(300)).await.is_err(),
        "PUBACK before the service let go"
    );
    drop(hold);
    match dev.recv_within(TIMEOUT).await {
        Ok(Some(Packet::PubAck(_))) => {}
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// A service that could not take a held publish refuses it: MQTT 5 publishers get the
/// reason code in PUBACK; 3.1.1 ones, whose PUBACK cannot say no, lose the connection
/// without an acknowledgement (so they publish again), never a plain success.
#[tokio::test]
async fn refused_held_taps_are_never_acknowledged_as_taken() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _handle, mut events) = start_holding(dir.path(), true).await;
    for version in [V5, V311] {
        let (mut dev, _) = Client::connect(broker.local_addr(), version, "dev1", true).await;
        let hold = held_tap(&mut dev, &mut events).await;
        hold.refuse(ReasonCode::UNSPECIFIED_ERROR);
        drop(hold);
        match (version, dev.recv_within(TIMEOUT).await) {
            (V5, Ok(Some(Packet::PubAck(ack)))) => {
                assert_eq!(ack.code, ReasonCode::UNSPECIFIED_ERROR)
            }
            (V311, Ok(None)) => {} // closed, no PUBACK
            (_, other) => panic!("{version:?}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn send_to_uses_the_clients_own_subscription_and_reports_the_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, handle, mut events) = start(dir.path()).await;
    let addr = broker.local_addr();
    let (mut a, _) = Client::connect(addr, V311, "a", true).await;
    let (mut b, _) = Client::connect(addr, V311, "b", true).await;
    a.subscribe("$iothub/twin/res/#", QoS::AtLeastOnce).await;
    b.subscribe("$iothub/twin/res/#", QoS::AtLeastOnce).await;

    let p = publish("$iothub/twin/res/200/?$rid=7", b"{}", QoS::AtLeastOnce);
    let outcome = handle.send_to("a", p, Some(42)).await.unwrap();
    assert_eq!(outcome, SendOutcome::Accepted);
    let got = a.expect_publish().await;
    assert_eq!(got.topic, "$iothub/twin/res/200/?$rid=7");
    assert_eq!(got.qos, QoS::AtLeastOnce);
    let receipt = next(&mut events, |e| match e {
        ServiceEvent::Delivered { receipt } => Some(receipt),
        _ => None,
    })
    .await;
    assert_eq!(receipt, 42);
    assert!(
        b.recv_within(Duration::from_millis(300)).await.is_err(),
        "b saw a's answer"
    );

    let p = publish("devices/b/messages/devicebound/", b"x", QoS::AtLeastOnce);
    let outcome = handle.send_to("b", p.clone(), None).await.unwrap();
    assert_eq!(outcome, SendOutcome::NotSubscribed);
    let outcome = handle.send_to("nobody", p, None).await.unwrap();
    assert_eq!(outcome, SendOutcome::NotConnected);
}

async fn disconnected(rx: &mut Receiver<ServiceEvent>) -> (Arc<str>, DisconnectCause) {
    next(rx, |e| match e {
        ServiceEvent::Disconnected { client_id, cause } => Some((client_id, cause)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn presence_events_carry_the_cause_and_admin_disconnect_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, handle, mut events) = start(dir.path()).await;
    let addr = broker.local_addr();

    let (c, _) = Client::connect(addr, V5, "d1", true).await;
    c.disconnect().await;
    let (id, cause) = disconnected(&mut events).await;
    assert_eq!(
        (&*id, cause),
        ("d1", DisconnectCause::Client { will: false })
    );

    let (c, _) = Client::connect(addr, V5, "d2", true).await;
    drop(c);
    let (_, cause) = disconnected(&mut events).await;
    assert_eq!(cause, DisconnectCause::NetworkLost);

    let (_old, _) = Client::connect(addr, V5, "d3", true).await;
    let (mut new, _) = Client::connect(addr, V5, "d3", true).await;
    let (_, cause) = disconnected(&mut events).await;
    assert_eq!(
        cause,
        DisconnectCause::Closed(ReasonCode::SESSION_TAKEN_OVER)
    );

    handle
        .disconnect("d3", ReasonCode::NOT_AUTHORIZED)
        .await
        .unwrap();
    match new.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    let (_, cause) = disconnected(&mut events).await;
    assert_eq!(cause, DisconnectCause::Closed(ReasonCode::NOT_AUTHORIZED));
}
