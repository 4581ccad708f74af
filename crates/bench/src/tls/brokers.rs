//! Broker processes for `bosun-bench tls`: a fresh `bosun serve` (TLS listener on, the
//! bench's server certificate, production authentication: no `--dev`) or a fresh
//! Mosquitto with a TLS listener, each in its own temporary directory with its log.
//!
//! Kept apart from [`crate::peer`] because both need TLS settings, and bosun also its
//! HTTP address and admin token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::Command;

use super::pki::Pki;
use crate::hub::api::Api;
use crate::peer::Kind;
use crate::process::{bosun_command, free_port, read_token, Measured};

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
    process: Measured,
}

/// A new empty directory for one broker run.
pub(crate) fn fresh_dir(tag: &str) -> Result<PathBuf> {
    crate::process::fresh_dir("tls", tag)
}

impl Process {
    /// Starts `bosun serve` in `dir` (whose `data/` may already hold a device CA).
    pub(crate) async fn bosun(exe: &Path, dir: &Path, pki: &Pki) -> Result<Process> {
        let data = dir.join("data");
        let mut command = bosun_command(exe);
        command
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
            .arg(&data);
        let mut process = Measured::spawn("bosun", command, dir, "broker.log", true)?;
        let addrs = process.listening(&["mqtts", "http"], STARTUP).await?;
        let token = read_token(&data.join("admin.token")).await?;
        Ok(Process {
            kind: Kind::Bosun,
            mqtts: addrs[0],
            api: Some(Api {
                addr: addrs[1],
                token,
            }),
            process,
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
        let port = free_port()?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            mosquitto_conf(port, pki, auth, password_file, nodelay),
        )
        .context("cannot write mosquitto.conf")?;
        let mut command = Command::new(exe);
        command.arg("-c").arg(&conf);
        let mut process = Measured::spawn("mosquitto", command, dir, "broker.log", false)?;
        let mqtts = SocketAddr::from(([127, 0, 0, 1], port));
        process.accepting(mqtts, STARTUP).await?;
        Ok(Process {
            kind: Kind::Mosquitto,
            mqtts,
            api: None,
            process,
        })
    }

    /// Fails if the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        self.process.check_alive()
    }

    /// User plus system CPU seconds used so far.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        self.process.cpu_seconds()
    }

    /// Resident memory in MiB.
    pub(crate) fn rss_mib(&self) -> Result<f64> {
        self.process.rss_mib()
    }

    /// Kills the broker; removes its directory unless `keep` (after a failure).
    pub(crate) async fn stop(self, keep: bool) -> Result<()> {
        self.process.stop(keep).await
    }
}
