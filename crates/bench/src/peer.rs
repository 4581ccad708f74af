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
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

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
    /// Which implementation it is.
    pub(crate) kind: Kind,
    /// Where its MQTT listener is.
    pub(crate) addr: SocketAddr,
    pid: u32,
    child: Child,
    dir: PathBuf,
    // Kept open so bosun never sees a closed stdout.
    _stdout: Option<ChildStdout>,
}

impl Broker {
    /// Starts a fresh broker of `kind`, waiting until it accepts MQTT connections.
    pub(crate) async fn start(kind: Kind, paths: &Paths, tag: &str) -> Result<Broker> {
        let dir =
            std::env::temp_dir().join(format!("bosun-bench-{}-{tag}-{kind}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let log = std::fs::File::create(dir.join("broker.log"))
            .context("cannot create the broker log file")?;
        let broker = match kind {
            Kind::Bosun => start_bosun(&paths.bosun, &dir, log).await,
            Kind::Mosquitto => start_mosquitto(&paths.mosquitto, &dir, log).await,
        };
        broker.with_context(|| format!("cannot start {kind} (log in {})", dir.display()))
    }

    /// User plus system CPU time the broker has used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        // The command name may contain spaces and parentheses: fields start after the last ')'.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .context("unexpected /proc/PID/stat format")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Field 3 (state) is index 0 here, so utime (14) and stime (15) are 11 and 12.
        let field = |i: usize| -> Result<u64> {
            fields
                .get(i)
                .context("short /proc/PID/stat")?
                .parse::<u64>()
                .context("bad number in /proc/PID/stat")
        };
        let ticks = field(11)? + field(12)?;
        Ok(ticks as f64 / clock_ticks()? as f64)
    }

    /// Resident set size in KiB (`VmRSS`).
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        self.status_kib("VmRSS:")
    }

    /// Peak resident set size since the process started, in KiB (`VmHWM`).
    pub(crate) fn peak_rss_kib(&self) -> Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// A `kB` field of `/proc/PID/status`.
    fn status_kib(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .with_context(|| format!("no {field} in {path}"))?;
        line.split_whitespace()
            .nth(1)
            .context("empty status line")?
            .parse()
            .context("bad number in /proc/PID/status")
    }

    /// Fails if the broker process has exited (crashed) since it started.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        match self
            .child
            .try_wait()
            .context("cannot query the broker process")?
        {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited during the run ({status}); log in {}",
                self.kind,
                self.dir.display()
            ),
        }
    }

    /// Kills the broker and waits for it. The temporary directory is removed unless
    /// `keep` is set (after a failure, to keep the log).
    pub(crate) async fn stop(mut self, keep: bool) -> Result<()> {
        let alive = self.check_alive();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        if !keep && alive.is_ok() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        alive
    }
}

/// `bosun serve --dev` on ephemeral ports; the address comes from its `listening mqtt` line.
async fn start_bosun(exe: &Path, dir: &Path, log: std::fs::File) -> Result<Broker> {
    let mut command = Command::new(exe);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BOSUN_")) {
        command.env_remove(key);
    }
    let mut child = command
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
        .arg(dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let pid = child.id().context("bosun exited at once")?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines
            .next_line()
            .await
            .context("cannot read bosun's stdout")?
        {
            if let Some(addr) = line.strip_prefix("listening mqtt ") {
                return addr
                    .trim()
                    .parse::<SocketAddr>()
                    .with_context(|| format!("bad address in {line:?}"));
            }
        }
        bail!("bosun closed stdout without a `listening mqtt` line")
    })
    .await
    .context("bosun did not print `listening mqtt` within 10 s")??;
    Ok(Broker {
        kind: Kind::Bosun,
        addr,
        pid,
        child,
        dir: dir.to_owned(),
        _stdout: Some(lines.into_inner().into_inner()),
    })
}

/// Mosquitto with a generated configuration on a port found free just before.
async fn start_mosquitto(exe: &Path, dir: &Path, log: std::fs::File) -> Result<Broker> {
    let port = free_port()?;
    let mut config = format!("listener {port} 127.0.0.1\n");
    for line in MOSQUITTO_SETTINGS {
        config.push_str(line);
        config.push('\n');
    }
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, config).context("cannot write mosquitto.conf")?;
    let child = Command::new(exe)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let pid = child.id().context("mosquitto exited at once")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut broker = Broker {
        kind: Kind::Mosquitto,
        addr,
        pid,
        child,
        dir: dir.to_owned(),
        _stdout: None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        broker.check_alive()?;
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(broker);
        }
        if Instant::now() > deadline {
            bail!("mosquitto did not listen on {addr} within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port that was free a moment ago (bind to port 0, read it, release it).
fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a probe socket")?;
    Ok(listener
        .local_addr()
        .context("probe socket has no address")?
        .port())
}

/// Clock ticks per second for `/proc/PID/stat` times (`getconf CLK_TCK`, normally 100).
pub(crate) fn clock_ticks() -> Result<u64> {
    static TICKS: OnceLock<u64> = OnceLock::new();
    if let Some(t) = TICKS.get() {
        return Ok(*t);
    }
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("cannot run getconf")?;
    let ticks: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("getconf CLK_TCK printed no number")?;
    if ticks == 0 {
        bail!("getconf CLK_TCK returned 0");
    }
    Ok(*TICKS.get_or_init(|| ticks))
}
