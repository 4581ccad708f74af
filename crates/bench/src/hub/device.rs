//! One simulated device: an MQTT 3.1.1 connection (the bench crate's own client) that
//! behaves like an Azure IoT device SDK on the hub's topics.
//!
//! Each device is one tokio task. It connects and subscribes (with at most
//! [`Fleet::handshakes`] handshakes under way across the fleet), then loops: whatever the
//! hub sends is answered at once (PUBACK for desired updates, a response for method
//! calls), and each new [`Command`] from the driver starts the device's share of a step.
//! Everything a device sees is recorded in the [`Fleet`] tallies, after the answers it
//! triggered have been written to the socket.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use mqtt::{Ack, Packet, Publish, QoS, Subscribe, Subscription, SubscriptionOptions};
use serde_json::Value;
use tokio::sync::watch;

use super::fleet::{Command, Fleet};
use super::topics;
use crate::client::{self, Options, Reader, Writer};

/// Time allowed for CONNECT to SUBACK, once the handshake's turn has come.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes a device asks the kernel for per read: everything the hub sends is small.
const READ_CHUNK: usize = 2048;
/// The member of a desired patch that carries the fan-out round.
pub(crate) const ROUND_KEY: &str = "benchRound";

/// Who a device is and where it connects from.
#[derive(Clone, Debug)]
pub(crate) struct DeviceSpec {
    /// Index into the fleet.
    pub(crate) index: usize,
    /// Local address to bind, to spread connections over source addresses.
    pub(crate) source: Option<IpAddr>,
}

/// Runs one device until the fleet's command channel closes; failures are recorded in
/// the fleet rather than returned, so the driver sees them while it waits.
pub(crate) async fn run(fleet: Arc<Fleet>, addr: SocketAddr, spec: DeviceSpec) {
    let commands = fleet.commands();
    if let Err(e) = simulate(&fleet, addr, &spec, commands).await {
        fleet.fail(spec.index, &e);
    }
}

/// The device's life: handshake, then serve packets and commands.
async fn simulate(
    fleet: &Arc<Fleet>,
    addr: SocketAddr,
    spec: &DeviceSpec,
    mut commands: watch::Receiver<Command>,
) -> Result<()> {
    let (mut reader, mut device) = handshake(fleet, addr, spec).await?;
    loop {
        tokio::select! {
            packet = reader.next() => {
                let packet = packet?.context("the server closed the connection")?;
                device.handle(packet)?;
                while let Some(packet) = reader.try_next()? {
                    device.handle(packet)?;
                }
            }
            changed = commands.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let command = *commands.borrow_and_update();
                device.obey(command)?;
            }
        }
        device.flush().await?;
    }
}

/// Connects, subscribes to the three device filters in one SUBSCRIBE, and waits for the
/// SUBACK, serving anything the hub sends before it. Holds a fleet handshake permit
/// throughout.
async fn handshake(
    fleet: &Arc<Fleet>,
    addr: SocketAddr,
    spec: &DeviceSpec,
) -> Result<(Reader, Device)> {
    let _permit = fleet
        .handshakes
        .acquire()
        .await
        .context("handshake semaphore closed")?;
    let id = &fleet.ids[spec.index];
    let mut options = Options::new(id.clone());
    options.source = spec.source;
    options.read_chunk = READ_CHUNK;
    let work = async {
        let client = client::connect(addr, &options).await?;
        let mut reader = client.reader;
        let mut device = Device::new(Arc::clone(fleet), spec.index, client.writer);
        device.writer.push(&subscribe_packet())?;
        device.flush().await?;
        loop {
            match reader.next().await? {
                Some(Packet::SubAck(ack)) => {
                    check_suback(&ack.codes)?;
                    break;
                }
                Some(packet) => device.handle(packet)?,
                None => bail!("the server closed the connection before SUBACK"),
            }
            device.flush().await?;
        }
        fleet.subscribed.record(fleet.origin, spec.index, true);
        Ok::<_, anyhow::Error>((reader, device))
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, work)
        .await
        .with_context(|| format!("no CONNACK and SUBACK within {HANDSHAKE_TIMEOUT:?}"))?
}

/// SUBSCRIBE for all of [`topics::SUBSCRIPTIONS`].
fn subscribe_packet() -> Packet {
    let subscriptions = topics::SUBSCRIPTIONS
        .iter()
        .map(|(filter, qos)| Subscription {
            filter: (*filter).to_owned(),
            options: SubscriptionOptions {
                qos: *qos,
                ..Default::default()
            },
        })
        .collect();
    Packet::Subscribe(Subscribe {
        packet_id: 1,
        subscriptions,
        properties: Default::default(),
    })
}

/// Fails unless every filter was granted.
fn check_suback(codes: &[mqtt::ReasonCode]) -> Result<()> {
    if codes.len() != topics::SUBSCRIPTIONS.len() {
        bail!("SUBACK has {} codes for 3 filters", codes.len());
    }
    if let Some((i, code)) = codes.iter().enumerate().find(|(_, c)| c.is_error()) {
        bail!(
            "SUBSCRIBE {} refused with {:#04x}",
            topics::SUBSCRIPTIONS[i].0,
            code.0
        );
    }
    Ok(())
}

/// A device's protocol state between packets.
struct Device {
    fleet: Arc<Fleet>,
    index: usize,
    writer: Writer,
    /// Request id of the next twin request.
    next_rid: u64,
    /// The reported patch in flight: its request id and when it was sent.
    in_flight: Option<(u64, Instant)>,
    /// Reported patches still to send after the one in flight.
    patches_left: u32,
    /// Latencies of this device's answered patches.
    latencies: Vec<Duration>,
    /// Request id of the probe GET, while it is outstanding.
    probe_rid: Option<u64>,
    /// Whether the desired update sent at subscription has arrived.
    synced: bool,
    /// The last fan-out round received.
    round_seen: u64,
    /// What to record once the answers now buffered are on the wire.
    after_flush: AfterFlush,
}

/// Tally entries that wait for the next flush.
#[derive(Default)]
struct AfterFlush {
    synced: bool,
    desired: bool,
    methods: u64,
}

impl Device {
    /// A device that has sent nothing yet, writing to `writer`.
    fn new(fleet: Arc<Fleet>, index: usize, writer: Writer) -> Device {
        Device {
            fleet,
            index,
            writer,
            next_rid: 1,
            in_flight: None,
            patches_left: 0,
            latencies: Vec::new(),
            probe_rid: None,
            synced: false,
            round_seen: 0,
            after_flush: AfterFlush::default(),
        }
    }

    /// Reacts to one packet from the hub.
    fn handle(&mut self, packet: Packet) -> Result<()> {
        match packet {
            Packet::Publish(publish) => self.on_publish(publish),
            _ => {
                self.unexpected();
                Ok(())
            }
        }
    }

    /// Dispatches a PUBLISH by topic.
    fn on_publish(&mut self, publish: Publish) -> Result<()> {
        if let Some((status, rid)) = topics::twin_answer(&publish.topic) {
            return self.on_twin_answer(status, rid);
        }
        if topics::is_desired_update(&publish.topic) {
            if let Some(id) = publish.packet_id {
                self.writer.push(&Packet::PubAck(Ack::success(id)))?;
            }
            self.on_desired(&publish.payload);
            return Ok(());
        }
        if let Some(rid) = topics::method_request(&publish.topic) {
            // Echo the request payload: the caller checks it came back unchanged.
            let topic = topics::method_response(200, rid);
            let answer = client::publish(&topic, QoS::AtMostOnce, None, publish.payload);
            self.writer.push(&answer)?;
            self.after_flush.methods += 1;
            return Ok(());
        }
        self.unexpected();
        Ok(())
    }

    /// A twin answer: the patch in flight, or the probe.
    fn on_twin_answer(&mut self, status: u16, rid: u64) -> Result<()> {
        let fleet = Arc::clone(&self.fleet);
        match self.in_flight {
            Some((sent_rid, sent_at)) if sent_rid == rid => {
                self.in_flight = None;
                self.latencies.push(sent_at.elapsed());
                if status != 204 {
                    fleet
                        .anomalies
                        .refused_patches
                        .fetch_add(1, Ordering::Relaxed);
                }
                let complete = self.patches_left == 0;
                fleet.reported.record(fleet.origin, self.index, complete);
                if complete {
                    fleet.add_latencies(&self.latencies);
                } else {
                    self.send_patch()?;
                }
            }
            _ if self.probe_rid == Some(rid) => {
                self.probe_rid = None;
                fleet.probed.record(fleet.origin, self.index, true);
            }
            _ => self.unexpected(),
        }
        Ok(())
    }

    /// A desired update: the one sent at subscription, or the current fan-out round.
    fn on_desired(&mut self, payload: &[u8]) {
        let round = serde_json::from_slice::<Value>(payload)
            .ok()
            .and_then(|v| v.get(ROUND_KEY).and_then(Value::as_u64));
        match round {
            Some(r) if r == self.fleet.round.load(Ordering::Relaxed) && r > self.round_seen => {
                self.round_seen = r;
                self.after_flush.desired = true;
            }
            Some(_) => {
                self.fleet
                    .anomalies
                    .duplicate_desired
                    .fetch_add(1, Ordering::Relaxed);
            }
            None if !self.synced => {
                self.synced = true;
                self.after_flush.synced = true;
            }
            None => self.unexpected(),
        }
    }

    /// Starts this device's part of a command.
    fn obey(&mut self, command: Command) -> Result<()> {
        match command {
            Command::Serve => Ok(()),
            Command::Probe { device } if device == self.index => {
                let rid = self.take_rid();
                self.probe_rid = Some(rid);
                let get =
                    client::publish(&topics::twin_get(rid), QoS::AtMostOnce, None, Bytes::new());
                self.writer.push(&get)
            }
            Command::Probe { .. } => Ok(()),
            Command::Report { patches } if patches > 0 => {
                self.patches_left = patches;
                self.latencies.reserve(patches as usize);
                self.send_patch()
            }
            Command::Report { .. } => Ok(()),
        }
    }

    /// Queues the next reported patch and starts its clock.
    fn send_patch(&mut self) -> Result<()> {
        self.patches_left = self.patches_left.saturating_sub(1);
        let rid = self.take_rid();
        let body = format!(
            "{{\"benchSeq\":{rid},\"temperature\":21.5,\"firmware\":\"1.0.{}\"}}",
            self.index
        );
        let patch = client::publish(
            &topics::reported_patch(rid),
            QoS::AtMostOnce,
            None,
            Bytes::from(body),
        );
        self.writer.push(&patch)?;
        self.in_flight = Some((rid, Instant::now()));
        Ok(())
    }

    /// A fresh request id.
    fn take_rid(&mut self) -> u64 {
        let rid = self.next_rid;
        self.next_rid += 1;
        rid
    }

    /// Sends everything queued, then records what the sent answers complete.
    async fn flush(&mut self) -> Result<()> {
        self.writer.flush().await?;
        let done = std::mem::take(&mut self.after_flush);
        let fleet = &self.fleet;
        if done.synced {
            fleet.synced.record(fleet.origin, self.index, true);
        }
        if done.desired {
            fleet.desired.record(fleet.origin, self.index, true);
        }
        if done.methods > 0 {
            fleet.methods.fetch_add(done.methods, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Counts a packet the device had no use for.
    fn unexpected(&self) {
        self.fleet
            .anomalies
            .unexpected
            .fetch_add(1, Ordering::Relaxed);
    }
}
