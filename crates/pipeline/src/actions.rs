//! Running rule actions other than `store` (which the ingest loop batches): each runs
//! in its own task, bounded by a semaphore, so a slow webhook or an offline device never
//! holds up the messages behind it. Every outcome is counted on its rule; a webhook that
//! exhausts its attempts becomes a dead letter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hub::service::{C2dSend, MethodCall};
use serde_json::{json, Map, Value};
use telemetry::decode::DeadLetter;
use telemetry::rules::{render, render_topic, Action, Backoff, TemplateContext};

use crate::Inner;

/// Actions running at once, at most; more wait for a slot.
pub(crate) const MAX_RUNNING: usize = 256;

/// One action to run for one match.
pub(crate) struct Job {
    /// The rule set the match came from (for its counters).
    pub(crate) rules: Arc<telemetry::rules::RuleSet>,
    pub(crate) rule_index: usize,
    pub(crate) rule: String,
    pub(crate) action: Action,
    pub(crate) device: String,
    /// The document the rule matched (for templates).
    pub(crate) doc: Map<String, Value>,
    /// What republish and webhook send.
    pub(crate) payload: Value,
    /// When the message that led here arrived, to measure the loop's latency.
    pub(crate) arrived: Instant,
}

/// Starts `job` in the background.
pub(crate) fn spawn(inner: Arc<Inner>, job: Job) {
    tokio::spawn(async move {
        let Ok(_slot) = inner.action_slots.clone().acquire_owned().await else {
            return;
        };
        let ok = match run(&inner, &job).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(rule = %job.rule, device = %job.device, action = job.action.kind(), error = %e, "rule action failed");
                false
            }
        };
        job.rules.record_action(job.rule_index, ok);
    });
}

async fn run(inner: &Inner, job: &Job) -> Result<(), String> {
    let ctx = TemplateContext {
        device_id: &job.device,
        rule: &job.rule,
        doc: &job.doc,
    };
    let hub = &inner.hub;
    match &job.action {
        Action::Store {} => Ok(()), // batched by the ingest loop
        Action::Republish { topic, qos } => {
            let topic = render_topic(topic, &ctx).map_err(|e| e.to_string())?;
            let qos = mqtt::QoS::from_bits(*qos).ok_or_else(|| format!("bad QoS {qos}"))?;
            let body = serde_json::to_vec(&job.payload).map_err(|e| e.to_string())?;
            hub.publish(topic, body, qos)
                .await
                .map_err(|e| e.to_string())
        }
        Action::Webhook { url, .. } => webhook(inner, job, url).await,
        Action::C2d {
            payload,
            properties,
        } => {
            let message = C2dSend {
                payload: serde_json::to_vec(payload).map_err(|e| e.to_string())?,
                properties: properties.clone().into_iter().collect(),
                ttl: None,
            };
            hub.send_c2d(&job.device, message)
                .await
                .map_err(|e| e.to_string())?;
            inner.metrics.loop_latency.observe(job.arrived.elapsed());
            Ok(())
        }
        Action::Method {
            name,
            payload,
            timeout_s,
        } => {
            let call = MethodCall {
                name: name.clone(),
                payload: payload.clone(),
                response_timeout: Duration::from_secs(*timeout_s),
                connect_timeout: Duration::ZERO,
            };
            let answer = hub
                .invoke_method(&job.device, call)
                .await
                .map_err(|e| e.to_string())?;
            match answer.status {
                200..=299 => Ok(()),
                status => Err(format!("method {name} answered {status}")),
            }
        }
        Action::PatchDesired { patch } => {
            let patch = json!({ "properties": { "desired": patch } });
            hub.patch_twin(&job.device, patch, None)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Action::Alert { severity, message } => {
            let detail = json!({
                "rule": job.rule,
                "severity": severity,
                "message": render(message, &ctx),
                "data": job.payload,
            });
            hub.raise("alert", &job.device, detail);
            Ok(())
        }
    }
}

/// Posts with retries; after the last attempt the payload goes to the dead letters.
async fn webhook(inner: &Inner, job: &Job, url: &str) -> Result<(), String> {
    let body = serde_json::to_vec(&job.payload).map_err(|e| e.to_string())?;
    let backoff = Backoff::for_action(&job.action);
    let mut attempt = 1;
    loop {
        let error = match crate::webhook::post_json(url, &body, &inner.webhook_tls).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let retry = error
            .retryable()
            .then(|| backoff.as_ref()?.delay(attempt))
            .flatten();
        match retry {
            Some(delay) => {
                tracing::debug!(rule = %job.rule, attempt, error = %error, "webhook failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            None => {
                let letter = DeadLetter {
                    device_id: job.device.clone(),
                    received_ms: crate::now_ms(),
                    reason: "webhook_failed".into(),
                    detail: format!(
                        "rule {} → {url}: {error} after {attempt} attempt(s)",
                        job.rule
                    ),
                    content_type: Some("application/json".into()),
                    payload_len: body.len(),
                    payload: body,
                };
                inner.dead_letter(&letter, "webhook_failed");
                return Err(error.to_string());
            }
        }
    }
}
