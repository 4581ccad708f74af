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
    /// A capture whose next chunk does not arrive within this is stored as it is, with
    /// its gaps listed.
    pub capture_idle: Duration,
    /// How long a device's twin tags are reused before being read again.
    pub tags_ttl: Duration,
    /// Time-series store options (retention, rollups, partitions).
    pub series: tsdb::Options,
    /// Payload limits for decoding.
    pub limits: telemetry::decode::Limits,
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
            capture_idle: Duration::from_secs(10),
            tags_ttl: Duration::from_secs(10),
            series: tsdb::Options::default(),
            limits: telemetry::decode::Limits::default(),
        }
    }
}
