//! MQTT 3.1.1 over TLS for the load generator: open a TCP connection from a chosen
//! loopback source address, do a full TLS handshake with rustls (ring provider, no
//! session resumption), send CONNECT and wait for CONNACK; then, for provisioning,
//! exchange a few packets.
//!
//! Every wait has a deadline ([`STEP`]); nothing read from the network is unwrapped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use mqtt::{
    ConnAck, Connect, Disconnect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe,
    Subscription, SubscriptionOptions,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Both brokers are spoken to in MQTT 3.1.1.
const VERSION: ProtocolVersion = ProtocolVersion::V311;
/// Largest packet accepted from a broker.
const MAX_PACKET: usize = 64 * 1024;
/// Deadline of every single step (TCP connect, handshake, each answer).
pub(crate) const STEP: Duration = Duration::from_secs(30);

/// The `i`-th loopback source address: 127.0.0.2 to 127.0.0.201, so no single source
/// address runs out of ephemeral ports.
pub(crate) fn source_ip(i: usize) -> IpAddr {
    // i % 200 < 200, so the octet is 2..=201.
    let octet = u8::try_from(2 + i % 200).unwrap_or(2);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet))
}

/// A CONNECT with a clean session, no keep-alive, and optional credentials.
pub(crate) fn connect_packet(
    client_id: &str,
    username: Option<String>,
    password: Option<String>,
) -> Connect {
    Connect {
        protocol: VERSION,
        clean_start: true,
        keep_alive: 0,
        client_id: client_id.to_owned(),
        will: None,
        username,
        password: password.map(Bytes::from),
        properties: Default::default(),
    }
}

/// An MQTT connection over TLS whose CONNECT was accepted.
pub(crate) struct Session {
    stream: TlsStream<TcpStream>,
    buf: BytesMut,
}

/// Connects from `source` to `addr`, handshakes with `config` (server name 127.0.0.1),
/// sends `connect` and waits for a successful CONNACK.
pub(crate) async fn open(
    addr: SocketAddr,
    source: IpAddr,
    config: Arc<rustls::ClientConfig>,
    connect: Connect,
) -> Result<Session> {
    let socket = TcpSocket::new_v4().context("cannot create a socket")?;
    // Lets bind(ip, 0) reuse ports whose earlier connections are in TIME_WAIT.
    socket
        .set_reuseaddr(true)
        .context("cannot set SO_REUSEADDR")?;
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("cannot bind {source}"))?;
    let tcp = tokio::time::timeout(STEP, socket.connect(addr))
        .await
        .context("TCP connect timed out")?
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = tokio::time::timeout(STEP, TlsConnector::from(config).connect(name, tcp))
        .await
        .context("TLS handshake timed out")?
        .context("TLS handshake failed")?;
    let mut session = Session {
        stream,
        buf: BytesMut::with_capacity(1024),
    };
    session.send(&Packet::Connect(Box::new(connect))).await?;
    match session.next().await? {
        Packet::ConnAck(ConnAck { code, .. }) if !code.is_error() => Ok(session),
        Packet::ConnAck(ConnAck { code, .. }) => {
            bail!("CONNECT refused with return code {:#04x}", code.0)
        }
        other => bail!("expected CONNACK, got {}", other.name()),
    }
}

impl Session {
    /// Encodes and sends one packet.
    pub(crate) async fn send(&mut self, packet: &Packet) -> Result<()> {
        let mut out = BytesMut::new();
        mqtt::encode(packet, VERSION, &mut out)
            .with_context(|| format!("cannot encode {}", packet.name()))?;
        tokio::time::timeout(STEP, async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await
        })
        .await
        .context("write timed out")?
        .context("cannot write to the broker")
    }

    /// The next packet, within [`STEP`]; a closed connection is an error.
    pub(crate) async fn next(&mut self) -> Result<Packet> {
        tokio::time::timeout(STEP, self.read_packet())
            .await
            .context("no packet from the broker in time")?
    }

    async fn read_packet(&mut self) -> Result<Packet> {
        loop {
            if let Some(packet) = mqtt::decode(&mut self.buf, Some(VERSION), MAX_PACKET)
                .context("broker sent a packet we cannot decode")?
            {
                return Ok(packet);
            }
            self.buf.reserve(4096);
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .context("cannot read from the broker")?;
            if n == 0 {
                bail!("broker closed the connection");
            }
        }
    }

    /// Subscribes to one filter at QoS 0 and waits for a granting SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str) -> Result<()> {
        let subscribe = Subscribe {
            packet_id: 1,
            subscriptions: vec![Subscription {
                filter: filter.to_owned(),
                options: SubscriptionOptions {
                    qos: QoS::AtMostOnce,
                    ..Default::default()
                },
            }],
            properties: Default::default(),
        };
        self.send(&Packet::Subscribe(subscribe)).await?;
        match self.next().await? {
            Packet::SubAck(ack) => match ack.codes.first() {
                Some(code) if !code.is_error() => Ok(()),
                Some(code) => bail!("SUBSCRIBE {filter} refused with {:#04x}", code.0),
                None => bail!("SUBACK without a return code"),
            },
            other => bail!("expected SUBACK, got {}", other.name()),
        }
    }

    /// Publishes at QoS 0.
    pub(crate) async fn publish(&mut self, topic: &str, payload: Vec<u8>) -> Result<()> {
        let publish = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.to_owned(),
            packet_id: None,
            properties: Default::default(),
            payload: Bytes::from(payload),
        };
        self.send(&Packet::Publish(publish)).await
    }

    /// The next PUBLISH (other packets are skipped), within [`STEP`] each.
    pub(crate) async fn next_publish(&mut self) -> Result<Publish> {
        loop {
            if let Packet::Publish(publish) = self.next().await? {
                return Ok(publish);
            }
        }
    }

    /// Sends DISCONNECT and closes the TLS session (close_notify) without waiting for
    /// the broker.
    pub(crate) async fn disconnect(mut self) -> Result<()> {
        let disconnect = Disconnect {
            code: ReasonCode(0),
            properties: Default::default(),
        };
        self.send(&Packet::Disconnect(disconnect)).await?;
        let _ = tokio::time::timeout(STEP, self.stream.shutdown()).await;
        Ok(())
    }

    /// Gives up the TLS state but keeps the TCP connection open, so thousands of
    /// connected devices cost the load generator only a socket each.
    pub(crate) fn into_tcp(self) -> TcpStream {
        self.stream.into_inner().0
    }
}
