//! Configuration: the typed settings of `bosun serve` and how they are layered.
//!
//! Layers, lowest first: built-in defaults < TOML file (`--config`) < environment
//! variables `BOSUN_SECTION__KEY` < command-line flags. This module owns the [`Settings`]
//! type, the layering, validation and the translation to [`broker::Config`]. The broker
//! owns the meaning and defaults of its limits: the `[mqtt]` and `[storage]` defaults are
//! read from `broker::Config::default()`, so they cannot drift apart.
//!
//! The file and the environment are merged as TOML tables before one typed
//! deserialization; environment values are typed by the default they override. Errors
//! name the offending file key or environment variable. A few dozen lines of our own
//! instead of a configuration crate: see `docs/dependencies.md`.
//!
//! Submodules: `env` (the `BOSUN_*` layer), `pipeline` (`[pipeline]`), `reference` (the table in
//! `docs/configuration.md`, generated and checked by a test), `tests`.

mod env;
mod pipeline;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::cli::{ConfigShowArgs, ListenFlag, OutputFormat, ServeArgs};

pub(crate) use env::bosun_env;
pub(crate) use pipeline::PipelineSettings;

/// Format of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// What a full session queue drops; mirrors [`broker::config::OverflowPolicy`] with
/// stable configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Overflow {
    /// Make room by dropping the oldest queued message.
    DropOldest,
    /// Refuse the incoming message.
    DropNewest,
}

impl From<broker::config::OverflowPolicy> for Overflow {
    fn from(policy: broker::config::OverflowPolicy) -> Self {
        match policy {
            broker::config::OverflowPolicy::DropOldest => Overflow::DropOldest,
            broker::config::OverflowPolicy::DropNewest => Overflow::DropNewest,
        }
    }
}

impl From<Overflow> for broker::config::OverflowPolicy {
    fn from(overflow: Overflow) -> Self {
        match overflow {
            Overflow::DropOldest => broker::config::OverflowPolicy::DropOldest,
            Overflow::DropNewest => broker::config::OverflowPolicy::DropNewest,
        }
    }
}

/// Everything `bosun serve` can be configured with; one field per TOML section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Process-level settings: addresses, data directory, logging.
    pub(crate) serve: ServeSettings,
    /// Broker limits.
    pub(crate) mqtt: MqttSettings,
    /// MQTT over TLS.
    pub(crate) tls: TlsSettings,
    /// Durable log settings.
    pub(crate) storage: StorageSettings,
    /// Control-plane settings.
    pub(crate) hub: HubSettings,
    /// Extra topics devices may use, beyond their own IoT Hub topics.
    pub(crate) acl: AclSettings,
    /// The data pipeline.
    pub(crate) pipeline: PipelineSettings,
    /// Firmware updates (OTA).
    pub(crate) firmware: FirmwareSettings,
}

/// `[firmware]`: firmware updates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FirmwareSettings {
    /// Bytes per second all image downloads together may send; 0: unlimited.
    pub(crate) max_download_rate: u64,
}

impl FirmwareSettings {
    /// The API's shared download limit, `None` when unlimited.
    pub(crate) fn download_limit(&self) -> Option<std::sync::Arc<api::DownloadLimit>> {
        (self.max_download_rate > 0)
            .then(|| std::sync::Arc::new(api::DownloadLimit::new(self.max_download_rate)))
    }
}

/// `[hub]`: the control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HubSettings {
    /// The host name devices reach the hub by, for connection strings.
    pub(crate) host_name: String,
    /// The DPS id scope provisioning clients name (`{id scope}/registrations/…`).
    pub(crate) id_scope: String,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            host_name: hub::service::HubConfig::default().host_name,
            id_scope: hub::auth::DEFAULT_ID_SCOPE.into(),
        }
    }
}

/// `[acl]`: operator-granted device topics. Rules are topic filters; `{id}` stands for
/// the device's id and `{group}` for its registry group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AclSettings {
    /// Filters (with `{id}`, `{group}`) devices may also publish to.
    pub(crate) device_publish: Vec<String>,
    /// Filters (with `{id}`, `{group}`) devices may also subscribe within.
    pub(crate) device_subscribe: Vec<String>,
}

impl AclSettings {
    /// The device ACL: built-in rules plus these.
    pub(crate) fn device_acl(&self) -> Result<hub::auth::DeviceAcl> {
        hub::auth::DeviceAcl::new(&self.device_publish, &self.device_subscribe).map_err(|e| {
            anyhow!("configuration key acl.device_publish or acl.device_subscribe: {e}")
        })
    }
}

/// `[serve]`: where bosun listens, keeps its data and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServeSettings {
    /// Directory for the durable log and other state.
    pub(crate) data_dir: PathBuf,
    /// MQTT listener address.
    pub(crate) mqtt: SocketAddr,
    /// HTTP listener address (metrics, health).
    pub(crate) http: SocketAddr,
    /// Admit anonymous clients from loopback.
    pub(crate) dev: bool,
    /// Log line format.
    pub(crate) log_format: LogFormat,
    /// Log filter directive (`info`, `info,broker=debug`, …).
    pub(crate) log_level: String,
    /// Async worker threads; 0 picks half the CPUs (at least one).
    pub(crate) worker_threads: usize,
}

impl Default for ServeSettings {
    fn default() -> Self {
        let broker = broker::Config::default();
        ServeSettings {
            data_dir: PathBuf::from("./bosun-data"),
            mqtt: broker.mqtt_addr,
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dev: broker.dev,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            worker_threads: 0,
        }
    }
}

/// `[mqtt]`: one key per limit of [`broker::Config`]; see its docs for the reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MqttSettings {
    /// Connections beyond this are refused at accept time.
    pub(crate) max_connections: usize,
    /// Largest packet accepted, in bytes.
    pub(crate) max_packet_size: u32,
    /// Unacknowledged QoS 1/2 messages a client may send (v5 receive maximum).
    pub(crate) receive_maximum: u16,
    /// QoS 1/2 messages in flight to one client.
    pub(crate) max_inflight: u16,
    /// Topic aliases a client may use towards the broker.
    pub(crate) topic_alias_maximum: u16,
    /// Messages one session may hold queued.
    pub(crate) max_queued_messages: usize,
    /// Payload bytes one session may hold queued.
    pub(crate) max_queued_bytes: usize,
    /// What a full session queue drops.
    pub(crate) overflow: Overflow,
    /// Cap on the session expiry a client may ask for, in seconds.
    pub(crate) max_session_expiry_secs: u64,
    /// Keep-alive (seconds) imposed on clients asking for none or more.
    pub(crate) max_keep_alive: u16,
    /// Outbound bytes buffered per connection before QoS 0 messages are shed.
    pub(crate) max_outbound_bytes: usize,
}

impl Default for MqttSettings {
    fn default() -> Self {
        let b = broker::Config::default();
        MqttSettings {
            max_connections: b.max_connections,
            max_packet_size: b.max_packet_size,
            receive_maximum: b.receive_maximum,
            max_inflight: b.max_inflight,
            topic_alias_maximum: b.topic_alias_maximum,
            max_queued_messages: b.max_queued_messages,
            max_queued_bytes: b.max_queued_bytes,
            overflow: b.overflow.into(),
            max_session_expiry_secs: b.max_session_expiry.as_secs(),
            max_keep_alive: b.max_keep_alive,
            max_outbound_bytes: b.max_outbound_bytes,
        }
    }
}

/// `[tls]`: the MQTT-over-TLS listener. On by default on loopback, with a certificate
/// from the broker's local CA, so devices can be developed against TLS from the first
/// start; an operator brings real certificates with `cert_file`/`key_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TlsSettings {
    /// Whether the TLS listener runs at all.
    pub(crate) enabled: bool,
    /// Listener address.
    pub(crate) addr: SocketAddr,
    /// PEM certificate chain; empty (with `key_file`) means the local CA issues one.
    /// A path rather than an `Option` so the key exists in the defaults (and so in the
    /// environment layer and the generated reference).
    pub(crate) cert_file: PathBuf,
    /// PEM private key for `cert_file`; empty means the local CA's.
    pub(crate) key_file: PathBuf,
    /// Extra DNS names or IPs for the generated certificate.
    pub(crate) subject_alt_names: Vec<String>,
    /// Whether the HTTP API is also served over HTTPS (with this certificate) while
    /// the TLS listener runs: devices download firmware there.
    pub(crate) https: bool,
    /// The HTTPS listener's address.
    pub(crate) https_addr: SocketAddr,
}

impl Default for TlsSettings {
    fn default() -> Self {
        let tls = broker::config::TlsConfig::default();
        TlsSettings {
            enabled: true,
            addr: tls.addr,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            subject_alt_names: tls.subject_alt_names,
            https: true,
            https_addr: DEFAULT_HTTPS_ADDR,
        }
    }
}

/// Default address of the HTTPS API listener (8443, the usual alternative HTTPS port).
const DEFAULT_HTTPS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8443);

impl TlsSettings {
    /// Where the HTTPS API listens, `None` when it is off (it needs the TLS listener's
    /// certificate, so it is off with `--mqtts off`). Left at its default while the
    /// MQTT TLS listener asks for port 0, it takes port 0 too, so hubs started for
    /// tests on free ports never fight over 8443.
    pub(crate) fn https_listener(&self) -> Option<SocketAddr> {
        if !(self.enabled && self.https) {
            return None;
        }
        let mut addr = self.https_addr;
        if addr == DEFAULT_HTTPS_ADDR && self.addr.port() == 0 {
            addr.set_port(0);
        }
        Some(addr)
    }

    /// The PEM certificate chain and key the TLS listeners use: the operator's, or
    /// the local CA's under `DATA_DIR/tls/` (the broker writes them before it listens).
    pub(crate) fn identity_files(&self, data_dir: &std::path::Path) -> (PathBuf, PathBuf) {
        if self.cert_file.as_os_str().is_empty() {
            let dir = data_dir.join("tls");
            (dir.join("server.pem"), dir.join("server.key"))
        } else {
            (self.cert_file.clone(), self.key_file.clone())
        }
    }

    /// The broker's view: `None` when disabled, paths only when given.
    fn broker_config(&self) -> Option<broker::config::TlsConfig> {
        let path = |p: &PathBuf| (!p.as_os_str().is_empty()).then(|| p.clone());
        self.enabled.then(|| broker::config::TlsConfig {
            addr: self.addr,
            cert_file: path(&self.cert_file),
            key_file: path(&self.key_file),
            subject_alt_names: self.subject_alt_names.clone(),
        })
    }
}

/// `[storage]`: the durable log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageSettings {
    /// A log segment is closed past this many bytes.
    pub(crate) segment_bytes: u64,
    /// fsync before acknowledging; `false` is for benchmarks only.
    pub(crate) fsync: bool,
    /// The log is compacted past this many bytes (and twice the last snapshot).
    pub(crate) compact_bytes: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        let log = broker::log::LogConfig::default();
        StorageSettings {
            segment_bytes: log.segment_bytes,
            fsync: log.fsync,
            compact_bytes: log.compact_bytes,
        }
    }
}

impl Settings {
    /// Layers the file (if any) and then `env` over the defaults, and validates the result.
    /// `env` is passed in (see [`bosun_env`]) so tests need not touch the process environment.
    pub(crate) fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Settings> {
        let mut table = match file {
            Some(path) => read_file(path)?,
            None => Table::new(),
        };
        let defaults = default_table()?;
        for (name, value) in env {
            env::apply_env_var(&mut table, &defaults, name, value)?;
        }
        let settings = from_table(table)?;
        settings.validate()?;
        Ok(settings)
    }

    /// The top layer: flags given on the `bosun serve` command line.
    pub(crate) fn apply_flags(&mut self, args: &ServeArgs) {
        let serve = &mut self.serve;
        if let Some(dir) = &args.data_dir {
            serve.data_dir = dir.clone();
        }
        if let Some(addr) = args.mqtt {
            serve.mqtt = addr;
        }
        if let Some(addr) = args.http {
            serve.http = addr;
        }
        if args.dev {
            serve.dev = true;
        }
        if let Some(format) = args.log_format {
            serve.log_format = format;
        }
        if let Some(level) = &args.log_level {
            serve.log_level = level.clone();
        }
        match args.mqtts {
            Some(ListenFlag::Off) => self.tls.enabled = false,
            Some(ListenFlag::Addr(addr)) => {
                self.tls.enabled = true;
                self.tls.addr = addr;
            }
            None => {}
        }
        match args.https {
            Some(ListenFlag::Off) => self.tls.https = false,
            Some(ListenFlag::Addr(addr)) => {
                self.tls.https = true;
                self.tls.https_addr = addr;
            }
            None => {}
        }
    }

    /// Rejects values that parse but cannot work, naming the key.
    fn validate(&self) -> Result<()> {
        let nonzero = [
            ("mqtt.max_connections", self.mqtt.max_connections as u64),
            ("mqtt.max_packet_size", u64::from(self.mqtt.max_packet_size)),
            ("mqtt.receive_maximum", u64::from(self.mqtt.receive_maximum)),
            ("mqtt.max_inflight", u64::from(self.mqtt.max_inflight)),
            ("storage.segment_bytes", self.storage.segment_bytes),
            ("storage.compact_bytes", self.storage.compact_bytes),
        ];
        if let Some((key, _)) = nonzero.iter().find(|(_, value)| *value == 0) {
            bail!("configuration key {key} must be at least 1");
        }
        self.acl.device_acl()?;
        if self.hub.host_name.is_empty() {
            bail!("configuration key hub.host_name must not be empty");
        }
        let scope = &self.hub.id_scope;
        if scope.is_empty() || scope.contains(['/', '+', '#']) {
            bail!("configuration key hub.id_scope must be non-empty, without / + #");
        }
        let tls = &self.tls;
        if tls.cert_file.as_os_str().is_empty() != tls.key_file.as_os_str().is_empty() {
            bail!("configuration keys tls.cert_file and tls.key_file must be set together (or both left empty for the local CA)");
        }
        Ok(())
    }

    /// The broker's view of these settings. Deliberately lists every field (no
    /// `..Default::default()`): a new broker knob fails to compile here until it is
    /// given a configuration key.
    pub(crate) fn broker_config(&self) -> broker::Config {
        let m = &self.mqtt;
        broker::Config {
            data_dir: self.serve.data_dir.clone(),
            mqtt_addr: self.serve.mqtt,
            dev: self.serve.dev,
            // Set by `serve` from the control plane (crate::control), not by settings.
            authenticator: None,
            authorizer: None,
            max_connections: m.max_connections,
            max_packet_size: m.max_packet_size,
            receive_maximum: m.receive_maximum,
            max_inflight: m.max_inflight,
            topic_alias_maximum: m.topic_alias_maximum,
            max_queued_messages: m.max_queued_messages,
            max_queued_bytes: m.max_queued_bytes,
            overflow: m.overflow.into(),
            max_session_expiry: Duration::from_secs(m.max_session_expiry_secs),
            max_keep_alive: m.max_keep_alive,
            max_outbound_bytes: m.max_outbound_bytes,
            log: broker::log::LogConfig {
                segment_bytes: self.storage.segment_bytes,
                fsync: self.storage.fsync,
                compact_bytes: self.storage.compact_bytes,
            },
            tls: self.tls.broker_config(),
        }
    }
}

/// Reads a TOML file, rejecting syntax errors, unknown keys and wrong types up front so
/// the error points at the line in the file.
fn read_file(path: &Path) -> Result<Table> {
    let context = || format!("invalid configuration file {}", path.display());
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    toml::from_str::<Settings>(&text).with_context(context)?;
    text.parse::<Table>().with_context(context)
}

/// The defaults as a TOML table: the schema environment values are typed against.
pub(crate) fn default_table() -> Result<Table> {
    Table::try_from(Settings::default()).context("cannot serialize the default settings")
}

/// Typed deserialization of the merged layers.
fn from_table(table: Table) -> Result<Settings> {
    // toml puts the key path on a second line; one line reads better after a variable name.
    Value::Table(table)
        .try_into::<Settings>()
        .map_err(|e| anyhow!("{}", e.to_string().trim().replace('\n', " ")))
}

/// `bosun config show`: prints the effective configuration (defaults < file < env).
pub(crate) fn show(args: &ConfigShowArgs) -> Result<()> {
    let settings = Settings::load(args.config.as_deref(), &bosun_env()?)?;
    let text = match args.output {
        OutputFormat::Toml => {
            let body = toml::to_string_pretty(&settings).context("cannot render TOML")?;
            format!("# Effective bosun configuration: defaults < --config file < BOSUN_* environment.\n\n{body}")
        }
        OutputFormat::Json => {
            serde_json::to_string_pretty(&settings).context("cannot render JSON")? + "\n"
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}
