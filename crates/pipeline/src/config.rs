//! The pipeline's settings, every one with a default a fleet can start on.

use std::path::PathBuf;
use std::time::Duration;

use telemetry::rules::Rule;

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the pipeline keeps its files (`series/`, `captures/`, `anomalies.jsonl`,
    /// `deadletters.jsonl`, `models.json`).
    pub dir: PathBuf,
    /// The operator's rules, from the configuration file.
    pub rules: Vec<Rule>,
    /// Store every number of every decoded message (a built-in `store-all` rule). On by
    /// default: a hub that drops measurements unless told otherwise surprises everyone.
    pub store_all: bool,
    /// Add the default anomaly rule (alarm mode, capture command, alert) unless the
    /// operator's rules define one with the same name.
    pub default_anomaly_rule: bool,
    /// Score every device's messages with an anomaly model.
    pub anomaly: Option<analytics::anomaly::ModelConfig>,
    /// Twin tag whose value names a group of identical machines sharing one model
    /// (each device keeping its own alarm): a new machine is scored from its first
    /// message. Devices without the tag, and all devices when `None`, get their own.
    pub anomaly_group_tag: Option<String>,
    /// A capture whose next chunk does not arrive within this is stored as it is, with
    /// its gaps listed.
    pub capture_idle: Duration,
    /// How long a device's twin tags are reused before being read again.
    pub tags_ttl: Duration,
    /// Time-series store options (retention, rollups, partitions).
    pub series: tsdb::Options,
    /// Payload limits for decoding.
    pub limits: telemetry::decode::Limits,
    /// Telemetry messages queued from the hub before publishers wait for their PUBACKs
    /// (backpressure, never loss).
    pub handoff_capacity: usize,
    /// Trust roots (PEM) for `https://` webhooks; `None`: the system bundle.
    pub webhook_ca_file: Option<PathBuf>,
    /// Test hook: sleep this long before each batch, to make the pipeline slow on
    /// purpose (`BOSUN_PIPELINE_TEST_DELAY_MS`); `None` in production.
    pub ingest_delay: Option<Duration>,
}

impl Config {
    /// Defaults, keeping files under `dir`.
    pub fn new(dir: PathBuf) -> Config {
        Config {
            dir,
            rules: Vec::new(),
            store_all: true,
            default_anomaly_rule: true,
            anomaly: Some(analytics::anomaly::ModelConfig::default()),
            anomaly_group_tag: None,
            capture_idle: Duration::from_secs(10),
            tags_ttl: Duration::from_secs(10),
            series: tsdb::Options::default(),
            limits: telemetry::decode::Limits::default(),
            handoff_capacity: env_number("BOSUN_PIPELINE_TEST_HANDOFF")
                .map_or(hub::service::TELEMETRY_BUFFER, |n| n as usize),
            webhook_ca_file: None,
            ingest_delay: env_number("BOSUN_PIPELINE_TEST_DELAY_MS").map(Duration::from_millis),
        }
    }
}

/// A test hook's value from the environment, when set to a number.
fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}
