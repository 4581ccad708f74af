//! `--shards N`: the parent starts N copies of this command, each running every N-th
//! device (`--shard I/N`), and builds the report from their outcomes and the API.
//!
//! Every shard writes its counters (messages produced, agents running) to a small
//! file in the shared buffer directory once a second, for the parent's progress line;
//! the parent runs the hub restarts, if any (it owns the hub process).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use super::*;
use sim::fleet::{epoch_ms, DeviceOutcome, Outcome};

/// How often a shard writes its counters.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// Runs one shard until stdin closes (or the scenario's duration plus a minute),
/// then prints its devices' outcomes as JSON.
pub(super) fn child(
    mut plan: Plan,
    config: FleetConfig,
    index: usize,
    count: usize,
    threads: usize,
) -> Result<()> {
    plan.shard(index, count);
    let limit = plan.scenario.duration + Duration::from_secs(60);
    let counters = counters_file(&config.buffer_root, index);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the shard's runtime")?;
    let fleet = {
        let _inside = runtime.enter();
        Fleet::start(plan, config)?
    };
    let (closed, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let text = format!("{} {}\n", fleet.windows(), fleet.running());
        let _ = std::fs::write(&counters, text);
        match wait.recv_timeout(COUNTERS_EVERY) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    let outcome = runtime.block_on(fleet.stop());
    let json = serde_json::to_string(&outcome.devices)?;
    super::super::emit(&format!("{json}\n"))
}

/// Where shard `index` writes its counters.
fn counters_file(root: &Path, index: usize) -> PathBuf {
    root.join(format!(".shard-{index}.counters"))
}

/// Messages produced and agents running, summed over the shards' counter files.
fn counters(root: &Path, count: usize) -> (u64, usize) {
    let mut sum = (0, 0);
    for index in 0..count {
        let text = std::fs::read_to_string(counters_file(root, index)).unwrap_or_default();
        let mut fields = text.split_whitespace();
        sum.0 += fields.next().and_then(|f| f.parse().ok()).unwrap_or(0u64);
        sum.1 += fields.next().and_then(|f| f.parse().ok()).unwrap_or(0usize);
    }
    sum
}

/// Starts the shards, shows progress (and restarts the hub when the scenario says so)
/// until the duration, stops them, and reports.
pub(super) fn parent(
    plan: Plan,
    config: &FleetConfig,
    mut run: Run<'_>,
    count: usize,
) -> Result<Report> {
    let api = run.api;
    register(&plan, config, api)?;
    let started_ms = epoch_ms();
    let started = Instant::now();
    let mut children = Vec::new();
    for index in 0..count {
        children.push(spawn(index, count, config)?);
    }
    let ids: HashSet<&str> = plan.devices.iter().map(|d| d.id.as_str()).collect();
    let mut restarts = Restarts::new(&plan.scenario.hub_restarts);
    let mut monitor = Monitor::new(api, &ids, started_ms);
    let duration = plan.scenario.duration;
    while started.elapsed() < duration {
        let mut nap = Duration::from_secs(1).min(duration.saturating_sub(started.elapsed()));
        if let Some(due) = restarts.due_in(started.elapsed()) {
            nap = nap.min(due);
        }
        std::thread::sleep(nap);
        if let Some(hub) = run.hub.as_deref_mut() {
            restarts.poll(started.elapsed(), hub, api, &plan, &ids)?;
        }
        for news in restarts.take_news() {
            monitor.say(&news);
        }
        let (produced, running) = counters(&config.buffer_root, count);
        monitor.tick(started.elapsed(), running, produced);
    }
    let connected = hub::count_devices(api, &ids, true)?;
    monitor.say(&format!(
        "[{:>5.1}s] {count} shards, hub: {connected}/{} connected; stopping",
        started.elapsed().as_secs_f64(),
        ids.len()
    ));
    let all_connected = monitor.all_connected();
    drop(monitor);
    let ran = started.elapsed();
    // Closing their stdin stops every shard's agents at once.
    for (child, _) in &mut children {
        drop(child.stdin.take());
    }
    let mut devices: Vec<DeviceOutcome> = Vec::new();
    for (child, stdout) in children {
        devices.extend(finish(child, stdout)?);
    }
    let order: std::collections::HashMap<&str, usize> = plan
        .devices
        .iter()
        .map(|d| (d.id.as_str(), d.number))
        .collect();
    devices.sort_by_key(|d| order.get(d.id.as_str()).copied().unwrap_or(usize::MAX));
    let outcome = Outcome {
        devices,
        started_ms,
        ran,
    };
    let mut observed = Observed::collect(api, &plan, started_ms, connected)?;
    observed.restarts = restarts.finish();
    observed.all_connected = all_connected;
    Ok(Report::build(&plan, &outcome, &observed))
}

/// This command again, as shard `index`, with the same flags, pointed at the hub the
/// parent uses (which may be the one it started).
fn spawn(index: usize, count: usize, config: &FleetConfig) -> Result<(Child, JoinHandle<Vec<u8>>)> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    for flag in [
        "--shards",
        "--buffer-dir",
        "--hub",
        "--hub-config",
        "--source-addresses",
    ] {
        remove_flag(&mut args, flag);
    }
    let exe = own_exe()?;
    let mut child = Command::new(exe)
        .args(&args)
        .arg("--shard")
        .arg(format!("{index}/{count}"))
        .arg("--buffer-dir")
        .arg(&config.buffer_root)
        .arg("--hub")
        .arg(&config.hub)
        .arg("--source-addresses")
        .arg(config.source_addresses.count().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start a shard")?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("the shard's stdout is not piped"))?;
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    Ok((child, reader))
}

/// Waits for a shard whose stdin was closed and reads what its devices did.
fn finish(mut child: Child, stdout: JoinHandle<Vec<u8>>) -> Result<Vec<DeviceOutcome>> {
    let status = child.wait().context("waiting for a shard")?;
    let bytes = stdout
        .join()
        .map_err(|_| anyhow::anyhow!("a shard's reader failed"))?;
    if !status.success() {
        bail!("a shard failed: {status}");
    }
    serde_json::from_slice(&bytes).context("a shard's outcome is not JSON")
}

/// Removes `--flag VALUE` and `--flag=VALUE` from `args`.
fn remove_flag(args: &mut Vec<String>, flag: &str) {
    let prefix = format!("{flag}=");
    if let Some(i) = args.iter().position(|a| a == flag) {
        args.drain(i..(i + 2).min(args.len()));
    }
    args.retain(|a| !a.starts_with(&prefix));
}
