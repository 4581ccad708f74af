//! The reference scenario's four phases, end to end, on real bearing data: a device agent
//! (`bosun device run`, its own process) provisions itself through an enrollment group,
//! sends features computed from the CWRU healthy record, then from the inner-race fault
//! record; the hub (`bosun serve`, its own process, default configuration) flags the
//! anomaly, puts the device in `alarm`, commands a capture and stores it.
//!
//! The agent's clock runs 10× (`--speed 10`, one window per device second), so warm-up
//! (30 windows) takes ~3 s and the 30 s capture ~3 s of wall time. Skipped when the CWRU
//! data is not next to the repository.

mod common;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use common::{bosun_command, Bosun};
use serde_json::{json, Value};
use support::Client;

/// The shared CWRU copy, if this checkout has it.
fn record(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cwru")
        .join(name);
    path.exists().then_some(path)
}

/// Polls `GET path` until `cond` holds on its JSON, for at most `limit`.
fn wait_json(hub: &Bosun, path: &str, limit: Duration, cond: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let held = support::wait_until(limit, || {
        last = hub.api("GET", path, None, &[]).json();
        cond(&last)
    });
    assert!(
        held,
        "GET {path}: condition not met; last answer {last}\n{}",
        hub.stderr()
    );
    last
}

#[test]
fn provision_features_anomaly_capture_on_cwru_inner_race_data() {
    let (Some(normal), Some(fault)) = (record("normal_0hp.f32"), record("ir021_0hp.f32")) else {
        eprintln!("CWRU data not found; skipped");
        return;
    };
    let hub = Bosun::launch(&[]).no_dev().start();
    let group_key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let body = json!({"key": group_key, "initialTwin": {"tags": {"line": "A"}}});
    let put = hub.api("PUT", "/api/enrollments/groups/motors", Some(&body), &[]);
    assert!(put.status == 200 || put.status == 201, "{}", put.body);

    // Phase 1: zero-touch provisioning over TLS, then the healthy record, then from
    // device time 60 s the inner-race fault record (both at 0 HP, 1797 rpm).
    let dir = tempfile::tempdir().expect("tempdir");
    let source = format!(
        "cwru:{},rpm=1797,fault={},onset=60s",
        normal.display(),
        fault.display()
    );
    let mut cmd = bosun_command();
    cmd.args(["device", "run", "--id", "motor-17"])
        .args(["--hub", &hub.mqtts_addr().to_string(), "--ca"])
        .arg(hub.data_dir().join("tls/ca.pem"))
        .args(["--group-key", group_key, "--id-scope", "0ne00000001"])
        .args(["--interval", "1s", "--speed", "10", "--source", &source])
        .arg("--buffer-dir")
        .arg(dir.path());
    let agent = Client::spawn("agent", cmd);
    let device = wait_json(
        &hub,
        "/api/devices/motor-17",
        Duration::from_secs(20),
        |d| d["connectionState"] == "connected",
    );
    assert_eq!(
        device["authKind"], "sas",
        "registered by the enrollment: {device}"
    );

    // Phase 2: features are stored as series (one axis: the CWRU drive-end channel).
    let series = "/api/series?deviceId=motor-17&field=x.rms&from=-10m&agg=count&step=1ms";
    wait_json(&hub, series, Duration::from_secs(20), |s| {
        s["series"][0]["points"]
            .as_array()
            .is_some_and(|p| p.len() >= 5)
    });

    // Phase 3: the anomaly on the fault record, explained, and the device in alarm.
    let events = wait_json(
        &hub,
        "/api/anomalies?deviceId=motor-17",
        Duration::from_secs(40),
        |a| a["items"].as_array().is_some_and(|items| !items.is_empty()),
    );
    let event = &events["items"][0];
    assert_eq!(event["transition"], "entered", "{event}");
    assert!(event["score"].as_f64().unwrap_or(0.0) >= 6.0, "{event}");
    let top = event["explanation"][0]["feature"]
        .as_str()
        .unwrap_or_default();
    assert!(
        top.starts_with("x."),
        "explained by the x axis' features: {event}"
    );
    let twin = wait_json(
        &hub,
        "/api/devices/motor-17/twin",
        Duration::from_secs(20),
        |t| t["properties"]["reported"]["mode"] == "alarm",
    );
    assert_eq!(twin["properties"]["desired"]["mode"], "alarm", "{twin}");

    // Phase 4: the commanded capture arrives whole and is linked to the device.
    let captures = wait_json(
        &hub,
        "/api/captures?deviceId=motor-17",
        Duration::from_secs(40),
        |c| c["items"].as_array().is_some_and(|items| !items.is_empty()),
    );
    let capture = &captures["items"][0];
    assert_eq!(capture["missing"], json!([]), "{capture}\n{}", agent.dump());
    assert!(
        capture["samples"].as_u64().unwrap_or(0) >= 300_000,
        "30 s: {capture}"
    );
    assert_eq!(
        capture["anomalyId"], event["id"],
        "linked to the event: {capture}"
    );
}
