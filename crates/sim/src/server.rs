//! A hub the simulator runs itself: `bosun serve --dev` as a child process on loopback,
//! which it can kill (SIGKILL, as a crash or a power cut would) and start again on the
//! same data directory and the same ports, for the `hub_restart` scenario event.
//!
//! The hub announces its bound addresses on stdout (`listening mqtt ADDR`, `listening
//! mqtts ADDR` and `listening https ADDR` unless TLS is off, then `listening http
//! ADDR`); the first start asks for
//! port 0 everywhere and remembers what it got, so a restart comes back where the
//! devices look for it. Its stderr goes to `hub.log` in the data directory.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Error;

/// How long a start may take until the `listening http` line.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Name of the hub's log file in its data directory.
pub const LOG_FILE: &str = "hub.log";

/// How to start the hub.
#[derive(Clone, Debug)]
pub struct HubSettings {
    /// The `bosun` executable (the simulator's own, as a rule).
    pub exe: PathBuf,
    /// Its data directory (created if missing).
    pub data_dir: PathBuf,
    /// Whether to start the MQTT/TLS listener too.
    pub tls: bool,
    /// Environment for the process (e.g. `BOSUN_PIPELINE__ANOMALY_WARMUP`).
    pub envs: Vec<(String, String)>,
    /// More `serve` arguments (e.g. `--config FILE`).
    pub args: Vec<String>,
}

/// The addresses a hub announced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listening {
    /// MQTT, `host:port`.
    pub mqtt: String,
    /// MQTT over TLS, when on.
    pub mqtts: Option<String>,
    /// The HTTPS API (firmware downloads), when TLS is on.
    pub https: Option<String>,
    /// HTTP (REST API), `host:port`.
    pub http: String,
}

/// A running (or killed) hub child process.
pub struct HubProcess {
    settings: HubSettings,
    child: Option<Child>,
    listening: Listening,
}

impl HubProcess {
    /// Starts the hub on free loopback ports and waits for its `listening` lines.
    pub fn start(settings: HubSettings) -> Result<HubProcess, Error> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| hub_error("data dir", e))?;
        let wanted = Listening {
            mqtt: "127.0.0.1:0".into(),
            mqtts: settings.tls.then(|| "127.0.0.1:0".into()),
            https: settings.tls.then(|| "127.0.0.1:0".into()),
            http: "127.0.0.1:0".into(),
        };
        let (child, listening) = spawn(&settings, &wanted)?;
        Ok(HubProcess {
            settings,
            child: Some(child),
            listening,
        })
    }

    /// Where it listens (the same after a restart).
    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.settings.data_dir
    }

    /// Kills it with SIGKILL (no shutdown at all) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same data directory and ports (killing it first if it
    /// still runs). Retries while a port is still held, until [`START_DEADLINE`].
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill9();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match spawn(&self.settings, &self.listening) {
                Ok((child, listening)) => {
                    self.child = Some(child);
                    self.listening = listening;
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// SIGTERM (a graceful shutdown), then SIGKILL after [`STOP_GRACE`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `serve --dev` on the `wanted` addresses; the child and what it announced.
fn spawn(settings: &HubSettings, wanted: &Listening) -> Result<(Child, Listening), Error> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(settings.data_dir.join(LOG_FILE))
        .map_err(|e| hub_error("log file", e))?;
    let mut command = Command::new(&settings.exe);
    command
        .args(["serve", "--dev", "--mqtt", &wanted.mqtt, "--mqtts"])
        .arg(wanted.mqtts.as_deref().unwrap_or("off"))
        .arg("--https")
        .arg(wanted.https.as_deref().unwrap_or("off"))
        .args(["--http", &wanted.http, "--data-dir"])
        .arg(&settings.data_dir)
        .args(&settings.args)
        .envs(settings.envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut child = command.spawn().map_err(|e| hub_error("start", e))?;
    let lines = match child.stdout.take() {
        Some(stdout) => read_lines(stdout),
        None => return Err(Error::Hub("the hub's stdout is not piped".into())),
    };
    match announced(&lines, settings.tls) {
        Some(listening) => Ok((child, listening)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(Error::Hub(format!(
                "the hub did not start on {}; see {}",
                wanted.mqtt,
                settings.data_dir.join(LOG_FILE).display()
            )))
        }
    }
}

/// A thread that forwards the hub's stdout lines (and keeps draining it afterwards, so
/// the hub never blocks on a full pipe).
fn read_lines(stdout: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Reads `listening` lines until `http` (announced last); `None` when the hub exits
/// or is too slow.
fn announced(lines: &mpsc::Receiver<String>, tls: bool) -> Option<Listening> {
    let deadline = Instant::now() + START_DEADLINE;
    let mut found = Listening::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).ok()?;
        let Some((what, address)) = line
            .strip_prefix("listening ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let address = address.trim().to_owned();
        match what {
            "mqtt" => found.mqtt = address,
            "mqtts" => found.mqtts = Some(address),
            "https" => found.https = Some(address),
            "http" => {
                found.http = address;
                let complete = !found.mqtt.is_empty() && (found.mqtts.is_some() || !tls);
                return complete.then_some(found);
            }
            _ => {}
        }
    }
}

fn hub_error(what: &str, e: std::io::Error) -> Error {
    Error::Hub(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        for l in lines {
            let _ = tx.send((*l).to_owned());
        }
        rx
    }

    #[test]
    fn reads_the_listening_contract() {
        let rx = feed(&[
            "banner",
            "listening mqtt 127.0.0.1:1883",
            "listening mqtts 127.0.0.1:8883",
            "listening http 127.0.0.1:8080",
        ]);
        let got = announced(&rx, true).expect("complete");
        assert_eq!(got.mqtt, "127.0.0.1:1883");
        assert_eq!(got.mqtts.as_deref(), Some("127.0.0.1:8883"));
        assert_eq!(got.http, "127.0.0.1:8080");
        // TLS wanted but not announced; and a hub that exits (channel closed).
        let rx = feed(&["listening mqtt a:1", "listening http a:2"]);
        assert_eq!(announced(&rx, true), None);
        let rx = feed(&["listening mqtt a:1"]);
        assert_eq!(announced(&rx, false), None);
    }

    #[test]
    fn a_missing_executable_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let settings = HubSettings {
            exe: dir.path().join("no-such-bosun"),
            data_dir: dir.path().join("hub"),
            tls: false,
            envs: Vec::new(),
            args: Vec::new(),
        };
        assert!(matches!(HubProcess::start(settings), Err(Error::Hub(_))));
    }
}
