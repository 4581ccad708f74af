//! From an accepted socket to a registered session: read CONNECT (with a deadline),
//! admit or refuse the client, register with the router, answer CONNACK.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt::session::TopicAliasesOut;
use mqtt::{ConnAck, Connect, DecodeError, Packet, Properties, ProtocolVersion, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::{inbound::InboundState, transport::Transport, Connection, Shared};
use crate::outbox::Outbox;
use crate::router::{ConnHandle, ConnId, ConnectInfo, Request};
use crate::service::DisconnectCause;

/// A client must send CONNECT this soon after the TCP handshake (after the TLS
/// handshake, for TLS; the WebSocket upgrade counts against it).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Client identifiers longer than this are refused (0x85).
const MAX_CLIENT_ID_BYTES: usize = 256;

/// What the first bytes of a connection turned out to be.
pub(super) enum Opened<T> {
    /// An MQTT client, past CONNECT and registered. Boxed here, inside the boxed
    /// handshake, so the connection task never holds a `Connection` inline.
    Mqtt(Box<Connection<T>>),
    /// An HTTP request: a WebSocket upgrade to answer (`crate::websocket`).
    Upgrade(Box<Upgrade<T>>),
    /// Refused, silent or gone (already answered and logged).
    Closed,
}

/// A connection whose first bytes were an HTTP request.
pub(super) struct Upgrade<T> {
    pub(super) stream: T,
    /// What was read so far: the start of the request head.
    pub(super) head: BytesMut,
    /// When CONNECT (inside the WebSocket) must be complete.
    pub(super) deadline: tokio::time::Instant,
    pub(super) peer: SocketAddr,
    pub(super) shared: Arc<Shared>,
    pub(super) conn: ConnId,
}

/// Reads the first bytes; an MQTT client is then taken through CONNECT
/// ([`accept_mqtt`]), an HTTP request handed back for the WebSocket upgrade. An MQTT
/// CONNECT starts with byte 0x10, an upgrade request with `GET `.
pub(super) async fn accept<T: Transport>(
    mut stream: T,
    peer: SocketAddr,
    shared: Arc<Shared>,
    conn: ConnId,
) -> Opened<T> {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    let mut rbuf = BytesMut::with_capacity(512);
    match tokio::time::timeout_at(deadline, stream.read_buf(&mut rbuf)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => {
            tracing::debug!(%peer, "closed or silent before its first packet");
            return Opened::Closed;
        }
    }
    if rbuf.first() == Some(&b'G') {
        let upgrade = Upgrade {
            stream,
            head: rbuf,
            deadline,
            peer,
            shared,
            conn,
        };
        return Opened::Upgrade(Box::new(upgrade));
    }
    match accept_mqtt(stream, rbuf, deadline, peer, shared, conn).await {
        Some(c) => Opened::Mqtt(c),
        None => Opened::Closed,
    }
}

/// Reads and checks CONNECT and registers the session; `None` when the client was
/// refused or vanished (already answered and logged). `rbuf` holds what was read
/// already; CONNECT must be complete by `deadline`.
pub(super) async fn accept_mqtt<T: Transport>(
    mut stream: T,
    mut rbuf: BytesMut,
    deadline: tokio::time::Instant,
    peer: SocketAddr,
    shared: Arc<Shared>,
    conn: ConnId,
) -> Option<Box<Connection<T>>> {
    let connect = match tokio::time::timeout_at(
        deadline,
        read_connect(&mut stream, &mut rbuf, &shared),
    )
    .await
    {
        Ok(Ok(connect)) => connect,
        Ok(Err(refusal)) => {
            refuse(&mut stream, peer, &shared, refusal).await;
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "no CONNECT within the deadline");
            return None;
        }
    };
    let protocol = connect.protocol;
    if let Err(code) = admit(&connect) {
        refuse(
            &mut stream,
            peer,
            &shared,
            Refusal::Connack(protocol, code, "refused"),
        )
        .await;
        return None;
    }
    // Authentication and the Last Will's authorization (crate::auth), with the subject
    // CN of a verified client certificate.
    let cert = stream
        .client_certificate()
        .and_then(crate::tls::device_ca::peer_cert);
    let transport = crate::auth::Transport {
        tls: T::TLS,
        client_cert_cn: cert.as_ref().map(|c| c.cn),
        client_cert_expiry: cert.as_ref().and_then(|c| c.expiry),
        client_cert_serial: cert.as_ref().map(|c| c.serial.as_str()),
        client_cert_issuer: stream.client_certificate_ca(),
    };
    let grant = match crate::auth::admit(&connect, peer, transport, &shared.config, &shared.metrics)
        .await
    {
        Ok(grant) => grant,
        Err(r) => {
            refuse(
                &mut stream,
                peer,
                &shared,
                Refusal::Connack(protocol, r.code, r.reason),
            )
            .await;
            return None;
        }
    };
    register(stream, peer, shared, conn, *connect, rbuf, grant)
        .await
        .map(Box::new)
}

/// Why a connection ends before it is registered.
enum Refusal {
    /// Answer CONNACK with this code, then close.
    Connack(ProtocolVersion, ReasonCode, &'static str),
    /// Close without answering (the peer did not speak MQTT, or vanished).
    Close(String),
}

async fn read_connect<T: Transport>(
    stream: &mut T,
    rbuf: &mut BytesMut,
    shared: &Shared,
) -> Result<Box<Connect>, Refusal> {
    let max = shared.config.max_packet_size as usize;
    loop {
        match mqtt::decode(rbuf, None, max) {
            Ok(Some(Packet::Connect(c))) => return Ok(c),
            Ok(Some(other)) => {
                return Err(Refusal::Close(format!("{} before CONNECT", other.name())))
            }
            Ok(None) => {}
            Err(DecodeError::UnsupportedVersion(level)) => {
                // Answer in the format the client can read: 3.x clients get return code 1.
                let protocol = if level < 5 {
                    ProtocolVersion::V311
                } else {
                    ProtocolVersion::V5
                };
                return Err(Refusal::Connack(
                    protocol,
                    ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                    "unsupported protocol level",
                ));
            }
            Err(e) => return Err(Refusal::Close(e.to_string())),
        }
        match stream.read_buf(rbuf).await {
            Ok(0) | Err(_) => {
                return Err(Refusal::Close("connection closed before CONNECT".into()))
            }
            Ok(_) => {}
        }
    }
}

/// Checks the CONNECT itself (who the client is, `crate::auth::admit`, comes next):
/// the reason code if it cannot be accepted.
fn admit(connect: &Connect) -> Result<(), ReasonCode> {
    if connect.properties.authentication_method.is_some() {
        return Err(ReasonCode::BAD_AUTHENTICATION_METHOD); // enhanced auth is not supported
    }
    if connect.client_id.len() > MAX_CLIENT_ID_BYTES
        || (connect.client_id.is_empty()
            && connect.protocol == ProtocolVersion::V311
            && !connect.clean_start)
    {
        return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID); // [MQTT-3.1.3-8]
    }
    if let Some(will) = &connect.will {
        if mqtt::topic::validate_topic_name(&will.topic).is_err() {
            return Err(ReasonCode::TOPIC_NAME_INVALID);
        }
    }
    Ok(())
}

async fn refuse<T: Transport>(stream: &mut T, peer: SocketAddr, shared: &Shared, refusal: Refusal) {
    shared.metrics.connects_refused.inc();
    match refusal {
        Refusal::Connack(protocol, code, why) => {
            tracing::info!(%peer, code = code.0, why, "CONNECT refused");
            let ack = ConnAck {
                session_present: false,
                code,
                properties: Properties::default(),
            };
            let mut out = BytesMut::new();
            if mqtt::encode(&Packet::ConnAck(ack), protocol, &mut out).is_ok()
                && stream.write_all(&out).await.is_ok()
            {
                let _ = stream.flush().await;
            }
        }
        Refusal::Close(why) => tracing::info!(%peer, why, "connection closed before CONNECT"),
    }
    let _ = stream.shutdown().await;
}

/// Registers with the router and sends CONNACK.
async fn register<T: Transport>(
    mut stream: T,
    peer: SocketAddr,
    shared: Arc<Shared>,
    conn: ConnId,
    connect: Connect,
    rbuf: BytesMut,
    grant: Option<Box<crate::auth::Grant>>,
) -> Option<Connection<T>> {
    let config = &shared.config;
    let v5 = connect.protocol == ProtocolVersion::V5;
    let mut props = Properties::default();
    let client_id = if connect.client_id.is_empty() {
        let id = format!("bosun-{:x}-{conn:x}", std::process::id());
        props.assigned_client_identifier = v5.then(|| id.clone());
        id
    } else {
        connect.client_id.clone()
    };
    let mut keep_alive = connect.keep_alive;
    if v5 && (keep_alive == 0 || keep_alive > config.max_keep_alive) {
        keep_alive = config.max_keep_alive;
        props.server_keep_alive = Some(keep_alive);
    }
    let expiry = if v5 {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::MAX // 3.1.1 persistent sessions: capped by the config's maximum
    };
    let grace = (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
    let expires_at = grant.as_ref().and_then(|g| g.identity().expires_at);
    let outbox = Arc::new(Outbox::new(grace).expiring_at(expires_at));
    let handle = ConnHandle {
        id: conn,
        outbox: outbox.clone(),
        protocol: connect.protocol,
        receive_maximum: connect.properties.receive_maximum.unwrap_or(u16::MAX),
        max_packet_size: connect.properties.maximum_packet_size.unwrap_or(u32::MAX),
        problem_info: v5 && connect.properties.request_problem_information != Some(0),
    };
    let info = ConnectInfo {
        client_id: client_id.clone(),
        clean_start: connect.clean_start,
        expiry,
        will: connect.will,
        grant: grant.clone(),
    };
    let (tx, rx) = oneshot::channel();
    shared
        .router
        .send(Request::Connect {
            info: Box::new(info),
            conn: handle,
            reply: tx,
        })
        .await
        .ok()?;
    let reply = rx.await.ok()?;
    if v5 {
        props.receive_maximum = Some(config.receive_maximum);
        props.maximum_packet_size = Some(config.max_packet_size);
        props.topic_alias_maximum = Some(config.topic_alias_maximum);
    }
    let ack = ConnAck {
        session_present: reply.session_present,
        code: ReasonCode::SUCCESS,
        properties: props,
    };
    let mut wbuf = BytesMut::new();
    if mqtt::encode(&Packet::ConnAck(ack), connect.protocol, &mut wbuf).is_err()
        || stream.write_all(&wbuf).await.is_err()
        || stream.flush().await.is_err()
    {
        outbox.close();
        let _ = shared
            .router
            .send(Request::Disconnected {
                session: reply.session,
                conn,
                publish_will: true,
                expiry: None,
                qos2_pending: reply.qos2_pending,
                cause: DisconnectCause::NetworkLost,
            })
            .await;
        return None;
    }
    shared.metrics.connections_total.inc();
    tracing::debug!(%peer, client = %client_id, session_present = reply.session_present, "client connected");
    let inbound = InboundState::new(config.topic_alias_maximum, reply.qos2_pending);
    let alias_max = if v5 {
        connect.properties.topic_alias_maximum.unwrap_or(0)
    } else {
        0
    };
    let aliases_out = (alias_max > 0).then(|| Box::new(TopicAliasesOut::new(alias_max)));
    Some(Connection {
        stream,
        connect_expiry_zero: expiry == 0,
        protocol: connect.protocol,
        session: reply.session,
        client_id: reply.client_id.clone(),
        conn,
        outbox,
        // An idle connection should hold no buffer: drop the CONNECT buffer if drained.
        rbuf: if rbuf.is_empty() {
            BytesMut::new()
        } else {
            rbuf
        },
        read_chunk: super::MIN_READ_CHUNK,
        wbuf: BytesMut::new(),
        inbound,
        aliases_out,
        grant,
        shared,
    })
}
