//! The operator commands (`bosun device|twin|method|c2d|events`) against a running hub,
//! as a person at a terminal would use them: a device is created, a plain-MQTT device
//! (`tests/clients/iothub_device.py`) connects, the CLI patches its twin, calls a
//! method, sends a C2D message and follows the events; failures exit 1 with the
//! problem's words on stderr, usage errors exit 2.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bosun_command, cli, Bosun};
use serde_json::Value;
use support::{python, STEP};

fn ok_json(broker: &Bosun, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = cli(broker, &all);
    assert!(
        out.status.success(),
        "bosun {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[test]
fn an_operator_manages_a_device_from_the_command_line() {
    let broker = Bosun::start(&[]);
    let created = ok_json(
        &broker,
        &["device", "create", "press-4", "--tag", "site=plant-7"],
    );
    assert_eq!(created["deviceId"], "press-4", "{created}");
    let table = cli(&broker, &["device", "list"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("press-4"));

    // Follow events from before the device connects.
    let api = format!("http://{}", broker.http_addr());
    let mut tail = bosun_command()
        .args([
            "events", "tail", "--device", "press-4", "--output", "json", "--api", &api,
        ])
        .arg("--data-dir")
        .arg(broker.data_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let events = BufReader::new(tail.stdout.take().unwrap());

    let dev = python(
        "iothub_device.py",
        broker.mqtt_addr(),
        &["--device", "press-4", "--timeout", "60"],
    );
    dev.wait_event("ready", STEP);
    // Its twin GET answered first: a patch racing the GET would arrive in the answer
    // instead of as a desired-property notification.
    dev.wait_event("twin", STEP);

    let twin = ok_json(
        &broker,
        &[
            "twin",
            "patch",
            "press-4",
            "--desired",
            r#"{"mode":"alarm"}"#,
        ],
    );
    assert_eq!(twin["properties"]["desired"]["mode"], "alarm", "{twin}");
    let d = dev.wait_event("desired", STEP);
    assert_eq!(d["patch"]["mode"], "alarm");

    let answer = ok_json(
        &broker,
        &[
            "method",
            "invoke",
            "press-4",
            "capture",
            "--payload",
            r#"{"s":30}"#,
        ],
    );
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["payload"]["echo"]["s"], 30);

    let sent = ok_json(
        &broker,
        &["c2d", "send", "press-4", "hello", "--property", "k=v"],
    );
    assert!(sent["messageId"].is_string(), "{sent}");
    let c2d = dev.wait_event("c2d", STEP);
    assert_eq!(
        (c2d["payload"].as_str(), c2d["properties"]["k"].as_str()),
        (Some("hello"), Some("v"))
    );

    let query = ok_json(
        &broker,
        &[
            "twin",
            "query",
            "SELECT deviceId FROM devices WHERE tags.site = 'plant-7'",
        ],
    );
    assert_eq!(query["items"][0]["deviceId"], "press-4", "{query}");

    // The tail saw the device connect and its twin change.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in events.lines().map_while(Result::ok) {
            let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let kind = event["kind"].as_str().unwrap_or_default().to_owned();
            if tx.send(kind).is_err() {
                return;
            }
        }
    });
    let mut kinds = Vec::new();
    let deadline = Instant::now() + STEP;
    while !kinds.iter().any(|k| k == "twinChanged") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(kind) => kinds.push(kind),
            Err(_) => break,
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(kinds.contains(&"deviceConnected".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"twinChanged".to_owned()), "{kinds:?}");
}

#[test]
fn failures_exit_1_with_the_reason_and_usage_errors_exit_2() {
    let broker = Bosun::start(&[]);
    let out = cli(&broker, &["device", "get", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ghost"), "{stderr}");

    ok_json(&broker, &["device", "create", "quiet-1"]);
    let out = cli(
        &broker,
        &[
            "method",
            "invoke",
            "quiet-1",
            "reboot",
            "--connect-timeout",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not connected"));

    let out = cli(
        &broker,
        &["twin", "patch", "quiet-1", "--desired", "{not json"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = bosun_command()
        .args([
            "device",
            "list",
            "--api",
            &format!("http://{}", broker.http_addr()),
            "--token",
            "wrong-token-0123456789",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_operator_manages_enrollments_from_the_command_line() {
    let broker = Bosun::start(&[]);
    let created = ok_json(
        &broker,
        &[
            "enrollment",
            "group",
            "create",
            "line-1",
            "--tag",
            "site=plant-7",
            "--desired",
            r#"{"mode":"idle"}"#,
            "--device-group",
            "line-1",
        ],
    );
    assert_eq!(created["name"], "line-1", "{created}");
    assert_eq!(created["initialTwin"]["tags"]["site"], "plant-7");
    assert_eq!(created["initialTwin"]["desired"]["mode"], "idle");
    let key = created["key"].as_str().unwrap().to_owned();

    let shown = cli(&broker, &["enrollment", "group", "show", "line-1"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains(&key), "{text}");
    assert!(
        text.contains("bosun enrollment derive-key --group line-1"),
        "{text}"
    );
    let listed = cli(&broker, &["enrollment", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("line-1"));

    let derived = cli(
        &broker,
        &[
            "enrollment",
            "derive-key",
            "--group",
            "line-1",
            "--registration-id",
            "sensor-042",
        ],
    );
    assert!(derived.status.success());
    let derived = String::from_utf8_lossy(&derived.stdout).trim().to_owned();
    assert_eq!(
        derived,
        hub::auth::derive_device_key(&key, "sensor-042").unwrap()
    );

    // An X.509 group by CA: no key, the CA shown.
    let by_ca = ok_json(
        &broker,
        &[
            "enrollment",
            "group",
            "create",
            "cams",
            "--x509-ca",
            "bosun",
        ],
    );
    assert_eq!(by_ca["attestation"], "x509", "{by_ca}");
    assert_eq!(by_ca["x509"]["ca"], "bosun", "{by_ca}");
    assert!(by_ca.get("key").is_none(), "{by_ca}");
    let shown = cli(&broker, &["enrollment", "group", "show", "cams"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("x509 CA") && text.contains("bosun"), "{text}");
    assert!(!text.contains("derive-key"), "{text}");
    let both = cli(
        &broker,
        &[
            "enrollment",
            "group",
            "create",
            "x",
            "--x509-ca",
            "a",
            "--key",
            &key,
        ],
    );
    assert_eq!(
        both.status.code(),
        Some(2),
        "--key conflicts with --x509-ca"
    );
}
