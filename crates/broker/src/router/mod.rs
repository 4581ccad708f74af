//! The router: one task that owns all routing state.
//!
//! Sessions, the subscription tree, retained messages, QoS delivery state and the durable
//! log's record stream all live here and are touched by nothing else, so none of them
//! needs a lock and every decision sees a consistent state. Connections send
//! [`Request`]s over a bounded channel (a full channel makes publishers wait, which is
//! TCP backpressure all the way to them) and receive work through their [`Outbox`].
//!
//! Handlers are split by concern: `connect` (sessions, takeover, wills, expiry),
//! `publish` (matching and fan-out), `subscribe`, `delivery` (per-session windows and
//! queues), `recovery` (rebuilding from the log and compacting it).

mod connect;
mod delivery;
pub(crate) mod publish;
mod recovery;
mod service;
mod session;
mod subscribe;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt::{PacketId, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe, Unsubscribe, Will};
use tokio::sync::{mpsc, oneshot};

use crate::log::Log;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::persist::Record;
use crate::retained::Retained;
use crate::service::{DisconnectCause, ServiceRequest, ServiceTap};
use crate::trie::SubscriptionTree;
use crate::Config;
pub(crate) use recovery::Recovered;
pub(crate) use session::{Session, SubOptions};

/// Internal session handle; the trie and the outboxes refer to sessions by it.
pub(crate) type SessionId = u64;
/// Identifies one network connection, so late requests from a replaced one are ignored.
pub(crate) type ConnId = u64;

/// Requests a router processes in one batch before it yields (as rumqttd does), so a
/// flood of small requests amortizes the wake-up cost.
const MAX_BATCH: usize = 512;

/// Deliveries (one message to one session) after which a batch ends early; with a
/// 1,000-subscriber topic that is a handful of messages, and the connections get to
/// write them before the router queues more.
const MAX_BATCH_DELIVERIES: usize = 8192;

/// How often connections are checked for keep-alive silence.
const KEEP_ALIVE_SWEEP: Duration = Duration::from_secs(1);

/// How a batch of requests ended.
enum Batch {
    /// Nothing more was queued.
    Drained,
    /// A limit was reached with requests possibly still queued.
    Full,
    /// A shutdown was served; the router stops.
    Shutdown,
}

/// The connection a session is attached to, with the limits its client announced.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    /// Which connection.
    pub(crate) id: ConnId,
    /// Where to queue packets for it.
    pub(crate) outbox: Arc<Outbox>,
    /// Protocol the connection speaks.
    pub(crate) protocol: ProtocolVersion,
    /// Client's Receive Maximum: publishes in flight towards it.
    pub(crate) receive_maximum: u16,
    /// Client's Maximum Packet Size.
    pub(crate) max_packet_size: u32,
    /// The client accepts reason strings on acknowledgements (v5 Request Problem
    /// Information, default yes) [MQTT-3.1.2-29].
    pub(crate) problem_info: bool,
}

/// What CONNECT asked of the router, after the connection validated it.
#[derive(Debug)]
pub(crate) struct ConnectInfo {
    /// Client identifier (assigned already if the client sent none).
    pub(crate) client_id: String,
    /// Start a new session, discarding any existing one.
    pub(crate) clean_start: bool,
    /// Session expiry in seconds (capped by the config).
    pub(crate) expiry: u32,
    /// Last Will, if any.
    pub(crate) will: Option<Will>,
    /// The connection's authorization, when restricted: a resumed session keeps only
    /// the subscriptions it still allows (the rules or the device's group may have
    /// changed since they were made).
    pub(crate) grant: Option<Box<crate::auth::Grant>>,
}

/// The router's answer to a connect.
#[derive(Debug)]
pub(crate) struct ConnectReply {
    /// Session handle for later requests.
    pub(crate) session: SessionId,
    /// An existing session was resumed.
    pub(crate) session_present: bool,
    /// QoS 2 packet ids received on an earlier connection and not yet released.
    pub(crate) qos2_pending: Vec<PacketId>,
    /// The session's client id, shared so the connection keeps no copy of its own.
    pub(crate) client_id: Arc<str>,
}

/// Who to acknowledge a received QoS 1/2 PUBLISH to, once it is durable.
#[derive(Debug)]
pub(crate) struct Acker {
    /// The publishing connection's outbox.
    pub(crate) outbox: Arc<Outbox>,
    /// Packet id to acknowledge.
    pub(crate) packet_id: PacketId,
    /// QoS 1 gets PUBACK, QoS 2 gets PUBREC.
    pub(crate) qos: QoS,
    /// Set when the service holds the acknowledgement too (a tapped publish, see
    /// [`crate::service::Hold`]): acknowledging is then one arrival at this latch, and
    /// the acknowledgement goes out at the last.
    pub(crate) latch: Option<Arc<crate::service::Latch>>,
}

/// Messages from connections (and the server) to the router. Large variants are boxed
/// so every request moved through the channel stays small (a PUBLISH is the hot one).
#[derive(Debug)]
pub(crate) enum Request {
    /// A client passed CONNECT checks.
    Connect {
        info: Box<ConnectInfo>,
        conn: ConnHandle,
        reply: oneshot::Sender<ConnectReply>,
    },
    /// A client published.
    Publish {
        session: SessionId,
        publish: Box<Publish>,
        ack: Option<Acker>,
    },
    /// A client subscribed. `denied` lists the indices of filters authorization
    /// refused (answered 0x87, not subscribed); empty, and so unallocated, usually.
    Subscribe {
        session: SessionId,
        conn: ConnId,
        subscribe: Box<Subscribe>,
        denied: Vec<usize>,
    },
    /// A client unsubscribed.
    Unsubscribe {
        session: SessionId,
        conn: ConnId,
        unsubscribe: Box<Unsubscribe>,
    },
    /// PUBACK from the client.
    PubAck {
        session: SessionId,
        conn: ConnId,
        packet_id: PacketId,
    },
    /// PUBREC from the client.
    PubRec {
        session: SessionId,
        conn: ConnId,
        packet_id: PacketId,
        code: ReasonCode,
    },
    /// PUBCOMP from the client.
    PubComp {
        session: SessionId,
        conn: ConnId,
        packet_id: PacketId,
    },
    /// The connection ended.
    Disconnected {
        session: SessionId,
        conn: ConnId,
        publish_will: bool,
        expiry: Option<u32>,
        qos2_pending: Vec<PacketId>,
        cause: DisconnectCause,
    },
    /// From the in-process service.
    Service(Box<ServiceRequest>),
    /// The broker is stopping: disconnect everyone, make the log durable, then answer.
    Shutdown { done: oneshot::Sender<()> },
}

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Publish the session's delayed will.
    Will(SessionId),
    /// End the session: its expiry interval passed while disconnected.
    Expire(SessionId),
    /// Look for connections silent past 1.5 × their keep-alive.
    KeepAliveSweep,
}

/// All routing state. See the module documentation.
pub(crate) struct Router {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    log: Log,
    /// Client id to session handle.
    ids: HashMap<Arc<str>, SessionId>,
    /// Boxed values: the map's slack then costs a pointer per slot, not a session.
    sessions: HashMap<SessionId, Box<Session>>,
    next_session: SessionId,
    tree: SubscriptionTree<SessionId, SubOptions>,
    retained: Retained,
    /// Round-robin position per shared subscription group.
    shared_cursor: HashMap<Arc<str>, usize>,
    next_message_id: u64,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    /// Log size right after the last compaction, to compact only when it has grown.
    log_size_after_compact: u64,
    /// Bytes this router has appended since the log was `log_size_after_compact` (or
    /// since start). The log's own size is published by its writer after each batch
    /// and so trails the appends; without this, the batch that carries the last
    /// appends of a burst can see a stale size, and with nothing arriving after it,
    /// the compaction it should have started never runs.
    appended_since_compact: u64,
    /// A snapshot was handed to the log and is not applied yet.
    compaction_pending: Arc<AtomicBool>,
    /// Estimate of the records a snapshot would hold now (sessions, subscriptions,
    /// pending message targets), so compaction runs only when most of the log is garbage.
    live_records: u64,
    /// Deliveries made in the current batch, against [`MAX_BATCH_DELIVERIES`].
    deliveries_in_batch: usize,
    /// A keep-alive sweep is scheduled.
    sweep_armed: bool,
    /// The in-process service's events channel and interests, when one is attached.
    service: Option<ServiceTap>,
}

impl Router {
    /// Creates the router over an opened log and the state recovered from it.
    pub(crate) fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        log: Log,
        recovered: recovery::Recovered,
        service: Option<ServiceTap>,
    ) -> Router {
        let mut router = Router {
            config,
            metrics,
            log,
            ids: HashMap::new(),
            sessions: HashMap::new(),
            next_session: 1,
            tree: SubscriptionTree::new(),
            retained: Retained::default(),
            shared_cursor: HashMap::new(),
            next_message_id: 1,
            timers: BTreeMap::new(),
            timer_seq: 0,
            log_size_after_compact: 0,
            appended_since_compact: 0,
            compaction_pending: Arc::new(AtomicBool::new(false)),
            live_records: 0,
            deliveries_in_batch: 0,
            sweep_armed: false,
            service,
        };
        router.install(recovered);
        router
    }

    /// Serves requests until every sender is gone or a shutdown is processed.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        loop {
            let next_timer = self.timers.keys().next().map(|(at, _)| *at);
            let request = tokio::select! {
                request = rx.recv() => request,
                () = sleep_until(next_timer), if next_timer.is_some() => {
                    self.fire_timers(Instant::now());
                    continue;
                }
            };
            let Some(request) = request else { break };
            match self.handle_batch(request, &mut rx) {
                Batch::Shutdown => return,
                Batch::Drained => {}
                // Let the connections write what this batch queued before the next one,
                // so a fan-out burst does not pile up in every outbox at once.
                Batch::Full => tokio::task::yield_now().await,
            }
            self.maybe_compact();
        }
    }

    /// Handles `first` and whatever else is already queued, up to [`MAX_BATCH`]; true
    /// once a shutdown has been served.
    fn handle_batch(&mut self, first: Request, rx: &mut mpsc::Receiver<Request>) -> Batch {
        self.deliveries_in_batch = 0;
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(request) = next.take() {
            if let Request::Shutdown { done } = request {
                self.shutdown(done);
                return Batch::Shutdown;
            }
            self.handle(request);
            handled += 1;
            if handled >= MAX_BATCH || self.deliveries_in_batch >= MAX_BATCH_DELIVERIES {
                return Batch::Full;
            }
            next = rx.try_recv().ok();
        }
        Batch::Drained
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Connect { info, conn, reply } => self.on_connect(*info, conn, reply),
            Request::Publish {
                session,
                publish,
                ack,
            } => self.on_publish(session, *publish, ack),
            Request::Subscribe {
                session,
                conn,
                subscribe,
                denied,
            } => self.on_subscribe(session, conn, *subscribe, &denied),
            Request::Unsubscribe {
                session,
                conn,
                unsubscribe,
            } => self.on_unsubscribe(session, conn, *unsubscribe),
            Request::PubAck {
                session,
                conn,
                packet_id,
            } => self.on_puback(session, conn, packet_id),
            Request::PubRec {
                session,
                conn,
                packet_id,
                code,
            } => self.on_pubrec(session, conn, packet_id, code),
            Request::PubComp {
                session,
                conn,
                packet_id,
            } => self.on_pubcomp(session, conn, packet_id),
            Request::Disconnected {
                session,
                conn,
                publish_will,
                expiry,
                qos2_pending,
                cause,
            } => self.on_disconnected(session, conn, publish_will, expiry, qos2_pending, cause),
            Request::Service(request) => self.on_service(*request),
            Request::Shutdown { .. } => {}
        }
    }

    /// The session, if `conn` is still its live connection. Requests from a connection
    /// that was taken over (or already ended) arrive late and must change nothing.
    fn attached(&mut self, session: SessionId, conn: ConnId) -> Option<&mut Session> {
        let s = self.sessions.get_mut(&session)?;
        (s.conn.as_ref()?.id == conn).then_some(&mut **s)
    }

    /// Appends to the durable log, keeping the live-record estimate current.
    fn append(&mut self, record: Record, done: Option<crate::log::Completion>) {
        match &record {
            Record::Message(m) => {
                self.live_records += m.targets.len().max(usize::from(m.retain)) as u64
            }
            Record::Ack { .. } | Record::Unsubscribe { .. } => {
                self.live_records = self.live_records.saturating_sub(1)
            }
            Record::Session { .. } | Record::Subscribe { .. } => self.live_records += 1,
            Record::SessionEnd { .. } => {}
        }
        let bytes = record.encode();
        self.appended_since_compact += bytes.len() as u64;
        self.log.append(bytes, done);
    }

    fn add_timer(&mut self, at: Instant, timer: Timer) -> (Instant, u64) {
        self.timer_seq += 1;
        let key = (at, self.timer_seq);
        self.timers.insert(key, timer);
        key
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            match timer {
                Timer::Will(session) => self.publish_delayed_will(session),
                Timer::Expire(session) => self.expire_session(session),
                Timer::KeepAliveSweep => self.sweep_keep_alive(),
            }
        }
    }

    /// Schedules the next keep-alive sweep unless one is pending.
    fn arm_keep_alive_sweep(&mut self) {
        if !self.sweep_armed {
            self.sweep_armed = true;
            self.add_timer(Instant::now() + KEEP_ALIVE_SWEEP, Timer::KeepAliveSweep);
        }
    }

    /// Closes connections whose clients fell silent [MQTT-3.1.2-22]: the connection
    /// then sends DISCONNECT 0x8D and the will goes out. One pass over the connected
    /// sessions per second replaces a timer in every connection task; a silent client
    /// is closed at most one sweep late. The same pass closes connections whose
    /// credentials expired (a SAS token's `se`) with DISCONNECT 0x87.
    fn sweep_keep_alive(&mut self) {
        self.sweep_armed = false;
        let now = crate::outbox::clock_ms();
        let mut connected = false;
        for conn in self.sessions.values().filter_map(|s| s.conn.as_ref()) {
            connected = true;
            if conn.outbox.is_silent(now) {
                conn.outbox.push(crate::outbox::Outbound::Disconnect(
                    ReasonCode::KEEP_ALIVE_TIMEOUT,
                    "keep-alive timeout",
                ));
            } else if conn.outbox.is_expired(now) {
                conn.outbox.push(crate::outbox::Outbound::Disconnect(
                    ReasonCode::NOT_AUTHORIZED,
                    "token expired",
                ));
            }
        }
        if connected {
            self.arm_keep_alive_sweep();
        }
    }

    fn shutdown(&mut self, done: oneshot::Sender<()>) {
        for session in self.sessions.values_mut() {
            if let Some(conn) = session.conn.take() {
                conn.outbox.push(crate::outbox::Outbound::Disconnect(
                    ReasonCode::SERVER_SHUTTING_DOWN,
                    "server shutting down",
                ));
            }
        }
        self.log.barrier(Box::new(move || {
            let _ = done.send(());
        }));
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Caps a requested session expiry by the configured maximum.
fn cap_expiry(requested: u32, max: Duration) -> u32 {
    let max = u32::try_from(max.as_secs()).unwrap_or(u32::MAX);
    requested.min(max)
}
