//! `bosun sim`: run a simulated fleet (`crates/sim`) against a hub, show progress on
//! stderr, and print the report (from the hub's API) as a Markdown table on stdout.
//! Exit status 1 when a check failed (messages lost, devices not connected, faults
//! missed, false alarms, agents failed).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use sim::report::Observed;
use sim::{hub, Fleet, FleetConfig, HubApi, Plan, Report, Scenario};

use super::api::{Api, ApiArgs, Output};

/// `bosun sim --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun sim --hub 127.0.0.1:1883 --devices 2000 --faulty 3 --duration 90s
  bosun sim --hub 127.0.0.1:1883 --devices 30000 --shards 2     # two processes
  bosun sim --hub 127.0.0.1:1883 --scenario fault-onset.toml --api http://127.0.0.1:8080
  bosun sim --hub hub.example:8883 --ca ca.pem --group-key KEY --id-scope 0ne0001 --devices 500
The scenario format and the report's fields: docs/simulator.md.";

/// Flags of `bosun sim`; those given override the scenario file.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// The hub's MQTT address, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) hub: String,
    /// Scenario file (TOML, see docs/simulator.md).
    #[arg(long, value_name = "FILE")]
    pub(crate) scenario: Option<PathBuf>,
    /// Number of devices.
    #[arg(long, value_name = "N")]
    pub(crate) devices: Option<usize>,
    /// Devices that develop a bearing fault (chosen evenly across the fleet).
    #[arg(long, value_name = "N")]
    pub(crate) faulty: Option<usize>,
    /// How long the fleet runs, e.g. 60s or 5m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Time acceleration of the devices' clocks.
    #[arg(long, value_name = "X")]
    pub(crate) speed: Option<f64>,
    /// CA file: connect with TLS.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// An enrollment group's key: every device provisions itself through DPS.
    #[arg(long, value_name = "KEY", requires = "id_scope")]
    pub(crate) group_key: Option<String>,
    /// The hub's id scope (with --group-key).
    #[arg(long, value_name = "SCOPE", requires = "group_key")]
    pub(crate) id_scope: Option<String>,
    /// Where the devices' offline buffers go [default: a temporary directory, removed].
    #[arg(long, value_name = "DIR")]
    pub(crate) buffer_dir: Option<PathBuf>,
    /// Runtime worker threads for the agents (per process).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub(crate) threads: usize,
    /// Split the fleet over N simulator processes (each holds its own descriptors).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) shards: usize,
    /// Internal: run shard I of N and print its devices' outcomes as JSON on stdout,
    /// until stdin closes.
    #[arg(long, value_name = "I/N", hide = true, value_parser = parse_shard)]
    pub(crate) shard: Option<(usize, usize)>,
    /// REST API address [env: BOSUN_API] [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    pub(crate) api: Option<String>,
    /// API token [env: BOSUN_TOKEN] [default: DATA_DIR/admin.token].
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// The hub's data directory, where the admin token is found.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
}

/// A duration flag (`90s`, `5m`, `250ms`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    agent::source::parse_duration(text).map_err(|e| e.to_string())
}

/// `I/N` with I < N.
fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let (i, n) = text.split_once('/').ok_or("expected I/N")?;
    let i: usize = i.parse().map_err(|_| "I is not a number")?;
    let n: usize = n.parse().map_err(|_| "N is not a number")?;
    if i >= n {
        return Err("I must be below N".into());
    }
    Ok((i, n))
}

impl HubApi for Api {
    fn get(&self, target: &str) -> std::result::Result<Value, String> {
        Api::get(self, target).map_err(|e| format!("{e:#}"))
    }

    fn post(&self, target: &str, body: &Value) -> std::result::Result<Value, String> {
        self.call("POST", target, Some(body), &[])
            .map(|reply| reply.json)
            .map_err(|e| format!("{e:#}"))
    }
}

/// `bosun sim`.
pub(crate) fn run(args: &SimArgs) -> Result<()> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::default(),
    };
    scenario.devices = args.devices.unwrap_or(scenario.devices);
    scenario.faults.count = args.faulty.unwrap_or(scenario.faults.count);
    scenario.duration = args.duration.unwrap_or(scenario.duration);
    scenario.speed = args.speed.unwrap_or(scenario.speed);
    let plan = Plan::new(scenario)?;
    let api = Api::from_args(&ApiArgs {
        api: args.api.clone(),
        token: args.token.clone(),
        data_dir: args.data_dir.clone(),
        output: Output::Table,
    })?;
    let identity = match (&args.group_key, &args.id_scope) {
        (Some(group_key), Some(id_scope)) => agent::Identity::GroupKey {
            group_key: group_key.clone(),
            id_scope: id_scope.clone(),
        },
        _ => agent::Identity::Anonymous,
    };
    let buffers = Buffers::new(args.buffer_dir.clone())?;
    let config = FleetConfig {
        hub: args.hub.clone(),
        ca: args.ca.clone(),
        host_name: None,
        identity,
        buffer_root: buffers.root.clone(),
    };
    if let Some((index, count)) = args.shard {
        return shards::child(plan, config, index, count, args.threads);
    }
    let report = if args.shards > 1 {
        shards::parent(plan, &config, &api, args.shards)?
    } else {
        simulate(plan, config, &api, args.threads, &mut |_, _| Ok(false))?
    };
    super::emit(&report.markdown())?;
    let failures = report.failures();
    if !failures.is_empty() {
        bail!("the simulation failed: {}", failures.join("; "));
    }
    Ok(())
}

/// Runs `plan` to its duration (or until `watch` says stop), printing progress to
/// stderr, and builds the report. `watch` is called about every second with the fleet
/// and the API; `Ok(true)` ends the run early.
pub(crate) fn simulate(
    plan: Plan,
    config: FleetConfig,
    api: &Api,
    threads: usize,
    watch: &mut dyn FnMut(&Fleet, &Api) -> Result<bool>,
) -> Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("sim")
        .enable_all()
        .build()
        .context("cannot start the simulator's runtime")?;
    let duration = plan.scenario.duration;
    let ids: Vec<String> = plan.devices.iter().map(|d| d.id.clone()).collect();
    register(&plan, &config, api)?;
    let fleet = {
        let _inside = runtime.enter();
        Fleet::start(plan, config)?
    };
    let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    while fleet.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(1).min(duration.saturating_sub(fleet.elapsed())));
        if watch(&fleet, api)? {
            break;
        }
        if Instant::now() >= next_progress {
            next_progress += PROGRESS_EVERY;
            progress(&fleet, api, &ids);
        }
    }
    let connected = hub::count_devices(api, &ids, true)?;
    eprintln!(
        "[{:>5.1}s] stopping {} agents",
        fleet.elapsed().as_secs_f64(),
        fleet.running()
    );
    let plan = fleet.plan().clone();
    let outcome = runtime.block_on(fleet.stop());
    let observed = Observed::collect(api, &plan, outcome.started_ms, connected)?;
    Ok(Report::build(&plan, &outcome, &observed))
}

/// Registers anonymous devices the hub does not know yet (see `sim::hub::register`).
fn register(plan: &Plan, config: &FleetConfig, api: &Api) -> Result<()> {
    if config.identity == agent::Identity::Anonymous {
        let all: Vec<&str> = plan.devices.iter().map(|d| d.id.as_str()).collect();
        let created = hub::register(api, &all)?;
        eprintln!("registered {created} devices in the hub's registry");
    }
    Ok(())
}

/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// One progress line on stderr: agents running, messages produced, what the hub says.
fn progress(fleet: &Fleet, api: &Api, ids: &HashSet<&str>) {
    let connected =
        hub::count_devices(api, ids, true).map_or_else(|e| format!("? ({e})"), |n| n.to_string());
    let detections = hub::anomalies(api, fleet.started_ms())
        .map_or_else(|_| "?".into(), |a| a.len().to_string());
    eprintln!(
        "[{:>5.1}s] agents running {}/{}, hub: {} connected; messages produced {}; detections {}",
        fleet.elapsed().as_secs_f64(),
        fleet.running(),
        ids.len(),
        connected,
        fleet.windows(),
        detections
    );
}

/// The parent directory of the devices' buffers; a temporary one is removed on drop.
pub(crate) struct Buffers {
    /// The directory.
    pub(crate) root: PathBuf,
    temporary: bool,
}

impl Buffers {
    /// `dir`, or a fresh temporary directory (in /dev/shm when there is one: each
    /// buffered message is an fsync'd file).
    pub(crate) fn new(dir: Option<PathBuf>) -> Result<Buffers> {
        let (root, temporary) = match dir {
            Some(dir) => (dir, false),
            None => {
                let shm = PathBuf::from("/dev/shm");
                let base = if shm.is_dir() {
                    shm
                } else {
                    std::env::temp_dir()
                };
                let name = format!(
                    "bosun-sim-{}-{}",
                    std::process::id(),
                    sim::fleet::epoch_ms()
                );
                (base.join(name), true)
            }
        };
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        Ok(Buffers { root, temporary })
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// `--shards N`: the parent starts N copies of this command, each running every N-th
/// device (`--shard I/N`), and builds the report from their outcomes and the API.
mod shards {
    use std::io::Read;
    use std::process::{Child, Command, Stdio};
    use std::thread::JoinHandle;

    use super::*;
    use sim::fleet::{epoch_ms, DeviceOutcome, Outcome};

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
        let _ = wait.recv_timeout(limit);
        let outcome = runtime.block_on(fleet.stop());
        let json = serde_json::to_string(&outcome.devices)?;
        super::super::emit(&format!("{json}\n"))
    }

    /// Starts the shards, shows progress until the duration, stops them, and reports.
    pub(super) fn parent(
        plan: Plan,
        config: &FleetConfig,
        api: &Api,
        count: usize,
    ) -> Result<Report> {
        register(&plan, config, api)?;
        let started_ms = epoch_ms();
        let started = Instant::now();
        let mut children = Vec::new();
        for index in 0..count {
            children.push(spawn(index, count, &config.buffer_root)?);
        }
        let ids: HashSet<&str> = plan.devices.iter().map(|d| d.id.as_str()).collect();
        while started.elapsed() < plan.scenario.duration {
            let left = plan.scenario.duration.saturating_sub(started.elapsed());
            std::thread::sleep(PROGRESS_EVERY.min(left));
            let connected = hub::count_devices(api, &ids, true)?;
            eprintln!(
                "[{:>5.1}s] {count} shards, hub: {connected}/{} connected",
                started.elapsed().as_secs_f64(),
                ids.len()
            );
        }
        let connected = hub::count_devices(api, &ids, true)?;
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
        let observed = Observed::collect(api, &plan, started_ms, connected)?;
        Ok(Report::build(&plan, &outcome, &observed))
    }

    /// This command again, as shard `index`, with the same flags.
    fn spawn(
        index: usize,
        count: usize,
        buffers: &std::path::Path,
    ) -> Result<(Child, JoinHandle<Vec<u8>>)> {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        remove_flag(&mut args, "--shards");
        remove_flag(&mut args, "--buffer-dir");
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let mut child = Command::new(exe)
            .args(&args)
            .arg("--shard")
            .arg(format!("{index}/{count}"))
            .arg("--buffer-dir")
            .arg(buffers)
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
}
