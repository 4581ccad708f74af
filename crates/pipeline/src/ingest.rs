//! The ingest loop: telemetry from the hub, in batches, through decode → rules →
//! anomaly model → actions, with one durable time-series write per batch.
//!
//! A batch is whatever the hub has handed over since the last one (up to
//! [`MAX_BATCH`]): under load many messages share one fsync of the store; when idle a
//! batch is one message and nothing waits. Actions other than `store` start before the
//! batch is written, so an alarm's command never waits for storage.
//!
//! The batch's messages hold their publishers' PUBACKs (`Telemetry::hold`) until its
//! points and capture chunks are durable; the hub never skips a message for a slow
//! pipeline (its hand-off waits instead), so nothing acknowledged is lost.

use std::sync::Arc;
use std::time::Instant;

use analytics::anomaly::{Assessment, Transition};
use hub::service::{Telemetry, TelemetryReceiver};
use serde_json::{Map, Value};
use telemetry::capture::{self, ChunkHeader, Progress};
use telemetry::decode::{DeadLetter, Input, Message, METADATA_KEYS};
use telemetry::rules::{self, Action, AnomalyInput, Source};

use crate::actions::{self, Job};
use crate::anomalies::AnomalyEvent;
use crate::journal::Record;
use crate::Inner;

/// Messages handled per store write, at most.
const MAX_BATCH: usize = 512;
/// Name of the series holding each device's anomaly score.
pub const SCORE_FIELD: &str = "anomaly.score";

/// Points of one batch, owned until the write.
#[derive(Default)]
struct Points {
    rows: Vec<(String, String, i64, f64)>,
}

/// Capture work of one batch, done with its write.
#[derive(Default)]
pub(crate) struct Chunks {
    /// Accepted chunks to journal.
    pub(crate) records: Vec<Record>,
    /// Captures stored during the batch, whose journal goes after the write.
    pub(crate) stored: Vec<String>,
}

impl Points {
    fn push(&mut self, device: &str, field: String, ts_ms: i64, value: f64) {
        if value.is_finite() {
            self.rows.push((device.to_string(), field, ts_ms, value));
        }
    }
}

/// Runs until the hub stops.
pub(crate) async fn run(inner: Arc<Inner>, mut telemetry: TelemetryReceiver) {
    while let Some(first) = telemetry.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match telemetry.try_recv() {
                Some(t) => batch.push(t),
                None => break,
            }
        }
        if let Some(delay) = inner.config.ingest_delay {
            tokio::time::sleep(delay).await; // the test hook of an artificially slow pipeline
        }
        let mut points = Points::default();
        let mut chunks = Chunks::default();
        for message in &batch {
            handle(&inner, message, &mut points, &mut chunks).await;
        }
        if !write(&inner, points, chunks).await {
            // Nothing of this batch is known to be on disk: its publishers must send
            // again, so their acknowledgements become refusals.
            batch.iter().for_each(Telemetry::refuse);
        }
        // Only now may the publishers be answered: `batch` holds their `Hold`s.
        drop(batch);
    }
    tracing::debug!("telemetry stream ended");
}

/// One message.
async fn handle(inner: &Arc<Inner>, t: &Telemetry, points: &mut Points, chunks: &mut Chunks) {
    inner.metrics.messages.inc();
    let input = Input {
        device_id: &t.device_id,
        group: None,
        properties: &t.properties,
        content_type: t.content_type.as_deref(),
        payload: &t.payload,
        received_ms: t.received_ms,
    };
    if let Some((ct, _)) = input.declared_content_type() {
        if capture::is_capture(ct) {
            return inner.capture_chunk(&input, chunks);
        }
    }
    let decoder = inner.decoder();
    let message = match decoder.decode(&input) {
        Ok(m) => m,
        Err(e) => {
            let letter = DeadLetter::new(&input, &e, 4096);
            return inner.dead_letter(&letter, e.reason());
        }
    };
    if let Some(issue) = message.ts_issue {
        inner.metrics.timestamps.inc(issue.reason());
    }
    let tags = inner.tags.get(&inner.hub, &t.device_id).await;
    let doc = rules::message_document(message.clone(), tags.clone());
    run_rules(inner, Source::Telemetry, &doc, &message, t.arrived, points);
    if inner.models.is_some() {
        score(inner, &message, tags, t.arrived, points);
    }
}

/// Evaluates `source` rules over `doc`: stores go into `points`, the rest start now.
fn run_rules(
    inner: &Arc<Inner>,
    source: Source,
    doc: &Map<String, Value>,
    message: &Message,
    arrived: Instant,
    points: &mut Points,
) {
    let set = inner.rules();
    for matched in set.evaluate(source, doc) {
        for action in &matched.rule.actions {
            if let Action::Store {} = action {
                for (field, value) in matched.numeric_fields() {
                    if !is_metadata(&field, message) {
                        points.push(&message.device_id, field, message.ts_ms, value);
                    }
                }
                set.record_action(matched.index, true);
                continue;
            }
            let job = Job {
                rules: set.clone(),
                rule_index: matched.index,
                rule: matched.rule.name.clone(),
                action: action.clone(),
                device: message.device_id.clone(),
                doc: doc.clone(),
                payload: matched.payload(&message.device_id),
                arrived,
            };
            actions::spawn(inner.clone(), job);
        }
    }
}

/// A twin tag's value as a group name: strings as they are, numbers and booleans as
/// text; anything else (objects, arrays, null) names no group.
fn group_name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_metadata(field: &str, message: &Message) -> bool {
    METADATA_KEYS.contains(&field) || message.ts_field == Some(field)
}

/// Scores the message, stores the score, and on a state change records the event and
/// runs the `anomalies` rules.
fn score(
    inner: &Arc<Inner>,
    message: &Message,
    tags: Map<String, Value>,
    arrived: Instant,
    points: &mut Points,
) {
    let Some(models) = &inner.models else {
        return;
    };
    let features = message.numeric_fields();
    if features.is_empty() {
        return;
    }
    let group = inner
        .config
        .anomaly_group_tag
        .as_deref()
        .and_then(|tag| tags.get(tag))
        .and_then(group_name);
    let assessment = models.observe(&message.device_id, group.as_deref(), &features);
    if assessment.scored > 0 {
        points.push(
            &message.device_id,
            SCORE_FIELD.into(),
            message.ts_ms,
            assessment.score,
        );
    }
    if assessment.transition == Transition::None {
        return;
    }
    record(inner, message, &assessment);
    let top: Vec<(String, f64)> = assessment
        .top
        .iter()
        .map(|c| (c.feature.clone(), c.z))
        .collect();
    let input = AnomalyInput {
        score: assessment.score,
        state: assessment.state.as_str(),
        transition: transition_name(assessment.transition),
        top: &top,
    };
    let doc = rules::anomaly_document(&message.device_id, &input, tags);
    run_rules(inner, Source::Anomalies, &doc, message, arrived, points);
}

fn transition_name(t: Transition) -> &'static str {
    match t {
        Transition::None => "none",
        Transition::Entered => "entered",
        Transition::Exited => "exited",
    }
}

/// Writes the anomaly event (durably, before any action it triggers) and announces it.
fn record(inner: &Inner, message: &Message, a: &Assessment) {
    let event = AnomalyEvent {
        id: inner.next_id("a"),
        device_id: message.device_id.clone(),
        time_ms: message.ts_ms,
        transition: transition_name(a.transition).into(),
        score: a.score,
        explanation: serde_json::to_value(&a.top).unwrap_or(Value::Null),
    };
    if let Err(e) = inner.anomalies.append(&event) {
        tracing::error!(device = %event.device_id, error = %e, "cannot record anomaly event");
    }
    inner.metrics.anomalies.inc();
    tracing::info!(device = %event.device_id, transition = %event.transition, score = event.score, "anomaly");
    inner.hub.raise(
        "anomaly",
        &event.device_id,
        serde_json::to_value(&event).unwrap_or(Value::Null),
    );
}

/// The batch's durable write: capture chunks to their journals, points to the store
/// (one sync per file touched), then the journals of captures stored meanwhile go.
/// Writes a batch's points and capture chunks durably; false when any write failed.
async fn write(inner: &Arc<Inner>, points: Points, chunks: Chunks) -> bool {
    if points.rows.is_empty() && chunks.records.is_empty() && chunks.stored.is_empty() {
        return true;
    }
    let n = points.rows.len() as u64;
    let worker = inner.clone();
    let result = tokio::task::spawn_blocking(move || {
        let journaled = worker.journal.append(&chunks.records);
        if let Err(e) = &journaled {
            worker.metrics.store_failures.inc();
            tracing::error!(chunks = chunks.records.len(), error = %e, "capture journal write failed");
        }
        for id in &chunks.stored {
            worker.journal.remove(id);
        }
        if points.rows.is_empty() {
            return Ok(journaled.is_ok());
        }
        let batch: Vec<tsdb::Point<'_>> = points
            .rows
            .iter()
            .map(|(device, field, ts_ms, value)| tsdb::Point {
                device,
                field,
                ts_ms: *ts_ms,
                value: *value,
            })
            .collect();
        worker.series.append(&batch).map(|()| journaled.is_ok())
    })
    .await;
    match result {
        Ok(Ok(journaled)) => {
            inner.metrics.points.add(n);
            journaled
        }
        Ok(Err(e)) => {
            inner.metrics.store_failures.inc();
            tracing::error!(points = n, error = %e, "time-series write failed; the batch's publishers are refused");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "time-series write task failed; the batch's publishers are refused");
            false
        }
    }
}

impl Inner {
    /// Feeds one capture chunk; an accepted one is journaled with the batch, a finished
    /// capture is stored (and its journal removed after the batch's write).
    fn capture_chunk(&self, t: &Input<'_>, chunks: &mut Chunks) {
        let header = ChunkHeader::from_properties(|name| t.property(name));
        let progress = header.and_then(|h| {
            let mut assembler = self.assembler.lock().unwrap_or_else(|e| e.into_inner());
            let progress = assembler.feed(t.device_id, &h, t.payload, crate::monotonic_ms())?;
            Ok((h, progress))
        });
        match progress {
            Ok((_, Progress::Duplicate)) => {}
            Ok((header, progress)) => {
                let id = self.journal.id(t.device_id, &header.capture_id, || {
                    self.captures.new_id(crate::now_ms())
                });
                chunks.records.push(Record {
                    id: id.clone(),
                    device: t.device_id.to_owned(),
                    header,
                    payload: t.payload.to_vec(),
                });
                if let Progress::Complete(capture) = progress {
                    self.journal.forget(&capture.device_id, &capture.id);
                    if self.store_capture(capture, &id) {
                        chunks.stored.push(id);
                    }
                }
            }
            Err(e) => {
                let letter = DeadLetter {
                    device_id: t.device_id.to_owned(),
                    received_ms: t.received_ms,
                    reason: "bad_capture_chunk".into(),
                    detail: e.to_string(),
                    content_type: Some(capture::CONTENT_TYPE.into()),
                    payload_len: t.payload.len(),
                    payload: t.payload.iter().take(256).copied().collect(),
                };
                self.dead_letter(&letter, "bad_capture_chunk");
            }
        }
    }
}
