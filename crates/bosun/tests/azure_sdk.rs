//! Microsoft's own device SDK (`azure-iot-device` from PyPI, run unmodified by
//! `tests/clients/azure_device.py`) against bosun: TLS on 8883, twin GET and reported
//! patch, desired updates, a direct method through the REST API, a C2D message with
//! properties, telemetry — and the twin still there after the hub is killed with -9.
//! Also zero-touch provisioning with the SDK's `ProvisioningDeviceClient`
//! (`tests/clients/azure_provision.py`) through group and individual enrollments, with
//! symmetric keys and with X.509 certificates from `bosun ca issue-device`.
//!
//! The SDK always dials port 8883, so each test listens on its own loopback address
//! 127.0.0.N:8883 (Linux routes all of 127/8 to lo) and the generated server
//! certificate names that address.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Bosun;
use serde_json::json;
use support::{wait_until, Client, Version, STEP};

/// The virtualenv interpreter `scripts/test.sh` installs the SDK into.
fn azure_python() -> PathBuf {
    if let Some(p) = std::env::var_os("BOSUN_AZURE_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/bosun/azure-venv/bin/python")
}

/// A loopback address whose port 8883 is free right now.
fn free_loopback_8883() -> SocketAddr {
    let seed = std::process::id() as usize;
    for i in 0..250 {
        let last = 2 + (seed + i * 37) % 250;
        let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, last as u8), 8883));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no 127.0.0.N:8883 is free");
}

/// `python -u tests/clients/SCRIPT --ca <broker's CA>` in the SDK's virtualenv.
fn sdk_script(broker: &Bosun, script: &str) -> Command {
    let python = azure_python();
    assert!(
        python.exists(),
        "{} missing: run scripts/test.sh, which installs azure-iot-device",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(support::clients_dir().join(script))
        .arg("--ca")
        .arg(broker.data_dir().join("tls/ca.pem"));
    cmd
}

/// A hub without `--dev` (devices need credentials) whose TLS listener is on
/// 127.0.0.N:8883, the port the SDK always dials, named as the hub's host name.
fn production_hub(envs: &[(&str, &str)]) -> Bosun {
    let tls = free_loopback_8883();
    let host = tls.ip().to_string();
    let mut launch = Bosun::launch(&["--mqtts", &tls.to_string()])
        .no_dev()
        .env("BOSUN_HUB__HOST_NAME", &host);
    for (key, value) in envs {
        launch = launch.env(key, value);
    }
    launch.start()
}

/// Starts the SDK device against `broker`'s TLS listener.
fn sdk_device(broker: &Bosun, id: &str, extra: &[&str]) -> Client {
    let host = broker.mqtts_addr().ip().to_string();
    let mut cmd = sdk_script(broker, "azure_device.py");
    cmd.args(["--host", &host])
        .args(["--device", id, "--timeout", "60"])
        .args(extra);
    let client = Client::spawn("azure_device.py", cmd);
    client.wait_event("ready", STEP);
    client
}

fn start_hub() -> Bosun {
    let tls = free_loopback_8883().to_string();
    Bosun::start(&["--mqtts", &tls])
}

#[test]
fn the_azure_device_sdk_works_unmodified() {
    let mut broker = start_hub();
    let body =
        json!({"deviceId": "sdk-1", "tags": {"site": "plant-7"}, "desired": {"mode": "idle"}});
    assert_eq!(
        broker.api("POST", "/api/devices", Some(&body), &[]).status,
        201
    );

    let dev = sdk_device(
        &broker,
        "sdk-1",
        &[
            "--report",
            r#"{"mode":"running","firmware":{"version":"2.0.1"}}"#,
            "--telemetry",
            r#"{"rms":0.31}"#,
        ],
    );
    let twin = dev.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["desired"]["mode"], "idle", "{twin}");
    dev.wait_event("reported", STEP);
    dev.wait_event("telemetry_sent", STEP);

    let patch = json!({"properties": {"desired": {"mode": "alarm", "rate_hz": 10000}}});
    let r = broker.api("PATCH", "/api/devices/sdk-1/twin", Some(&patch), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        wait_until(STEP, || dev
            .events("desired")
            .iter()
            .any(|d| d["patch"]["mode"] == "alarm")),
        "{}",
        dev.dump()
    );

    let call = json!({"payload": {"seconds": 30}, "responseTimeoutInSeconds": 15});
    let r = broker.api(
        "POST",
        "/api/devices/sdk-1/methods/capture",
        Some(&call),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"status": 200, "payload": {"echo": {"seconds": 30}}})
    );
    let method = dev.wait_event("method", STEP);
    assert_eq!(method["name"], "capture");

    let msg = json!({"payload": "raise sampling", "properties": {"priority": "high"}});
    let r = broker.api("POST", "/api/devices/sdk-1/messages", Some(&msg), &[]);
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["messageId"].as_str().unwrap().to_owned();
    let c2d = dev.wait_event("c2d", STEP);
    assert_eq!(c2d["data"], "raise sampling", "{c2d}");
    assert_eq!(c2d["message_id"], id.as_str());
    assert_eq!(c2d["properties"]["priority"], "high");

    let info = broker.api("GET", "/api/devices/sdk-1", None, &[]).json();
    assert_eq!(info["connectionState"], "connected", "{info}");
    assert_eq!(info["firmwareVersion"], "2.0.1");

    // The hub dies without warning; a new SDK client sees everything that was acknowledged.
    broker.kill9();
    drop(dev);
    let broker = broker.restart_same();
    let info = broker.api("GET", "/api/devices/sdk-1", None, &[]).json();
    assert_eq!(info["connectionState"], "disconnected", "{info}");
    assert_eq!(info["connectionReason"], "hub restarted");
    let dev = sdk_device(&broker, "sdk-1", &[]);
    let twin = dev.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["reported"]["mode"], "running", "{twin}");
    assert_eq!(twin["twin"]["desired"]["mode"], "alarm");
    assert_eq!(twin["twin"]["desired"]["$version"], 2);
}

/// Starts the SDK device from a connection string (its `HostName` is the TLS address).
fn sdk_device_from(broker: &Bosun, connection_string: &str) -> Client {
    let mut cmd = sdk_script(broker, "azure_device.py");
    cmd.args(["--connection-string", connection_string, "--timeout", "60"]);
    Client::spawn("azure_device.py", cmd)
}

#[test]
fn the_azure_device_sdk_authenticates_with_its_key_without_dev_mode() {
    let broker = production_hub(&[]);
    let host = broker.mqtts_addr().ip().to_string();
    let body = json!({"deviceId": "sdk-sas", "authKind": "sas", "desired": {"mode": "idle"}});
    let r = broker.api("POST", "/api/devices", Some(&body), &[]);
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        !r.body.contains("Key"),
        "keys leak into the device view: {}",
        r.body
    );
    let keys = broker
        .api("GET", "/api/devices/sdk-sas/keys", None, &[])
        .json();
    let cs = keys["connectionString"].as_str().unwrap().to_owned();
    let primary = keys["primaryKey"].as_str().unwrap();
    assert_eq!(
        cs,
        format!("HostName={host};DeviceId=sdk-sas;SharedAccessKey={primary}")
    );

    // A wrong key: the SDK's connect fails (CONNACK 5 on its MQTT 3.1.1).
    let wrong = cs.replace(primary, "d3Jvbmcta2V5LW9mLXRoaXJ0eS10d28tYnl0ZXMhIQ==");
    let mut refused = sdk_device_from(&broker, &wrong);
    refused.wait_event("connect_failed", STEP);
    assert_eq!(
        refused.wait_exit(STEP).code(),
        Some(4),
        "{}",
        refused.dump()
    );
    let metrics = broker.http_get("/metrics").body;
    assert!(
        metrics.contains("bosun_auth_refusals_total{reason=\"bad signature\"} 1"),
        "{metrics}"
    );

    // The real key: twin, then a C2D message.
    let dev = sdk_device_from(&broker, &cs);
    dev.wait_event("ready", STEP);
    let twin = dev.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["desired"]["mode"], "idle", "{twin}");
    let msg = json!({"payload": "hello with a key"});
    let r = broker.api("POST", "/api/devices/sdk-sas/messages", Some(&msg), &[]);
    assert_eq!(r.status, 202, "{}", r.body);
    let c2d = dev.wait_event("c2d", STEP);
    assert_eq!(c2d["data"], "hello with a key", "{c2d}");
    let info = broker.api("GET", "/api/devices/sdk-sas", None, &[]).json();
    assert_eq!(info["connectionState"], "connected", "{info}");
}

/// Runs `tests/clients/azure_provision.py` (the SDK's ProvisioningDeviceClient, then
/// IoTHubDeviceClient with the same key) to completion.
fn sdk_provision(broker: &Bosun, registration_id: &str, extra: &[&str]) -> Client {
    let mut cmd = sdk_script(broker, "azure_provision.py");
    cmd.args(["--host", &broker.mqtts_addr().ip().to_string()])
        .args(["--id-scope", "0ne0000b05"])
        .args(["--registration-id", registration_id, "--timeout", "60"])
        .args(extra);
    Client::spawn("azure_provision.py", cmd)
}

#[test]
fn the_azure_provisioning_sdk_registers_through_enrollments() {
    let broker = production_hub(&[("BOSUN_HUB__ID_SCOPE", "0ne0000b05")]);
    let host = broker.mqtts_addr().ip().to_string();
    let body = json!({
        "initialTwin": {"tags": {"site": "plant-7"}, "desired": {"mode": "idle"}},
        "deviceGroup": "line-1",
    });
    let r = broker.api("PUT", "/api/enrollments/groups/line-1", Some(&body), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let group_key = r.json()["key"].as_str().unwrap().to_owned();

    // Register, then connect to the assigned hub with the derived key: no --dev.
    let mut dev = sdk_provision(&broker, "sensor-042", &["--group-key", &group_key]);
    let registered = dev.wait_event("registered", STEP);
    assert_eq!(registered["status"], "assigned", "{}", dev.dump());
    assert_eq!(registered["device_id"], "sensor-042");
    assert_eq!(registered["assigned_hub"], host.as_str());
    assert_eq!(registered["substatus"], "initialAssignment");
    let twin = dev.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["desired"]["mode"], "idle", "{twin}");
    assert_eq!(dev.wait_exit(STEP).code(), Some(0), "{}", dev.dump());
    let info = broker
        .api("GET", "/api/devices/sensor-042", None, &[])
        .json();
    assert_eq!(info["tags"]["site"], "plant-7", "{info}");
    assert_eq!(info["group"], "line-1", "{info}");
    assert_eq!(info["authKind"], "sas", "{info}");

    // Registering again is idempotent: same device, twin not reset.
    let patch = json!({"properties": {"desired": {"mode": "running"}}});
    let r = broker.api("PATCH", "/api/devices/sensor-042/twin", Some(&patch), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let mut again = sdk_provision(&broker, "sensor-042", &["--group-key", &group_key]);
    let registered = again.wait_event("registered", STEP);
    assert_eq!(registered["device_id"], "sensor-042", "{}", again.dump());
    let twin = again.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["desired"]["mode"], "running", "{twin}");
    assert_eq!(again.wait_exit(STEP).code(), Some(0), "{}", again.dump());

    // A wrong group key is refused, and so is every device of a disabled group.
    let wrong = "d3Jvbmcta2V5LW9mLXRoaXJ0eS10d28tYnl0ZXMhIQ==";
    let mut refused = sdk_provision(&broker, "sensor-043", &["--group-key", wrong]);
    refused.wait_event("register_failed", STEP);
    assert_eq!(
        refused.wait_exit(STEP).code(),
        Some(5),
        "{}",
        refused.dump()
    );
    let body = json!({"disabled": true, "initialTwin": {"tags": {"site": "plant-7"}}});
    let r = broker.api("PUT", "/api/enrollments/groups/line-1", Some(&body), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["key"], group_key.as_str(), "the key is kept");
    let mut off = sdk_provision(&broker, "sensor-044", &["--group-key", &group_key]);
    off.wait_event("register_failed", STEP);
    assert_eq!(off.wait_exit(STEP).code(), Some(5), "{}", off.dump());
    let r = broker.api("GET", "/api/devices/sensor-044", None, &[]);
    assert_eq!(r.status, 404, "{}", r.body);

    // A device created by hand is never taken over by a registration (409).
    let body = json!({"deviceId": "taken-1", "authKind": "sas"});
    let r = broker.api("POST", "/api/devices", Some(&body), &[]);
    assert_eq!(r.status, 201, "{}", r.body);
    let body = json!({"initialTwin": {}});
    let r = broker.api("PUT", "/api/enrollments/groups/line-2", Some(&body), &[]);
    let line_2 = r.json()["key"].as_str().unwrap().to_owned();
    let mut taken = sdk_provision(&broker, "taken-1", &["--group-key", &line_2]);
    // The SDK reports the 409 as `ClientError('Unexpected failure')`.
    taken.wait_event("register_failed", STEP);
    assert_eq!(taken.wait_exit(STEP).code(), Some(5), "{}", taken.dump());

    // An individual enrollment: the device's own key, no derivation.
    let key = "aW5kaXZpZHVhbC1rZXktb2YtdGhpcnR5LXR3by1ieXRlcw==";
    let body = json!({"key": key, "initialTwin": {"desired": {"mode": "solo"}}});
    let r = broker.api(
        "PUT",
        "/api/enrollments/individual/solo-1",
        Some(&body),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut solo = sdk_provision(&broker, "solo-1", &["--key", key]);
    let registered = solo.wait_event("registered", STEP);
    assert_eq!(registered["device_id"], "solo-1", "{}", solo.dump());
    let twin = solo.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["desired"]["mode"], "solo", "{twin}");
    assert_eq!(solo.wait_exit(STEP).code(), Some(0), "{}", solo.dump());
}

/// `bosun ca ARGS` on the hub's data directory, which must succeed; its stdout.
fn ca(broker: &Bosun, args: &[&str]) -> String {
    let data = broker.data_dir().to_str().expect("utf-8 path").to_owned();
    let mut all = vec!["ca"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", &data]);
    let out = common::run(&all, &[]);
    assert!(
        out.status.success(),
        "bosun {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A certificate for `id` from the built-in CA: the `--cert-file/--key-file` arguments
/// of `azure_provision.py`, and its serial.
fn device_cert(broker: &Bosun, id: &str, dir: &std::path::Path) -> (Vec<String>, String) {
    let out_dir = dir.join(id);
    std::fs::create_dir_all(&out_dir).unwrap();
    let printed = ca(
        broker,
        &[
            "issue-device",
            "--id",
            id,
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
    );
    let serial = printed
        .lines()
        .find_map(|l| l.strip_prefix("serial:"))
        .map(|s| s.trim().to_owned())
        .expect("serial printed");
    let file = |ext: &str| out_dir.join(format!("{id}.{ext}")).display().to_string();
    let args = vec![
        "--cert-file".to_owned(),
        file("pem"),
        "--key-file".to_owned(),
        file("key"),
    ];
    (args, serial)
}

#[test]
fn the_azure_provisioning_sdk_registers_with_x509_certificates() {
    let broker = production_hub(&[("BOSUN_HUB__ID_SCOPE", "0ne0000b05")]);
    let host = broker.mqtts_addr().ip().to_string();
    ca(&broker, &["init"]);
    let loaded = wait_until(Duration::from_secs(10), || {
        broker.stderr().contains("TLS certificate loaded")
    });
    assert!(loaded, "device CA not picked up\n{}", broker.stderr());
    let dir = tempfile::tempdir().unwrap();

    // An enrollment group by CA: any certificate of the built-in CA whose CN is the
    // registration id.
    let body = json!({
        "x509": {"ca": "bosun"},
        "initialTwin": {"tags": {"site": "plant-9"}, "desired": {"mode": "watch"}},
        "deviceGroup": "cams",
    });
    let r = broker.api("PUT", "/api/enrollments/groups/cams", Some(&body), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["attestation"], "x509", "{}", r.body);

    // An application watching the telemetry the device will send.
    let token = broker.admin_token();
    let watcher = support::mosquitto_sub(
        broker.mqtt_addr(),
        Version::V5,
        &[
            "-i",
            "watcher",
            "-u",
            "bosun-service",
            "-P",
            &token,
            "-t",
            "devices/cam-7/messages/events/#",
        ],
    );
    support::wait_subscribed(&watcher);

    let (cert, _) = device_cert(&broker, "cam-7", dir.path());
    let mut args: Vec<&str> = cert.iter().map(String::as_str).collect();
    args.extend(["--telemetry", r#"{"frames":12}"#]);
    let mut dev = sdk_provision(&broker, "cam-7", &args);
    let registered = dev.wait_event("registered", STEP);
    assert_eq!(registered["status"], "assigned", "{}", dev.dump());
    assert_eq!(registered["device_id"], "cam-7");
    assert_eq!(registered["assigned_hub"], host.as_str());
    dev.wait_event("telemetry_sent", STEP);
    let twin = dev.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["desired"]["mode"], "watch", "{twin}");
    assert_eq!(dev.wait_exit(STEP).code(), Some(0), "{}", dev.dump());
    let got = support::wait_messages(&watcher, 1, STEP);
    assert_eq!(got[0].payload, r#"{"frames":12}"#, "{got:?}");
    let info = broker.api("GET", "/api/devices/cam-7", None, &[]).json();
    assert_eq!(info["authKind"], "x509", "{info}");
    assert_eq!(info["tags"]["site"], "plant-9", "{info}");
    assert_eq!(info["group"], "cams", "{info}");

    // Registering again is idempotent: the twin is not reset.
    let patch = json!({"properties": {"desired": {"mode": "record"}}});
    let r = broker.api("PATCH", "/api/devices/cam-7/twin", Some(&patch), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let mut again = sdk_provision(&broker, "cam-7", &args);
    again.wait_event("registered", STEP);
    let twin = again.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["desired"]["mode"], "record", "{twin}");
    assert_eq!(again.wait_exit(STEP).code(), Some(0), "{}", again.dump());

    // An individual enrollment pinned to one certificate: that one registers, another
    // certificate with the same CN does not.
    let (first, serial) = device_cert(&broker, "solo-x", dir.path());
    let (second, _) = device_cert(&broker, "solo-x", &dir.path().join("second"));
    let body = json!({"x509": {"serial": serial}, "initialTwin": {"desired": {"mode": "solo"}}});
    let r = broker.api(
        "PUT",
        "/api/enrollments/individual/solo-x",
        Some(&body),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let args: Vec<&str> = second.iter().map(String::as_str).collect();
    let mut refused = sdk_provision(&broker, "solo-x", &args);
    refused.wait_event("register_failed", STEP);
    assert_eq!(
        refused.wait_exit(STEP).code(),
        Some(5),
        "{}",
        refused.dump()
    );
    let args: Vec<&str> = first.iter().map(String::as_str).collect();
    let mut solo = sdk_provision(&broker, "solo-x", &args);
    let registered = solo.wait_event("registered", STEP);
    assert_eq!(registered["device_id"], "solo-x", "{}", solo.dump());
    let twin = solo.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["desired"]["mode"], "solo", "{twin}");
    assert_eq!(solo.wait_exit(STEP).code(), Some(0), "{}", solo.dump());

    // A disabled group refuses its devices.
    let body = json!({"x509": {"ca": "bosun"}, "disabled": true});
    let r = broker.api("PUT", "/api/enrollments/groups/cams", Some(&body), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let (cert, _) = device_cert(&broker, "cam-8", dir.path());
    let args: Vec<&str> = cert.iter().map(String::as_str).collect();
    let mut off = sdk_provision(&broker, "cam-8", &args);
    off.wait_event("register_failed", STEP);
    assert_eq!(off.wait_exit(STEP).code(), Some(5), "{}", off.dump());
    let r = broker.api("GET", "/api/devices/cam-8", None, &[]);
    assert_eq!(r.status, 404, "{}", r.body);
}
