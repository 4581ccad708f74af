//! `[pipeline]`: the data pipeline's settings and their translation to
//! [`pipeline::Config`].

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[pipeline]`: decoding, rules, time series, anomaly scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PipelineSettings {
    /// Run the pipeline at all.
    pub(crate) enabled: bool,
    /// Store every number of every message (built-in `store-all` rule).
    pub(crate) store_all: bool,
    /// Score messages with a per-device anomaly model.
    pub(crate) anomaly: bool,
    /// Add the default anomaly rule (alarm mode, capture command, alert).
    pub(crate) default_anomaly_rule: bool,
    /// Messages a device's model learns from before it scores.
    pub(crate) anomaly_warmup: u64,
    /// Score at which a device enters the anomalous state.
    pub(crate) anomaly_enter: f64,
    /// Score under which it leaves it.
    pub(crate) anomaly_exit: f64,
    /// Twin tag naming groups of identical machines that share one anomaly model (each
    /// keeps its own alarm); empty: one model per device.
    pub(crate) anomaly_group_tag: String,
    /// Seconds without a chunk after which a capture is stored as it is.
    pub(crate) capture_idle_secs: u64,
    /// Days raw points are kept (rollups longer).
    pub(crate) raw_retention_days: u64,
    /// Trust roots (PEM) for `https://` webhooks; empty: the system bundle.
    pub(crate) webhook_ca_file: String,
    /// The operator's rules (`[[pipeline.rules]]` with `[[pipeline.rules.actions]]`).
    pub(crate) rules: Vec<telemetry::rules::Rule>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        let model = analytics::anomaly::ModelConfig::default();
        let config = pipeline::Config::new(Default::default());
        PipelineSettings {
            enabled: true,
            store_all: config.store_all,
            anomaly: config.anomaly.is_some(),
            default_anomaly_rule: config.default_anomaly_rule,
            anomaly_warmup: model.warmup,
            anomaly_enter: model.enter,
            anomaly_exit: model.exit,
            anomaly_group_tag: String::new(),
            capture_idle_secs: config.capture_idle.as_secs(),
            raw_retention_days: config.series.default_retention.raw.as_secs() / 86_400,
            webhook_ca_file: String::new(),
            rules: Vec::new(),
        }
    }
}

impl PipelineSettings {
    /// The pipeline's configuration, its files under `data_dir/pipeline`.
    pub(crate) fn pipeline_config(&self, data_dir: &Path) -> pipeline::Config {
        let mut config = pipeline::Config::new(data_dir.join("pipeline"));
        config.store_all = self.store_all;
        config.default_anomaly_rule = self.default_anomaly_rule;
        config.anomaly = self.anomaly.then(|| analytics::anomaly::ModelConfig {
            warmup: self.anomaly_warmup,
            enter: self.anomaly_enter,
            exit: self.anomaly_exit,
            ..Default::default()
        });
        config.anomaly_group_tag =
            (!self.anomaly_group_tag.is_empty()).then(|| self.anomaly_group_tag.clone());
        config.capture_idle = Duration::from_secs(self.capture_idle_secs.max(1));
        config.series.default_retention.raw =
            Duration::from_secs(self.raw_retention_days.max(1) * 86_400);
        config.rules = self.rules.clone();
        config.webhook_ca_file = (!self.webhook_ca_file.is_empty())
            .then(|| std::path::PathBuf::from(&self.webhook_ca_file));
        config
    }
}
