//! One task per client connection: bytes to packets and back, CONNECT checks, the
//! activity stamp the router's keep-alive sweep reads, and the inbound half of the
//! protocol (topic aliases, receive maximum, QoS 2 duplicate suppression). Routing
//! decisions belong to the router.
//!
//! Memory while idle is kept near zero: the read buffer is dropped whenever it is
//! empty and re-allocated when the socket becomes readable, the write buffer likewise,
//! and the outbox holds no allocation while empty.
//!
//! The code is generic over the byte stream ([`transport::Transport`]): plain TCP, or
//! TLS whose handshake [`serve_tls`] runs first, inside the connection's own task so a
//! slow or hostile handshake never holds up the accept loop.

mod handshake;
mod inbound;
mod transport;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt::{Disconnect, Packet, Properties, ProtocolVersion, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::outbox::{Outbound, Outbox, Outgoing};
use crate::router::{ConnId, Request, SessionId};
use crate::service::DisconnectCause;
use crate::tls::TlsState;
use crate::Config;
use transport::Tls;
pub(crate) use transport::Transport;

/// Bytes reserved for the first read after the buffer was released; a read that fills
/// the buffer doubles the next reservation, up to [`MAX_READ_CHUNK`]. Small devices that
/// send a packet now and then never cause a large allocation.
const MIN_READ_CHUNK: usize = 1024;
/// Largest single reservation for reading.
const MAX_READ_CHUNK: usize = 64 * 1024;
/// A TLS client must finish its handshake this soon after the TCP handshake; the same
/// allowance it then gets for CONNECT.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection task shares.
pub(crate) struct Shared {
    /// Broker configuration.
    pub(crate) config: Arc<Config>,
    /// Broker metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// The router's request channel.
    pub(crate) router: mpsc::Sender<Request>,
    /// Source of connection ids.
    pub(crate) next_conn: AtomicU64,
}

/// Why a connection ended, deciding the Last Will and the DISCONNECT sent.
#[derive(Debug)]
enum End {
    /// The client sent DISCONNECT; `will` is true for reason 0x04.
    ClientDisconnect { will: bool, expiry: Option<u32> },
    /// The network went away: the will is published. (A keep-alive timeout arrives
    /// from the router's sweep as `Close` with 0x8D.)
    Lost,
    /// We close with this reason (protocol error, takeover, shutdown…).
    Close {
        code: ReasonCode,
        will: bool,
        reason: &'static str,
    },
}

/// State of one connected client after CONNACK.
struct Connection<T> {
    stream: T,
    shared: Arc<Shared>,
    protocol: ProtocolVersion,
    client_id: Arc<str>,
    session: SessionId,
    conn: ConnId,
    outbox: Arc<Outbox>,
    /// Set at connect: whether the connect asked for session expiry 0 (v5 forbids raising it at DISCONNECT).
    connect_expiry_zero: bool,
    rbuf: BytesMut,
    /// Size of the next read reservation (adaptive, see [`MIN_READ_CHUNK`]).
    read_chunk: usize,
    wbuf: BytesMut,
    inbound: inbound::InboundState,
    /// Outbound topic aliases; `None` unless the client accepts them (v5, maximum > 0).
    aliases_out: Option<Box<mqtt::session::TopicAliasesOut>>,
    /// Who the client authenticated as and what it may do; `None` for an anonymous
    /// development client, which is unrestricted (see `crate::auth`).
    grant: Option<Box<crate::auth::Grant>>,
}

/// Runs the TLS handshake (under [`TLS_HANDSHAKE_TIMEOUT`]) with the certificate current
/// at this moment, then serves the connection like a TCP one.
pub(crate) async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    tls: Arc<TlsState>,
) {
    // Boxed like the MQTT handshake: rustls' handshake state is large and needed once,
    // and only the boxed `Tls` (a pointer) comes out of it.
    let Some((stream, _tracked)) = Box::pin(tls_handshake(stream, peer, &shared, tls)).await else {
        return;
    };
    serve(stream, peer, shared).await;
}

/// The server side of the TLS handshake; `None` (counted and logged) if it fails.
/// With a verified client certificate, also the guard that keeps its serial registered
/// while the connection lasts, so revoking it closes the connection (`tls::live`);
/// boxed, because the connection task holds it for its whole life.
async fn tls_handshake(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    tls: Arc<TlsState>,
) -> Option<(Tls, Option<Box<crate::tls::Tracked>>)> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(<[_]>::first);
            let client_ca = leaf.and_then(|leaf| tls.ca_names().issuer_of(leaf));
            let stream = Tls::new(stream, client_ca);
            let tracked = stream
                .client_certificate()
                .and_then(crate::tls::device_ca::peer_identity)
                .map(|cert| Box::new(tls.cert_connections.track(cert)));
            Some((stream, tracked))
        }
        Ok(Err(e)) => {
            shared.metrics.tls_handshake_failures.inc();
            let tls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            // A refused client certificate: counted by reason, logged at info (what an
            // operator debugging a device needs).
            if let Some(reason) = tls_error.and_then(crate::tls::device_ca::refusal_reason) {
                shared.metrics.tls_client_cert_refusals.inc(reason);
                tracing::info!(%peer, reason, error = %e, "TLS handshake refused: client certificate");
                return None;
            }
            // A client that rejects our certificate says so in an alert: worth an info
            // line, as it is what an operator debugging a client needs. The rest (port
            // scanners, plain MQTT sent to the TLS port) stays at debug.
            let alert = tls_error.is_some_and(|tls| matches!(tls, rustls::Error::AlertReceived(_)));
            if alert {
                tracing::info!(%peer, error = %e, "TLS handshake failed: the client refused");
            } else {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
            }
            None
        }
        Err(_) => {
            shared.metrics.tls_handshake_failures.inc();
            tracing::debug!(%peer, "no TLS handshake within the deadline");
            None
        }
    }
}

/// Serves one connection until it ends, over TCP or (after [`serve_tls`]) TLS: MQTT
/// directly, or MQTT inside a WebSocket when the first bytes are an HTTP request (see
/// `crate::websocket`). The listener has already set `TCP_NODELAY`.
pub(crate) async fn serve<T: Transport>(stream: T, peer: SocketAddr, shared: Arc<Shared>) {
    // Boxed: the handshake's state (a whole CONNECT, its timers) is needed once, and
    // inline it would be part of every connection task for the connection's lifetime.
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let mut c = match Box::pin(handshake::accept(stream, peer, shared, conn)).await {
        handshake::Opened::Mqtt(c) => c,
        // Boxed too: the rarer path should not size every task.
        handshake::Opened::Upgrade(upgrade) => {
            return Box::pin(serve_websocket(*upgrade)).await;
        }
        handshake::Opened::Closed => return,
    };
    // Inline rather than through `run_connection`: one frame less in every task.
    c.shared.metrics.connections.add(1);
    let end = c.run().await;
    c.shared.metrics.connections.add(-1);
    Box::pin(c.finish(end)).await;
}

/// Answers the WebSocket upgrade, then serves MQTT inside it.
async fn serve_websocket<T: Transport>(upgrade: handshake::Upgrade<T>) {
    let handshake::Upgrade {
        mut stream,
        mut head,
        deadline,
        peer,
        shared,
        conn,
    } = upgrade;
    let answer = loop {
        if let Some(answer) = crate::websocket::upgrade(&head) {
            break answer;
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut head)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    };
    let sent = stream.write_all(&answer.response).await;
    if let Some(reason) = answer.refusal {
        tracing::info!(%peer, reason, "WebSocket upgrade refused");
        let _ = stream.shutdown().await;
        return;
    }
    if sent.is_err() || stream.flush().await.is_err() {
        return;
    }
    let frames = head.split_off(answer.consumed);
    // A frame may carry several packets; one packet may span frames.
    let max_frame = u64::from(shared.config.max_packet_size) + 64 * 1024;
    let ws = crate::websocket::WebSocket::new(stream, frames, max_frame);
    let accepted = handshake::accept_mqtt(ws, BytesMut::new(), deadline, peer, shared, conn);
    if let Some(c) = Box::pin(accepted).await {
        run_connection(c).await;
    }
}

/// Serves a registered MQTT connection until it ends. The connection state lives in its
/// own allocation: the task then stays under tokio's next 128-byte size step, which is
/// worth more than one pointer.
async fn run_connection<T: Transport>(mut c: Box<Connection<T>>) {
    c.shared.metrics.connections.add(1);
    let end = c.run().await;
    c.shared.metrics.connections.add(-1);
    Box::pin(c.finish(end)).await;
}

impl<T: Transport> Connection<T> {
    async fn run(&mut self) -> End {
        // No timer here: the router sweeps all connections for keep-alive silence once a
        // second (a timer per connection would cost every idle task ~150 bytes).
        loop {
            tokio::select! {
                biased;
                () = std::future::poll_fn(|cx| self.outbox.poll_ready(cx)) => {
                    // Boxed (here and below): inline, these futures would make every
                    // idle connection's task several KiB larger.
                    if let Err(end) = Box::pin(self.flush_outbox()).await {
                        return end;
                    }
                }
                // `poll_read_ready` keeps the waker in the socket's registration; the
                // `readable()` future would add a 152-byte waiter to every idle task.
                ready = std::future::poll_fn(|cx| Transport::poll_read_ready(&mut self.stream, cx)) => {
                    if ready.is_err() {
                        return End::Lost;
                    }
                    if let Err(end) = Box::pin(self.read_packets()).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Reads what the socket has and handles every whole packet.
    async fn read_packets(&mut self) -> Result<(), End> {
        if self.rbuf.capacity() - self.rbuf.len() < MIN_READ_CHUNK / 2 {
            self.rbuf.reserve(self.read_chunk);
        }
        let room = self.rbuf.capacity() - self.rbuf.len();
        match Transport::try_read_buf(&mut self.stream, &mut self.rbuf) {
            Ok(0) => return Err(End::Lost),
            Ok(n) => {
                self.outbox.touch();
                if n == room {
                    self.read_chunk = (self.read_chunk * 2).min(MAX_READ_CHUNK);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Spurious readiness: do not keep the reservation on an idle connection.
                if self.rbuf.is_empty() {
                    self.rbuf = BytesMut::new();
                }
                return Ok(());
            }
            Err(_) => return Err(End::Lost),
        }
        let max = self.shared.config.max_packet_size as usize;
        loop {
            match mqtt::decode(&mut self.rbuf, Some(self.protocol), max) {
                Ok(Some(packet)) => self.on_packet(packet).await?,
                Ok(None) => break,
                Err(e) => {
                    let peer = Transport::peer_addr(&self.stream).ok();
                    tracing::warn!(?peer, client = %self.client_id, error = %e, "closing connection: bad packet");
                    return Err(End::Close {
                        code: e.reason_code(),
                        will: true,
                        reason: "bad packet",
                    });
                }
            }
        }
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        // Our own acknowledgements (PUBCOMP, PINGRESP…) queued while reading.
        self.flush_outbox().await?;
        Ok(())
    }

    /// Encodes and writes everything queued for this connection.
    async fn flush_outbox(&mut self) -> Result<(), End> {
        let items = self.outbox.take();
        if items.is_empty() {
            return Ok(());
        }
        let mut published = 0;
        for item in items {
            match item {
                Outbound::Publish(out) => {
                    published += out.message.payload.len();
                    self.encode_publish(&out);
                }
                Outbound::Packet(p) => {
                    if let Some(code) = self.unsayable_refusal(&p) {
                        self.outbox.written(published);
                        let _ = self.write_out().await;
                        return Err(End::Close {
                            code,
                            will: true,
                            reason: "a message could not be taken",
                        });
                    }
                    self.inbound.on_sent(&p);
                    self.encode(&p);
                }
                Outbound::Disconnect(code, reason) => {
                    self.outbox.written(published);
                    let _ = self.write_out().await;
                    return Err(End::Close {
                        code,
                        will: code != ReasonCode::SESSION_TAKEN_OVER
                            && code != ReasonCode::SERVER_SHUTTING_DOWN,
                        reason,
                    });
                }
            }
        }
        self.outbox.written(published);
        self.write_out().await
    }

    /// A refused publish's PUBACK/PUBREC on a 3.1.1 connection, whose acknowledgements
    /// carry no reason code (the encoder would send a plain success): the refusal can
    /// only be said by closing the connection unacknowledged, so the client sends the
    /// message again.
    fn unsayable_refusal(&self, packet: &Packet) -> Option<ReasonCode> {
        let (Packet::PubAck(ack) | Packet::PubRec(ack)) = packet else {
            return None;
        };
        (self.protocol != mqtt::ProtocolVersion::V5 && ack.code.is_error()).then_some(ack.code)
    }

    /// Encodes one delivery from the shared message, applying this connection's
    /// outbound topic aliases (v5).
    fn encode_publish(&mut self, out: &Outgoing) {
        use mqtt::session::AliasUse;
        let mut properties = out.message.properties_for(&out.sub_ids);
        let mut topic: &str = &out.message.topic;
        if let Some(aliases) = &mut self.aliases_out {
            match aliases.assign(topic) {
                AliasUse::None => {}
                AliasUse::New(alias) => properties.to_mut().topic_alias = Some(alias),
                AliasUse::Existing(alias) => {
                    properties.to_mut().topic_alias = Some(alias);
                    topic = "";
                }
            }
        }
        let view = out.view(topic, &properties);
        if let Err(e) = mqtt::encode_publish(&view, self.protocol, &mut self.wbuf) {
            tracing::error!(client = %self.client_id, error = %e, "cannot encode PUBLISH; dropped");
        }
    }

    fn encode(&mut self, packet: &Packet) {
        if let Err(e) = mqtt::encode(packet, self.protocol, &mut self.wbuf) {
            tracing::error!(client = %self.client_id, error = %e, packet = packet.name(), "cannot encode packet; dropped");
        }
    }

    async fn write_out(&mut self) -> Result<(), End> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        // The flush matters for TLS: rustls may keep encrypted bytes it could not write
        // yet, and only a flush (or the next write) sends them. On TCP it is free.
        let result = match self.stream.write_all(&self.wbuf).await {
            Ok(()) => self.stream.flush().await,
            Err(e) => Err(e),
        };
        // Released every time, like the read buffer: an idle connection holds none, and
        // one allocation per flush (a flush carries a whole batch) is cheap.
        self.wbuf = BytesMut::new();
        result.map_err(|_| End::Lost)
    }

    /// Sends the final DISCONNECT if due and tells the router.
    async fn finish(mut self, end: End) {
        self.outbox.close();
        let cause = match &end {
            End::ClientDisconnect { will, .. } => DisconnectCause::Client { will: *will },
            End::Lost => DisconnectCause::NetworkLost,
            End::Close { code, .. } => DisconnectCause::Closed(*code),
        };
        let (publish_will, expiry) = match end {
            End::ClientDisconnect { will, expiry } => (will, expiry),
            End::Lost => (true, None),
            End::Close { code, will, reason } => {
                if code.is_error() && code != ReasonCode::SESSION_TAKEN_OVER {
                    self.shared.metrics.protocol_errors.inc();
                }
                tracing::debug!(client = %self.client_id, code = code.0, reason, "closing connection");
                if self.protocol == ProtocolVersion::V5 {
                    // A reason string is allowed on DISCONNECT whatever the client's
                    // Request Problem Information [MQTT-3.1.2-29].
                    let properties = Properties {
                        reason_string: Some(reason.into()),
                        ..Properties::default()
                    };
                    let d = Disconnect { code, properties };
                    self.encode(&Packet::Disconnect(d));
                    let _ = self.write_out().await;
                }
                (will, None)
            }
        };
        let _ = self.stream.shutdown().await;
        let request = Request::Disconnected {
            session: self.session,
            conn: self.conn,
            publish_will,
            expiry,
            qos2_pending: self.inbound.qos2_pending(),
            cause,
        };
        let _ = self.shared.router.send(request).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    /// An accepted server-side socket (with its client end kept open) and a `Shared`
    /// whose router nobody reads: enough to build a connection task and measure it.
    async fn accepted() -> (
        tokio::net::TcpStream,
        tokio::net::TcpStream,
        std::net::SocketAddr,
        Arc<super::Shared>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let shared = Arc::new(super::Shared {
            config: Default::default(),
            metrics: Default::default(),
            router: tx,
            next_conn: Default::default(),
        });
        (stream, client, peer, shared)
    }

    /// Idle connections must stay cheap (the budget is 2 KiB of broker memory each):
    /// this fails if someone inlines a large future or buffer into every connection.
    #[tokio::test]
    async fn idle_connection_state_stays_small() {
        let (stream, _client, peer, shared) = accepted().await;
        let task = super::serve(stream, peer, shared);
        assert!(
            std::mem::size_of_val(&task) <= 256,
            "connection task is {} bytes",
            std::mem::size_of_val(&task)
        );
        assert!(std::mem::size_of::<crate::router::Session>() <= 184);
    }

    /// TLS connections pay for rustls' state and record buffers (on the heap), but the
    /// task itself must not inline the handshake or the TLS stream.
    #[tokio::test]
    async fn tls_connection_task_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let tls = crate::tls::TlsState::open(&Default::default(), dir.path()).unwrap();
        let (stream, _client, peer, shared) = accepted().await;
        let task = super::serve_tls(stream, peer, shared, Arc::new(tls));
        assert!(
            std::mem::size_of_val(&task) <= 352,
            "TLS connection task is {} bytes",
            std::mem::size_of_val(&task)
        );
    }
}
