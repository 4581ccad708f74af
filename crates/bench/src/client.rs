//! A minimal async MQTT 3.1.1 client over the sans-IO codec of `bosun-mqtt`.
//!
//! The benchmark must not use another MQTT library, and must not be the bottleneck, so
//! this client is deliberately thin: a read half that decodes packets out of one large
//! buffer (many packets per `read`), and a write half that encodes any number of packets
//! into one buffer and sends them with a single `write_all`. Protocol state beyond the
//! handshake (packet identifiers, windows) is left to the scenarios, which know their
//! traffic pattern.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use mqtt::{
    ConnAck, Connect, Packet, ProtocolVersion, Publish, QoS, Subscribe, Subscription,
    SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpSocket;

/// Every connection speaks MQTT 3.1.1, the version both brokers support fully.
pub(crate) const VERSION: ProtocolVersion = ProtocolVersion::V311;

/// Largest packet accepted from a broker.
const MAX_PACKET: usize = 1 << 20;

/// How a connection is opened.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Client identifier sent in CONNECT.
    pub(crate) client_id: String,
    /// 3.1.1 clean session flag; `false` asks for a persistent session.
    pub(crate) clean_session: bool,
    /// Keep-alive in seconds; 0 disables it.
    pub(crate) keep_alive: u16,
    /// Local address to bind before connecting (spreads many clients over source IPs).
    pub(crate) source: Option<IpAddr>,
    /// Bytes the reader asks the kernel for at once; large for busy subscribers,
    /// small for the thousands of idle connections.
    pub(crate) read_chunk: usize,
}

impl Options {
    /// A clean session with keep-alive disabled and a 64 KiB read buffer.
    pub(crate) fn new(client_id: impl Into<String>) -> Options {
        Options {
            client_id: client_id.into(),
            clean_session: true,
            keep_alive: 0,
            source: None,
            read_chunk: 64 * 1024,
        }
    }
}

/// An open MQTT connection whose CONNECT was accepted.
pub(crate) struct Client {
    /// Incoming packets.
    pub(crate) reader: Reader,
    /// Outgoing packets.
    pub(crate) writer: Writer,
}

/// Connects, sends CONNECT and waits for a successful CONNACK.
pub(crate) async fn connect(addr: SocketAddr, opts: &Options) -> Result<Client> {
    let socket = TcpSocket::new_v4().context("cannot create a socket")?;
    if let Some(ip) = opts.source {
        // Lets bind(ip, 0) pick ports whose old connections are still in TIME_WAIT.
        socket
            .set_reuseaddr(true)
            .context("cannot set SO_REUSEADDR")?;
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("cannot bind source address {ip}"))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let (read, write) = stream.into_split();
    let mut client = Client {
        reader: Reader {
            half: read,
            buf: BytesMut::new(),
            chunk: opts.read_chunk.max(256),
        },
        writer: Writer {
            half: write,
            buf: BytesMut::new(),
        },
    };
    let connect = Connect {
        protocol: VERSION,
        clean_start: opts.clean_session,
        keep_alive: opts.keep_alive,
        client_id: opts.client_id.clone(),
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    };
    client.writer.push(&Packet::Connect(Box::new(connect)))?;
    client.writer.flush().await?;
    match client.reader.next().await? {
        Some(Packet::ConnAck(ConnAck { code, .. })) if !code.is_error() => Ok(client),
        Some(Packet::ConnAck(ConnAck { code, .. })) => {
            bail!("CONNECT refused with reason code {:#04x}", code.0)
        }
        Some(other) => bail!("expected CONNACK, got {}", other.name()),
        None => bail!("broker closed the connection before CONNACK"),
    }
}

impl Client {
    /// Subscribes to one filter and waits for a SUBACK granting it.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<()> {
        let subscribe = Subscribe {
            packet_id: 1,
            subscriptions: vec![Subscription {
                filter: filter.to_owned(),
                options: SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            }],
            properties: Default::default(),
        };
        self.writer.push(&Packet::Subscribe(subscribe))?;
        self.writer.flush().await?;
        match self.reader.next().await? {
            Some(Packet::SubAck(ack)) => match ack.codes.first() {
                Some(code) if !code.is_error() => Ok(()),
                Some(code) => bail!("SUBSCRIBE {filter} refused with {:#04x}", code.0),
                None => bail!("SUBACK without a return code"),
            },
            Some(other) => bail!("expected SUBACK, got {}", other.name()),
            None => bail!("broker closed the connection before SUBACK"),
        }
    }
}

/// The receiving half: a buffer that is refilled only when it holds no whole packet.
pub(crate) struct Reader {
    half: OwnedReadHalf,
    buf: BytesMut,
    chunk: usize,
}

impl Reader {
    /// The next packet, reading from the socket as needed; `None` when the broker closed
    /// the connection cleanly between packets.
    pub(crate) async fn next(&mut self) -> Result<Option<Packet>> {
        loop {
            if let Some(packet) = self.try_next()? {
                return Ok(Some(packet));
            }
            if self.buf.capacity() - self.buf.len() < self.chunk / 2 {
                self.buf.reserve(self.chunk);
            }
            let n = self
                .half
                .read_buf(&mut self.buf)
                .await
                .context("cannot read from the broker")?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                bail!("broker closed the connection in the middle of a packet");
            }
        }
    }

    /// A packet that is already buffered, without touching the socket.
    pub(crate) fn try_next(&mut self) -> Result<Option<Packet>> {
        mqtt::decode(&mut self.buf, Some(VERSION), MAX_PACKET)
            .context("broker sent a packet we cannot decode")
    }
}

/// The sending half: packets accumulate in a buffer until [`Writer::flush`].
pub(crate) struct Writer {
    half: OwnedWriteHalf,
    buf: BytesMut,
}

impl Writer {
    /// Encodes a packet at the end of the pending buffer.
    pub(crate) fn push(&mut self, packet: &Packet) -> Result<()> {
        mqtt::encode(packet, VERSION, &mut self.buf)
            .with_context(|| format!("cannot encode {}", packet.name()))
    }

    /// Appends bytes already produced by [`encode_one`] (identical QoS 0 messages are
    /// encoded once and copied, so the generator spends its CPU on syscalls only).
    pub(crate) fn push_encoded(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Sends everything pending in one `write_all`.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.half
            .write_all(&self.buf)
            .await
            .context("cannot write to the broker")?;
        self.buf.clear();
        Ok(())
    }
}

/// Encodes one packet on its own, for [`Writer::push_encoded`].
pub(crate) fn encode_one(packet: &Packet) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    mqtt::encode(packet, VERSION, &mut buf)
        .with_context(|| format!("cannot encode {}", packet.name()))?;
    Ok(buf.freeze())
}

/// A PUBLISH without properties; `packet_id` must be `Some` exactly when `qos > 0`.
pub(crate) fn publish(topic: &str, qos: QoS, packet_id: Option<u16>, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_owned(),
        packet_id,
        properties: Default::default(),
        payload,
    })
}

/// Opens `count` connections, each subscribed to one filter, with at most `concurrency`
/// handshakes under way at once. `make` gives the options and filter of client `i`;
/// `done` counts subscribed clients as they complete, for progress reports.
pub(crate) async fn connect_many<F>(
    addr: SocketAddr,
    count: usize,
    concurrency: usize,
    qos: QoS,
    done: Arc<AtomicUsize>,
    make: F,
) -> Result<Vec<Client>>
where
    F: Fn(usize) -> (Options, String) + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let (next, make, done) = (Arc::clone(&next), Arc::clone(&make), Arc::clone(&done));
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(mine);
                }
                let (opts, filter) = make(i);
                let mut c = connect(addr, &opts)
                    .await
                    .with_context(|| format!("client {i}"))?;
                c.subscribe(&filter, qos)
                    .await
                    .with_context(|| format!("client {i}"))?;
                mine.push(c);
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut clients = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        clients.extend(done.context("connect task panicked")??);
    }
    Ok(clients)
}
