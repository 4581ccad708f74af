//! `bosun sim`: run a simulated fleet (`crates/sim`) against a hub, show progress on
//! stderr, and print the report (from the hub's API) as a Markdown table on stdout.
//! Exit status 1 when a check failed (messages lost, devices not connected, faults
//! missed, false alarms, agents failed, devices not back after a hub restart).
//!
//! Without `--hub` the simulator starts a hub itself (`serve --dev`, this executable,
//! on free loopback ports in a temporary directory); only such a hub can be killed and
//! restarted by the scenario's `hub_restart` events.
//!
//! Submodules: `display` (the progress line or bars), `shards` (`--shards N`).

mod display;
mod ota;
mod rollouts;
mod shards;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use sim::report::Observed;
use sim::restart::Restarts;
use sim::server::{HubProcess, HubSettings};
use sim::{hub, Fleet, FleetConfig, HubApi, Plan, Report, Scenario, SourceAddresses};

use super::api::{Api, ApiArgs, Output};
use display::Monitor;

/// `bosun sim --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun sim --devices 500 --scenario hub-restart.toml     # starts its own hub
  bosun sim --hub 127.0.0.1:1883 --devices 2000 --faulty 3 --duration 90s
  bosun sim --hub 127.0.0.1:1883 --devices 30000 --shards 2     # two processes
  bosun sim --hub 127.0.0.1:1883 --scenario fault-onset.toml --api http://127.0.0.1:8080
  bosun sim --hub hub.example:8883 --ca ca.pem --group-key KEY --id-scope 0ne0001 --devices 500
  bosun sim --hub 127.0.0.1:8883 --ca data/tls/ca.pem --firmware-key release.pub \\
      --firmware-server 127.0.0.1:8443 --devices 1000 --duration 10m   # OTA-capable fleet
The scenario format and the report's fields: docs/simulator.md.";

/// Flags of `bosun sim`; those given override the scenario file.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// The hub's MQTT address, host:port [default: start a `serve --dev` hub on free
    /// loopback ports in a temporary directory, and stop it at the end].
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) hub: Option<String>,
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
    #[arg(long, value_name = "FILE", requires = "hub")]
    pub(crate) ca: Option<PathBuf>,
    /// An enrollment group's key: every device provisions itself through DPS.
    #[arg(long, value_name = "KEY", requires_all = ["id_scope", "hub"])]
    pub(crate) group_key: Option<String>,
    /// The hub's id scope (with --group-key).
    #[arg(long, value_name = "SCOPE", requires = "group_key")]
    pub(crate) id_scope: Option<String>,
    /// Connect from 127.0.0.1 … 127.0.0.N, round-robin (each address has its own
    /// ephemeral ports); 0: let the system choose [default: one address per 20,000
    /// devices, at least 2, when the hub is on IPv4 loopback; otherwise 0].
    #[arg(long, value_name = "N")]
    pub(crate) source_addresses: Option<usize>,
    /// Configuration file for the hub the simulator starts (without --hub).
    #[arg(long, value_name = "FILE", conflicts_with = "hub")]
    pub(crate) hub_config: Option<PathBuf>,
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
    #[arg(long, value_name = "I/N", hide = true, value_parser = parse_shard, requires = "hub")]
    pub(crate) shard: Option<(usize, usize)>,
    /// REST API address [env: BOSUN_API] [default: http://127.0.0.1:8080, or the
    /// started hub's].
    #[arg(long, value_name = "URL")]
    pub(crate) api: Option<String>,
    /// API token [env: BOSUN_TOKEN] [default: DATA_DIR/admin.token].
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// The hub's data directory, where the admin token is found.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Firmware updates on the simulated devices.
    #[command(flatten)]
    pub(crate) ota: ota::OtaArgs,
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
    // Thousands of agents log every connection: logs only when asked for, e.g.
    // `RUST_LOG=agent=warn` to see why connections were lost.
    if let Some(directive) = std::env::var("RUST_LOG")
        .ok()
        .filter(|d| !d.trim().is_empty())
    {
        crate::logging::init(crate::config::LogFormat::Text, &directive)?;
    }
    let plan = Plan::new(scenario(args)?)?;
    let buffers = Buffers::new(args.buffer_dir.clone(), "bosun-sim")?;
    if let Some((index, count)) = args.shard {
        let hub = args.hub.clone().unwrap_or_default();
        let mut config = fleet_config(args, &plan, hub, &buffers);
        config.firmware = ota::config(&args.ota, config.ca.is_some(), None)?;
        return shards::child(plan, config, index, count, args.threads);
    }
    if !plan.scenario.rollouts.is_empty() && (args.ota.firmware_key.is_none() || args.shards > 1) {
        bail!(
            "the scenario rolls out firmware: give --firmware-key (the devices must \
             install updates), and run it in one process (no --shards)"
        );
    }
    if args.hub.is_some() && !plan.scenario.hub_restarts.is_empty() {
        bail!(
            "the scenario restarts the hub, but --hub names one the simulator cannot \
             kill and restart: leave --hub out, and the simulator starts its own"
        );
    }
    let mut own_hub = match &args.hub {
        Some(_) => None,
        None => Some(OwnHub::start(args)?),
    };
    let (address, api) = match &own_hub {
        Some(OwnHub { process: hub, .. }) => {
            let listening = hub.listening();
            eprintln!(
                "started a hub: mqtt {} · api http://{} · data {}",
                listening.mqtt,
                listening.http,
                hub.data_dir().display()
            );
            let api = Api::from_args(&ApiArgs {
                api: Some(format!("http://{}", listening.http)),
                token: None,
                data_dir: Some(hub.data_dir().to_owned()),
                output: Output::Table,
            })?;
            (listening.mqtt.clone(), api)
        }
        None => (
            args.hub.clone().unwrap_or_default(),
            Api::from_args(&ApiArgs {
                api: args.api.clone(),
                token: args.token.clone(),
                data_dir: args.data_dir.clone(),
                output: Output::Table,
            })?,
        ),
    };
    let mut config = fleet_config(args, &plan, address, &buffers);
    let server = ota::use_own_hub(&mut config, own_hub.as_ref().map(|h| &h.process));
    config.firmware = ota::config(&args.ota, config.ca.is_some(), server)?;
    if config.source_addresses.count() > 0 {
        eprintln!(
            "devices connect from 127.0.0.1 … 127.0.0.{} (round-robin)",
            config.source_addresses.count()
        );
    }
    let run = Run {
        api: &api,
        hub: own_hub.as_mut().map(|h| &mut h.process),
        threads: args.threads,
        firmware_key: args.ota.firmware_key.as_deref(),
    };
    let report = if args.shards > 1 {
        shards::parent(plan, &config, run, args.shards)?
    } else {
        let stop = ota::stop_on_signal()?;
        simulate(plan, config, run, &mut |_, _| Ok(stop.requested()))?
    };
    super::emit(&report.markdown())?;
    if args.ota.firmware_key.is_some() {
        let plan = Plan::new(scenario(args)?)?;
        super::emit(&ota::report(&api, &plan)?)?;
        super::emit(&rollouts::report(&api, &plan.scenario.rollouts))?;
    }
    let failures = report.failures();
    if !failures.is_empty() {
        bail!("the simulation failed: {}", failures.join("; "));
    }
    Ok(())
}

/// The scenario file (or the defaults), with the flags given applied.
fn scenario(args: &SimArgs) -> Result<Scenario> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::default(),
    };
    scenario.devices = args.devices.unwrap_or(scenario.devices);
    scenario.faults.count = args.faulty.unwrap_or(scenario.faults.count);
    scenario.duration = args.duration.unwrap_or(scenario.duration);
    scenario.speed = args.speed.unwrap_or(scenario.speed);
    Ok(scenario)
}

/// How the devices reach the hub at `address`.
fn fleet_config(args: &SimArgs, plan: &Plan, address: String, buffers: &Buffers) -> FleetConfig {
    let identity = match (&args.group_key, &args.id_scope) {
        (Some(group_key), Some(id_scope)) => agent::Identity::GroupKey {
            group_key: group_key.clone(),
            id_scope: id_scope.clone(),
        },
        _ => agent::Identity::Anonymous,
    };
    let source_addresses = match args.source_addresses {
        Some(n) => SourceAddresses::loopback(n),
        None => SourceAddresses::automatic(&address, plan.scenario.devices),
    };
    FleetConfig {
        hub: address,
        ca: args.ca.clone(),
        host_name: None,
        identity,
        buffer_root: buffers.root.clone(),
        source_addresses,
        firmware: None,
    }
}

/// The hub the simulator started, and its temporary directory.
struct OwnHub {
    /// Dropped (stopped) first: fields drop in declaration order.
    process: HubProcess,
    _dir: Buffers,
}

impl OwnHub {
    /// Starts `serve --dev` (this executable) in a temporary directory, plain MQTT
    /// (and MQTT/TLS with HTTPS when the devices install firmware: downloads are HTTPS).
    fn start(args: &SimArgs) -> Result<OwnHub> {
        let dir = Buffers::new(None, "bosun-sim-hub")?;
        let mut extra = Vec::new();
        if let Some(config) = &args.hub_config {
            extra.push("--config".to_owned());
            extra.push(config.display().to_string());
        }
        let settings = HubSettings {
            exe: own_exe()?,
            data_dir: dir.root.join("hub"),
            tls: args.ota.firmware_key.is_some(),
            envs: Vec::new(),
            args: extra,
        };
        Ok(OwnHub {
            process: HubProcess::start(settings)?,
            _dir: dir,
        })
    }
}

/// This executable, to start again as a hub or a shard. On Linux `/proc/self/exe`,
/// which still works when the file was replaced meanwhile (a rebuild during a run).
pub(crate) fn own_exe() -> Result<PathBuf> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe);
    }
    std::env::current_exe().context("cannot find this executable")
}

/// What a run talks to: the API, and the hub process when the simulator started it.
pub(crate) struct Run<'a> {
    /// The hub's REST API.
    pub(crate) api: &'a Api,
    /// The hub the simulator started (restarts need it).
    pub(crate) hub: Option<&'a mut HubProcess>,
    /// Runtime worker threads for the agents.
    pub(crate) threads: usize,
    /// The fleet's publisher key, for the scenario's rollouts.
    pub(crate) firmware_key: Option<&'a std::path::Path>,
}

/// Runs `plan` to its duration (or until `watch` says stop), with the scenario's hub
/// restarts, printing progress to stderr, and builds the report. `watch` is called
/// about every second with the fleet and the API; `Ok(true)` ends the run early.
pub(crate) fn simulate(
    plan: Plan,
    config: FleetConfig,
    mut run: Run<'_>,
    watch: &mut dyn FnMut(&Fleet, &Api) -> Result<bool>,
) -> Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(run.threads.max(1))
        .thread_name("sim")
        .enable_all()
        .build()
        .context("cannot start the simulator's runtime")?;
    let api = run.api;
    let duration = plan.scenario.duration;
    let ids: Vec<String> = plan.devices.iter().map(|d| d.id.clone()).collect();
    let mut restarts = Restarts::new(&plan.scenario.hub_restarts);
    let mut rollouts = rollouts::Rollouts::new(&plan.scenario.rollouts);
    let prefix = plan.scenario.prefix.clone();
    register(&plan, &config, api)?;
    let fleet = {
        let _inside = runtime.enter();
        Fleet::start(plan, config)?
    };
    let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut monitor = Monitor::new(api, &ids, fleet.started_ms());
    let mut next_watch = Instant::now() + Duration::from_secs(1);
    while fleet.elapsed() < duration {
        let mut nap = Duration::from_secs(1).min(duration.saturating_sub(fleet.elapsed()));
        for due in [
            restarts.due_in(fleet.elapsed()),
            rollouts.due_in(fleet.elapsed()),
        ] {
            nap = nap.min(due.unwrap_or(nap));
        }
        std::thread::sleep(nap);
        if let Some(hub) = run.hub.as_deref_mut() {
            restarts.poll(fleet.elapsed(), hub, api, fleet.plan(), &ids)?;
        }
        if let Some(key) = run.firmware_key {
            rollouts.poll(fleet.elapsed(), api, key, &prefix)?;
        }
        for news in restarts.take_news().into_iter().chain(rollouts.take_news()) {
            monitor.say(&news);
        }
        if Instant::now() >= next_watch {
            next_watch = Instant::now() + Duration::from_secs(1);
            if watch(&fleet, api)? {
                break;
            }
        }
        monitor.tick(fleet.elapsed(), fleet.running(), fleet.windows());
    }
    let connected = hub::count_devices(api, &ids, true)?;
    monitor.say(&format!(
        "[{:>5.1}s] stopping {} agents",
        fleet.elapsed().as_secs_f64(),
        fleet.running()
    ));
    let all_connected = monitor.all_connected();
    drop(monitor);
    let plan = fleet.plan().clone();
    let outcome = runtime.block_on(fleet.stop());
    let mut observed = Observed::collect(api, &plan, outcome.started_ms, connected)?;
    observed.restarts = restarts.finish();
    observed.all_connected = all_connected;
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

/// A directory of the run; a temporary one is removed on drop.
pub(crate) struct Buffers {
    /// The directory.
    pub(crate) root: PathBuf,
    temporary: bool,
}

impl Buffers {
    /// `dir`, or a fresh temporary directory named after `prefix` (in /dev/shm when
    /// there is one: each buffered message is an fsync'd file).
    pub(crate) fn new(dir: Option<PathBuf>, prefix: &str) -> Result<Buffers> {
        let (root, temporary) = match dir {
            Some(dir) => (dir, false),
            None => {
                let shm = PathBuf::from("/dev/shm");
                let base = if shm.is_dir() {
                    shm
                } else {
                    std::env::temp_dir()
                };
                let name = format!("{prefix}-{}-{}", std::process::id(), sim::fleet::epoch_ms());
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
