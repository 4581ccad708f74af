//! Telemetry reaches the data pipeline's channel attributed to the connection that sent
//! it, with its property bag decoded, and is acknowledged only once the pipeline let go
//! of it; a publish on another device's topic does not reach it.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use broker::{metrics::Metrics, Broker, Config};
use bytes::{Bytes, BytesMut};
use hub::service::{broker_spec, Hub, HubConfig};
use mqtt::{Connect, Packet, Properties, ProtocolVersion, Publish, QoS};
use store::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send(stream: &mut TcpStream, packet: &Packet) {
    let mut buf = BytesMut::new();
    mqtt::encode(packet, ProtocolVersion::V311, &mut buf).unwrap();
    stream.write_all(&buf).await.unwrap();
}

async fn recv(stream: &mut TcpStream, buf: &mut BytesMut) -> Packet {
    loop {
        if let Some(p) = mqtt::decode(buf, Some(ProtocolVersion::V311), 1 << 20).unwrap() {
            return p;
        }
        assert!(stream.read_buf(buf).await.unwrap() > 0, "connection closed");
    }
}

fn publish(topic: &str, id: u16, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic.into(),
        packet_id: Some(id),
        properties: Properties::default(),
        payload: Bytes::from_static(payload),
    })
}

/// A broker with the hub as its service, and a device `client_id` connected to it
/// (MQTT 3.1.1): the hub, the broker (kept alive), the device's socket and read buffer.
async fn hub_with_device(
    dir: &std::path::Path,
    config: HubConfig,
    client_id: &str,
) -> (Hub, Broker, TcpStream, BytesMut) {
    let broker_config = Config {
        data_dir: dir.to_path_buf(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        dev: true,
        ..Config::default()
    };
    let (broker, service, events) =
        Broker::start_with_service(broker_config, Arc::new(Metrics::default()), broker_spec())
            .await
            .unwrap();
    let store = SqliteStore::open_in_memory().unwrap();
    let hub = Hub::start(Arc::new(store), service, events, config);
    let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
    let connect = Connect {
        protocol: ProtocolVersion::V311,
        clean_start: true,
        keep_alive: 30,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    send(&mut stream, &Packet::Connect(Box::new(connect))).await;
    let mut buf = BytesMut::new();
    assert!(matches!(
        recv(&mut stream, &mut buf).await,
        Packet::ConnAck(_)
    ));
    (hub, broker, stream, buf)
}

/// A consumer announced in the config (the pipeline, still opening its store) gets
/// the telemetry published before it subscribed, and those publishes are not
/// acknowledged until it has them: nothing is acknowledged unstored during start-up.
#[tokio::test]
async fn telemetry_before_the_consumer_subscribes_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = HubConfig {
        telemetry_consumer: Some(16),
        ..HubConfig::default()
    };
    let (hub, _broker, mut stream, mut buf) = hub_with_device(dir.path(), config, "m-1").await;
    send(
        &mut stream,
        &publish("devices/m-1/messages/events/", 1, b"early"),
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), recv(&mut stream, &mut buf))
            .await
            .is_err(),
        "PUBACK while nobody had the message"
    );
    let mut telemetry = hub.telemetry();
    let got = tokio::time::timeout(Duration::from_secs(10), telemetry.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.payload[..], b"early");
    drop(got);
    assert!(matches!(recv(&mut stream, &mut buf).await, Packet::PubAck(a) if a.packet_id == 1));
}

#[tokio::test]
async fn telemetry_is_attributed_to_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _broker, mut stream, mut buf) =
        hub_with_device(dir.path(), HubConfig::default(), "motor-17").await;
    let mut telemetry = hub.telemetry();

    send(
        &mut stream,
        &publish("devices/someone-else/messages/events/", 1, b"spoof"),
    )
    .await;
    let topic = "devices/motor-17/messages/events/%24.ct=application%2Fcbor&kind=features";
    send(&mut stream, &publish(topic, 2, b"\xa1\x01\x02")).await;
    // The spoofed publish is acknowledged at once (nobody holds it); the telemetry only
    // once the pipeline's copy is dropped.
    assert!(matches!(recv(&mut stream, &mut buf).await, Packet::PubAck(a) if a.packet_id == 1));

    let got = tokio::time::timeout(Duration::from_secs(10), telemetry.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(got.hold.is_some(), "telemetry is held for the pipeline");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), recv(&mut stream, &mut buf))
            .await
            .is_err(),
        "PUBACK before the pipeline let go"
    );
    let mut got = got;
    drop(got.hold.take());
    assert!(matches!(recv(&mut stream, &mut buf).await, Packet::PubAck(a) if a.packet_id == 2));
    assert_eq!(&*got.device_id, "motor-17");
    assert_eq!(&got.payload[..], b"\xa1\x01\x02");
    assert_eq!(
        got.properties,
        vec![
            ("$.ct".to_string(), "application/cbor".to_string()),
            ("kind".to_string(), "features".to_string())
        ]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), telemetry.recv())
            .await
            .is_err(),
        "the spoofed publish reached the pipeline"
    );
}
