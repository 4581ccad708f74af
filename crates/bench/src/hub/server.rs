//! The server under test: a fresh `bosun serve --dev` per run, on ephemeral ports, with
//! its own data directory, its addresses read from stdout and its admin token from the
//! data directory; plus its CPU time, memory and metrics for the report.
//!
//! Kept apart from [`crate::peer`] (which starts brokers for the MQTT comparison)
//! because the control plane needs more of the process: the HTTP address, the token,
//! and the data directory that holds the SQLite store.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::api::Api;
use crate::process::{bosun_command, fresh_dir, read_token, Measured};

/// Time allowed from spawning to both `listening` lines.
const STARTUP: Duration = Duration::from_secs(20);

/// A running `bosun serve`.
pub(crate) struct Server {
    /// MQTT listener.
    pub(crate) mqtt: SocketAddr,
    /// The REST API.
    pub(crate) api: Api,
    process: Measured,
}

impl Server {
    /// Starts `exe serve --dev` in a new directory named after `tag`, with every
    /// `BOSUN_*` variable of this environment removed so the run uses the defaults.
    pub(crate) async fn start(exe: &Path, tag: &str) -> Result<Server> {
        let dir = fresh_dir("hub", tag)?;
        let started = spawn(exe, &dir).await;
        started.with_context(|| format!("cannot start bosun (log in {})", dir.display()))
    }

    /// Where its data directory and log are.
    pub(crate) fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// Fails if the process has exited since it started.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        self.process.check_alive()
    }

    /// User plus system CPU seconds the process has used so far.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        self.process.cpu_seconds()
    }

    /// Resident memory in MiB (`VmRSS`).
    pub(crate) fn rss_mib(&self) -> Result<f64> {
        self.process.rss_mib()
    }

    /// Kills the process and waits for it; removes the directory unless `keep`.
    pub(crate) async fn stop(self, keep: bool) -> Result<()> {
        self.process.stop(keep).await
    }
}

/// Spawns bosun and waits for its addresses and token.
async fn spawn(exe: &Path, dir: &Path) -> Result<Server> {
    let data = dir.join("data");
    let mut command = bosun_command(exe);
    command
        .args([
            "serve",
            "--dev",
            "--mqtt",
            "127.0.0.1:0",
            "--mqtts",
            "off",
            "--http",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data);
    let mut process = Measured::spawn("bosun", command, dir, "bosun.log", true)?;
    let addrs = process.listening(&["mqtt", "http"], STARTUP).await?;
    let token = read_token(&data.join("admin.token")).await?;
    Ok(Server {
        mqtt: addrs[0],
        api: Api {
            addr: addrs[1],
            token,
        },
        process,
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
    fn prometheus_lines() {
        let text = "# HELP a\nbosun_x 3\nbosun_x_total 7\nbosun_y{l=\"1\"} 2\n";
        assert_eq!(prometheus_value(text, "bosun_x"), Some(3.0));
        assert_eq!(prometheus_value(text, "bosun_x_total"), Some(7.0));
        assert_eq!(prometheus_value(text, "bosun_y"), None);
    }
}
