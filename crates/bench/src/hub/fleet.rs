//! What the simulated devices share with the benchmark driver: the commands that start
//! each step, the tallies the devices fill in as answers arrive, and waiting on those
//! tallies with a deadline.
//!
//! Devices never block on the driver and the driver never talks to a device directly:
//! a `watch` channel broadcasts the current [`Command`], and every device records what
//! it saw in atomics stamped with the time since a common origin. So the driver can
//! tell not only *whether* all N devices got something but *when the last one did*,
//! and, when a deadline passes, *which* devices are still missing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::sync::{watch, Semaphore};

use super::server::Server;

/// How often waiting loops look at the tallies; bounds the error of their timing only
/// where the time of the last event is not recorded by the devices themselves.
const POLL: Duration = Duration::from_millis(10);
/// How often waiting loops print progress.
const PRINT_EVERY: Duration = Duration::from_secs(5);
/// Missing devices named in an error message.
const NAMED_MISSING: usize = 5;
/// A wait fails early when its tally has not moved for this long: a stalled hub is
/// reported within a minute, not at the end of a deadline sized for slow progress.
const STALL: Duration = Duration::from_secs(60);

/// What the driver asks of the devices; every device reacts to each change once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Serve the hub (acknowledge desired updates, answer methods), send nothing.
    Serve,
    /// Device `device` asks for its twin; its answer shows the hub has worked through
    /// every event queued before it.
    Probe {
        /// Index of the device that sends the GET.
        device: usize,
    },
    /// Every device sends `patches` reported-property patches, one after another.
    Report {
        /// Patches per device.
        patches: u32,
    },
}

/// Events of one kind: how many, when the last one happened, and which devices are done.
pub(crate) struct Tally {
    count: AtomicU64,
    /// Nanoseconds from the fleet's origin to the last event, plus one (0: none yet).
    last_ns: AtomicU64,
    done: Vec<AtomicBool>,
}

impl Tally {
    /// An empty tally for `devices` devices.
    fn new(devices: usize) -> Tally {
        Tally {
            count: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            done: (0..devices).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Records one event of `device`; `complete` marks the device as done.
    pub(crate) fn record(&self, origin: Instant, device: usize, complete: bool) {
        let now = origin.elapsed().as_nanos() as u64 + 1;
        self.last_ns.fetch_max(now, Ordering::Relaxed);
        if complete {
            if let Some(flag) = self.done.get(device) {
                flag.store(true, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Events so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// When the last event happened, if any did.
    pub(crate) fn last(&self, origin: Instant) -> Option<Instant> {
        match self.last_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(origin + Duration::from_nanos(ns - 1)),
        }
    }

    /// How many devices are not done, and the indexes of the first few.
    fn missing(&self) -> (usize, Vec<usize>) {
        let missing: Vec<usize> = (0..self.done.len())
            .filter(|&i| !self.done[i].load(Ordering::Relaxed))
            .collect();
        let first = missing.iter().copied().take(NAMED_MISSING).collect();
        (missing.len(), first)
    }
}

/// Counters of things that should not happen; all are reported, and expected to be 0.
#[derive(Default)]
pub(crate) struct Anomalies {
    /// Reported patches answered with a status other than 204.
    pub(crate) refused_patches: AtomicU64,
    /// A desired update carrying a round that is not the current one, or that the device
    /// had already seen.
    pub(crate) duplicate_desired: AtomicU64,
    /// Packets or topics a device did not expect.
    pub(crate) unexpected: AtomicU64,
}

/// State shared by the driver and all simulated devices of one run.
pub(crate) struct Fleet {
    /// The common time origin of every tally.
    pub(crate) origin: Instant,
    /// Device ids, by device index.
    pub(crate) ids: Vec<String>,
    /// Devices whose CONNACK and SUBACK arrived.
    pub(crate) subscribed: Tally,
    /// Devices that got the desired update the hub sends when a device subscribes.
    pub(crate) synced: Tally,
    /// The probe's twin GET answered.
    pub(crate) probed: Tally,
    /// Reported patches answered; a device is done when all of its patches are.
    pub(crate) reported: Tally,
    /// Desired updates of the current round received and acknowledged.
    pub(crate) desired: Tally,
    /// Method calls answered by the devices.
    pub(crate) methods: AtomicU64,
    /// The round number the desired fan-out writes into every device's twin.
    pub(crate) round: AtomicU64,
    /// Things that should not happen.
    pub(crate) anomalies: Anomalies,
    /// Handshakes allowed under way at once.
    pub(crate) handshakes: Semaphore,
    latencies: Mutex<Vec<Duration>>,
    failures: AtomicU64,
    first_failure: Mutex<Option<String>>,
    commands: watch::Sender<Command>,
}

impl Fleet {
    /// A fleet of the given devices that opens at most `handshakes` connections at once.
    pub(crate) fn new(ids: Vec<String>, handshakes: usize) -> Fleet {
        let n = ids.len();
        let (commands, _) = watch::channel(Command::Serve);
        Fleet {
            origin: Instant::now(),
            ids,
            subscribed: Tally::new(n),
            synced: Tally::new(n),
            probed: Tally::new(n),
            reported: Tally::new(n),
            desired: Tally::new(n),
            methods: AtomicU64::new(0),
            round: AtomicU64::new(0),
            anomalies: Anomalies::default(),
            handshakes: Semaphore::new(handshakes.max(1)),
            latencies: Mutex::new(Vec::new()),
            failures: AtomicU64::new(0),
            first_failure: Mutex::new(None),
            commands,
        }
    }

    /// Number of devices.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// A receiver of commands, for a new device.
    pub(crate) fn commands(&self) -> watch::Receiver<Command> {
        self.commands.subscribe()
    }

    /// Broadcasts a command to every device.
    pub(crate) fn command(&self, command: Command) {
        self.commands.send_replace(command);
    }

    /// Adds the patch latencies of one device.
    pub(crate) fn add_latencies(&self, latencies: &[Duration]) {
        if let Ok(mut all) = self.latencies.lock() {
            all.extend_from_slice(latencies);
        }
    }

    /// Every patch latency recorded so far, sorted.
    pub(crate) fn sorted_latencies(&self) -> Vec<Duration> {
        let mut all = self.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        all.sort_unstable();
        all
    }

    /// Records that a device gave up, keeping the first reason.
    pub(crate) fn fail(&self, device: usize, error: &anyhow::Error) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_failure.lock() {
            if first.is_none() {
                let id = self.ids.get(device).map_or("?", String::as_str);
                *first = Some(format!("{id}: {error:#}"));
            }
        }
    }

    /// An error if any device has failed.
    fn check_failures(&self) -> Result<()> {
        let failures = self.failures.load(Ordering::Relaxed);
        if failures == 0 {
            return Ok(());
        }
        let first = self
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        bail!("{failures} simulated device(s) failed; the first: {first}")
    }

    /// Waits until `tally` counts `expected` events. Fails when a device fails, when the
    /// server exits, after `limit`, or when the tally has not moved for [`STALL`],
    /// saying how many arrived and naming devices that are not done.
    pub(crate) async fn wait(
        &self,
        tally: &Tally,
        expected: u64,
        limit: Duration,
        what: &str,
        server: &mut Server,
    ) -> Result<()> {
        let start = Instant::now();
        let mut last_print = Instant::now();
        let (mut seen, mut moved) = (tally.count(), Instant::now());
        loop {
            let count = tally.count();
            if count >= expected {
                return Ok(());
            }
            if count != seen {
                (seen, moved) = (count, Instant::now());
            }
            self.check_failures()
                .and_then(|()| server.check_alive())
                .map_err(|e| e.context(format!("{what}: {count} of {expected} so far")))?;
            let why = if start.elapsed() > limit {
                format!("within {limit:?}")
            } else if moved.elapsed() > STALL {
                format!("and nothing more for {STALL:?}")
            } else {
                String::new()
            };
            if !why.is_empty() {
                let (n, first) = tally.missing();
                let names: Vec<&str> = first.iter().map(|&i| self.ids[i].as_str()).collect();
                bail!(
                    "{what}: only {count} of {expected} {why}; {n} device(s) not done, e.g. {}",
                    names.join(", ")
                );
            }
            if last_print.elapsed() > PRINT_EVERY {
                last_print = Instant::now();
                crate::progress(&format!("{what}: {count}/{expected}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `tally` counts `expected` events or has not moved for `quiet`, at
    /// most `limit`; never fails on time (the caller decides what a shortfall means).
    pub(crate) async fn settle(
        &self,
        tally: &Tally,
        expected: u64,
        quiet: Duration,
        limit: Duration,
        server: &mut Server,
    ) -> Result<u64> {
        let start = Instant::now();
        let (mut seen, mut since) = (tally.count(), Instant::now());
        loop {
            let count = tally.count();
            if count >= expected || since.elapsed() > quiet || start.elapsed() > limit {
                return Ok(count);
            }
            if count != seen {
                (seen, since) = (count, Instant::now());
            }
            self.check_failures()?;
            server.check_alive()?;
            tokio::time::sleep(POLL).await;
        }
    }
}
