//! The server under test: a fresh `bosun serve --dev` per run, on ephemeral ports, with
//! its own data directory, its addresses read from stdout and its admin token from the
//! data directory; plus its CPU time, memory and metrics for the report.
//!
//! Kept apart from [`crate::peer`] (which starts brokers for the MQTT comparison)
//! because the control plane needs more of the process: the HTTP address, the token,
//! and the data directory that holds the SQLite store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::api::Api;

/// Time allowed from spawning to both `listening` lines.
const STARTUP: Duration = Duration::from_secs(20);
/// Time allowed for the admin token file to appear after the listeners are up.
const TOKEN_WAIT: Duration = Duration::from_secs(5);

/// A running `bosun serve`.
pub(crate) struct Server {
    /// MQTT listener.
    pub(crate) mqtt: SocketAddr,
    /// The REST API.
    pub(crate) api: Api,
    pid: u32,
    child: Child,
    dir: PathBuf,
    // Kept open (and unread: bosun prints only its listening lines) so bosun never
    // writes to a closed stdout.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Server {
    /// Starts `exe serve --dev` in a new directory named after `tag`, with every
    /// `BOSUN_*` variable of this environment removed so the run uses the defaults.
    pub(crate) async fn start(exe: &Path, tag: &str) -> Result<Server> {
        let dir =
            std::env::temp_dir().join(format!("bosun-bench-hub-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let started = spawn(exe, &dir).await;
        started.with_context(|| format!("cannot start bosun (log in {})", dir.display()))
    }

    /// Where its data directory and log are.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fails if the process has exited since it started.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait().context("cannot query bosun")? {
            None => Ok(()),
            Some(status) => bail!(
                "bosun exited during the run ({status}); log in {}",
                self.dir.display()
            ),
        }
    }

    /// User plus system CPU seconds the process has used so far.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        cpu_seconds_from_stat(&stat, clock_ticks())
    }

    /// Resident memory in MiB (`VmRSS`).
    pub(crate) fn rss_mib(&self) -> Result<f64> {
        let path = format!("/proc/{}/status", self.pid);
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no VmRSS in {path}"))?;
        Ok(kib / 1024.0)
    }

    /// Kills the process and waits for it; removes the directory unless `keep`.
    pub(crate) async fn stop(mut self, keep: bool) -> Result<()> {
        let alive = self.check_alive();
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        if !keep && alive.is_ok() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        alive
    }
}

/// Spawns bosun and waits for its addresses and token.
async fn spawn(exe: &Path, dir: &Path) -> Result<Server> {
    let log = std::fs::File::create(dir.join("bosun.log")).context("cannot create bosun.log")?;
    let data = dir.join("data");
    let mut command = Command::new(exe);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BOSUN_")) {
        command.env_remove(key);
    }
    command
        .args([
            "serve",
            "--dev",
            "--mqtt",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .args(tls_off(exe)?)
        .arg("--data-dir")
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let pid = child.id().context("bosun exited at once")?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mqtt, http) = tokio::time::timeout(STARTUP, listening(&mut lines))
        .await
        .with_context(|| {
            format!("bosun printed no `listening mqtt/http` lines within {STARTUP:?}")
        })??;
    let token = read_token(&data.join("admin.token")).await?;
    Ok(Server {
        mqtt,
        api: Api { addr: http, token },
        pid,
        child,
        dir: dir.to_owned(),
        _stdout: lines,
    })
}

/// `--mqtts off` when this build has the flag (the TLS listener would otherwise take a
/// fixed port), nothing otherwise.
fn tls_off(exe: &Path) -> Result<&'static [&'static str]> {
    let help = std::process::Command::new(exe)
        .args(["serve", "--help"])
        .output()
        .with_context(|| format!("cannot run {} serve --help", exe.display()))?;
    Ok(
        if String::from_utf8_lossy(&help.stdout).contains("--mqtts") {
            &["--mqtts", "off"]
        } else {
            &[]
        },
    )
}

/// Reads stdout until both the MQTT and the HTTP address have been printed.
async fn listening(lines: &mut Lines<BufReader<ChildStdout>>) -> Result<(SocketAddr, SocketAddr)> {
    let (mut mqtt, mut http) = (None, None);
    while let Some(line) = lines
        .next_line()
        .await
        .context("cannot read bosun's stdout")?
    {
        let parse = |addr: &str| {
            addr.trim()
                .parse::<SocketAddr>()
                .with_context(|| format!("bad address in {line:?}"))
        };
        if let Some(addr) = line.strip_prefix("listening mqtt ") {
            mqtt = Some(parse(addr)?);
        } else if let Some(addr) = line.strip_prefix("listening http ") {
            http = Some(parse(addr)?);
        }
        if let (Some(m), Some(h)) = (mqtt, http) {
            return Ok((m, h));
        }
    }
    bail!("bosun closed stdout before printing both listening lines")
}

/// The admin token, waiting briefly for the file to be written.
async fn read_token(path: &Path) -> Result<String> {
    let deadline = Instant::now() + TOKEN_WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let token = text.trim();
            if !token.is_empty() {
                return Ok(token.to_owned());
            }
        }
        if Instant::now() > deadline {
            bail!("no admin token in {} after {TOKEN_WAIT:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// utime + stime of a `/proc/PID/stat` line, in seconds.
fn cpu_seconds_from_stat(stat: &str, ticks: u64) -> Result<f64> {
    // The command name may contain spaces and ')': the fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/PID/stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is index 0 here, so utime (14) and stime (15) are 11 and 12.
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .context("short or malformed /proc/PID/stat")
    };
    Ok((field(11)? + field(12)?) as f64 / ticks.max(1) as f64)
}

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`; 100 on Linux if
/// `getconf` cannot say).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// The value of an unlabelled counter or gauge in a Prometheus text exposition.
pub(crate) fn prometheus_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_times() -> Result<()> {
        let stat = "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0";
        assert_eq!(cpu_seconds_from_stat(stat, 100)?, 2.0);
        assert!(cpu_seconds_from_stat("42 (x) S 1", 100).is_err());
        Ok(())
    }

    #[test]
    fn prometheus_lines() {
        let text = "# HELP a\nbosun_x 3\nbosun_x_total 7\nbosun_y{l=\"1\"} 2\n";
        assert_eq!(prometheus_value(text, "bosun_x"), Some(3.0));
        assert_eq!(prometheus_value(text, "bosun_x_total"), Some(7.0));
        assert_eq!(prometheus_value(text, "bosun_y"), None);
    }
}
