//! The tokio edge: one MQTT 5 connection to the hub over TCP or TLS, framed with the
//! `mqtt` crate's codec.
//!
//! [`Link::open`] connects, handshakes and waits for the CONNACK (each step under
//! [`STEP_TIMEOUT`]); afterwards the [`Reader`] yields the hub's packets and the
//! [`Writer`] sends ours. Both [`Reader::next`] and [`Writer::write_some`] are
//! cancel-safe, so the runtime `select!`s on them together with its timers: a hub that
//! reads slowly delays only the bytes for it, never a feature window (the runtime
//! drops a connection whose writes make no progress for [`STEP_TIMEOUT`]). Protocol
//! decisions are the core's, not this module's.

pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use mqtt::{ConnAck, Connect, Packet, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};

use crate::Error;

/// The protocol version the agent speaks.
pub const VERSION: ProtocolVersion = ProtocolVersion::V5;
/// Limit on each connection step and on each write.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest packet accepted from the hub (C2D messages are ≤ 256 KiB on IoT Hub).
pub const MAX_PACKET: usize = 1 << 20;

/// Any byte stream to the hub.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub address: String,
    /// TLS configuration; `None` for plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Local address to connect from; `None` lets the system choose. A simulator
    /// spreads its devices over 127.0.0.x this way: every source address has its own
    /// ~28,000 ephemeral ports towards one hub port.
    pub bind: Option<IpAddr>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .field("bind", &self.bind)
            .finish()
    }
}

impl Endpoint {
    /// The host part of the address (without brackets for IPv6).
    pub fn host(&self) -> &str {
        let host = match self.address.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => &self.address,
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// An open, accepted MQTT connection, in two halves so that the runtime can wait for
/// the hub's packets and for the socket to take more bytes at the same time.
pub struct Link {
    /// Packets from the hub.
    pub reader: Reader,
    /// Packets to the hub.
    pub writer: Writer,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

/// The receiving half: a buffer refilled from the socket when it holds no whole packet.
pub struct Reader {
    half: ReadHalf<Box<dyn Stream>>,
    incoming: BytesMut,
}

/// The sending half: packets are encoded into a buffer ([`Writer::queue`]) and leave it
/// as the socket accepts them ([`Writer::write_some`], or [`Writer::flush`] to wait).
pub struct Writer {
    half: WriteHalf<Box<dyn Stream>>,
    outgoing: BytesMut,
    /// Bytes were written since the last flush: TLS may still hold them.
    unflushed: bool,
}

impl Link {
    /// Connects to `endpoint`, sends `connect`, and returns the link and the CONNACK;
    /// a refused CONNACK is [`Error::Refused`].
    pub async fn open(endpoint: &Endpoint, connect: Connect) -> Result<(Link, ConnAck), Error> {
        let stream = step("connect", connect_stream(endpoint)).await??;
        let (reader, writer) = tokio::io::split(stream);
        let mut link = Link {
            reader: Reader {
                half: reader,
                incoming: BytesMut::with_capacity(4096),
            },
            writer: Writer {
                half: writer,
                outgoing: BytesMut::with_capacity(4096),
                unflushed: false,
            },
        };
        link.send(&Packet::Connect(Box::new(connect))).await?;
        match step("CONNACK", link.next()).await?? {
            Some(Packet::ConnAck(ack)) if !ack.code.is_error() => Ok((link, ack)),
            Some(Packet::ConnAck(ack)) => Err(Error::Refused {
                code: ack.code.0,
                reason: ack.properties.reason_string,
            }),
            Some(other) => Err(Error::Connection(format!(
                "expected CONNACK, got {}",
                other.name()
            ))),
            None => Err(Error::Connection(
                "hub closed the connection before CONNACK".into(),
            )),
        }
    }

    /// The next packet from the hub (see [`Reader::next`]).
    pub async fn next(&mut self) -> Result<Option<Packet>, Error> {
        self.reader.next().await
    }

    /// Queues and sends one packet, waiting until it is written.
    pub async fn send(&mut self, packet: &Packet) -> Result<(), Error> {
        self.writer.queue(packet)?;
        self.writer.flush().await
    }
}

impl Reader {
    /// The next packet from the hub; `None` when it closed the connection cleanly.
    /// Cancel-safe: it only awaits `read_buf`, and partial packets stay buffered.
    pub async fn next(&mut self) -> Result<Option<Packet>, Error> {
        loop {
            let decoded = mqtt::decode(&mut self.incoming, Some(VERSION), MAX_PACKET)
                .map_err(|e| Error::Connection(format!("undecodable packet from the hub: {e}")))?;
            if let Some(packet) = decoded {
                return Ok(Some(packet));
            }
            self.incoming.reserve(4096);
            let n = self
                .half
                .read_buf(&mut self.incoming)
                .await
                .map_err(|e| Error::Connection(format!("read: {e}")))?;
            if n == 0 {
                return match self.incoming.is_empty() {
                    true => Ok(None),
                    false => Err(Error::Connection("closed in the middle of a packet".into())),
                };
            }
        }
    }
}

impl Writer {
    /// Encodes a packet at the end of the write buffer without sending it.
    pub fn queue(&mut self, packet: &Packet) -> Result<(), Error> {
        mqtt::encode(packet, VERSION, &mut self.outgoing)
            .map_err(|e| Error::Connection(format!("cannot encode {}: {e}", packet.name())))
    }

    /// Whether bytes are waiting: queued, or written but not yet flushed.
    pub fn is_pending(&self) -> bool {
        !self.outgoing.is_empty() || self.unflushed
    }

    /// One step of sending: hands the socket as much of the buffer as it takes in one
    /// write, or, once the buffer is empty, flushes (TLS keeps records until then).
    /// Cancel-safe: bytes leave the buffer only once written.
    pub async fn write_some(&mut self) -> Result<(), Error> {
        let failed = |e: std::io::Error| Error::Connection(format!("write: {e}"));
        if self.outgoing.is_empty() {
            if self.unflushed {
                self.half.flush().await.map_err(failed)?;
                self.unflushed = false;
            }
            return Ok(());
        }
        let n = self.half.write(&self.outgoing).await.map_err(failed)?;
        if n == 0 {
            return Err(Error::Connection("the hub stopped taking bytes".into()));
        }
        self.outgoing.advance(n);
        self.unflushed = true;
        Ok(())
    }

    /// Writes and flushes everything queued, under [`STEP_TIMEOUT`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        step("write", async {
            while self.is_pending() {
                self.write_some().await?;
            }
            Ok(())
        })
        .await?
    }
}

/// DISCONNECT with reason 0: the hub drops the will.
pub(crate) fn normal_disconnect() -> mqtt::Disconnect {
    mqtt::Disconnect {
        code: mqtt::ReasonCode::NORMAL_DISCONNECTION,
        properties: mqtt::Properties::default(),
    }
}

/// Runs `future` under [`STEP_TIMEOUT`].
async fn step<T>(what: &str, future: impl std::future::Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .map_err(|_| Error::Connection(format!("{what} timed out")))
}

/// TCP, then TLS if configured.
async fn connect_stream(endpoint: &Endpoint) -> Result<Box<dyn Stream>, Error> {
    let tcp = connect_tcp(endpoint).await?;
    let _ = tcp.set_nodelay(true);
    let Some(config) = &endpoint.tls else {
        return Ok(Box::new(tcp));
    };
    let name = tls::server_name(endpoint.host())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Connection(format!("TLS handshake: {e}")))?;
    Ok(Box::new(stream))
}

/// A TCP connection to the endpoint, from its `bind` address when it has one: the
/// first of the hub's addresses of the same family that accepts.
pub(crate) async fn connect_tcp(endpoint: &Endpoint) -> Result<TcpStream, Error> {
    let failed = |e: std::io::Error| Error::Connection(format!("{}: {e}", endpoint.address));
    let Some(local) = endpoint.bind else {
        return TcpStream::connect(&endpoint.address).await.map_err(failed);
    };
    let mut last = None;
    let peers = tokio::net::lookup_host(&endpoint.address)
        .await
        .map_err(failed)?;
    for peer in peers.filter(|p| p.is_ipv4() == local.is_ipv4()) {
        match connect_from(local, peer).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => Error::Connection(format!("{} from {local}: {e}", endpoint.address)),
        None => Error::Connection(format!(
            "{}: no address of the same family as {local}",
            endpoint.address
        )),
    })
}

/// Binds a socket to `local` (any port), then connects it to `peer`.
async fn connect_from(local: IpAddr, peer: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match peer {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(peer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let e = |a: &str| Endpoint {
            address: a.into(),
            tls: None,
            bind: None,
        };
        assert_eq!(e("127.0.0.1:8883").host(), "127.0.0.1");
        assert_eq!(e("[::1]:8883").host(), "::1");
        assert_eq!(e("hub.example").host(), "hub.example");
    }

    #[tokio::test]
    async fn connects_from_the_bind_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let address = listener.local_addr().expect("addr").to_string();
        let from = |bind: Option<IpAddr>| Endpoint {
            address: address.clone(),
            tls: None,
            bind,
        };
        let local: IpAddr = [127, 0, 0, 3].into();
        let _tcp = connect_tcp(&from(Some(local))).await.expect("connect");
        let (_, peer) = listener.accept().await.expect("accept");
        assert_eq!(peer.ip(), local);
        let _tcp = connect_tcp(&from(None)).await.expect("connect");
        let (_, peer) = listener.accept().await.expect("accept");
        assert_eq!(peer.ip(), IpAddr::from([127, 0, 0, 1]));
        let v6: IpAddr = "::1".parse().expect("v6");
        assert!(connect_tcp(&from(Some(v6))).await.is_err());
    }
}
