//! Device authentication and per-device authorization with real clients: paho-mqtt
//! devices presenting SAS tokens computed in Python (`tests/clients/sas_device.py`,
//! independent of bosun's own signing code) against `bosun serve` without `--dev`.
//!
//! - which tokens are refused at CONNECT, with which code on each protocol version;
//! - a disabled device: refused at connect, and a live connection closed within 1 s;
//! - a token that expires while connected ends the connection;
//! - one device cannot read another's C2D, twin answers or telemetry, nor publish as
//!   it, by any subscription or topic-alias trick; ten denials end the connection;
//! - services: an API token as MQTT password (`bosun-service`), read-only may only
//!   subscribe.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::time::{Duration, Instant};

use common::{bosun_command, Bosun};
use serde_json::{json, Value};
use support::{python, Client, STEP};

/// v5 reason codes as paho reports them.
const BAD_CREDENTIALS: u64 = 0x86;
const NOT_AUTHORIZED: u64 = 0x87;
const BANNED: u64 = 0x8A;

/// A hub without `--dev`, so every client must authenticate.
fn hub() -> Bosun {
    Bosun::launch(&["--mqtts", "off"]).no_dev().start()
}

/// Creates a SAS device and returns its primary key.
fn sas_device(hub: &Bosun, id: &str) -> String {
    let r = hub.api(
        "POST",
        "/api/devices",
        Some(&json!({"deviceId": id, "authKind": "sas"})),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let keys = hub.api("GET", &format!("/api/devices/{id}/keys"), None, &[]);
    assert_eq!(keys.status, 200, "{}", keys.body);
    keys.json()["primaryKey"].as_str().unwrap().to_owned()
}

/// `sas_device.py` against the hub's plain MQTT listener.
fn device(hub: &Bosun, args: &[&str]) -> Client {
    python("sas_device.py", hub.mqtt_addr(), args)
}

/// Runs a client until it exits; returns its CONNACK event.
fn connack_of(mut client: Client) -> Value {
    let connack = client.wait_event("connack", STEP);
    client.wait_exit(STEP);
    connack
}

/// A key no device has.
const STRANGER_KEY: &str = "c3RyYW5nZXIta2V5LW9mLXRoaXJ0eS10d28tYnl0ZXM=";

#[test]
fn tokens_are_checked_at_connect() {
    let hub = hub();
    let d1 = sas_device(&hub, "d1");
    let _d2 = sas_device(&hub, "d2");
    let cases: Vec<(&str, Vec<&str>, u64, u64)> = vec![
        ("valid token", vec!["--device", "d1", "--key", &d1], 0, 0),
        (
            "expired token",
            vec!["--device", "d1", "--key", &d1, "--expires-in", "-60"],
            BAD_CREDENTIALS,
            4,
        ),
        (
            "bad signature",
            vec!["--device", "d1", "--key", STRANGER_KEY],
            BAD_CREDENTIALS,
            4,
        ),
        (
            "unknown device",
            vec!["--device", "ghost", "--key", STRANGER_KEY],
            BAD_CREDENTIALS,
            4,
        ),
        (
            "token for another device",
            vec!["--device", "d1", "--key", &d1, "--resource-device", "d2"],
            NOT_AUTHORIZED,
            5,
        ),
        (
            "user name of another device",
            vec![
                "--device",
                "d1",
                "--key",
                &d1,
                "--username",
                "hub/d2/?api-version=1",
            ],
            BAD_CREDENTIALS,
            4,
        ),
        (
            "not a token",
            vec!["--device", "d1", "--password", "hunter2"],
            BAD_CREDENTIALS,
            4,
        ),
        ("no credentials", vec!["--device", "d1"], NOT_AUTHORIZED, 5),
    ];
    for (what, args, v5, v311) in &cases {
        let got = connack_of(device(&hub, args));
        assert_eq!(got["reason"], *v5, "v5, {what}: {got}");
        let mut args = args.clone();
        args.extend(["--protocol", "311"]);
        let got = connack_of(device(&hub, &args));
        assert_eq!(got["raw_rc"], *v311, "3.1.1, {what}: {got}");
    }
    // A plain user name (the device id) works too.
    let got = connack_of(device(
        &hub,
        &["--device", "d1", "--key", &d1, "--username", "d1"],
    ));
    assert_eq!(got["reason"], 0, "{got}");

    let metrics = hub.http_get("/metrics").body;
    for line in [
        "bosun_auth_refusals_total{reason=\"token expired\"} 2",
        "bosun_auth_refusals_total{reason=\"bad signature\"} 2",
        "bosun_auth_refusals_total{reason=\"unknown device\"} 2",
        "bosun_auth_refusals_total{reason=\"resource mismatch\"} 2",
        "bosun_auth_refusals_total{reason=\"no credentials\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    // Keys appear in no log line.
    assert!(!hub.stderr().contains(&d1), "a key was logged");
}

#[test]
fn a_disabled_device_is_refused_and_its_live_connection_closed() {
    let hub = hub();
    let key = sas_device(&hub, "pump");
    let live = device(&hub, &["--device", "pump", "--key", &key, "--hold"]);
    assert_eq!(live.wait_event("connack", STEP)["reason"], 0);
    live.wait_event("steps_done", STEP);

    let r = hub.api(
        "PATCH",
        "/api/devices/pump",
        Some(&json!({"status": "disabled"})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let answered = Instant::now();
    let closed = live.wait_event("disconnected", STEP);
    assert!(
        answered.elapsed() < Duration::from_secs(1),
        "closed {:?} after the PATCH",
        answered.elapsed()
    );
    assert_eq!(closed["reason"], NOT_AUTHORIZED, "{closed}");
    assert_eq!(closed["from_server"], true);

    // The next connect is refused: banned on v5, not authorized on 3.1.1.
    let again = connack_of(device(&hub, &["--device", "pump", "--key", &key]));
    assert_eq!(again["reason"], BANNED, "{again}");
    let again = connack_of(device(
        &hub,
        &["--device", "pump", "--key", &key, "--protocol", "311"],
    ));
    assert_eq!(again["raw_rc"], 5, "{again}");

    hub.api(
        "PATCH",
        "/api/devices/pump",
        Some(&json!({"status": "enabled"})),
        &[],
    );
    let back = connack_of(device(&hub, &["--device", "pump", "--key", &key]));
    assert_eq!(back["reason"], 0, "{back}");
}

#[test]
fn a_token_expiring_while_connected_ends_the_connection() {
    let hub = hub();
    let key = sas_device(&hub, "short");
    let dev = device(
        &hub,
        &[
            "--device",
            "short",
            "--key",
            &key,
            "--expires-in",
            "2",
            "--hold",
        ],
    );
    assert_eq!(dev.wait_event("connack", STEP)["reason"], 0);
    let closed = dev.wait_event("disconnected", STEP);
    assert_eq!(closed["reason"], NOT_AUTHORIZED, "{closed}");
    assert_eq!(closed["reason_string"], "token expired", "{closed}");
    // `se` is whole seconds, so the token lived 1–2 s; the sweep adds at most 1 s.
    let after = closed["after_connack_s"].as_f64().unwrap();
    assert!((0.5..=4.0).contains(&after), "closed after {after} s");
}

/// A new API token with `role`, which a service also uses as its MQTT password.
fn api_token(hub: &Bosun, role: &str) -> String {
    let r = hub.api("POST", "/api/tokens", Some(&json!({ "role": role })), &[]);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["token"].as_str().unwrap().to_owned()
}

#[test]
fn a_device_cannot_reach_another_devices_traffic() {
    let hub = hub();
    let key_a = sas_device(&hub, "A");
    let key_b = sas_device(&hub, "B");
    let reader = api_token(&hub, "read-only");

    // An application watching all telemetry.
    let watcher = device(
        &hub,
        &[
            "--device",
            "telemetry-watcher",
            "--username",
            "bosun-service",
            "--password",
            &reader,
            "--step",
            "sub:devices/+/messages/events/#",
            "--hold",
        ],
    );
    watcher.wait_event("steps_done", STEP);

    // A tries everything, on MQTT 5 (for the topic alias).
    let long = format!("sub:devices/{}/messages/devicebound/#", "B".repeat(300));
    let a = device(
        &hub,
        &[
            "--device",
            "A",
            "--key",
            &key_a,
            "--step",
            "sub:#",
            "--step",
            "sub:devices/+/messages/devicebound/#",
            "--step",
            "sub:devices/B/messages/devicebound/#",
            "--step",
            "sub:$share/g/devices/B/messages/devicebound/#",
            "--step",
            "sub:devices/B%2F..%2FA/messages/devicebound/#",
            "--step",
            &long,
            "--step",
            "sub:$iothub/twin/res/#",
            "--step",
            "pub:devices/B/messages/events/",
            "--step",
            "alias:1:devices/A/messages/events/",
            "--step",
            "alias:1:devices/B/messages/events/",
            "--step",
            "alias:1:",
            "--hold",
        ],
    );
    a.wait_event("steps_done", STEP);
    let subacks: Vec<(String, u64)> = a
        .events("suback")
        .iter()
        .map(|e| {
            (
                e["filter"].as_str().unwrap().to_owned(),
                e["code"].as_u64().unwrap(),
            )
        })
        .collect();
    for (filter, code) in &subacks {
        let allowed = filter == "$iothub/twin/res/#";
        let expected = if allowed { 1 } else { NOT_AUTHORIZED };
        assert_eq!(*code, expected, "{filter}: {subacks:?}");
    }
    assert_eq!(subacks.len(), 7, "{}", a.dump());
    let pubacks: Vec<u64> = a
        .events("puback")
        .iter()
        .map(|e| e["code"].as_u64().unwrap())
        .collect();
    assert_eq!(
        pubacks,
        [NOT_AUTHORIZED, 0, NOT_AUTHORIZED, NOT_AUTHORIZED],
        "{}",
        a.dump()
    );

    // B, behaving: its C2D and its twin answer reach B only.
    let b = device(
        &hub,
        &[
            "--device",
            "B",
            "--key",
            &key_b,
            "--step",
            "sub:devices/B/messages/devicebound/#",
            "--step",
            "sub:$iothub/twin/res/#",
            "--step",
            "pub:$iothub/twin/GET/?$rid=7",
            "--step",
            "pub:devices/B/messages/events/",
            "--hold",
        ],
    );
    b.wait_event("steps_done", STEP);
    let r = hub.api(
        "POST",
        "/api/devices/B/messages",
        Some(&json!({"payload": "for B only"})),
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let b_saw = b.wait_events("message", 2, STEP);
    assert!(
        b_saw.iter().any(|m| m["topic"]
            .as_str()
            .unwrap()
            .starts_with("$iothub/twin/res/200/")),
        "{b_saw:?}"
    );
    assert!(
        b_saw.iter().any(|m| m["payload"] == "for B only"),
        "{b_saw:?}"
    );
    // The watcher saw A's own telemetry and B's, and nothing A published as B.
    let seen = watcher.wait_events("message", 2, STEP);
    let from_a_as_b: Vec<&Value> = seen
        .iter()
        .filter(|m| {
            m["topic"].as_str().unwrap().starts_with("devices/B/") && m["payload"] == "from A"
        })
        .collect();
    assert!(from_a_as_b.is_empty(), "{seen:?}");
    assert!(
        seen.iter()
            .any(|m| m["topic"] == "devices/A/messages/events/"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|m| m["topic"] == "devices/B/messages/events/" && m["payload"] == "from B"),
        "{seen:?}"
    );
    // A received nothing at all.
    assert!(a.events("message").is_empty(), "{}", a.dump());
    assert!(a.events("disconnected").is_empty(), "{}", a.dump());

    let metrics = hub.http_get("/metrics").body;
    assert!(
        metrics.contains("bosun_acl_denied_total{action=\"subscribe\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bosun_acl_denied_total{action=\"publish\"} 3"),
        "{metrics}"
    );
}

#[test]
fn ten_denials_end_the_connection() {
    let hub = hub();
    let key = sas_device(&hub, "prober");
    let mut args = vec!["--device", "prober", "--key", &key];
    for _ in 0..10 {
        args.extend(["--step", "sub:#"]);
    }
    args.push("--hold");
    let dev = device(&hub, &args);
    let closed = dev.wait_event("disconnected", STEP);
    assert_eq!(closed["reason"], NOT_AUTHORIZED, "{closed}");
    assert_eq!(closed["from_server"], true, "{closed}");
    assert_eq!(dev.events("suback").len(), 9, "{}", dev.dump());
}

#[test]
fn a_read_only_service_subscribes_to_events_but_cannot_publish() {
    let hub = hub();
    let reader = api_token(&hub, "read-only");
    let svc = device(
        &hub,
        &[
            "--device",
            "dashboard-1",
            "--username",
            "bosun-service",
            "--password",
            &reader,
            "--step",
            "sub:$bosun/events/#",
            "--step",
            "pub:somewhere/else",
            "--hold",
        ],
    );
    assert_eq!(svc.wait_event("connack", STEP)["reason"], 0);
    svc.wait_event("steps_done", STEP);
    assert_eq!(svc.events("suback")[0]["code"], 1, "{}", svc.dump());
    assert_eq!(
        svc.events("puback")[0]["code"],
        NOT_AUTHORIZED,
        "{}",
        svc.dump()
    );
    sas_device(&hub, "new-pump");
    let event = svc.wait_event("message", STEP);
    assert_eq!(
        event["topic"], "$bosun/events/deviceCreated/new-pump",
        "{event}"
    );

    // An admin token may publish; a bad token or a device's client id is refused.
    let admin = hub.admin_token();
    let writer = connack_of(device(
        &hub,
        &[
            "--device",
            "ops-1",
            "--username",
            "bosun-service",
            "--password",
            &admin,
        ],
    ));
    assert_eq!(writer["reason"], 0, "{writer}");
    let bad = connack_of(device(
        &hub,
        &[
            "--device",
            "ops-2",
            "--username",
            "bosun-service",
            "--password",
            "0123456789abcdef0123",
        ],
    ));
    assert_eq!(bad["reason"], BAD_CREDENTIALS, "{bad}");
    let as_device = connack_of(device(
        &hub,
        &[
            "--device",
            "new-pump",
            "--username",
            "bosun-service",
            "--password",
            &admin,
        ],
    ));
    assert_eq!(as_device["reason"], NOT_AUTHORIZED, "{as_device}");
}

#[test]
fn the_cli_prints_a_devices_connection_string() {
    let hub = hub();
    let api = format!("http://{}", hub.http_addr());
    let cli = |args: &[&str]| {
        bosun_command()
            .args(args)
            .args(["--api", &api, "--data-dir"])
            .arg(hub.data_dir())
            .output()
            .unwrap()
    };
    let created = cli(&["device", "create", "cli-1", "--auth-kind", "sas"]);
    assert!(created.status.success(), "{created:?}");
    let keys = hub.api("GET", "/api/devices/cli-1/keys", None, &[]).json();
    let out = cli(&["device", "keys", "cli-1"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        keys["connectionString"].as_str().unwrap()
    );
    let json: Value =
        serde_json::from_slice(&cli(&["device", "keys", "cli-1", "--output", "json"]).stdout)
            .unwrap();
    assert_eq!(json["secondaryKey"], keys["secondaryKey"]);
    // A device without keys: exit 1 with the API's words.
    cli(&["device", "create", "cli-2"]);
    let none = cli(&["device", "keys", "cli-2"]);
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("authKind none"),
        "{none:?}"
    );
}
