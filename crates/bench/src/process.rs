//! A child process under measurement: how it is started (a fresh directory, a log
//! file, no inherited `BOSUN_*` settings), how its addresses are learnt (bosun's
//! `listening NAME ADDR` lines, or a port that starts accepting), what it costs (CPU
//! time and memory from `/proc`), and how it is stopped.
//!
//! Every broker or hub the benchmarks start goes through here, so the MQTT, control
//! plane, TLS and pipeline benchmarks measure their processes the same way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A started child process, killed when dropped.
pub(crate) struct Measured {
    /// What it is, for error messages ("bosun", "mosquitto").
    name: &'static str,
    pid: u32,
    child: Child,
    dir: PathBuf,
    // Kept open so bosun never writes to a closed stdout.
    stdout: Option<Lines<BufReader<ChildStdout>>>,
}

impl Measured {
    /// Spawns `command` with its stderr in `dir/log` (stdout piped when `piped`, for
    /// the `listening` lines).
    pub(crate) fn spawn(
        name: &'static str,
        mut command: Command,
        dir: &Path,
        log: &str,
        piped: bool,
    ) -> Result<Measured> {
        let log = std::fs::File::create(dir.join(log)).context("cannot create the log file")?;
        let stdout = if piped { Stdio::piped() } else { Stdio::null() };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {name}"))?;
        let pid = child
            .id()
            .with_context(|| format!("{name} exited at once"))?;
        let stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
        Ok(Measured {
            name,
            pid,
            child,
            dir: dir.to_owned(),
            stdout,
        })
    }

    /// Where its directory (data, configuration, log) is.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The addresses of bosun's `listening NAME ADDR` lines for each of `names`, in
    /// that order, read from stdout within `limit`.
    pub(crate) async fn listening(
        &mut self,
        names: &[&str],
        limit: Duration,
    ) -> Result<Vec<SocketAddr>> {
        let lines = self.stdout.as_mut().context("stdout is not piped")?;
        let read = read_listening(lines, names);
        tokio::time::timeout(limit, read)
            .await
            .with_context(|| format!("no `listening {names:?}` lines within {limit:?}"))?
    }

    /// Waits until `addr` accepts TCP connections (for peers that print nothing).
    pub(crate) async fn accepting(&mut self, addr: SocketAddr, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not listen on {addr} within {limit:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fails if the process has exited (crashed) since it started.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        let status = self.child.try_wait();
        match status.with_context(|| format!("cannot query {}", self.name))? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited during the run ({status}); log in {}",
                self.name,
                self.dir.display()
            ),
        }
    }

    /// User plus system CPU seconds used so far.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        cpu_seconds_from_stat(&stat, clock_ticks())
    }

    /// Resident set size in KiB (`VmRSS`).
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        self.status_kib("VmRSS:")
    }

    /// Peak resident set size since the start, in KiB (`VmHWM`).
    pub(crate) fn peak_rss_kib(&self) -> Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// Resident memory in MiB.
    pub(crate) fn rss_mib(&self) -> Result<f64> {
        Ok(self.rss_kib()? as f64 / 1024.0)
    }

    /// A `kB` field of `/proc/PID/status`.
    fn status_kib(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {field} in {path}"))
    }

    /// Kills the process and waits for it; removes its directory unless `keep` (after
    /// a failure, to keep the log) or the process had already died.
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

/// A new, empty directory for one process of one run.
pub(crate) fn fresh_dir(kind: &str, tag: &str) -> Result<PathBuf> {
    let name = format!("bosun-bench-{kind}-{}-{tag}", std::process::id());
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// `exe` with every `BOSUN_*` variable of this environment removed, so a run uses
/// bosun's defaults plus only what the benchmark sets.
pub(crate) fn bosun_command(exe: &Path) -> Command {
    let mut command = Command::new(exe);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BOSUN_")) {
        command.env_remove(key);
    }
    command
}

/// Reads stdout until every one of `names` has had its `listening` line.
async fn read_listening(
    lines: &mut Lines<BufReader<ChildStdout>>,
    names: &[&str],
) -> Result<Vec<SocketAddr>> {
    let mut found: Vec<Option<SocketAddr>> = vec![None; names.len()];
    while let Some(line) = lines.next_line().await.context("cannot read stdout")? {
        let Some((name, addr)) = line
            .strip_prefix("listening ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        if let Some(i) = names.iter().position(|n| *n == name) {
            let addr = addr.trim().parse::<SocketAddr>();
            found[i] = Some(addr.with_context(|| format!("bad address in {line:?}"))?);
        }
        if let Some(all) = found.iter().copied().collect::<Option<Vec<_>>>() {
            return Ok(all);
        }
    }
    bail!("stdout closed before every listening line of {names:?}")
}

/// The admin token, waiting up to 5 s for bosun to write the file.
pub(crate) async fn read_token(path: &Path) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let token = text.trim();
            if !token.is_empty() {
                return Ok(token.to_owned());
            }
        }
        if Instant::now() > deadline {
            bail!("no admin token in {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port that was free a moment ago (bind to port 0, read it, release it).
pub(crate) fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a probe socket")?;
    let addr = listener
        .local_addr()
        .context("probe socket has no address")?;
    Ok(addr.port())
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

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`; 100, Linux's
/// value, if `getconf` cannot say).
pub(crate) fn clock_ticks() -> u64 {
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
}
