//! `bosun-bench hub`: the control plane under N simulated devices (default 10,000) in
//! one process, over real sockets: registration over the REST API, connects, reported
//! patches, desired fan-out and direct methods. There is no peer to compare with (no
//! Azure IoT Hub here), so the report has bosun's numbers only.
//!
//! Layout:
//! - `steps`: the measurements of one run, in order, each with its metrics.
//! - `fleet`: commands to and tallies from the devices, waiting with deadlines.
//! - `device`: one simulated device on the Azure IoT Hub topics (`topics`).
//! - `api`: batches of REST calls over keep-alive connections (`http`).
//! - `server`: a fresh `bosun serve` per run, its addresses, token, CPU and memory.
//! - `report`: the Markdown.
//!
//! This file owns the command line and the repetitions.

pub(crate) mod api;
mod device;
mod fleet;
mod http;
pub(crate) mod report;
pub(crate) mod server;
mod steps;
mod topics;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::peer::Paths;
use crate::report::Machine;
use report::RunOutcome;
use server::Server;
use steps::Settings;

/// Options of `bosun-bench hub`.
#[derive(Debug, clap::Args)]
pub(crate) struct HubArgs {
    /// The bosun binary.
    #[arg(long, default_value = "target/release/bosun")]
    bosun: PathBuf,
    /// Simulated devices (one MQTT connection each).
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Runs, each against a fresh server; the report shows medians.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Reported-property patches each device sends, one after another.
    #[arg(long, default_value_t = 1)]
    patches_per_device: u32,
    /// Direct-method calls, made once one at a time and once concurrently.
    #[arg(long, default_value_t = 1_000)]
    method_calls: usize,
    /// HTTP connections for registration, desired fan-out and concurrent methods.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks-hub-latest.md")]
    out: PathBuf,
}

/// Pause between runs, so the previous server's sockets and files are gone.
const BETWEEN_RUNS: Duration = Duration::from_secs(1);

/// `bosun-bench hub`.
pub(crate) async fn run(args: HubArgs) -> Result<()> {
    crate::progress("bosun-bench hub starting");
    anyhow::ensure!(
        args.bosun.exists(),
        "{} does not exist",
        args.bosun.display()
    );
    let settings = Settings {
        devices: args.devices.max(1),
        patches: args.patches_per_device,
        method_calls: args.method_calls,
        concurrency: args.concurrency.max(1),
    };
    steps::check_descriptors(&settings)?;
    // No Mosquitto here: its version is simply reported as unknown and not shown.
    let machine = Machine::probe(&Paths {
        bosun: args.bosun.clone(),
        mosquitto: PathBuf::new(),
    });
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let repeat = args.repeat.max(1);
    let mut runs = Vec::with_capacity(repeat);
    for rep in 0..repeat {
        crate::progress(&format!("run {}/{repeat}: starting bosun", rep + 1));
        let outcome = run_one(&args, &settings, rep).await;
        match &outcome.result {
            Ok(_) => crate::progress(&format!(
                "run {}/{repeat}: done in {:.0} s",
                rep + 1,
                outcome.seconds
            )),
            Err(e) => crate::progress(&format!("run {}/{repeat}: FAILED: {e}", rep + 1)),
        }
        runs.push(outcome);
        tokio::time::sleep(BETWEEN_RUNS).await;
    }
    let markdown = report::render(&machine, &command, &settings, &runs);
    print!("{markdown}");
    write_report(&args.out, &markdown)?;
    if runs.iter().all(|r| r.result.is_err()) {
        bail!("every run failed");
    }
    Ok(())
}

/// One run against a fresh server; the server is always stopped, and its directory
/// (log, database) kept when the run failed.
async fn run_one(args: &HubArgs, settings: &Settings, rep: usize) -> RunOutcome {
    let start = Instant::now();
    let result = async {
        let mut server = Server::start(&args.bosun, &format!("run{rep}")).await?;
        let measured = steps::measure(settings, &mut server, rep).await;
        if measured.is_err() {
            crate::progress(&format!(
                "keeping {} for inspection",
                server.dir().display()
            ));
        }
        let stopped = server.stop(measured.is_err()).await;
        let metrics = measured?;
        stopped?;
        Ok::<_, anyhow::Error>(metrics)
    }
    .await;
    RunOutcome {
        seconds: start.elapsed().as_secs_f64(),
        result: result.map_err(|e| format!("{e:#}")),
    }
}

/// Writes the report, creating its directory.
fn write_report(out: &std::path::Path, markdown: &str) -> Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(out, markdown).with_context(|| format!("cannot write {}", out.display()))?;
    crate::progress(&format!("report written to {}", out.display()));
    Ok(())
}
