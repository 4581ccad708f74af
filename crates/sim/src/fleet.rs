//! The fleet: one supervisor task per device on the caller's tokio runtime. A
//! supervisor waits for its device's staggered start, runs `agent::run` until the
//! device's next partition (or the end), waits out the partition, runs it again on the
//! same offline buffer, and at the end reads what was left unacknowledged.
//!
//! Shutdown is a `watch` channel: [`Fleet::stop`] flips it, every running agent sends
//! a clean DISCONNECT, and the supervisors return their [`DeviceOutcome`]s.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::plan::{DevicePlan, Plan};
use crate::source::Counted;
use crate::Error;
use crate::SourceAddresses;

/// How the devices reach and prove themselves to the hub (the same for all).
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// The hub's MQTT address, `host:port`.
    pub hub: String,
    /// CA file: TLS when set.
    pub ca: Option<PathBuf>,
    /// Host name for SAS tokens, when not the host part of `hub`.
    pub host_name: Option<String>,
    /// Anonymous (`serve --dev`), or a group key: each device provisions itself.
    pub identity: agent::Identity,
    /// Parent of the devices' offline buffers (`{root}/{id}`).
    pub buffer_root: PathBuf,
    /// Which local address each device connects from.
    pub source_addresses: SourceAddresses,
    /// Firmware updates (OTA) on every device, when set (`crate::firmware`).
    pub firmware: Option<crate::firmware::FirmwareConfig>,
}

/// Counters the progress line reads while the fleet runs.
#[derive(Debug, Default)]
struct Live {
    /// Agents running now.
    running: AtomicUsize,
    /// Feature windows taken, all devices.
    windows: Arc<AtomicU64>,
}

/// What one device did (serialisable: a shard process hands it to its parent).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeviceOutcome {
    /// Device id.
    pub id: String,
    /// Feature messages produced (each written to the offline buffer, then sent).
    pub windows: u64,
    /// Records still in the buffer at the end: never acknowledged by the hub.
    pub unsent: u64,
    /// Records the buffer evicted to stay in its bounds.
    pub evicted: u64,
    /// Connections the hub accepted (every agent start and reconnection).
    #[serde(default)]
    pub connects: u64,
    /// Connections lost (the hub went away; not clean disconnects).
    #[serde(default)]
    pub disconnects: u64,
    /// Why the agent stopped early, if it did.
    pub error: Option<String>,
}

impl DeviceOutcome {
    /// A device that did nothing, and why.
    fn failed(id: &str, why: String) -> DeviceOutcome {
        DeviceOutcome {
            id: id.to_owned(),
            windows: 0,
            unsent: 0,
            evicted: 0,
            connects: 0,
            disconnects: 0,
            error: Some(why),
        }
    }

    /// Feature messages the hub acknowledged (PUBACK, which means stored).
    pub fn acked(&self) -> u64 {
        self.windows.saturating_sub(self.unsent + self.evicted)
    }
}

/// What the whole fleet did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Per device, by number.
    pub devices: Vec<DeviceOutcome>,
    /// When the fleet started, ms since the Unix epoch.
    pub started_ms: i64,
    /// How long it ran.
    pub ran: Duration,
}

/// Shared by the supervisors.
struct Context {
    plan: Arc<Plan>,
    config: FleetConfig,
    t0: Instant,
    live: Live,
}

/// A running fleet.
pub struct Fleet {
    context: Arc<Context>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<DeviceOutcome>>,
    started_ms: i64,
}

impl Fleet {
    /// Checks every device's options, then spawns the supervisors on the current tokio
    /// runtime (call it from inside one). Devices start over the scenario's stagger.
    pub fn start(plan: Plan, config: FleetConfig) -> Result<Fleet, Error> {
        for device in &plan.devices {
            let options = options(device, &plan, &config);
            options.validate().map_err(|source| Error::Agent {
                device: device.id.clone(),
                source,
            })?;
        }
        let context = Arc::new(Context {
            plan: Arc::new(plan),
            config,
            t0: Instant::now(),
            live: Live::default(),
        });
        let (stop, watching) = watch::channel(false);
        let tasks = (0..context.plan.devices.len())
            .map(|i| tokio::spawn(supervise(context.clone(), i, watching.clone())))
            .collect();
        Ok(Fleet {
            context,
            stop,
            tasks,
            started_ms: epoch_ms(),
        })
    }

    /// The plan the fleet runs.
    pub fn plan(&self) -> &Plan {
        &self.context.plan
    }

    /// When it started, ms since the Unix epoch.
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.context.t0.elapsed()
    }

    /// Agents running now.
    pub fn running(&self) -> usize {
        self.context.live.running.load(Ordering::Relaxed)
    }

    /// Feature messages produced so far, all devices.
    pub fn windows(&self) -> u64 {
        self.context.live.windows.load(Ordering::Relaxed)
    }

    /// Stops every agent (clean DISCONNECT) and collects what each device did.
    pub async fn stop(self) -> Outcome {
        let ran = self.elapsed();
        let _ = self.stop.send(true);
        let mut devices = Vec::with_capacity(self.tasks.len());
        for (task, plan) in self.tasks.into_iter().zip(&self.context.plan.devices) {
            devices.push(task.await.unwrap_or_else(|e| {
                DeviceOutcome::failed(&plan.id, format!("supervisor failed: {e}"))
            }));
        }
        Outcome {
            devices,
            started_ms: self.started_ms,
            ran,
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The agent options of one device.
fn options(device: &DevicePlan, plan: &Plan, config: &FleetConfig) -> agent::Options {
    let mut options = agent::Options::new(&device.id, &config.hub);
    options.ca = config.ca.clone();
    options.host_name = config.host_name.clone();
    options.identity = config.identity.clone();
    options.interval = plan.scenario.interval;
    options.speed = plan.scenario.speed;
    options.buffer_dir = config.buffer_root.join(&device.id);
    options.source = device.source_spec(&plan.scenario, Duration::ZERO);
    options.firmware = format!("sim-{}", env!("CARGO_PKG_VERSION"));
    options.source_address = config.source_addresses.of(device.number);
    if let Some(firmware) = &config.firmware {
        options.ota = Some(firmware.for_device(&options.buffer_dir));
        options.firmware = firmware.factory().to_owned();
    }
    options
}

/// One device's life: start, run, partitions, the end.
async fn supervise(
    context: Arc<Context>,
    index: usize,
    mut stop: watch::Receiver<bool>,
) -> DeviceOutcome {
    let plan = &context.plan;
    let Some(device) = plan.devices.get(index) else {
        return DeviceOutcome::failed("", "no such device".into());
    };
    let windows = Arc::new(AtomicU64::new(0));
    let stats = Arc::new(agent::Stats::default());
    let mut error = None;
    let mut at = device.start;
    let mut partitions = device.offline.iter().copied().peekable();
    loop {
        if !sleep_until(context.t0 + at, &mut stop).await {
            break;
        }
        // Partitions that ended already do not matter; one in force delays the start.
        while partitions.next_if(|&(_, to)| to <= at).is_some() {}
        if let Some((_, to)) = partitions.next_if(|&(from, _)| from <= at) {
            at = to;
            continue;
        }
        let down = partitions.peek().map(|&(from, _)| context.t0 + from);
        let counters = (&windows, &stats);
        if let Err(e) = run_once(&context, device, at, down, counters, stop.clone()).await {
            error = Some(e.to_string());
            break;
        }
        match partitions.next() {
            Some((_, to)) if !*stop.borrow() => at = to,
            _ => break,
        }
    }
    let (unsent, evicted) = leftover(&context.config.buffer_root.join(&device.id));
    let seen = stats.snapshot();
    DeviceOutcome {
        id: device.id.clone(),
        windows: windows.load(Ordering::Relaxed),
        unsent,
        evicted,
        connects: seen.connects,
        disconnects: seen.disconnects,
        error,
    }
}

/// Runs the agent from wall offset `at` until `down` (a partition) or the fleet stops.
async fn run_once(
    context: &Context,
    device: &DevicePlan,
    at: Duration,
    down: Option<Instant>,
    (windows, stats): (&Arc<AtomicU64>, &Arc<agent::Stats>),
    mut stop: watch::Receiver<bool>,
) -> Result<(), agent::Error> {
    let plan = &context.plan;
    let mut options = options(device, plan, &context.config);
    options.stats = stats.clone();
    options.source = device.source_spec(&plan.scenario, at);
    let motor = agent::parse_source(&options.source, device.seed)?;
    let source = Box::new(Counted::new(
        motor,
        plan.scenario.axes,
        windows.clone(),
        context.live.windows.clone(),
    ));
    let shutdown = async move {
        match down {
            Some(down) => {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    () = tokio::time::sleep_until(down) => {}
                }
            }
            None => {
                let _ = stop.wait_for(|s| *s).await;
            }
        }
    };
    context.live.running.fetch_add(1, Ordering::Relaxed);
    let result = agent::run(options, source, shutdown).await;
    context.live.running.fetch_sub(1, Ordering::Relaxed);
    result
}

/// Sleeps until `deadline`; `false` when the fleet was stopped first.
async fn sleep_until(deadline: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    let slept = tokio::select! {
        _ = stop.wait_for(|s| *s) => false,
        () = tokio::time::sleep_until(deadline) => true,
    };
    slept && !*stop.borrow()
}

/// Records left in a device's buffer, and records it evicted.
fn leftover(dir: &Path) -> (u64, u64) {
    match agent::OfflineBuffer::open(dir, agent::Limits::default()) {
        Ok(buffer) => (buffer.len() as u64, buffer.evicted()),
        Err(_) => (0, 0),
    }
}
