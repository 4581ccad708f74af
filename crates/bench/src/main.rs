//! `bosun-bench`: runs bosun and Mosquitto side by side under the same MQTT load and
//! reports medians and bosun/Mosquitto ratios as Markdown (`mqtt`), and measures the
//! control plane under thousands of simulated devices (`hub`).
//!
//! This file owns the command line and the `mqtt` run loop: for every scenario and
//! repetition it starts a fresh process of each broker (alternating which goes first),
//! runs the scenario against it, stops it, and finally renders the report. The load
//! itself lives in [`scenario`], the MQTT client in [`client`], broker processes and
//! `/proc` readings in [`peer`], and the Markdown in [`report`]. The control-plane
//! benchmark is all in [`hub`].

mod client;
mod codec;
mod hub;
mod peer;
mod pipeline;
mod process;
mod report;
mod scenario;
mod tls;
mod tsdb;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use peer::{Broker, Kind, Paths};
use report::{Machine, Outcome};
use scenario::{Scenario, Settings};

/// Benchmarks bosun: its MQTT broker against others, and its control plane.
#[derive(Debug, Parser)]
#[command(name = "bosun-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the MQTT scenarios against bosun and Mosquitto and writes a Markdown report.
    Mqtt(MqttArgs),
    /// Measures the control plane (registry, twins, methods) with simulated devices.
    Hub(hub::HubArgs),
    /// Mutual-TLS handshakes and a provisioning connect storm, bosun against Mosquitto.
    Tls(tls::TlsArgs),
    /// Bytes on the wire and codec cost of a feature record: JSON, CBOR, Protobuf.
    Codec(codec::CodecArgs),
    /// bosun's time-series store against InfluxDB 1.6: ingest, bytes per point, queries.
    Tsdb(tsdb::TsdbArgs),
    /// The data pipeline: anomaly → capture-command latency and ingest throughput.
    Pipeline(pipeline::PipelineArgs),
    /// Internal: holds idle connections for the `idle` scenario.
    #[command(hide = true)]
    Worker(scenario::idle::WorkerArgs),
}

/// Options of `bosun-bench mqtt`.
#[derive(Debug, clap::Args)]
struct MqttArgs {
    /// The bosun binary.
    #[arg(long, default_value = "target/release/bosun")]
    bosun: PathBuf,
    /// The Mosquitto binary.
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    mosquitto: PathBuf,
    /// Which scenario to run.
    #[arg(long, value_enum, default_value_t = Choice::All)]
    scenario: Choice,
    /// Runs per scenario and broker; the report shows medians.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Messages published in total by the fan-in scenarios.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Deliveries targeted by the fan-out scenario (messages × subscribers).
    #[arg(long, default_value_t = 2_000_000)]
    fanout_deliveries: u64,
    /// Subscribers in the fan-out scenario.
    #[arg(long, default_value_t = 1_000)]
    fanout_subscribers: usize,
    /// Idle connections in the idle scenario.
    #[arg(long, default_value_t = 10_000)]
    idle_clients: usize,
    /// Seconds of the latency scenario.
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// Messages per second in the latency scenario.
    #[arg(long, default_value_t = 20_000)]
    latency_rate: u64,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks-latest.md")]
    out: PathBuf,
}

/// `--scenario`: one scenario or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Choice {
    All,
    Fanin0,
    Fanin1,
    Fanout,
    Idle,
    Latency,
}

impl Choice {
    fn scenarios(self) -> Vec<Scenario> {
        match self {
            Choice::All => Scenario::ALL.to_vec(),
            Choice::Fanin0 => vec![Scenario::Fanin0],
            Choice::Fanin1 => vec![Scenario::Fanin1],
            Choice::Fanout => vec![Scenario::Fanout],
            Choice::Idle => vec![Scenario::Idle],
            Choice::Latency => vec![Scenario::Latency],
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Mqtt(args) => runtime.block_on(mqtt(args)),
        Command::Hub(args) => runtime.block_on(hub::run(args)),
        Command::Tls(args) => runtime.block_on(tls::run(args)),
        Command::Codec(args) => codec::run(args),
        Command::Tsdb(args) => tsdb::run(args),
        Command::Pipeline(args) => runtime.block_on(pipeline::run(args)),
        Command::Worker(args) => runtime.block_on(scenario::idle::worker(args)),
    }
}

/// Prints a progress line on stderr, stamped with the time since the start.
pub(crate) fn progress(message: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    eprintln!("[{:7.1}s] {message}", start.elapsed().as_secs_f64());
}

/// `bosun-bench mqtt`.
async fn mqtt(args: MqttArgs) -> Result<()> {
    progress("bosun-bench starting");
    let paths = Paths {
        bosun: args.bosun.clone(),
        mosquitto: args.mosquitto.clone(),
    };
    for exe in [&paths.bosun, &paths.mosquitto] {
        anyhow::ensure!(exe.exists(), "{} does not exist", exe.display());
    }
    let settings = Settings {
        fanin_messages: args.messages,
        fanout_deliveries: args.fanout_deliveries,
        fanout_subscribers: args.fanout_subscribers,
        idle_clients: args.idle_clients,
        latency_secs: args.latency_secs,
        latency_rate: args.latency_rate,
        exe: std::env::current_exe().context("cannot find this executable")?,
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let machine = Machine::probe(&paths);
    let repeat = args.repeat.max(1);
    let mut outcomes = Vec::new();
    for scenario in args.scenario.scenarios() {
        for rep in 0..repeat {
            let order = if rep % 2 == 0 {
                [Kind::Bosun, Kind::Mosquitto]
            } else {
                [Kind::Mosquitto, Kind::Bosun]
            };
            for kind in order {
                let label = format!("{} run {}/{repeat} {kind}", scenario.name(), rep + 1);
                progress(&format!("{label}: starting"));
                let tag = format!("{}-{rep}", scenario.name());
                let result = run_one(kind, scenario, &paths, &settings, &tag)
                    .await
                    .map_err(|e| format!("{e:#}"));
                match &result {
                    Ok(metrics) => {
                        let summary: Vec<String> = metrics
                            .iter()
                            .take(3)
                            .map(|m| format!("{} {} {}", m.name, report::num(m.value), m.unit))
                            .collect();
                        progress(&format!("{label}: {}", summary.join(", ")));
                    }
                    Err(e) => progress(&format!("{label}: FAILED: {e}")),
                }
                outcomes.push(Outcome {
                    scenario,
                    kind,
                    result,
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let markdown = report::render(&machine, &command, repeat, &outcomes);
    print!("{markdown}");
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    progress(&format!("report written to {}", args.out.display()));
    Ok(())
}

/// One scenario against one fresh broker; the broker is always stopped afterwards and
/// its directory kept if anything went wrong.
async fn run_one(
    kind: Kind,
    scenario: Scenario,
    paths: &Paths,
    settings: &Settings,
    tag: &str,
) -> Result<Vec<scenario::Metric>> {
    let mut broker = Broker::start(kind, paths, tag).await?;
    let result = tokio::time::timeout(
        Duration::from_secs(300),
        scenario::run(scenario, &mut broker, settings),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after 300 s")));
    let stopped = broker.stop(result.is_err()).await;
    let metrics = result?;
    stopped?;
    Ok(metrics)
}
