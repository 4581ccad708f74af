//! Drives the rollouts: feeds the engine (`ota::rollout`) with the hub's device events,
//! group membership and the clock, and carries out what it decides (desired `firmware`
//! twin patches). One task per server, started by the binary ([`crate::rollout_driver`]).
//!
//! Inputs: `deviceConnected`/`deviceDisconnected` events (offline gate); `twinChanged`
//! events from devices whose patch has `firmware`: its `boots` counter (reboot gate),
//! and its update state (taken from the event's patch when it is the whole object, as
//! the agent sends it, else read from the twin), fed as a report when it is about the
//! rollout's image; every [`TICK`] the clock (timeouts,
//! soak) and the data pipeline's new anomaly events (`entered`, anomaly gate); every
//! [`REFRESH`] the target group's members (dynamic groups) and their connection states. A lagging event subscription loses reports; the device timeout
//! then counts those devices as failed rather than waiting for ever.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hub::service::{Event, HubError};
use ota::rollout::{Action, DeviceState, Report, Status};
use ota::{DesiredFirmware, FirmwareStore, ReportedFirmware};
use pipeline::{AnomalyEvent, Pipeline};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::ControlPlane;

/// How often the clock is fed to running rollouts.
pub(super) const TICK: Duration = Duration::from_secs(1);
/// How often running rollouts re-read their group's members.
pub(super) const REFRESH: Duration = Duration::from_secs(10);
/// Page size when reading a group's members.
const MEMBER_PAGE: usize = 1000;
/// Most members a rollout takes from its group.
pub(super) const MAX_MEMBERS: usize = 100_000;
/// How long a device's presigned download URL stays valid: a week covers a device
/// that is offline for days (the twin waits for it); every new notification re-signs.
pub(super) const URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A group's members now, and which of them are offline.
pub(super) async fn members<H: ControlPlane>(
    hub: &H,
    group: &str,
) -> Result<(BTreeSet<String>, BTreeSet<String>), HubError> {
    let (mut all, mut offline) = (BTreeSet::new(), BTreeSet::new());
    let mut after = None;
    loop {
        let page = hub.group_devices(group, after, MEMBER_PAGE).await?;
        for item in &page.items {
            let Some(id) = item["deviceId"].as_str() else {
                continue;
            };
            if item["connectionState"] == "disconnected" {
                offline.insert(id.to_owned());
            }
            all.insert(id.to_owned());
        }
        match page.continuation {
            Some(next) if all.len() < MAX_MEMBERS => after = Some(next),
            _ => return Ok((all, offline)),
        }
    }
}

/// Carries out `actions` of rollout `name`: desired-property patches; a device that
/// cannot be notified is reported failed at once, and what that decides is carried out
/// in turn.
pub(super) async fn carry_out<H: ControlPlane>(
    hub: &H,
    store: &FirmwareStore,
    name: &str,
    actions: Vec<Action>,
) {
    let Ok((firmware_id, _)) = store.rollouts().target(name) else {
        return;
    };
    let manifest = store.manifest(&firmware_id).ok();
    let mut queue: VecDeque<Action> = actions.into();
    while let Some(action) = queue.pop_front() {
        let (device, firmware) = match action {
            Action::Notify {
                device,
                start_delay_ms,
            } => {
                let Some(manifest) = manifest.clone() else {
                    let reason = "firmware no longer stored".to_owned();
                    queue.extend(fail(store, name, &device, reason));
                    continue;
                };
                let expires = now_ms() / 1000 + URL_LIFETIME.as_secs();
                let desired = DesiredFirmware {
                    // Presigned for this device alone: it has no API token.
                    url: store.url_signer().url(&firmware_id, &device, expires),
                    id: firmware_id.clone(),
                    manifest,
                    start_delay_ms,
                    rollout: Some(name.to_owned()),
                    roll_back: false,
                };
                (device, serde_json::to_value(desired).unwrap_or(Value::Null))
            }
            Action::RollBack { device } => (device, json!({ "rollBack": true })),
            Action::Event(event) => {
                tracing::info!(rollout = name, ?event, "rollout event");
                continue;
            }
        };
        let patch = json!({ "properties": { "desired": { "firmware": firmware } } });
        if let Err(e) = hub.patch_twin(&device, patch, None).await {
            tracing::warn!(rollout = name, device, error = %e, "cannot write desired firmware");
            let reason = format!("cannot notify the device: {e}");
            queue.extend(fail(store, name, &device, reason));
        }
    }
}

/// Records a failure the hub itself observed for a device; returns what it decides.
fn fail(store: &FirmwareStore, name: &str, device: &str, reason: String) -> Vec<Action> {
    let now = now_ms();
    let result = store.rollouts().update(name, now, |r| {
        r.report(device, Report::Failed { reason }, now)
    });
    result.unwrap_or_else(|e| {
        tracing::warn!(rollout = name, error = %e, "cannot record a failure");
        Vec::new()
    })
}

/// Runs one change on every running rollout and carries out what it decides.
async fn each_running<H: ControlPlane>(
    hub: &H,
    store: &FirmwareStore,
    mut change: impl FnMut(&mut ota::rollout::Rollout, u64) -> Vec<Action>,
) {
    for name in store.rollouts().running() {
        let now = now_ms();
        match store.rollouts().update(&name, now, |r| change(r, now)) {
            Ok(actions) if !actions.is_empty() => carry_out(hub, store, &name, actions).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(rollout = name, error = %e, "cannot update rollout"),
        }
    }
}

/// Re-reads every running rollout's group.
async fn refresh<H: ControlPlane>(hub: &H, store: &FirmwareStore) {
    for name in store.rollouts().running() {
        let Ok((_, group)) = store.rollouts().target(&name) else {
            continue;
        };
        let (all, offline) = match members(hub, &group).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(rollout = name, error = %e, "cannot read the target group");
                continue;
            }
        };
        let now = now_ms();
        let result = store.rollouts().update(&name, now, |r| {
            let mut actions = r.set_members(&all, now);
            actions.extend(r.set_offline_all(&offline, now));
            actions
        });
        if let Ok(actions) = result {
            carry_out(hub, store, &name, actions).await;
        }
    }
}

/// The device's reported `firmware`, if it parses.
async fn reported<H: ControlPlane>(hub: &H, device: &str) -> Option<ReportedFirmware> {
    let twin = hub.twin(device).await.ok()?;
    serde_json::from_value(twin.json["properties"]["reported"]["firmware"].clone()).ok()
}

/// What a hub event says about a device, for its rollouts.
enum Input {
    /// It connected (`false`) or disconnected (`true`).
    Offline(bool),
    /// It reported its `firmware`: the update's state (when the patch had one) and
    /// its boot counter (when it had one).
    Firmware {
        /// The reported update state.
        report: Option<ReportedFirmware>,
        /// The reported `boots`.
        boots: Option<u64>,
    },
}

/// Reads what a hub event says for rollouts; `None` when nothing.
async fn input_of<H: ControlPlane>(hub: &H, event: &Event) -> Option<Input> {
    match event.kind {
        "deviceConnected" => Some(Input::Offline(false)),
        "deviceDisconnected" => Some(Input::Offline(true)),
        // Our own desired patches also change the twin; only device reports matter,
        // and only those about firmware.
        "twinChanged" if event.detail.get("desiredVersion").is_none() => {
            let patched = event.detail["patch"].get("firmware")?;
            let boots = patched.get("boots").and_then(Value::as_u64);
            let report = match patched.get("state") {
                None => None,
                // The agent reports the whole object; a partial patch needs the twin.
                Some(_) => match patched
                    .get("id")
                    .and_then(|_| serde_json::from_value(patched.clone()).ok())
                {
                    Some(whole) => Some(whole),
                    None => reported(hub, &event.device_id).await,
                },
            };
            Some(Input::Firmware { report, boots })
        }
        _ => None,
    }
}

/// Feeds one hub event to the running rollouts that include its device.
async fn on_event<H: ControlPlane>(hub: &H, store: &FirmwareStore, event: Event) {
    let device = event.device_id.as_str();
    let concerned = store.rollouts().running_for(device);
    if concerned.is_empty() {
        return;
    }
    let Some(input) = input_of(hub, &event).await else {
        return;
    };
    for (name, firmware_id) in concerned {
        let now = now_ms();
        let result = store.rollouts().update(&name, now, |r| match &input {
            Input::Offline(offline) => r.set_offline(device, *offline, now),
            Input::Firmware { report, boots } => {
                let mut actions = match boots {
                    Some(count) => r.boots(device, *count, now),
                    None => Vec::new(),
                };
                // A state about another image (an earlier update) is not this rollout's.
                let ours = report
                    .as_ref()
                    .filter(|f| f.id.as_deref() == Some(firmware_id.as_str()))
                    .and_then(ReportedFirmware::to_report);
                if let Some(report) = ours {
                    actions.extend(r.report(device, report, now));
                }
                actions
            }
        });
        match result {
            Ok(actions) => carry_out(hub, store, &name, actions).await,
            Err(e) => tracing::warn!(rollout = name, error = %e, "cannot update rollout"),
        }
    }
}

/// Most anomaly events read from the pipeline per tick.
const ANOMALY_BATCH: usize = 1000;

/// Devices that entered an anomaly after `since_ms`, and the newest time seen.
fn entered_since(events: &[AnomalyEvent], since_ms: i64) -> (BTreeSet<String>, i64) {
    let newest = events.iter().map(|e| e.time_ms).fold(since_ms, i64::max);
    let devices = events
        .iter()
        .filter(|e| e.time_ms > since_ms && e.transition == "entered")
        .map(|e| e.device_id.clone())
        .collect();
    (devices, newest)
}

/// Feeds anomalies newer than `since_ms` to the running rollouts that include their
/// devices; returns the newest time seen.
async fn anomalies<H: ControlPlane>(
    hub: &H,
    store: &FirmwareStore,
    pipeline: &Pipeline,
    since_ms: i64,
) -> i64 {
    let (devices, newest) = entered_since(&pipeline.anomalies(None, ANOMALY_BATCH), since_ms);
    for device in devices {
        for (name, _) in store.rollouts().running_for(&device) {
            let now = now_ms();
            if let Ok(actions) = store
                .rollouts()
                .update(&name, now, |r| r.anomaly(&device, now))
            {
                carry_out(hub, store, &name, actions).await;
            }
        }
    }
    newest
}

/// What a device's twin must say for its rollout state, if anything: a notified
/// device of a rollout still going must have been offered the image, one rolling back
/// must have been asked to. The action, and the desired `firmware` key that shows it.
fn owed(state: &DeviceState, going: bool, device: &str) -> Option<(Action, &'static str)> {
    match state {
        DeviceState::Notified { .. } if going => Some((
            Action::Notify {
                device: device.to_owned(),
                start_delay_ms: 0,
            },
            "id",
        )),
        DeviceState::RollingBack => Some((
            Action::RollBack {
                device: device.to_owned(),
            },
            "rollBack",
        )),
        _ => None,
    }
}

/// After a restart: the engine's state was written before its desired patches, so a
/// hub killed in between left devices marked notified (or rolling back) whose twin
/// never got the patch. Writes exactly those patches again; devices whose twin has it
/// are left alone, so nobody is offered an update twice.
async fn recover<H: ControlPlane>(hub: &H, store: &FirmwareStore) {
    for name in store.rollouts().unfinished() {
        let Ok(record) = store.rollouts().get(&name) else {
            continue;
        };
        let going = matches!(
            record.rollout.status,
            Status::Running | Status::Paused { .. }
        );
        let mut missing = Vec::new();
        for (device, d) in &record.rollout.devices {
            let Some((action, key)) = owed(&d.state, going, device) else {
                continue;
            };
            let desired = match hub.twin(device).await {
                Ok(twin) => twin.json["properties"]["desired"]["firmware"].clone(),
                Err(_) => Value::Null,
            };
            let has = match key {
                "id" => desired["id"] == record.firmware.as_str(),
                _ => desired["rollBack"] == true,
            };
            if !has {
                missing.push(action);
            }
        }
        if !missing.is_empty() {
            tracing::info!(
                rollout = name,
                devices = missing.len(),
                "re-sending desired firmware lost in a restart"
            );
            carry_out(hub, store, &name, missing).await;
        }
    }
}

/// The driver loop; ends when the hub's event stream closes.
pub(super) async fn drive<H: ControlPlane>(
    hub: H,
    store: FirmwareStore,
    pipeline: Option<Pipeline>,
) {
    let mut events = hub.events();
    recover(&hub, &store).await;
    // Anomalies from before the driver started are not the firmware's doing.
    let mut anomalies_seen = now_ms() as i64;
    let mut tick = tokio::time::interval(TICK);
    let mut last_refresh: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if last_refresh.is_none_or(|t| t.elapsed() >= REFRESH) {
                    last_refresh = Some(tokio::time::Instant::now());
                    refresh(&hub, &store).await;
                }
                each_running(&hub, &store, |r, now| r.tick(now)).await;
                if let Err(e) = store.rollouts().flush() {
                    tracing::warn!(error = %e, "cannot write rollouts");
                }
                if let Some(pipeline) = &pipeline {
                    anomalies_seen = anomalies(&hub, &store, pipeline, anomalies_seen).await;
                }
            }
            event = events.recv() => match event {
                Ok(event) => on_event(&hub, &store, event).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "rollout driver fell behind the hub's events");
                    // Connection events were lost: re-read the groups' states now.
                    last_refresh = None;
                }
                Err(RecvError::Closed) => {
                    let _ = store.rollouts().flush();
                    return;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(device: &str, time_ms: i64, transition: &str) -> AnomalyEvent {
        AnomalyEvent {
            id: format!("a{time_ms}"),
            device_id: device.to_owned(),
            time_ms,
            transition: transition.to_owned(),
            score: 9.0,
            explanation: Value::Null,
        }
    }

    #[test]
    fn only_new_entries_count() {
        let events = [
            event("a", 30, "entered"),
            event("b", 20, "exited"),
            event("c", 10, "entered"),
        ];
        let (devices, newest) = entered_since(&events, 15);
        assert_eq!(devices.into_iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(newest, 30);
        assert_eq!(entered_since(&[], 15), (BTreeSet::new(), 15));
    }
}
