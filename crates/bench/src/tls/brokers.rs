//! Broker processes for `bosun-bench tls`: a fresh `bosun serve` (TLS listener on, the
//! bench's server certificate, production authentication: no `--dev`) or a fresh
//! Mosquitto with a TLS listener, each in its own temporary directory with its log.
//!
//! Kept apart from [`crate::peer`] because both need TLS settings, and bosun also its
//! HTTP address and admin token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::pki::Pki;
use crate::hub::api::Api;
use crate::peer::Kind;

/// Time allowed for a broker to start listening.
const STARTUP: Duration = Duration::from_secs(20);

/// What Mosquitto's TLS listener asks of clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MosquittoAuth {
    /// `require_certificate true`, `use_identity_as_username true`, `cafile` = bosun's
    /// device CA.
    ClientCert,
    /// No client certificate; user name and password checked against `password_file`.
    PasswordFile,
}

/// The Mosquitto configuration lines for `port` (also shown in the report).
pub(crate) fn mosquitto_conf(
    port: u16,
    pki: &Pki,
    auth: MosquittoAuth,
    password_file: &Path,
    nodelay: bool,
) -> String {
    let mut conf = format!(
        "listener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    if nodelay {
        conf.push_str("set_tcp_nodelay true\n");
    }
    match auth {
        MosquittoAuth::ClientCert => conf.push_str(&format!(
            "cafile {}\nrequire_certificate true\nuse_identity_as_username true\n",
            pki.mosquitto_cafile.display()
        )),
        MosquittoAuth::PasswordFile => conf.push_str(&format!(
            "allow_anonymous false\npassword_file {}\n",
            password_file.display()
        )),
    }
    conf
}

/// A running broker.
pub(crate) struct Process {
    /// Which broker.
    pub(crate) kind: Kind,
    /// The TLS listener.
    pub(crate) mqtts: SocketAddr,
    /// bosun's REST API (None for Mosquitto).
    pub(crate) api: Option<Api>,
    /// Its process id, for `/proc` readings.
    pid: u32,
    child: Child,
    dir: PathBuf,
    _stdout: Option<Lines<BufReader<ChildStdout>>>,
}

/// A new empty directory for one broker run.
pub(crate) fn fresh_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("bosun-bench-tls-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

impl Process {
    /// Starts `bosun serve` in `dir` (whose `data/` may already hold a device CA).
    pub(crate) async fn bosun(exe: &Path, dir: &Path, pki: &Pki) -> Result<Process> {
        let log = std::fs::File::create(dir.join("broker.log")).context("cannot create the log")?;
        let data = dir.join("data");
        let mut command = Command::new(exe);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BOSUN_")) {
            command.env_remove(key);
        }
        let mut child = command
            .env("BOSUN_TLS__CERT_FILE", &pki.server_cert)
            .env("BOSUN_TLS__KEY_FILE", &pki.server_key)
            .args([
                "serve",
                "--mqtt",
                "127.0.0.1:0",
                "--mqtts",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", exe.display()))?;
        let pid = child.id().context("bosun exited at once")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mqtts, http) = tokio::time::timeout(STARTUP, listening(&mut lines))
            .await
            .context("bosun printed no listening lines in time")??;
        let token = read_token(&data.join("admin.token")).await?;
        Ok(Process {
            kind: Kind::Bosun,
            mqtts,
            api: Some(Api { addr: http, token }),
            pid,
            child,
            dir: dir.to_owned(),
            _stdout: Some(lines),
        })
    }

    /// Starts Mosquitto in `dir` with a TLS listener configured by `auth`.
    pub(crate) async fn mosquitto(
        exe: &Path,
        dir: &Path,
        pki: &Pki,
        auth: MosquittoAuth,
        password_file: &Path,
        nodelay: bool,
    ) -> Result<Process> {
        let log = std::fs::File::create(dir.join("broker.log")).context("cannot create the log")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free port")?
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            mosquitto_conf(port, pki, auth, password_file, nodelay),
        )
        .context("cannot write mosquitto.conf")?;
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
        let mqtts = SocketAddr::from(([127, 0, 0, 1], port));
        let mut process = Process {
            kind: Kind::Mosquitto,
            mqtts,
            api: None,
            pid,
            child,
            dir: dir.to_owned(),
            _stdout: None,
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            process.check_alive()?;
            if tokio::net::TcpStream::connect(mqtts).await.is_ok() {
                return Ok(process);
            }
            if Instant::now() > deadline {
                bail!("mosquitto did not listen on {mqtts} in time");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fails if the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait().context("cannot query the broker")? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); log in {}",
                self.kind,
                self.dir.display()
            ),
        }
    }

    /// User plus system CPU seconds used so far.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
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
        Ok((field(11)? + field(12)?) as f64 / crate::peer::clock_ticks()? as f64)
    }

    /// Resident memory in MiB.
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

    /// Kills the broker; removes its directory unless `keep` (after a failure).
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

/// Reads bosun's stdout until the mqtts and http addresses have been printed.
async fn listening(lines: &mut Lines<BufReader<ChildStdout>>) -> Result<(SocketAddr, SocketAddr)> {
    let (mut mqtts, mut http) = (None, None);
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
        if let Some(addr) = line.strip_prefix("listening mqtts ") {
            mqtts = Some(parse(addr)?);
        } else if let Some(addr) = line.strip_prefix("listening http ") {
            http = Some(parse(addr)?);
        }
        if let (Some(m), Some(h)) = (mqtts, http) {
            return Ok((m, h));
        }
    }
    bail!("bosun closed stdout before printing its mqtts and http addresses")
}

/// The admin token, waiting up to 5 s for the file.
async fn read_token(path: &Path) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.trim().is_empty() {
                return Ok(text.trim().to_owned());
            }
        }
        if Instant::now() > deadline {
            bail!("no admin token in {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
