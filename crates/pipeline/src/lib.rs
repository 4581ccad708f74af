//! bosun's data pipeline: what happens to device telemetry after the broker made it
//! durable and the hub attributed it to a device.
//!
//! Per message: decode and normalize (`telemetry::decode`; what does not decode becomes
//! a dead letter with its reason), evaluate the rules (`telemetry::rules`) over the
//! message, its properties and the device's twin tags, store numbers in the embedded
//! time-series store (`tsdb`), score the features with the device's anomaly model
//! (`analytics::anomaly`), and on a state change record an anomaly event and run the
//! `anomalies` rules — by default: desired `mode` = `alarm`, a C2D `capture` command,
//! and an alert. Raw captures the device then streams are reassembled and stored.
//!
//! Layout:
//! - `ingest`: the loop over the hub's telemetry, batching store writes.
//! - `actions`: rule actions in background tasks (republish, webhook, C2D, method,
//!   twin patch, alert); `webhook`: the HTTP POST they use.
//! - `models`: per-device anomaly models and their file; `anomalies`: the event log.
//! - `captures`: stored raw captures; `journal`: chunks of captures still being
//!   assembled, durable before their PUBACK; `tags`: the twin-tag cache; `metrics`:
//!   counters.
//! - [`Pipeline`]: the handle the API and the binary use (queries, captures, rules).
#![forbid(unsafe_code)]

mod actions;
mod anomalies;
mod captures;
mod config;
mod files;
mod ingest;
mod journal;
mod metrics;
mod models;
mod schemas;
mod tags;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use hub::service::Hub;
use telemetry::capture::{Assembler, Capture};
use telemetry::decode::{DeadLetter, DeadLetterLog, Decoder};
use telemetry::rules::{Rule, RuleError, RuleSet, RuleStats};
use tokio::sync::Semaphore;

pub use anomalies::AnomalyEvent;
pub use captures::CaptureInfo;
pub use config::Config;
pub use ingest::SCORE_FIELD;
pub use schemas::SchemaProblem;

/// Why the pipeline could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A file or directory of the pipeline.
    #[error("{what}: {source}")]
    Io {
        /// Which file, for the operator.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The time-series store.
    #[error("time-series store: {0}")]
    Series(#[from] tsdb::Error),
    /// A rule definition.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// No such capture.
    #[error("no capture {0}")]
    NoCapture(String),
    /// A rule asks for something this build cannot do.
    #[error("rule {rule:?}: {what}")]
    Unsupported {
        /// The rule.
        rule: String,
        /// What it asked for.
        what: String,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PipelineError {
    let what = what.into();
    move |source| PipelineError::Io { what, source }
}

/// The running pipeline; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

/// Shared state of the pipeline's tasks.
pub(crate) struct Inner {
    hub: Hub,
    config: Config,
    series: Arc<tsdb::Tsdb>,
    rules: RwLock<Arc<RuleSet>>,
    decoder: RwLock<Arc<Decoder>>,
    models: Option<models::Models>,
    anomalies: anomalies::AnomalyLog,
    schemas: schemas::SchemaFiles,
    /// Serializes schema changes (each rebuilds the decoder from the current one).
    schema_change: Mutex<()>,
    captures: captures::CaptureStore,
    journal: journal::Journal,
    assembler: Mutex<Assembler>,
    dead_letters: Mutex<DeadLetterLog>,
    tags: tags::TagCache,
    metrics: metrics::Metrics,
    action_slots: Arc<Semaphore>,
    /// Trust for `https://` webhooks.
    webhook_tls: webhook::Tls,
    next_id: AtomicU64,
}

/// How often the store is maintained (sealing, rollups, retention), the models saved
/// and idle captures finished.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(5);

impl Pipeline {
    /// Opens the pipeline's files under `config.dir` and starts consuming the hub's
    /// telemetry.
    pub fn start(hub: Hub, config: Config) -> Result<Pipeline, PipelineError> {
        let dir = &config.dir;
        std::fs::create_dir_all(dir).map_err(io_error(dir.display().to_string()))?;
        let series = tsdb::Tsdb::open(&dir.join("series"), config.series.clone())?;
        let rules = RuleSet::load(rule_definitions(&config, config.rules.clone())?)?;
        let file = |name: &str| dir.join(name);
        let schemas = schemas::SchemaFiles::open(&file("schemas")).map_err(io_error("schemas"))?;
        let registry = schemas.load().map_err(io_error("schemas"))?;
        let inner = Arc::new(Inner {
            rules: RwLock::new(Arc::new(rules)),
            decoder: RwLock::new(Arc::new(Decoder::new(config.limits, registry))),
            schemas,
            schema_change: Mutex::new(()),
            models: config.anomaly.clone().map(|c| models::Models::open(dir, c)),
            anomalies: anomalies::AnomalyLog::open(&file("anomalies.jsonl"))
                .map_err(io_error("anomalies.jsonl"))?,
            captures: captures::CaptureStore::open(&file("captures"))
                .map_err(io_error("captures"))?,
            journal: journal::Journal::open(&file("captures").join("open"))
                .map_err(io_error("captures/open"))?,
            assembler: Mutex::new(Assembler::default()),
            dead_letters: Mutex::new(
                DeadLetterLog::open(file("deadletters.jsonl"))
                    .map_err(io_error("deadletters.jsonl"))?,
            ),
            tags: tags::TagCache::new(config.tags_ttl),
            metrics: metrics::Metrics::default(),
            action_slots: Arc::new(Semaphore::new(actions::MAX_RUNNING)),
            webhook_tls: webhook::Tls::load(config.webhook_ca_file.as_deref()).map_err(|e| {
                PipelineError::Io {
                    what: "webhook CA file".into(),
                    source: std::io::Error::other(e.to_string()),
                }
            })?,
            next_id: AtomicU64::new(0),
            series: Arc::new(series),
            hub: hub.clone(),
            config,
        });
        inner.resume_captures();
        let telemetry = hub.telemetry_with_capacity(inner.config.handoff_capacity);
        tokio::spawn(ingest::run(inner.clone(), telemetry));
        tokio::spawn(maintain(Arc::downgrade(&inner)));
        Ok(Pipeline { inner })
    }

    /// Range aggregates from the time-series store.
    pub async fn query(
        &self,
        query: tsdb::Query,
    ) -> Result<Vec<tsdb::SeriesResult>, PipelineError> {
        let series = self.inner.series.clone();
        blocking(move || series.query(&query).map_err(PipelineError::from)).await
    }

    /// Every series the store knows.
    pub async fn series(&self) -> Vec<tsdb::SeriesKey> {
        let series = self.inner.series.clone();
        blocking(move || Ok(series.series()))
            .await
            .unwrap_or_default()
    }

    /// The newest anomaly events, newest first.
    pub fn anomalies(&self, device: Option<&str>, limit: usize) -> Vec<AnomalyEvent> {
        self.inner.anomalies.recent(device, limit)
    }

    /// Stored captures, newest first.
    pub fn captures(&self, device: Option<&str>) -> Result<Vec<CaptureInfo>, PipelineError> {
        self.inner
            .captures
            .list(device)
            .map_err(io_error("captures"))
    }

    /// One capture: its description and its samples (little-endian f32).
    pub fn capture(&self, id: &str) -> Result<(CaptureInfo, Vec<u8>), PipelineError> {
        let no = |_| PipelineError::NoCapture(id.to_string());
        let info = self.inner.captures.info(id).map_err(no)?;
        let samples = self.inner.captures.samples(id).map_err(no)?;
        Ok((info, samples))
    }

    /// The rules in force with their counters.
    pub fn rules(&self) -> Vec<(Rule, RuleStats)> {
        let set = self.inner.rules();
        set.rules().cloned().zip(set.snapshot()).collect()
    }

    /// Replaces the operator's rules (the built-in ones are added as at start);
    /// nothing changes if any rule is invalid.
    pub fn set_rules(&self, rules: Vec<Rule>) -> Result<(), PipelineError> {
        let definitions = rule_definitions(&self.inner.config, rules)?;
        let current = self.inner.rules();
        let next = current.reload(definitions)?;
        *self.inner.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(())
    }

    /// The newest dead letters.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, PipelineError> {
        let log = self
            .inner
            .dead_letters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        log.read_recent(limit)
            .map_err(io_error("deadletters.jsonl"))
    }

    /// Registers a Protobuf descriptor set; the message types it defines, fully named.
    pub fn register_schema(&self, descriptor_set: &[u8]) -> Result<Vec<String>, SchemaProblem> {
        self.inner
            .change_schemas(|files, registry| files.add_set(registry, descriptor_set))
    }

    /// Sets the content type assumed for `device`'s messages that name none (`None`
    /// removes it), e.g. `application/x-protobuf; messageType=acme.Reading`.
    pub fn set_device_schema(
        &self,
        device: &str,
        content_type: Option<&str>,
    ) -> Result<(), SchemaProblem> {
        self.inner
            .change_schemas(|files, registry| files.assign(registry, device, content_type))
    }

    /// Forgets a device's anomaly model, so it learns a new baseline.
    pub fn reset_model(&self, device: &str) -> bool {
        self.inner.models.as_ref().is_some_and(|m| m.reset(device))
    }

    /// The pipeline's counters (and the rules') in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        self.inner.metrics.render(&mut out);
        out.push_str(&self.inner.rules().render_prometheus());
        let name = "bosun_pipeline_backpressure_total";
        out.push_str(&format!(
            "# HELP {name} Telemetry messages whose publisher waited for room in the pipeline's queue (PUBACK held, nothing skipped).\n# TYPE {name} counter\n{name} {}\n",
            self.inner.hub.telemetry_delayed()
        ));
        let stats = self.inner.series.stats();
        for (name, help, value) in [
            (
                "bosun_series_points",
                "Points held by the time-series store.",
                stats.points,
            ),
            (
                "bosun_series_count",
                "Series in the time-series store.",
                stats.series,
            ),
            (
                "bosun_series_disk_bytes",
                "Bytes the time-series store occupies on disk.",
                stats.bytes_on_disk,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            ));
        }
        out
    }

    /// Saves the models and flushes the store; for a clean shutdown.
    pub async fn shutdown(&self) {
        let inner = self.inner.clone();
        let _ = blocking(move || {
            inner.save_models();
            inner.series.flush().map_err(PipelineError::from)
        })
        .await;
    }
}

/// The operator's rules plus the built-in ones the configuration asks for.
fn rule_definitions(config: &Config, mut rules: Vec<Rule>) -> Result<Vec<Rule>, PipelineError> {
    supported(&rules)?;
    if config.store_all && !rules.iter().any(|r| r.name == STORE_ALL) {
        rules.insert(
            0,
            Rule {
                name: STORE_ALL.into(),
                sql: "SELECT * FROM telemetry".into(),
                enabled: true,
                actions: vec![telemetry::rules::Action::Store {}],
            },
        );
    }
    if config.default_anomaly_rule {
        rules = telemetry::rules::with_default_rules(rules);
    }
    Ok(rules)
}

/// Refuses at load what would only fail later, message by message: a webhook URL the
/// client cannot send to (only `http://` and `https://`).
fn supported(rules: &[Rule]) -> Result<(), PipelineError> {
    for rule in rules {
        for action in &rule.actions {
            if let telemetry::rules::Action::Webhook { url, .. } = action {
                if let Err(e) = webhook::check_url(url) {
                    return Err(PipelineError::Unsupported {
                        rule: rule.name.clone(),
                        what: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Name of the built-in rule that stores every number.
pub const STORE_ALL: &str = "store-all";

impl Inner {
    fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn decoder(&self) -> Arc<Decoder> {
        self.decoder
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies `change` to a copy of the decoder's schemas and swaps the decoder in
    /// when it succeeds; messages being decoded meanwhile use the old one.
    fn change_schemas<T>(
        &self,
        change: impl FnOnce(
            &schemas::SchemaFiles,
            &mut telemetry::decode::SchemaRegistry,
        ) -> Result<T, SchemaProblem>,
    ) -> Result<T, SchemaProblem> {
        let _one_at_a_time = self.schema_change.lock().unwrap_or_else(|e| e.into_inner());
        let mut decoder = (*self.decoder()).clone();
        let result = change(&self.schemas, decoder.registry_mut())?;
        *self.decoder.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(decoder);
        Ok(result)
    }

    fn next_id(&self, prefix: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{}-{n}", now_ms())
    }

    /// Keeps a message that could not be handled, with why.
    fn dead_letter(&self, letter: &DeadLetter, reason: &'static str) {
        self.metrics.dead.inc(reason);
        tracing::info!(device = %letter.device_id, reason, detail = %letter.detail, "dead letter");
        let mut log = self.dead_letters.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = log.append(letter) {
            tracing::error!(error = %e, "cannot write dead letter");
        }
    }

    /// Stores a finished capture under `id`; whether it is on disk now.
    fn store_capture(&self, capture: Capture, id: &str) -> bool {
        let anomaly = self.anomalies.latest_entered(&capture.device_id);
        let info = CaptureInfo {
            id: id.to_owned(),
            device_id: capture.device_id.clone(),
            device_capture_id: capture.id.clone(),
            rate_hz: f64::from(capture.rate_hz),
            axes: capture.axes,
            samples: capture.frames(),
            chunks: capture.chunks,
            missing: capture.missing.iter().map(|r| [r.start, r.end]).collect(),
            anomaly_id: anomaly.map(|a| a.id),
            stored_ms: now_ms(),
        };
        match self.captures.save(&info, &capture.samples) {
            Ok(()) => {
                self.metrics.captures.inc();
                let detail = serde_json::to_value(&info).unwrap_or_default();
                self.hub.raise("capture", &info.device_id, detail);
                true
            }
            Err(e) => {
                tracing::error!(device = %info.device_id, error = %e, "cannot store capture");
                false
            }
        }
    }

    /// Puts the journaled chunks of captures open before a restart back into the
    /// assembler, so they complete when their remaining chunks arrive (or go idle and
    /// are stored with their gaps); journals of captures already stored go.
    fn resume_captures(&self) {
        let records = match self.journal.load() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the capture journal");
                return;
            }
        };
        let mut done = std::collections::BTreeSet::new();
        let resumed = records.len();
        for r in records {
            if done.contains(&r.id) || self.captures.exists(&r.id) {
                done.insert(r.id);
                continue;
            }
            let progress = {
                let mut assembler = self.assembler.lock().unwrap_or_else(|e| e.into_inner());
                assembler.feed(&r.device, &r.header, &r.payload, monotonic_ms())
            };
            match progress {
                Ok(telemetry::capture::Progress::Complete(capture)) => {
                    self.journal.forget(&r.device, &r.header.capture_id);
                    if self.store_capture(capture, &r.id) {
                        done.insert(r.id);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(capture = %r.id, error = %e, "journaled chunk refused"),
            }
        }
        for id in &done {
            self.journal.remove(id);
        }
        if resumed > 0 {
            tracing::info!(chunks = resumed, "capture chunks resumed from the journal");
        }
    }

    fn save_models(&self) {
        if let Some(models) = &self.models {
            if let Err(e) = models.save() {
                tracing::warn!(error = %e, "cannot save anomaly models");
            }
        }
    }

    /// Finishes captures no chunk arrived for within the idle time.
    fn finish_idle_captures(&self) {
        let idle_ms = u64::try_from(self.config.capture_idle.as_millis()).unwrap_or(u64::MAX);
        let finished: Vec<Capture> = {
            let mut assembler = self.assembler.lock().unwrap_or_else(|e| e.into_inner());
            let idle = assembler.idle(monotonic_ms(), idle_ms);
            idle.iter()
                .filter_map(|(device, id)| assembler.finish(device, id))
                .collect()
        };
        for capture in finished {
            tracing::info!(device = %capture.device_id, capture = %capture.id, missing = capture.missing.len(), "capture ended incomplete");
            let id = self
                .journal
                .forget(&capture.device_id, &capture.id)
                .unwrap_or_else(|| self.captures.new_id(now_ms()));
            if self.store_capture(capture, &id) {
                self.journal.remove(&id);
            }
        }
    }
}

/// Periodic upkeep until the pipeline is dropped.
async fn maintain(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.finish_idle_captures();
        let _ = tokio::task::spawn_blocking(move || {
            inner.save_models();
            if let Err(e) = inner.series.tick(now_ms()) {
                tracing::warn!(error = %e, "time-series maintenance failed");
            }
        })
        .await;
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PipelineError> + Send + 'static,
) -> Result<T, PipelineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PipelineError::Io {
            what: "pipeline task".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}

pub(crate) use hub::service::now_ms;

/// Milliseconds on a monotonic clock (for capture idleness).
pub(crate) fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, actions: Vec<telemetry::rules::Action>) -> Rule {
        Rule {
            name: name.into(),
            sql: "SELECT * FROM telemetry".into(),
            enabled: true,
            actions,
        }
    }

    #[test]
    fn built_in_rules_are_added_and_https_webhooks_accepted_at_load() {
        let config = Config::new("/tmp/x".into());
        let names: Vec<String> = rule_definitions(&config, vec![])
            .expect("valid")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names[0], STORE_ALL);
        assert!(names
            .iter()
            .any(|n| n == telemetry::rules::DEFAULT_ANOMALY_RULE));
        let https = telemetry::rules::Action::Webhook {
            url: "https://example.com/hook".into(),
            max_attempts: 3,
            backoff_ms: 100,
        };
        assert!(rule_definitions(&config, vec![rule("tls", vec![https])]).is_ok());
        let ftp = telemetry::rules::Action::Webhook {
            url: "ftp://example.com/hook".into(),
            max_attempts: 3,
            backoff_ms: 100,
        };
        let err = rule_definitions(&config, vec![rule("ftp", vec![ftp])]).expect_err("refused");
        assert!(err.to_string().contains("only http(s)://"), "{err}");
    }
}
