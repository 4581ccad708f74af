//! MQTT over TLS, in-process, with a rustls client: the local CA's certificate verifies
//! for `localhost` and 127.0.0.1, TLS and plain clients share one router, a client that
//! is not speaking TLS is dropped and counted, and a reload changes the certificate of
//! new connections without disturbing open ones. Interoperability with OpenSSL-based
//! clients (mosquitto, `openssl s_client`) is tested in the `bosun` crate.
#![allow(clippy::unwrap_used, missing_docs)]

mod client;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::config::TlsConfig;
use broker::{metrics::Metrics, Broker, Config};
use bytes::BytesMut;
use client::{connect_packet, Client, TIMEOUT};
use mqtt::{
    Packet, ProtocolVersion, QoS, ReasonCode, Subscribe, Subscription, SubscriptionOptions,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

async fn start(dir: &Path) -> Broker {
    let config = Config {
        data_dir: dir.to_path_buf(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        dev: true,
        tls: Some(TlsConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..TlsConfig::default()
        }),
        ..Config::default()
    };
    Broker::start(config, Arc::new(Metrics::default()))
        .await
        .unwrap()
}

/// A client config trusting only the broker's local CA.
fn trusting_local_ca(data_dir: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(data_dir.join("tls/ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

struct TlsClient {
    stream: TlsStream<TcpStream>,
    buf: BytesMut,
}

impl TlsClient {
    async fn open(addr: SocketAddr, name: &str, config: Arc<rustls::ClientConfig>) -> TlsClient {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap();
        TlsClient {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// The leaf certificate the server presented.
    fn server_cert(&self) -> Vec<u8> {
        let (_, conn) = self.stream.get_ref();
        conn.peer_certificates().unwrap()[0].to_vec()
    }

    async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        mqtt::encode(packet, ProtocolVersion::V5, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    async fn recv(&mut self) -> Packet {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(p) =
                    mqtt::decode(&mut self.buf, Some(ProtocolVersion::V5), usize::MAX).unwrap()
                {
                    return p;
                }
                let n = self.stream.read_buf(&mut self.buf).await.unwrap();
                assert!(n > 0, "broker closed the TLS connection");
            }
        })
        .await
        .expect("no packet within the deadline")
    }

    async fn connect(&mut self, id: &str) {
        let connect = connect_packet(ProtocolVersion::V5, id, true);
        self.send(&Packet::Connect(Box::new(connect))).await;
        match self.recv().await {
            Packet::ConnAck(ack) => assert_eq!(ack.code, ReasonCode::SUCCESS),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn subscribe(&mut self, filter: &str) {
        let s = Subscribe {
            packet_id: 1,
            subscriptions: vec![Subscription {
                filter: filter.into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            }],
            properties: Default::default(),
        };
        self.send(&Packet::Subscribe(s)).await;
        assert!(matches!(self.recv().await, Packet::SubAck(_)));
    }

    async fn expect_publish(&mut self, payload: &[u8]) {
        match self.recv().await {
            Packet::Publish(p) => {
                assert_eq!(&p.payload[..], payload);
                if let Some(id) = p.packet_id {
                    self.send(&Packet::PubAck(mqtt::Ack::success(id))).await;
                }
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_plain_clients_share_one_router() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let tls_addr = b.tls_local_addr().unwrap();
    assert_ne!(tls_addr.port(), 0);
    let config = trusting_local_ca(dir.path());
    // The generated certificate names both ways a local client reaches the broker.
    let mut by_ip = TlsClient::open(tls_addr, "127.0.0.1", config.clone()).await;
    by_ip.connect("tls-sub").await;
    by_ip.subscribe("t/#").await;
    let mut by_name = TlsClient::open(tls_addr, "localhost", config).await;
    by_name.connect("tls-sub-2").await;
    by_name.subscribe("t/#").await;

    let (mut plain, _) = Client::connect(b.local_addr(), ProtocolVersion::V5, "plain", true).await;
    plain
        .publish("t/1", b"over tcp", QoS::AtLeastOnce, false)
        .await;
    by_ip.expect_publish(b"over tcp").await;
    by_name.expect_publish(b"over tcp").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_not_speaking_tls_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let tls_addr = b.tls_local_addr().unwrap();
    // Plain MQTT CONNECT bytes where a ClientHello belongs.
    let mut raw = TcpStream::connect(tls_addr).await.unwrap();
    let mut connect = BytesMut::new();
    let packet = Packet::Connect(Box::new(connect_packet(ProtocolVersion::V311, "x", true)));
    mqtt::encode(&packet, ProtocolVersion::V311, &mut connect).unwrap();
    raw.write_all(&connect).await.unwrap();
    let mut rest = Vec::new();
    // The broker closes; whatever it sent first (a TLS alert) is not MQTT.
    let read = tokio::time::timeout(TIMEOUT, raw.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection should be closed");
    let deadline = Instant::now() + TIMEOUT;
    while b.metrics().tls_handshake_failures.get() == 0 {
        assert!(Instant::now() < deadline, "failure not counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The listener is still fine.
    let mut good = TlsClient::open(tls_addr, "localhost", trusting_local_ca(dir.path())).await;
    good.connect("good").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_the_certificate_of_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let tls_addr = b.tls_local_addr().unwrap();
    let config = trusting_local_ca(dir.path());
    let mut old = TlsClient::open(tls_addr, "localhost", config.clone()).await;
    old.connect("old").await;
    old.subscribe("r/#").await;
    let before = old.server_cert();

    // Without a server certificate the local CA issues a new one (same CA).
    std::fs::remove_file(dir.path().join("tls/server.pem")).unwrap();
    b.reload_tls().unwrap();
    let mut new = TlsClient::open(tls_addr, "localhost", config).await;
    new.connect("new").await;
    assert_ne!(
        new.server_cert(),
        before,
        "new connections get the new certificate"
    );

    let (mut plain, _) = Client::connect(b.local_addr(), ProtocolVersion::V5, "p", true).await;
    plain
        .publish("r/1", b"still here", QoS::AtLeastOnce, false)
        .await;
    old.expect_publish(b"still here").await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_key_that_does_not_match_fails_the_start_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    // Two local CAs give two unrelated server certificates.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        start(d).await.shutdown().await;
    }
    let config = Config {
        data_dir: dir.path().join("c"),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: Some(TlsConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_file: Some(a.join("tls/server.pem")),
            key_file: Some(b.join("tls/server.key")),
            subject_alt_names: Vec::new(),
        }),
        ..Config::default()
    };
    let err = match Broker::start(config, Arc::new(Metrics::default())).await {
        Ok(_) => panic!("a mismatched key must not start"),
        Err(e) => e,
    };
    let text = format!("{}", std::error::Error::source(&err).unwrap());
    assert!(
        text.contains("a/tls/server.pem") && text.contains("b/tls/server.key"),
        "{text}"
    );
}
