//! The agent's loop and state: production, sending, the hub's packets, timers.

use std::future::Future;
use std::time::Duration;

use mqtt::{ConnAck, Connect, Packet, Properties, QoS, Will};
use tokio::time::Instant;

use super::login::Login;
use crate::backoff::{Backoff, Jitter};
use crate::buffer::OfflineBuffer;
use crate::capture::Capture;
use crate::command::CaptureRequest;
use crate::core::{Core, Effect};
use crate::features::FeatureMaker;
use crate::identity::{device_credentials, expiry_from_now};
use crate::link::{normal_disconnect, Endpoint, Link, Reader, Writer, STEP_TIMEOUT, VERSION};
use crate::options::Options;
use crate::ota::{self, Step, Updater};
use crate::settings::{Mode, Settings};
use crate::source::Source;
use crate::stats;
use crate::Error;

/// How long shutdown waits for queued bytes and the DISCONNECT to leave.
const GOODBYE_GRACE: Duration = Duration::from_secs(2);

/// The connection and its keep-alive bookkeeping.
struct Connected {
    link: Link,
    /// When we last sent anything.
    last_sent: Instant,
    /// When the writer last made progress or had nothing to send: a hub that takes no
    /// bytes for [`STEP_TIMEOUT`] is a lost connection.
    progress: Instant,
    /// When an unanswered PINGREQ was sent.
    ping_sent: Option<Instant>,
    /// Keep-alive in force (ours, or the server's).
    keep_alive: Duration,
}

/// A connection attempt in progress.
type Opening = std::pin::Pin<Box<dyn Future<Output = Result<(Link, ConnAck), Error>> + Send>>;

/// What woke the loop.
enum Event {
    /// A deadline passed.
    Tick,
    /// A packet, the end of the connection, or a read error.
    Read(Result<Option<Packet>, Error>),
    /// The socket took some bytes (or failed).
    Wrote(Result<(), Error>),
    /// A connection attempt finished.
    Opened(Result<(Link, ConnAck), Error>),
    /// The update task has news.
    Ota(ota::Event),
}

/// Why [`Agent::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    /// Shutdown was asked for.
    Stop,
    /// The active firmware slot changed: boot again.
    Reboot,
}

/// A capture being streamed.
struct Streaming {
    capture: Capture,
    /// When the next chunk is due.
    next_at: Instant,
}

/// The agent's state.
pub(super) struct Agent {
    options: Options,
    endpoint: Endpoint,
    login: Login,
    source: Box<dyn Source>,
    buffer: OfflineBuffer,
    core: Core,
    maker: FeatureMaker,
    backoff: Backoff,
    jitter: Jitter,
    connection: Option<Connected>,
    next_connect: Instant,
    next_features: Instant,
    streaming: Option<Streaming>,
    /// Real time at start (device time = elapsed × speed).
    started: Instant,
    /// Over-the-air updates, when enabled.
    updater: Option<Updater>,
    /// Set when an update step asks for a reboot; ends [`Agent::run`].
    reboot: bool,
}

impl Agent {
    pub(super) fn new(
        options: Options,
        endpoint: Endpoint,
        login: Login,
        source: Box<dyn Source>,
        buffer: OfflineBuffer,
        jitter: Jitter,
        updater: Option<Updater>,
    ) -> Agent {
        let defaults = Settings::new(options.interval);
        let mut maker = FeatureMaker::new(defaults.window);
        // Numbering continues where the buffer's keys left off, across restarts.
        maker.set_seq(buffer.next_key() as u32);
        let now = Instant::now();
        let version = updater
            .as_ref()
            .map_or_else(|| options.firmware.clone(), Updater::version);
        Agent {
            core: Core::new(&login.device_id, &version, defaults),
            options,
            endpoint,
            login,
            source,
            buffer,
            maker,
            backoff: Backoff::default(),
            jitter,
            connection: None,
            next_connect: now,
            next_features: now,
            streaming: None,
            started: now,
            updater,
            reboot: false,
        }
    }

    /// Boots again after the active slot changed: a new session (connection, core,
    /// reported version); production, the buffer and the source carry on.
    pub(super) async fn reboot(&mut self) {
        self.disconnect().await;
        self.connection = None;
        self.streaming = None;
        self.reboot = false;
        if let Some(updater) = &mut self.updater {
            updater.reboot();
            let defaults = Settings::new(self.options.interval);
            self.core = Core::new(&self.login.device_id, &updater.version(), defaults);
            self.maker.set_window(defaults.window);
            tracing::info!(version = updater.version(), "rebooted");
        }
        self.backoff.reset();
        self.next_connect = Instant::now();
    }

    /// Carries out an updater step.
    fn on_step(&mut self, step: Step) {
        match step {
            Step::Continue => {}
            Step::Report(report) => {
                let packet = self.core.report_firmware(ota::report_json(&report));
                if let Err(e) = self.queue(&packet) {
                    self.lost(e);
                }
            }
            Step::Reboot => self.reboot = true,
        }
    }

    /// Device time now.
    fn device_time(&self) -> Duration {
        self.started.elapsed().mul_f64(self.options.speed)
    }

    /// A device-time span in real time.
    fn real(&self, device: Duration) -> Duration {
        device.div_f64(self.options.speed)
    }

    /// Runs until shutdown (then says goodbye) or a reboot request.
    pub(super) async fn run<F: Future<Output = ()>>(
        &mut self,
        mut shutdown: std::pin::Pin<&mut F>,
    ) -> Result<Exit, Error> {
        // A connection attempt runs alongside everything else, so a hub that does not
        // answer (a black-holed network) never delays a feature window.
        let mut opening: Option<Opening> = None;
        loop {
            if self.reboot {
                return Ok(Exit::Reboot);
            }
            let idle = self.connection.is_none() && opening.is_none();
            // A simulated firmware crash: this boot never reaches the hub.
            let crashed = self.updater.as_ref().is_some_and(Updater::crashed);
            if idle && !crashed && Instant::now() >= self.next_connect {
                opening = self.start_connect();
            }
            if let Err(e) = self.pump() {
                self.lost(e);
            }
            let deadline = self.deadline(opening.is_some());
            let (reader, writer) = match &mut self.connection {
                Some(c) => {
                    if !c.link.writer.is_pending() {
                        c.progress = Instant::now();
                    }
                    (Some(&mut c.link.reader), Some(&mut c.link.writer))
                }
                None => (None, None),
            };
            let event = tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(deadline) => Event::Tick,
                read = next_packet(reader) => Event::Read(read),
                wrote = write_pending(writer) => Event::Wrote(wrote),
                opened = finish_opening(&mut opening) => Event::Opened(opened),
                ota = next_ota(&mut self.updater) => Event::Ota(ota),
            };
            match event {
                Event::Tick => {}
                Event::Read(Ok(Some(packet))) => {
                    if let Err(e) = self.on_packet(packet) {
                        self.lost(e);
                    }
                }
                Event::Read(Ok(None)) => {
                    self.lost(Error::Connection("the hub closed the connection".into()))
                }
                Event::Read(Err(e)) => self.lost(e),
                Event::Wrote(Ok(())) => {
                    if let Some(c) = &mut self.connection {
                        c.last_sent = Instant::now();
                        c.progress = c.last_sent;
                    }
                }
                Event::Wrote(Err(e)) => self.lost(e),
                Event::Opened(opened) => {
                    opening = None;
                    self.on_opened(opened);
                }
                Event::Ota(event) => {
                    if let Some(updater) = &mut self.updater {
                        let step = updater.on_event(event);
                        self.on_step(step);
                    }
                }
            }
            self.on_timers();
        }
        self.goodbye().await;
        Ok(Exit::Stop)
    }

    /// The earliest thing to wake for.
    fn deadline(&self, opening: bool) -> Instant {
        let mut deadline = self.next_features;
        if let Some(s) = &self.streaming {
            deadline = deadline.min(s.next_at);
        }
        if let Some(due) = self.updater.as_ref().and_then(Updater::deadline) {
            deadline = deadline.min(due);
        }
        match &self.connection {
            None if opening => deadline,
            None => deadline.min(self.next_connect),
            Some(c) => {
                let ping_due = c.last_sent + c.keep_alive.mul_f64(0.75);
                let answer_due = c.ping_sent.map(|at| at + c.keep_alive / 2);
                let stall_due = c.progress + STEP_TIMEOUT;
                deadline.min(answer_due.unwrap_or(ping_due)).min(stall_due)
            }
        }
    }

    /// Starts a connection attempt (TCP, TLS, CONNECT, CONNACK) with fresh credentials.
    fn start_connect(&mut self) -> Option<Opening> {
        let login = &self.login;
        let key = login.key.as_deref();
        let credentials =
            match device_credentials(&login.host, &login.device_id, key, expiry_from_now()) {
                Ok(credentials) => credentials,
                Err(e) => {
                    self.failed(e);
                    return None;
                }
            };
        let connect = Connect {
            protocol: VERSION,
            clean_start: true,
            keep_alive: self.options.keep_alive,
            client_id: login.device_id.clone(),
            will: Some(will(&login.device_id)),
            username: Some(credentials.username),
            password: credentials.password,
            properties: Properties::default(),
        };
        let endpoint = self.endpoint.clone();
        Some(Box::pin(
            async move { Link::open(&endpoint, connect).await },
        ))
    }

    /// A connection attempt ended: greet the hub (the loop sends it), or schedule the
    /// next attempt.
    fn on_opened(&mut self, opened: Result<(Link, ConnAck), Error>) {
        let (mut link, ack) = match opened {
            Ok(opened) => opened,
            Err(e) => return self.failed(e),
        };
        let evicted = self.buffer.evicted();
        let greeting = self
            .core
            .on_connected(ack.properties.receive_maximum, evicted);
        let mut queued: Result<(), Error> = greeting.iter().try_for_each(|p| link.writer.queue(p));
        // The update's latest state again: a report lost with a connection (or a
        // process) reaches the hub now.
        if let Some(firmware) = self.updater.as_ref().map(Updater::greeting) {
            let packet = self.core.report_firmware(firmware);
            queued = queued.and_then(|()| link.writer.queue(&packet));
        }
        if let Err(e) = queued {
            self.core.on_disconnected();
            return self.failed(e);
        }
        // MQTT 5: the server may impose its own keep-alive [MQTT-3.2.2-21].
        let seconds = ack
            .properties
            .server_keep_alive
            .unwrap_or(self.options.keep_alive);
        tracing::info!(hub = %self.endpoint.address, buffered = self.buffer.len(), "connected");
        self.backoff.reset();
        stats::add(&self.options.stats.connects, 1);
        self.connection = Some(Connected {
            link,
            last_sent: Instant::now(),
            progress: Instant::now(),
            ping_sent: None,
            // 0 turns keep-alive off: ping once a day, harmless.
            keep_alive: Duration::from_secs(match seconds {
                0 => 86_400,
                s => u64::from(s),
            }),
        });
    }

    /// A connection attempt failed: retry after the backoff.
    fn failed(&mut self, error: Error) {
        let delay = self.backoff.next_delay(self.jitter.next_u64());
        tracing::warn!(error = %error, retry_in = ?delay, "cannot connect");
        self.next_connect = Instant::now() + delay;
    }

    /// The connection broke: forget what was in flight, abort a capture, retry later.
    fn lost(&mut self, error: Error) {
        if self.connection.take().is_none() {
            return;
        }
        self.core.on_disconnected();
        stats::add(&self.options.stats.disconnects, 1);
        if let Some(s) = self.streaming.take() {
            tracing::warn!(capture = s.capture.id(), "capture aborted: connection lost");
            self.next_features = self.next_features.max(Instant::now());
        }
        let delay = self.backoff.next_delay(self.jitter.next_u64());
        let buffered = self.buffer.len();
        tracing::warn!(error = %error, retry_in = ?delay, buffered, "disconnected");
        self.next_connect = Instant::now() + delay;
    }

    /// Queues what the window allows: due capture chunks, then buffered features. The
    /// loop's `select!` hands them to the socket as it takes them.
    fn pump(&mut self) -> Result<(), Error> {
        let Some(connection) = &mut self.connection else {
            return Ok(());
        };
        let writer = &mut connection.link.writer;
        let mut source_failed = false;
        if let Some(streaming) = &mut self.streaming {
            while self.core.can_publish() && Instant::now() >= streaming.next_at {
                let chunk = match streaming.capture.next_chunk(self.source.as_mut()) {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(e) => {
                        // The sensor failed, not the connection: give up this capture only.
                        let capture = streaming.capture.id();
                        tracing::warn!(error = %e, capture, "capture aborted");
                        source_failed = true;
                        break;
                    }
                };
                let properties = streaming.capture.properties(chunk.seq);
                writer.queue(&self.core.publish_chunk(&properties, chunk.payload()))?;
                stats::add(&self.options.stats.chunks, 1);
                streaming.next_at += streaming
                    .capture
                    .chunk_duration()
                    .div_f64(self.options.speed);
            }
            if streaming.capture.is_done() || source_failed {
                if !source_failed {
                    stats::add(&self.options.stats.captures, 1);
                    tracing::info!(
                        capture = streaming.capture.id(),
                        chunks = streaming.capture.chunks(),
                        "capture sent"
                    );
                }
                self.streaming = None;
                self.next_features = self.next_features.max(Instant::now());
            }
        }
        while let Some(key) = self
            .core
            .next_feature_key(|after| self.buffer.next_after(after))
        {
            match self.buffer.read(key)? {
                Some(payload) => writer.queue(&self.core.publish_feature(key, payload))?,
                None => continue,
            }
        }
        Ok(())
    }

    /// One packet from the hub.
    fn on_packet(&mut self, packet: Packet) -> Result<(), Error> {
        match packet {
            Packet::Publish(publish) => {
                if let (QoS::AtLeastOnce, Some(id)) = (publish.qos, publish.packet_id) {
                    self.queue(&Packet::PubAck(mqtt::Ack::success(id)))?;
                }
                let (packets, effects) = self.core.on_publish(&publish.topic, &publish.payload);
                for packet in &packets {
                    self.queue(packet)?;
                }
                for effect in effects {
                    self.apply(effect);
                }
            }
            Packet::PubAck(ack) => {
                if let Some(key) = self.core.on_puback(ack.packet_id, ack.code) {
                    self.buffer.remove(key)?;
                    stats::add(&self.options.stats.acknowledged, 1);
                }
            }
            Packet::SubAck(ack) => {
                if ack.codes.iter().any(|c| c.is_error()) {
                    tracing::warn!(codes = ?ack.codes, "the hub refused some subscriptions");
                }
            }
            Packet::PingResp => {
                if let Some(c) = &mut self.connection {
                    c.ping_sent = None;
                }
            }
            Packet::Disconnect(d) => {
                return Err(Error::Connection(format!(
                    "the hub disconnected us: reason {:#04x} {}",
                    d.code.0,
                    d.properties.reason_string.unwrap_or_default()
                )));
            }
            other => tracing::debug!(packet = other.name(), "ignored"),
        }
        Ok(())
    }

    /// Queues a packet on the connection (sent at the next pump or flush).
    fn queue(&mut self, packet: &Packet) -> Result<(), Error> {
        match &mut self.connection {
            Some(c) => c.link.writer.queue(packet),
            None => Ok(()),
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Settings(settings) => {
                self.maker.set_window(settings.window);
                let next = Instant::now() + self.real(settings.interval);
                self.next_features = self.next_features.min(next);
            }
            Effect::Capture { id, request } => {
                let axes = self.source.axes();
                match Capture::new(&id, request, self.source.rate_hz(), axes) {
                    Ok(capture) => {
                        let CaptureRequest { rate_hz, seconds } = request;
                        let chunks = capture.chunks();
                        tracing::info!(capture = %id, rate_hz, seconds, chunks, "capture started");
                        let device_time = self.device_time();
                        self.source.start_burst(device_time);
                        self.streaming = Some(Streaming {
                            capture,
                            next_at: Instant::now(),
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "capture refused"),
                }
            }
            Effect::Firmware { value, full } => {
                if let Some(updater) = &mut self.updater {
                    let step = updater.on_desired(&value, full);
                    self.on_step(step);
                }
            }
            Effect::TwinSynced => {
                if let Some(updater) = &mut self.updater {
                    for step in updater.on_healthy() {
                        self.on_step(step);
                    }
                }
            }
        }
    }

    /// Feature windows, keep-alive and a new image's health deadline.
    fn on_timers(&mut self) {
        let now = Instant::now();
        if let Some(updater) = &mut self.updater {
            let step = updater.on_deadline();
            self.on_step(step);
        }
        if now >= self.next_features && self.streaming.is_none() {
            let settings = *self.core.settings();
            // A simulated firmware crash produces nothing either.
            let crashed = self.updater.as_ref().is_some_and(Updater::crashed);
            if settings.mode != Mode::Idle && !crashed {
                self.produce();
            }
            let interval = self.real(settings.interval);
            self.next_features += interval;
            if self.next_features < now {
                // Far behind (a suspended process, a CPU that cannot keep up): skip the
                // missed windows, do not produce them in a burst; count them.
                let behind = (now - self.next_features).as_secs_f64();
                let missed = (behind / interval.as_secs_f64().max(1e-9)) as u64 + 1;
                stats::add(&self.options.stats.skipped, missed);
                tracing::debug!(missed, "feature windows skipped");
                self.next_features = now + interval;
            }
        }
        let mut broken = None;
        if let Some(c) = &mut self.connection {
            if c.link.writer.is_pending() && now >= c.progress + STEP_TIMEOUT {
                broken = Some(Error::Connection("the hub stopped taking our bytes".into()));
            }
            match c.ping_sent {
                Some(at) if now >= at + c.keep_alive / 2 => {
                    broken = broken.or(Some(Error::Connection("no PINGRESP from the hub".into())));
                }
                None if now >= c.last_sent + c.keep_alive.mul_f64(0.75) => {
                    broken = broken.or(c.link.writer.queue(&Packet::PingReq).err());
                    c.ping_sent = Some(now);
                    c.last_sent = now;
                }
                _ => {}
            }
        }
        if let Some(e) = broken {
            self.lost(e);
        }
    }

    /// One feature window into the buffer. A failed window (sensor, analysis, or a full
    /// or failing disk) is logged and lost, never fatal: the next interval tries again.
    fn produce(&mut self) {
        let device_time = self.device_time();
        self.source.start_burst(device_time);
        match self.maker.compute(self.source.as_mut()) {
            Ok(features) => {
                let payload = device::encode::cbor::to_vec(&features);
                let key = match self.buffer.push(&payload) {
                    Ok(key) => key,
                    Err(e) => {
                        let seq = features.seq;
                        tracing::error!(error = %e, seq, "feature window not buffered");
                        return;
                    }
                };
                stats::add(&self.options.stats.produced, 1);
                tracing::debug!(
                    seq = features.seq,
                    key,
                    buffered = self.buffer.len(),
                    "features"
                );
            }
            Err(e) => tracing::warn!(error = %e, "feature window failed"),
        }
    }

    /// Sends what is queued, then DISCONNECT (no will); a hub that does not take it
    /// within [`GOODBYE_GRACE`] sees a lost connection (and the will) instead.
    async fn disconnect(&mut self) {
        if let Some(c) = &mut self.connection {
            let disconnect = Packet::Disconnect(normal_disconnect());
            let _ = tokio::time::timeout(GOODBYE_GRACE, c.link.send(&disconnect)).await;
        }
    }

    /// A clean DISCONNECT (no will) on shutdown.
    async fn goodbye(&mut self) {
        self.disconnect().await;
        let stats = self.options.stats.snapshot();
        tracing::info!(
            buffered = self.buffer.len(),
            evicted = self.buffer.evicted(),
            produced = stats.produced,
            acknowledged = stats.acknowledged,
            skipped = stats.skipped,
            "agent stopped"
        );
    }
}

/// The end of the connection attempt, or never when there is none (for `select!`).
async fn finish_opening(opening: &mut Option<Opening>) -> Result<(Link, ConnAck), Error> {
    match opening {
        Some(future) => future.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The update task's next event, or never without updates (for `select!`).
async fn next_ota(updater: &mut Option<Updater>) -> ota::Event {
    match updater {
        Some(updater) => updater.next_event().await,
        None => std::future::pending().await,
    }
}

/// The next packet, or never when not connected (for `select!`).
async fn next_packet(reader: Option<&mut Reader>) -> Result<Option<Packet>, Error> {
    match reader {
        Some(reader) => reader.next().await,
        None => std::future::pending().await,
    }
}

/// One step of sending, or never when there is nothing to send (for `select!`).
async fn write_pending(writer: Option<&mut Writer>) -> Result<(), Error> {
    match writer {
        Some(writer) if writer.is_pending() => writer.write_some().await,
        _ => std::future::pending().await,
    }
}

/// The Last Will: `{"event":"offline"}` on the device's telemetry topic, QoS 1, so the
/// hub's pipeline sees an abrupt loss as a message (presence sees it anyway).
fn will(device_id: &str) -> Will {
    let payload = serde_json::json!({ "event": "offline", "deviceId": device_id }).to_string();
    Will {
        topic: crate::topics::telemetry(device_id, &[("$.ct", "application/json")]),
        payload: payload.into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            content_type: Some("application/json".into()),
            ..Properties::default()
        },
    }
}
