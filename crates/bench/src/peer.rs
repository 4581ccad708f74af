//! The brokers under test: starting a fresh process, finding its MQTT address, reading
//! its CPU time and memory from `/proc`, and stopping it.
//!
//! Every measurement starts a new broker so no run inherits sessions, caches or heap
//! fragmentation from the previous one. Each broker gets its own temporary directory
//! (bosun's data directory, Mosquitto's configuration) and its stderr goes to a log file
//! there, kept when the run fails so the failure can be inspected.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::Command;

use crate::process::{bosun_command, free_port, fresh_dir, Measured};

/// Time allowed from spawning a broker to its MQTT listener accepting.
const STARTUP: Duration = Duration::from_secs(10);

/// Which broker implementation a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// `bosun serve`.
    Bosun,
    /// Eclipse Mosquitto.
    Mosquitto,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Bosun => "bosun",
            Kind::Mosquitto => "mosquitto",
        })
    }
}

/// Executables of both brokers.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    /// The `bosun` binary.
    pub(crate) bosun: PathBuf,
    /// The `mosquitto` binary.
    pub(crate) mosquitto: PathBuf,
}

/// The only lines of Mosquitto configuration the benchmark sets besides the listener;
/// everything else keeps Mosquitto's defaults. `max_queued_messages 0` lifts the
/// per-client queue limit (default 1000): with 100 publishers × 100 messages in flight
/// feeding one subscriber, any bounded queue turns the fan-in into a measurement of how
/// cheaply a broker drops messages.
pub(crate) const MOSQUITTO_SETTINGS: &[&str] = &["allow_anonymous true", "max_queued_messages 0"];

/// The same deviation for bosun, as environment variables: its session queue (default
/// 10,000 messages / 16 MiB) is raised far beyond what any scenario can fill. Every
/// other setting is bosun's default for `serve --dev` (durable log with fsync on).
pub(crate) const BOSUN_SETTINGS: &[(&str, &str)] = &[
    ("BOSUN_MQTT__MAX_QUEUED_MESSAGES", "100000000"),
    ("BOSUN_MQTT__MAX_QUEUED_BYTES", "4294967296"),
];

/// A running broker process.
pub(crate) struct Broker {
    /// Where its MQTT listener is.
    pub(crate) addr: SocketAddr,
    process: Measured,
}

impl Broker {
    /// Starts a fresh broker of `kind`, waiting until it accepts MQTT connections.
    pub(crate) async fn start(kind: Kind, paths: &Paths, tag: &str) -> Result<Broker> {
        let dir = fresh_dir("peer", &format!("{tag}-{kind}"))?;
        let broker = match kind {
            Kind::Bosun => start_bosun(&paths.bosun, &dir).await,
            Kind::Mosquitto => start_mosquitto(&paths.mosquitto, &dir).await,
        };
        broker.with_context(|| format!("cannot start {kind} (log in {})", dir.display()))
    }

    /// User plus system CPU time the broker has used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        self.process.cpu_seconds()
    }

    /// Resident set size in KiB (`VmRSS`).
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        self.process.rss_kib()
    }

    /// Peak resident set size since the process started, in KiB (`VmHWM`).
    pub(crate) fn peak_rss_kib(&self) -> Result<u64> {
        self.process.peak_rss_kib()
    }

    /// Fails if the broker process has exited (crashed) since it started.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        self.process.check_alive()
    }

    /// Kills the broker and waits for it. The temporary directory is removed unless
    /// `keep` is set (after a failure, to keep the log).
    pub(crate) async fn stop(self, keep: bool) -> Result<()> {
        self.process.stop(keep).await
    }
}

/// `bosun serve --dev` on ephemeral ports; the address comes from its `listening mqtt` line.
async fn start_bosun(exe: &Path, dir: &Path) -> Result<Broker> {
    let mut command = bosun_command(exe);
    command
        .envs(BOSUN_SETTINGS.iter().copied())
        .args([
            "serve",
            "--dev",
            "--mqtt",
            "127.0.0.1:0",
            "--mqtts",
            "off",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("data"));
    let mut process = Measured::spawn("bosun", command, dir, "broker.log", true)?;
    let addrs = process.listening(&["mqtt"], STARTUP).await?;
    Ok(Broker {
        addr: addrs[0],
        process,
    })
}

/// Mosquitto with a generated configuration on a port found free just before.
async fn start_mosquitto(exe: &Path, dir: &Path) -> Result<Broker> {
    let port = free_port()?;
    let mut config = format!("listener {port} 127.0.0.1\n");
    for line in MOSQUITTO_SETTINGS {
        config.push_str(line);
        config.push('\n');
    }
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, config).context("cannot write mosquitto.conf")?;
    let mut command = Command::new(exe);
    command.arg("-c").arg(&conf);
    let mut process = Measured::spawn("mosquitto", command, dir, "broker.log", false)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    process.accepting(addr, STARTUP).await?;
    Ok(Broker { addr, process })
}
