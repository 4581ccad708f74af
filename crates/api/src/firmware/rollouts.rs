//! Rollouts of stored firmware to device groups: create, list, status, pause, resume,
//! cancel. The engine is `ota::rollout`; `driver.rs` keeps running rollouts moving.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ota::rollout::{Policy, Rollout, RolloutRecord, RolloutSpec};
use serde::Deserialize;
use serde_json::{json, Value};

use super::driver::{carry_out, members, now_ms};
use super::{blocking, store};
use crate::extract::{JsonBody, PathParams};
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane};

/// Body of `POST /api/rollouts`; rates in percent, times in seconds.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewRollout {
    /// Its name.
    name: String,
    /// The firmware id.
    firmware: String,
    /// The target device group.
    group: String,
    /// Cumulative percentages per phase (default 1, 10, 50, 100).
    phases: Option<Vec<f64>>,
    /// Soak per phase (default 600).
    soak_seconds: Option<u64>,
    /// Failure gate (default 2).
    max_failure_percent: Option<f64>,
    /// Success needed to advance (default 95).
    min_success_percent: Option<f64>,
    /// Offline gate, over the rest (default 20).
    max_offline_excess_percent: Option<f64>,
    /// Anomaly gate, over the rest (default 20).
    max_anomaly_excess_percent: Option<f64>,
    /// Reboot gate (boot counters), over the rest (default 20).
    max_reboot_excess_percent: Option<f64>,
    /// Devices updating at once (default 50).
    max_concurrent: Option<usize>,
    /// Random start delay bound (default 60).
    max_start_delay_seconds: Option<u64>,
    /// A device silent this long failed (default 3600).
    device_timeout_seconds: Option<u64>,
    /// On a breach: pause (default) or rollback.
    policy: Option<Policy>,
    /// Daily UTC maintenance windows (`"01:00-05:00"`); none: any time.
    #[serde(default)]
    windows: Vec<ota::rollout::Window>,
}

impl NewRollout {
    /// The engine's spec, defaults filled in.
    fn spec(&self) -> RolloutSpec {
        let pct = |v: Option<f64>, default: f64| v.unwrap_or(default) / 100.0;
        let ms = |v: Option<u64>, default: u64| v.unwrap_or(default).saturating_mul(1000);
        let phases = self
            .phases
            .clone()
            .unwrap_or_else(|| vec![1.0, 10.0, 50.0, 100.0]);
        RolloutSpec {
            phases: phases.iter().map(|p| p / 100.0).collect(),
            soak_ms: ms(self.soak_seconds, 600),
            max_failure: pct(self.max_failure_percent, 2.0),
            min_success: pct(self.min_success_percent, 95.0),
            max_offline_excess: pct(self.max_offline_excess_percent, 20.0),
            max_anomaly_excess: pct(self.max_anomaly_excess_percent, 20.0),
            max_reboot_excess: pct(self.max_reboot_excess_percent, 20.0),
            max_concurrent: self.max_concurrent.unwrap_or(50),
            max_start_delay_ms: ms(self.max_start_delay_seconds, 60),
            device_timeout_ms: ms(self.device_timeout_seconds, 3600),
            policy: self.policy.unwrap_or(Policy::Pause),
            windows: self.windows.clone(),
        }
    }
}

/// A rollout as the API shows it: definition, progress and recent events.
fn view(record: &RolloutRecord) -> Value {
    let events: Vec<Value> = record
        .events
        .iter()
        .map(|(time_ms, event)| json!({ "timeMs": time_ms, "event": event }))
        .collect();
    json!({
        "name": record.name,
        "firmware": record.firmware,
        "group": record.group,
        "createdMs": record.created_ms,
        "spec": record.rollout.spec,
        "progress": record.rollout.progress(),
        "waitingForWindow": record.rollout.waiting_for_window(now_ms()),
        "events": events,
    })
}

/// A seed for the device order and start delays: differs per rollout.
fn seed(name: &str, now: u64) -> u64 {
    name.bytes().fold(now, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `POST /api/rollouts`: starts rolling `firmware` out to `group`'s members now.
pub(super) async fn create<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    JsonBody(body): JsonBody<NewRollout>,
) -> Result<Response, Problem> {
    let store = store(&state)?;
    let spec = body.spec();
    spec.check()
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let (id, s) = (body.firmware.clone(), store.clone());
    blocking(move || s.manifest(&id)).await?;
    state.hub.group(&body.group).await?;
    let (all, offline) = members(&state.hub, &body.group).await?;
    let now = now_ms();
    let rollout = Rollout::new(spec, seed(&body.name, now), all)
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let record = RolloutRecord {
        name: body.name.clone(),
        firmware: body.firmware,
        group: body.group,
        created_ms: now,
        rollout,
        events: Vec::new(),
    };
    store.rollouts().create(record)?;
    let actions = store.rollouts().update(&body.name, now, |r| {
        let mut actions = r.set_offline_all(&offline, now);
        actions.extend(r.tick(now));
        actions
    })?;
    carry_out(&state.hub, &store, &body.name, actions).await;
    reply::json(
        StatusCode::CREATED,
        &view(&store.rollouts().get(&body.name)?),
    )
}

/// `GET /api/rollouts`: every rollout with its progress (no events).
pub(super) async fn list<H: ControlPlane>(
    State(state): State<ApiState<H>>,
) -> Result<Response, Problem> {
    let items: Vec<Value> = store(&state)?
        .rollouts()
        .list()
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "firmware": r.firmware,
                "group": r.group,
                "createdMs": r.created_ms,
                "progress": r.rollout.progress(),
            })
        })
        .collect();
    reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// `GET /api/rollouts/{name}`.
pub(super) async fn get<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    let record = store(&state)?.rollouts().get(&name)?;
    reply::json(StatusCode::OK, &view(&record))
}

/// Body of `POST /api/rollouts/{name}/cancel`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CancelBody {
    /// Tell updated devices to go back to their previous image.
    #[serde(default)]
    roll_back: bool,
}

/// Applies an operator's command and answers with the rollout.
async fn command<H: ControlPlane>(
    state: &ApiState<H>,
    name: &str,
    f: impl FnOnce(&mut Rollout, u64) -> Vec<ota::rollout::Action>,
) -> Result<Response, Problem> {
    let store = store(state)?;
    let now = now_ms();
    let actions = store.rollouts().update(name, now, |r| f(r, now))?;
    carry_out(&state.hub, &store, name, actions).await;
    reply::json(StatusCode::OK, &view(&store.rollouts().get(name)?))
}

/// `POST /api/rollouts/{name}/pause`.
pub(super) async fn pause<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    command(&state, &name, |r, _| r.pause()).await
}

/// `POST /api/rollouts/{name}/resume`.
pub(super) async fn resume<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    command(&state, &name, |r, now| r.resume(now)).await
}

/// `POST /api/rollouts/{name}/cancel`.
pub(super) async fn cancel<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<CancelBody>,
) -> Result<Response, Problem> {
    command(&state, &name, |r, _| r.cancel(body.roll_back)).await
}
