//! The scenario's `rollout` events: at its time, a signed image is uploaded to the hub
//! (its publisher key, the fleet's `--firmware-key`, registered first), a device group
//! covering the simulated fleet is defined, and a rollout of the image to that group is
//! created — what an operator does to ship an update, played while the fleet runs, so
//! "bad firmware later" is a scenario file. The report gets a row per rollout.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sim::RolloutEvent;

use super::super::api::Api;

/// The scenario's rollouts and which of them have started.
pub(crate) struct Rollouts {
    events: Vec<RolloutEvent>,
    started: usize,
    /// Rollouts created so far: name and the message printed for it.
    news: Vec<String>,
}

impl Rollouts {
    /// The events, in time order (as the scenario holds them).
    pub(crate) fn new(events: &[RolloutEvent]) -> Rollouts {
        Rollouts {
            events: events.to_vec(),
            started: 0,
            news: Vec::new(),
        }
    }

    /// Time until the next rollout is due, if any remains.
    pub(crate) fn due_in(&self, elapsed: Duration) -> Option<Duration> {
        let next = self.events.get(self.started)?;
        Some(next.at.saturating_sub(elapsed))
    }

    /// Starts every rollout that is due. `key` is the fleet's publisher key (PEM file);
    /// `prefix` the simulated devices' id prefix.
    pub(crate) fn poll(
        &mut self,
        elapsed: Duration,
        api: &Api,
        key: &Path,
        prefix: &str,
    ) -> Result<()> {
        while let Some(event) = self.events.get(self.started).filter(|e| e.at <= elapsed) {
            let firmware = start(api, event, key, prefix)
                .with_context(|| format!("scenario rollout {:?}", event.name))?;
            self.news.push(format!(
                "[{:>5.1}s] rollout {} of firmware {firmware} started ({}, policy {})",
                elapsed.as_secs_f64(),
                event.name,
                event.phases,
                event.policy
            ));
            self.started += 1;
        }
        Ok(())
    }

    /// Lines to print since the last call.
    pub(crate) fn take_news(&mut self) -> Vec<String> {
        std::mem::take(&mut self.news)
    }
}

/// The report's rollout table: where each of the scenario's rollouts stands now (those
/// the hub does not know, never started, are left out).
pub(crate) fn report(api: &Api, events: &[RolloutEvent]) -> String {
    let rows: String = events
        .iter()
        .filter_map(|e| {
            let doc = api.get(&format!("/api/rollouts/{}", e.name)).ok()?;
            Some(row(&e.name, &doc["progress"]))
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "\n| rollout | status | phase | offered | succeeded | failed | rolled back |\n\
         |---|---|---|---|---|---|---|\n{rows}"
    )
}

/// One table row from a rollout's `progress`.
fn row(name: &str, progress: &Value) -> String {
    let sum = |key: &str| -> u64 {
        progress["phases"].as_array().map_or(0, |phases| {
            phases.iter().filter_map(|p| p[key].as_u64()).sum()
        })
    };
    let (ok, failed, back) = (sum("succeeded"), sum("failed"), sum("rolledBack"));
    let offered = ok + failed + back + sum("inProgress");
    let status = progress["status"]["status"]
        .as_str()
        .or_else(|| progress["status"].as_str())
        .unwrap_or("?");
    let phase = progress["phase"].as_u64().map_or(0, |p| p + 1);
    format!("| {name} | {status} | {phase} | {offered} | {ok} | {failed} | {back} |\n")
}

/// Registers the key, uploads the image, defines the fleet's group and creates the
/// rollout; returns the image id.
fn start(api: &Api, event: &RolloutEvent, key: &Path, prefix: &str) -> Result<String> {
    let public_key =
        std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    // Already registered (an earlier event, or the operator) is fine: the upload below
    // is refused with its reason if the key is really missing.
    let _ = api.call(
        "POST",
        "/api/firmware/keys",
        Some(&json!({ "name": "sim-fleet", "publicKey": public_key })),
        &[],
    );
    let manifest: Value = serde_json::from_slice(&read(&event.manifest)?)
        .with_context(|| format!("{} is not a manifest", event.manifest.display()))?;
    let image = hub::base64::encode(&read(&event.image)?);
    let uploaded = api.call(
        "POST",
        "/api/firmware",
        Some(&json!({ "manifest": manifest, "image": image })),
        &[],
    )?;
    let Some(firmware) = uploaded.json["id"].as_str().map(str::to_owned) else {
        bail!(
            "the hub answered the upload without an id: {}",
            uploaded.json
        );
    };
    let group = format!("sim-{}", event.name);
    let condition = format!("deviceId >= '{prefix}' AND deviceId < '{prefix}~'");
    api.call(
        "PUT",
        &format!("/api/groups/{group}"),
        Some(&json!({ "condition": condition })),
        &[],
    )?;
    api.call(
        "POST",
        "/api/rollouts",
        Some(&body(event, &firmware, &group)?),
        &[],
    )?;
    Ok(firmware)
}

/// The `POST /api/rollouts` body of an event.
fn body(event: &RolloutEvent, firmware: &str, group: &str) -> Result<Value> {
    let phases = event
        .phases
        .split(',')
        .map(|p| p.trim().trim_end_matches('%').parse::<f64>())
        .collect::<Result<Vec<f64>, _>>()
        .with_context(|| format!("phases {:?}: percentages like 1%,10%,100%", event.phases))?;
    Ok(json!({
        "name": event.name,
        "firmware": firmware,
        "group": group,
        "phases": phases,
        "soakSeconds": event.soak.as_secs(),
        "maxStartDelaySeconds": event.start_delay.as_secs(),
        "policy": event.policy,
    }))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_the_phases() {
        let progress = json!({
            "status": {"status": "cancelled"},
            "phase": 0,
            "phases": [
                {"succeeded": 0, "failed": 1, "rolledBack": 0, "inProgress": 0},
                {"succeeded": 0, "failed": 0, "rolledBack": 0, "inProgress": 0}
            ]
        });
        assert_eq!(
            row("bad", &progress),
            "| bad | cancelled | 1 | 1 | 0 | 1 | 0 |\n"
        );
    }

    #[test]
    fn bodies_carry_phases_and_policy() {
        let event = RolloutEvent {
            at: Duration::from_secs(3),
            name: "fw".into(),
            manifest: "m.json".into(),
            image: "i.bin".into(),
            phases: "1%, 10%,100%".into(),
            policy: "rollback".into(),
            soak: Duration::from_secs(30),
            start_delay: Duration::from_secs(5),
        };
        let b = body(&event, "abc", "sim-fw").expect("body");
        assert_eq!(b["phases"], json!([1.0, 10.0, 100.0]));
        assert_eq!(
            (b["policy"].as_str(), b["soakSeconds"].as_u64()),
            (Some("rollback"), Some(30))
        );
        let bad = RolloutEvent {
            phases: "1%,ten".into(),
            ..event
        };
        assert!(body(&bad, "abc", "g").is_err());
    }
}
