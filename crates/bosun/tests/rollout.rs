//! Firmware rollouts end to end, with a real process, the real CLI and devices played
//! by `mosquitto_pub` (each reports its update's outcome in its twin): good firmware
//! goes phase by phase to the whole group; bad firmware is paused inside the first
//! phase with only that phase's devices touched, and the paused rollout survives a
//! restart of the hub.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::collections::BTreeSet;

use common::{cli_ok as cli, run, Bosun};
use ota::{Algorithm, Manifest, SigningKey, Version as Semver};
use serde_json::{json, Value};
use support::{mosquitto_pub, wait_until, Version, STEP};

/// `n` devices `{site}-NN` tagged `site`, their group `site`, and a stored signed
/// image; returns the image's id.
fn fleet(broker: &Bosun, site: &str, n: usize) -> String {
    for i in 0..n {
        let body = json!({ "deviceId": format!("{site}-{i:02}"), "tags": { "site": site } });
        let r = broker.api("POST", "/api/devices", Some(&body), &[]);
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let condition = json!({ "condition": format!("tags.site = '{site}'") });
    let r = broker.api("PUT", &format!("/api/groups/{site}"), Some(&condition), &[]);
    assert!(r.status < 300, "{}", r.body);
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let body = json!({ "name": site, "publicKey": key.public_key().to_pem() });
    let r = broker.api("POST", "/api/firmware/keys", Some(&body), &[]);
    assert_eq!(r.status, 201, "{}", r.body);
    let image = format!("firmware for {site}").into_bytes();
    let version = Semver::parse("2.0.0").unwrap();
    let m = Manifest::describe(&image, version, vec!["sensor-v2".into()])
        .sign(&key)
        .unwrap();
    let manifest: Value = serde_json::from_str(&m.to_json()).unwrap();
    let body = json!({ "manifest": manifest, "image": hub::base64::encode(&image) });
    let r = broker.api("POST", "/api/firmware", Some(&body), &[]);
    assert_eq!(r.status, 201, "{}", r.body);
    m.sha256.to_hex()
}

/// Devices of `site` whose desired `firmware` is this image.
fn notified(broker: &Bosun, site: &str, n: usize, id: &str) -> BTreeSet<String> {
    (0..n)
        .map(|i| format!("{site}-{i:02}"))
        .filter(|d| {
            let twin = broker.api("GET", &format!("/api/devices/{d}/twin"), None, &[]);
            twin.json()["properties"]["desired"]["firmware"]["id"] == id
        })
        .collect()
}

/// The device reports its update's outcome in its twin, as the agent would.
fn report(broker: &Bosun, device: &str, id: &str, state: &str) {
    let body = json!({ "firmware": {
        "version": if state == "succeeded" { "2.0.0" } else { "1.0.0" },
        "id": id, "state": state, "reason": "health check failed after boot",
    }});
    let topic = "$iothub/twin/PATCH/properties/reported/?$rid=1";
    let args = [
        "-i",
        device,
        "-q",
        "1",
        "-t",
        topic,
        "-m",
        &body.to_string(),
    ];
    mosquitto_pub(broker.mqtt_addr(), Version::V5, &args, None);
}

fn status(broker: &Bosun, name: &str) -> Value {
    let out = cli(broker, &["rollout", "status", name, "--output", "json"]);
    serde_json::from_str(&out).unwrap()
}

/// Plays the devices of `site`: each newly notified one reports `state`, until the
/// rollout stops running.
fn play(broker: &Bosun, name: &str, site: &str, n: usize, id: &str, state: &str) -> Value {
    let mut reported = BTreeSet::new();
    let mut last = Value::Null;
    let stopped = wait_until(STEP, || {
        for device in notified(broker, site, n, id) {
            if reported.insert(device.clone()) {
                report(broker, &device, id, state);
            }
        }
        last = status(broker, name);
        last["progress"]["status"]["status"] != "running"
    });
    assert!(stopped, "{name} still running: {last}\n{}", broker.stderr());
    last
}

const CREATE: &[&str] = &[
    "--soak",
    "0s",
    "--start-delay",
    "0s",
    "--max-failure",
    "10%",
    "--max-offline-excess",
    "100%",
];

#[test]
fn good_firmware_reaches_the_whole_group_phase_by_phase() {
    let broker = Bosun::start(&[]);
    let id = fleet(&broker, "east", 10);
    let mut args = vec![
        "rollout",
        "create",
        "spring",
        "--firmware",
        &id,
        "--group",
        "east",
        "--phases",
        "20%,50%,100%",
        "--max-concurrent",
        "3",
    ];
    args.extend(CREATE);
    cli(&broker, &args);
    let last = play(&broker, "spring", "east", 10, &id, "succeeded");
    assert_eq!(last["progress"]["status"]["status"], "completed", "{last}");
    let succeeded: Vec<u64> = last["progress"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["succeeded"].as_u64().unwrap())
        .collect();
    assert_eq!(succeeded, [2, 3, 5]);
    let table = cli(&broker, &["rollout", "status", "spring"]);
    assert!(
        table.contains("completed") && table.contains("[####"),
        "{table}"
    );
}

#[test]
fn bad_firmware_is_paused_in_the_first_phase_and_stays_paused_after_a_restart() {
    let broker = Bosun::start(&[]);
    let id = fleet(&broker, "west", 20);
    let mut args = vec![
        "rollout",
        "create",
        "autumn",
        "--firmware",
        &id,
        "--group",
        "west",
        "--phases",
        "10%,100%",
        "--max-concurrent",
        "5",
    ];
    args.extend(CREATE);
    cli(&broker, &args);
    let last = play(&broker, "autumn", "west", 20, &id, "failed");
    assert_eq!(last["progress"]["status"]["status"], "paused", "{last}");
    assert_eq!(last["progress"]["status"]["breach"]["gate"], "failures");
    assert_eq!(notified(&broker, "west", 20, &id).len(), 2);
    let events = last["events"].to_string();
    assert!(events.contains("breached"), "{events}");

    let mut broker = broker;
    broker.terminate();
    let broker = broker.restart_same();
    let again = status(&broker, "autumn");
    assert_eq!(again["progress"], last["progress"]);
    let table = cli(&broker, &["rollout", "status"]);
    assert!(table.contains("paused (failures)"), "{table}");
}

/// Stores a signed image of `bytes` (a throwaway key); returns its id.
fn store_image(broker: &Bosun, bytes: &[u8]) -> String {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let body = json!({ "name": "rate", "publicKey": key.public_key().to_pem() });
    let r = broker.api("POST", "/api/firmware/keys", Some(&body), &[]);
    assert_eq!(r.status, 201, "{}", r.body);
    let version = Semver::parse("2.0.0").unwrap();
    let m = Manifest::describe(bytes, version, vec!["sensor-v2".into()])
        .sign(&key)
        .unwrap();
    let manifest: Value = serde_json::from_str(&m.to_json()).unwrap();
    let body = json!({ "manifest": manifest, "image": hub::base64::encode(bytes) });
    let r = broker.api("POST", "/api/firmware", Some(&body), &[]);
    assert_eq!(r.status, 201, "{}", r.body);
    m.sha256.to_hex()
}

/// `firmware.max_download_rate`: a ranged download of 500 kB at 200 kB/s (one second
/// of burst) takes at least 1.5 s.
#[test]
fn image_downloads_share_the_configured_rate_limit() {
    let broker = Bosun::launch(&["--mqtts", "off"])
        .env("BOSUN_FIRMWARE__MAX_DOWNLOAD_RATE", "200000")
        .start();
    // ASCII bytes, so the test's text-based HTTP client reads the body as it is.
    let image: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let id = store_image(&broker, &image);
    let path = format!("/api/firmware/{id}/image");
    let started = std::time::Instant::now();
    let r = broker.api("GET", &path, None, &[("Range", "bytes=100000-")]);
    let took = started.elapsed();
    assert_eq!(r.status, 206, "{}", r.header("content-range").unwrap_or(""));
    assert_eq!(r.body.len(), 500_000);
    assert_eq!(r.body.as_bytes(), &image[100_000..]);
    assert!(
        took >= std::time::Duration::from_millis(1_400),
        "500 kB at 200 kB/s after a 200 kB burst took only {took:?}"
    );
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}

/// A maintenance window that excludes now: the rollout notifies nobody and says it is
/// waiting for its window (`rollout status`), with the window in its spec.
#[test]
fn outside_its_window_a_rollout_waits() {
    let broker = Bosun::start(&["--mqtts", "off"]);
    let id = fleet(&broker, "north", 4);
    let hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        % 24;
    let window = format!("{:02}:00-{:02}:00", (hour + 2) % 24, (hour + 3) % 24);
    let mut args = vec![
        "rollout",
        "create",
        "night",
        "--firmware",
        &id,
        "--group",
        "north",
    ];
    args.extend(["--window", &window]);
    args.extend(CREATE);
    cli(&broker, &args);
    let doc = status(&broker, "night");
    assert_eq!(doc["waitingForWindow"], true, "{doc}");
    assert_eq!(doc["spec"]["windows"], json!([window]), "{doc}");
    assert!(notified(&broker, "north", 4, &id).is_empty());
    let table = cli(&broker, &["rollout", "status", "night"]);
    assert!(table.contains("running, waiting for window"), "{table}");
    assert!(table.contains(&format!("{window} UTC")), "{table}");
    let bad = run(
        &[
            "rollout",
            "create",
            "x",
            "--firmware",
            &id,
            "--group",
            "north",
            "--window",
            "25:00-01:00",
        ],
        &[],
    );
    assert!(!bad.status.success());
}
