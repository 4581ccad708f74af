//! The measurements of one run against one fresh server, in order: register the
//! devices over the API, connect them, reported patches, desired fan-out, direct
//! methods, then the server's own loss counters.
//!
//! Each step waits for the previous one to be fully absorbed by the hub before its
//! clock starts (see [`connect`]: a probe that travels through the hub's event queue),
//! so no step is charged with another's backlog. Every wait has a deadline that grows
//! with the number of devices, and the error says what was still missing.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::api;
use super::device::{self, DeviceSpec, ROUND_KEY};
use super::fleet::{Command, Fleet};
use super::server::{prometheus_value, Server};
use crate::scenario::{metric, Better, Metric};

/// Device connections from one source address (of the 28,000 ephemeral ports).
const PER_SOURCE: usize = 4_000;
/// MQTT handshakes under way at once.
const HANDSHAKES: usize = 64;
/// Quiet time after which the desired updates sent at subscription are assumed complete.
const SYNC_QUIET: Duration = Duration::from_secs(5);
/// Descriptors this process needs besides one per device and API connection.
const SPARE_DESCRIPTORS: u64 = 100;
/// The method the devices are called with.
const METHOD: &str = "echo";

/// Sizes of a run, from the command line.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Simulated devices.
    pub(crate) devices: usize,
    /// Reported patches each device sends.
    pub(crate) patches: u32,
    /// Direct-method calls, sequential and again concurrent.
    pub(crate) method_calls: usize,
    /// HTTP connections used for the API batches.
    pub(crate) concurrency: usize,
}

/// Deadline of a wait for `items` things: a minute plus 20 ms each (10,000 devices:
/// 260 s, where the slowest step took about 6 s on a 2-core VM). A wait that stops
/// making progress fails sooner (see [`Fleet::wait`]).
fn budget(items: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(20) * items as u32
}

/// Device `i`'s id.
fn device_id(i: usize) -> String {
    format!("bench-dev-{i:05}")
}

/// Fails early when this process may not open enough sockets.
pub(crate) fn check_descriptors(settings: &Settings) -> Result<()> {
    let needed = (settings.devices + settings.concurrency) as u64 + SPARE_DESCRIPTORS;
    if let Some(limit) = open_file_limit() {
        if limit < needed {
            bail!(
                "{} devices need about {needed} descriptors, but this process may open {limit} \
                 (ulimit -n); use fewer --devices or raise the limit",
                settings.devices
            );
        }
    }
    Ok(())
}

/// The soft `Max open files` limit of this process, from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Runs every step against `server`; `run` numbers the run (source addresses, seeds).
pub(crate) async fn measure(
    settings: &Settings,
    server: &mut Server,
    run: usize,
) -> Result<Vec<Metric>> {
    let n = settings.devices.max(1);
    let ids: Vec<String> = (0..n).map(device_id).collect();
    let mut metrics = register(settings, server, &ids).await?;
    let fleet = Arc::new(Fleet::new(ids, HANDSHAKES));
    // The devices live until this function returns: dropping the set aborts them.
    let (_devices, connected) = connect(&fleet, server, run).await?;
    metrics.extend(connected);
    metrics.extend(reported(settings, &fleet, server).await?);
    metrics.extend(desired(settings, &fleet, server, run).await?);
    metrics.extend(methods(settings, &fleet, server, run).await?);
    metrics.extend(losses(&fleet, server).await?);
    Ok(metrics)
}

/// Step 1: creates every device with `POST /api/devices`.
async fn register(settings: &Settings, server: &mut Server, ids: &[String]) -> Result<Vec<Metric>> {
    let n = ids.len();
    crate::progress(&format!(
        "registering {n} devices over {} connections",
        settings.concurrency
    ));
    let cpu = server.cpu_seconds()?;
    let owned: Arc<[String]> = ids.into();
    let batch = api::batch(
        &server.api,
        settings.concurrency,
        n,
        budget(n),
        "register",
        move |i| api::create_device(&owned[i]),
        api::any_body,
    )
    .await?;
    let cpu = server.cpu_seconds()? - cpu;
    let rate = n as f64 / secs(batch.elapsed);
    crate::progress(&format!("registered: {rate:.0} devices/s"));
    Ok(vec![
        metric("registration rate", "devices/s", Better::Higher, rate),
        metric(
            "registration p99",
            "ms",
            Better::Lower,
            ms(percentile(&batch.latencies, 0.99)),
        ),
        metric(
            "hub CPU per registration",
            "µs",
            Better::Lower,
            cpu * 1e6 / n as f64,
        ),
    ])
}

/// Starts one task per device, spread over source addresses 127.0.B.2, .3, … with a
/// block B of its own per run (so the previous run's TIME_WAIT ports are not in the way).
fn spawn_devices(fleet: &Arc<Fleet>, server: &Server, run: usize) -> tokio::task::JoinSet<()> {
    let block = 100 + ((std::process::id() as usize + run) % 150) as u8;
    let mut devices = tokio::task::JoinSet::new();
    for index in 0..fleet.len() {
        let host = 2 + (index / PER_SOURCE) as u8;
        let spec = DeviceSpec {
            index,
            source: Some(IpAddr::V4(Ipv4Addr::new(127, 0, block, host))),
        };
        devices.spawn(device::run(Arc::clone(fleet), server.mqtt, spec));
    }
    devices
}

/// Step 2: starts the devices and waits for every SUBACK, then for the hub to work
/// through the connections (presence writes, the desired update every subscription
/// triggers): a twin GET from the last device is answered only after every event queued
/// before it. Returns the running devices with the metrics.
async fn connect(
    fleet: &Arc<Fleet>,
    server: &mut Server,
    run: usize,
) -> Result<(tokio::task::JoinSet<()>, Vec<Metric>)> {
    let n = fleet.len();
    crate::progress(&format!(
        "connecting {n} devices, {HANDSHAKES} handshakes at a time"
    ));
    let cpu = server.cpu_seconds()?;
    let start = Instant::now();
    let devices = spawn_devices(fleet, server, run);
    fleet
        .wait(&fleet.subscribed, n as u64, budget(n), "connect", server)
        .await?;
    let connected = since(fleet.subscribed.last(fleet.origin), start);
    let rss = server.rss_mib()?;
    let synced = fleet
        .settle(&fleet.synced, n as u64, SYNC_QUIET, budget(n), server)
        .await?;
    fleet.command(Command::Probe { device: n - 1 });
    fleet
        .wait(
            &fleet.probed,
            1,
            budget(n),
            "hub catching up with the connections",
            server,
        )
        .await?;
    let caught_up = since(fleet.probed.last(fleet.origin), start);
    let cpu = server.cpu_seconds()? - cpu;
    crate::progress(&format!(
        "connected in {connected:.2} s, hub caught up after {caught_up:.2} s \
         ({synced} subscription-time desired updates)"
    ));
    let metrics = vec![
        metric("connect: all SUBACKs", "s", Better::Lower, connected),
        metric(
            "connect rate",
            "devices/s",
            Better::Higher,
            n as f64 / connected,
        ),
        metric("connect: hub caught up", "s", Better::Lower, caught_up),
        metric(
            "hub CPU per connection",
            "µs",
            Better::Lower,
            cpu * 1e6 / n as f64,
        ),
        metric("hub RSS, all connected", "MiB", Better::Lower, rss),
        metric(
            "desired updates at subscription",
            "count",
            Better::Lower,
            synced as f64,
        ),
    ];
    Ok((devices, metrics))
}

/// Step 3: every device sends its reported patches, each after the previous answer.
async fn reported(settings: &Settings, fleet: &Fleet, server: &mut Server) -> Result<Vec<Metric>> {
    let total = fleet.len() as u64 * u64::from(settings.patches);
    if total == 0 {
        return Ok(Vec::new());
    }
    crate::progress(&format!("{total} reported patches"));
    let cpu = server.cpu_seconds()?;
    let start = Instant::now();
    fleet.command(Command::Report {
        patches: settings.patches,
    });
    fleet
        .wait(
            &fleet.reported,
            total,
            budget(total as usize),
            "reported patches",
            server,
        )
        .await?;
    let elapsed = since(fleet.reported.last(fleet.origin), start);
    let cpu = server.cpu_seconds()? - cpu;
    let latencies = fleet.sorted_latencies();
    let rate = total as f64 / elapsed;
    crate::progress(&format!("reported: {rate:.0} patches/s"));
    Ok(vec![
        metric("reported patch rate", "patches/s", Better::Higher, rate),
        metric(
            "reported patch p50",
            "ms",
            Better::Lower,
            ms(percentile(&latencies, 0.5)),
        ),
        metric(
            "reported patch p99",
            "ms",
            Better::Lower,
            ms(percentile(&latencies, 0.99)),
        ),
        metric(
            "hub CPU per reported patch",
            "µs",
            Better::Lower,
            cpu * 1e6 / total as f64,
        ),
    ])
}

/// Step 4: one desired-property PATCH per device over the API; done when every device
/// has received and acknowledged its update.
async fn desired(
    settings: &Settings,
    fleet: &Fleet,
    server: &mut Server,
    run: usize,
) -> Result<Vec<Metric>> {
    let n = fleet.len();
    let round = run as u64 + 1;
    fleet.round.store(round, Ordering::Relaxed);
    crate::progress(&format!(
        "desired fan-out to {n} devices over {} connections",
        settings.concurrency
    ));
    let cpu = server.cpu_seconds()?;
    let start = Instant::now();
    let ids: Arc<[String]> = fleet.ids.clone().into();
    let batch = api::batch(
        &server.api,
        settings.concurrency,
        n,
        budget(n),
        "desired PATCH",
        move |i| api::patch_desired(&ids[i], ROUND_KEY, round),
        api::any_body,
    )
    .await?;
    fleet
        .wait(
            &fleet.desired,
            n as u64,
            budget(n),
            "desired updates received",
            server,
        )
        .await?;
    let elapsed = since(fleet.desired.last(fleet.origin), start);
    let cpu = server.cpu_seconds()? - cpu;
    crate::progress(&format!("desired fan-out: {elapsed:.2} s"));
    Ok(vec![
        metric(
            "desired fan-out: all acknowledged",
            "s",
            Better::Lower,
            elapsed,
        ),
        metric(
            "desired fan-out rate",
            "updates/s",
            Better::Higher,
            n as f64 / elapsed,
        ),
        metric(
            "desired: all API PATCHes answered",
            "s",
            Better::Lower,
            secs(batch.elapsed),
        ),
        metric(
            "desired PATCH p99",
            "ms",
            Better::Lower,
            ms(percentile(&batch.latencies, 0.99)),
        ),
        metric(
            "hub CPU per desired update",
            "µs",
            Better::Lower,
            cpu * 1e6 / n as f64,
        ),
    ])
}

/// Step 5: direct methods to random devices, first one at a time (latency), then from
/// `concurrency` callers at once (throughput).
async fn methods(
    settings: &Settings,
    fleet: &Fleet,
    server: &mut Server,
    run: usize,
) -> Result<Vec<Metric>> {
    let calls = settings.method_calls;
    if calls == 0 {
        return Ok(Vec::new());
    }
    let n = fleet.len();
    let ids: Arc<[String]> = fleet.ids.clone().into();
    let seed = 0x5eed_0000 + run as u64;
    crate::progress(&format!("{calls} sequential method calls"));
    let sequential = {
        let ids = Arc::clone(&ids);
        api::batch(
            &server.api,
            1,
            calls,
            budget(calls),
            "sequential methods",
            move |i| api::invoke(&ids[pick(seed, i, n)], METHOD, i),
            api::check_method_answer,
        )
        .await?
    };
    crate::progress(&format!(
        "{calls} method calls from {} callers",
        settings.concurrency
    ));
    let cpu = server.cpu_seconds()?;
    let concurrent = api::batch(
        &server.api,
        settings.concurrency,
        calls,
        budget(calls),
        "concurrent methods",
        move |i| api::invoke(&ids[pick(seed + 1, i, n)], METHOD, i),
        api::check_method_answer,
    )
    .await?;
    let cpu = server.cpu_seconds()? - cpu;
    let answered = fleet.methods.load(Ordering::Relaxed);
    if answered < 2 * calls as u64 {
        bail!(
            "the API returned {} method answers but the devices sent only {answered}",
            2 * calls
        );
    }
    let rate = calls as f64 / secs(concurrent.elapsed);
    crate::progress(&format!("methods: {rate:.0} calls/s concurrent"));
    Ok(vec![
        metric(
            "method p50 (sequential)",
            "ms",
            Better::Lower,
            ms(percentile(&sequential.latencies, 0.5)),
        ),
        metric(
            "method p99 (sequential)",
            "ms",
            Better::Lower,
            ms(percentile(&sequential.latencies, 0.99)),
        ),
        metric("method rate (concurrent)", "calls/s", Better::Higher, rate),
        metric(
            "method p99 (concurrent)",
            "ms",
            Better::Lower,
            ms(percentile(&concurrent.latencies, 0.99)),
        ),
        metric(
            "hub CPU per method call",
            "µs",
            Better::Lower,
            cpu * 1e6 / calls as f64,
        ),
    ])
}

/// Finally: what got lost or went wrong, on both sides; every row should be 0.
async fn losses(fleet: &Fleet, server: &mut Server) -> Result<Vec<Metric>> {
    server.check_alive()?;
    let text = server
        .api
        .client()
        .send("GET", "/metrics", None)
        .await
        .context("cannot read the server's metrics")?;
    let text = String::from_utf8_lossy(&text.body);
    let dropped = prometheus_value(&text, "bosun_service_events_dropped_total")
        .context("no bosun_service_events_dropped_total in /metrics")?;
    let a = &fleet.anomalies;
    let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as f64;
    Ok(vec![
        metric("hub events dropped", "count", Better::Lower, dropped),
        metric(
            "reported patches refused",
            "count",
            Better::Lower,
            count(&a.refused_patches),
        ),
        metric(
            "desired updates repeated",
            "count",
            Better::Lower,
            count(&a.duplicate_desired),
        ),
        metric(
            "unexpected packets",
            "count",
            Better::Lower,
            count(&a.unexpected),
        ),
    ])
}

/// Device number `i` of a reproducible pseudo-random sequence over `n` devices
/// (splitmix64 of seed and index).
fn pick(seed: u64, i: usize, n: usize) -> usize {
    let mut z = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(i as u64)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % n.max(1) as u64) as usize
}

/// The `p` quantile (nearest rank) of sorted values; zero when there are none.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Seconds from `start` to `end` (zero if there was no event).
fn since(end: Option<Instant>, start: Instant) -> f64 {
    end.map_or(0.0, |e| secs(e.saturating_duration_since(start)))
}

/// Seconds, never zero (rates divide by it).
fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

/// Milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn picks_spread_over_all_devices() {
        let mut seen = [0u32; 10];
        for i in 0..10_000 {
            seen[pick(7, i, 10)] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
        assert_eq!(pick(7, 3, 10), pick(7, 3, 10));
    }
}
