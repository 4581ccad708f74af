//! Signed OTA updates end to end: a real `bosun serve`, the real CLI (keygen, sign,
//! keys add, upload, rollout create) and five real agents (`bosun device run
//! --firmware-key …`) that download over HTTPS with their presigned URLs, verify,
//! install into their inactive slot, reboot, confirm health and report the new version.
//! Then a firmware that "crashes on boot" under `--policy rollback`: the first phase's
//! device misses its health deadline, rolls back by itself and reports `failed`; the
//! rollout is stopped and no device outside the first phase is ever offered it.
//! Last, `bosun rollout cancel --roll-back` while a good image's first phase soaks: the
//! updated device reboots into its previous slot and reports `rolledBack`.
//!
//! Short deadlines keep it quick: health deadline 3 s, no soak, no start delay.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::collections::BTreeSet;
use std::path::Path;

use common::{bosun_command, cli_ok as cli, publish_firmware, run, Bosun};
use serde_json::{json, Value};
use support::{wait_until, Client, STEP};

/// The agents.
const DEVICES: usize = 5;
/// Their hardware id.
const HW: &str = "sensor-v2";

fn device(i: usize) -> String {
    format!("ota-{i:02}")
}

/// The reported `firmware` of every device.
fn reported(hub: &Bosun) -> Vec<Value> {
    (0..DEVICES)
        .map(|i| {
            let twin = hub.api(
                "GET",
                &format!("/api/devices/{}/twin", device(i)),
                None,
                &[],
            );
            twin.json()["properties"]["reported"]["firmware"].clone()
        })
        .collect()
}

/// Devices whose desired `firmware` names image `id`.
fn offered(hub: &Bosun, id: &str) -> BTreeSet<String> {
    (0..DEVICES)
        .map(device)
        .filter(|d| {
            let twin = hub.api("GET", &format!("/api/devices/{d}/twin"), None, &[]);
            twin.json()["properties"]["desired"]["firmware"]["id"] == id
        })
        .collect()
}

fn status(hub: &Bosun, name: &str) -> Value {
    serde_json::from_str(&cli(hub, &["rollout", "status", name, "--output", "json"])).unwrap()
}

/// Waits until `cond` holds on every device's reported `firmware`.
fn wait_reported(hub: &Bosun, agents: &[Client], what: &str, cond: impl Fn(&Value) -> bool) {
    let mut last = Vec::new();
    let held = wait_until(STEP * 2, || {
        last = reported(hub);
        last.iter().all(&cond)
    });
    let dumps: Vec<String> = agents.iter().map(Client::dump).collect();
    assert!(held, "{what}: {last:?}\n{}", dumps.join("\n"));
}

/// Waits until rollout `name` stops running; returns its status.
fn wait_stopped(hub: &Bosun, agents: &[Client], name: &str) -> Value {
    let mut last = Value::Null;
    let stopped = wait_until(STEP * 2, || {
        last = status(hub, name);
        last["progress"]["status"]["status"] != "running"
    });
    let dumps: Vec<String> = agents.iter().map(Client::dump).collect();
    assert!(
        stopped,
        "{name} still running: {last}\n{}",
        dumps.join("\n")
    );
    last
}

/// `bosun rollout create` over group `ota`: phases 20 %, 100 %, no start delay, all
/// five devices at once, stopping on the first failure (with `policy`).
fn create(hub: &Bosun, name: &str, id: &str, policy: &str, soak: &str) {
    let mut args = vec![
        "rollout",
        "create",
        name,
        "--firmware",
        id,
        "--group",
        "ota",
    ];
    args.extend([
        "--phases",
        "20%,100%",
        "--soak",
        soak,
        "--start-delay",
        "0s",
    ]);
    args.extend(["--max-failure", "10%", "--max-offline-excess", "100%"]);
    args.extend(["--max-concurrent", "5", "--policy", policy]);
    cli(hub, &args);
}

/// Devices `ota-00`… tagged into group `ota`, and the publisher's key pair made
/// offline (`bosun firmware keygen`) with its public half registered; returns the
/// private and public key files.
fn fleet(hub: &Bosun, dir: &Path, n: usize) -> (String, String) {
    for i in 0..n {
        let body = json!({ "deviceId": device(i), "tags": { "fleet": "ota" } });
        let r = hub.api("POST", "/api/devices", Some(&body), &[]);
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let condition = json!({ "condition": "tags.fleet = 'ota'" });
    let r = hub.api("PUT", "/api/groups/ota", Some(&condition), &[]);
    assert!(r.status < 300, "{}", r.body);
    let key = dir.join("release");
    cli(hub, &["firmware", "keygen", "--out", key.to_str().unwrap()]);
    let private = format!("{}.key", key.display());
    let public = format!("{}.pub", key.display());
    let add = [
        "firmware", "keys", "add", "--name", "release", "--file", &public,
    ];
    cli(hub, &add);
    (private, public)
}

/// `bosun device run` for device `i` over MQTT/TLS, installing updates signed by the
/// key in `public`, its buffer and slots under `dir/ota-NN`.
fn spawn_agent(hub: &Bosun, dir: &Path, i: usize, public: &str) -> Client {
    let ca = hub.data_dir().join("tls").join("ca.pem");
    let https = hub.https_addr().to_string();
    let mut cmd = bosun_command();
    cmd.args(["device", "run", "--id", &device(i)])
        .args(["--hub", &hub.mqtts_addr().to_string()])
        .arg("--ca")
        .arg(&ca)
        .args(["--interval", "1s", "--speed", "5", "--firmware", "1.0.0"])
        .args(["--firmware-key", public, "--hw", HW])
        .args(["--firmware-server", &https, "--health-deadline", "3s"])
        .arg("--buffer-dir")
        .arg(dir.join(device(i)));
    Client::spawn(&device(i), cmd)
}

/// An image that "crashes on boot" (the simulator's marker).
fn crashing() -> Vec<u8> {
    let mut bad = b"firmware 3.0.0 ".to_vec();
    bad.extend_from_slice(b"BOSUN-SIM-CRASH-ON-BOOT");
    bad
}

#[test]
fn agents_install_a_signed_rollout_and_roll_back_a_crashing_one() {
    let hub = Bosun::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (private, public) = fleet(&hub, dir, DEVICES);
    let good: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let good_id = publish_firmware(&hub, dir, &private, HW, &good, "2.0.0");
    let agents: Vec<Client> = (0..DEVICES)
        .map(|i| spawn_agent(&hub, dir, i, &public))
        .collect();
    wait_reported(&hub, &agents, "every agent reports 1.0.0", |f| {
        f["version"] == "1.0.0"
    });

    let started = std::time::Instant::now();
    create(&hub, "good", &good_id, "pause", "0s");
    let last = wait_stopped(&hub, &agents, "good");
    eprintln!("good rollout completed in {:?}", started.elapsed());
    assert_eq!(last["progress"]["status"]["status"], "completed", "{last}");
    wait_reported(&hub, &agents, "every agent runs 2.0.0", |f| {
        f["version"] == "2.0.0" && f["state"] == "succeeded" && f["id"] == good_id.as_str()
    });
    for i in 0..DEVICES {
        let slot = dir.join(device(i)).join("firmware").join("slot-b.bin");
        assert_eq!(std::fs::read(slot).unwrap(), good, "{}", device(i));
    }

    // A firmware that never comes up: the first phase's device rolls itself back.
    let bad_id = publish_firmware(&hub, dir, &private, HW, &crashing(), "3.0.0");
    let started = std::time::Instant::now();
    create(&hub, "bad", &bad_id, "rollback", "0s");
    let last = wait_stopped(&hub, &agents, "bad");
    eprintln!("bad rollout stopped in {:?}", started.elapsed());
    assert_eq!(last["progress"]["status"]["status"], "cancelled", "{last}");
    assert_eq!(
        last["progress"]["status"]["breach"]["gate"], "failures",
        "{last}"
    );
    let touched = offered(&hub, &bad_id);
    assert_eq!(touched.len(), 1, "only the first phase: {touched:?}");
    wait_reported(
        &hub,
        &agents,
        "back on 2.0.0, the crashed one failed",
        |f| {
            f["version"] == "2.0.0"
                && (f["id"] == good_id.as_str()
                    || (f["id"] == bad_id.as_str()
                        && f["state"] == "failed"
                        && f["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains("did not confirm its health"))))
        },
    );
    let failed: Vec<Value> = reported(&hub)
        .into_iter()
        .filter(|f| f["id"] == bad_id.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");

    // A good image the operator takes back while its first phase soaks: the updated
    // device reboots into its previous slot and reports `rolledBack`.
    let newer: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    let newer_id = publish_firmware(&hub, dir, &private, HW, &newer, "4.0.0");
    create(&hub, "soaking", &newer_id, "pause", "10m");
    let updated = wait_until(STEP, || {
        reported(&hub)
            .iter()
            .any(|f| f["version"] == "4.0.0" && f["state"] == "succeeded")
    });
    assert!(updated, "no device on 4.0.0");
    cli(&hub, &["rollout", "cancel", "soaking", "--roll-back"]);
    wait_reported(&hub, &agents, "the updated device rolled back", |f| {
        f["version"] == "2.0.0" && (f["id"] != newer_id.as_str() || f["state"] == "rolledBack")
    });
    let rolled: Vec<Value> = reported(&hub)
        .into_iter()
        .filter(|f| f["id"] == newer_id.as_str())
        .collect();
    assert_eq!(
        rolled.len(),
        1,
        "only the first phase was updated: {rolled:?}"
    );
}

/// kill -9 while a new image is on trial (here: crashing, so offline): the restarted
/// agent counts a second boot attempt from `boot.json`, and the image is still rolled
/// back and reported `failed`; the previous slot is active again.
#[test]
fn a_kill_during_the_trial_counts_a_boot_and_the_image_still_rolls_back() {
    let hub = Bosun::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (private, public) = fleet(&hub, dir, 1);
    let bad_id = publish_firmware(&hub, dir, &private, HW, &crashing(), "3.0.0");
    let mut agent = spawn_agent(&hub, dir, 0, &public);
    let version = |hub: &Bosun| {
        let twin = hub.api("GET", "/api/devices/ota-00/twin", None, &[]);
        twin.json()["properties"]["reported"]["firmware"].clone()
    };
    assert!(
        wait_until(STEP, || version(&hub)["version"] == "1.0.0"),
        "{}",
        agent.dump()
    );
    create(&hub, "crash", &bad_id, "pause", "0s");
    let record_file = dir.join("ota-00").join("firmware").join("boot.json");
    let record = || -> Value {
        let text = std::fs::read(&record_file).unwrap_or_default();
        serde_json::from_slice(&text).unwrap_or(Value::Null)
    };
    let on_trial = wait_until(STEP, || record()["trial"]["attempts"] == 1);
    assert!(on_trial, "{}\n{}", record(), agent.dump());
    assert_eq!(record()["active"], "b");
    agent.kill9();
    let agent = spawn_agent(&hub, dir, 0, &public);
    // The restart is the image's second boot (within its 3 s health deadline).
    let counted = wait_until(STEP, || record()["trial"]["attempts"] == 2);
    assert!(counted, "{}\n{}", record(), agent.dump());
    let mut last = Value::Null;
    let failed = wait_until(STEP, || {
        last = version(&hub);
        last["id"] == bad_id.as_str() && last["state"] == "failed"
    });
    assert!(failed, "{last}\n{}", agent.dump());
    assert_eq!(last["version"], "1.0.0");
    assert_eq!(record()["active"], "a");
    assert!(record()["trial"].is_null());
    let log = agent.dump();
    assert!(log.contains("simulated firmware crash"), "{log}");
}

/// `GET path` over HTTPS with the agent's own client, trusting the hub's CA.
fn https_get(hub: &Bosun, path: &str) -> Result<Vec<u8>, agent::ota::http::HttpError> {
    let ca = hub.data_dir().join("tls").join("ca.pem");
    let config = agent::link::tls::client_config(&ca, None).unwrap();
    let addr = hub.https_addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = agent::link::tls::server_name("127.0.0.1").unwrap();
        let connector = tokio_rustls::TlsConnector::from(config);
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let mut body = Vec::new();
        let host = addr.to_string();
        agent::ota::http::get(
            &mut tls,
            &host,
            path,
            0,
            |_| Ok::<(), ()>(()),
            |b| {
                body.extend_from_slice(b);
                Ok(())
            },
        )
        .await
        .map(|_| body)
    })
}

/// The HTTPS listener serves the same API with the MQTT listener's certificate; the
/// image route still wants a token or a presigned URL there.
#[test]
fn the_https_listener_serves_the_api_with_the_hubs_certificate() {
    let hub = Bosun::start(&[]);
    assert_eq!(https_get(&hub, "/healthz").unwrap(), b"ok");
    let err = https_get(&hub, &format!("/api/firmware/{}/image", "0".repeat(64))).unwrap_err();
    assert!(err.to_string().starts_with("HTTP 401"), "{err}");
    let forged = format!(
        "/api/firmware/{}/image?device=d&expires=99999999999&sig=00",
        "0".repeat(64)
    );
    let err = https_get(&hub, &forged).unwrap_err();
    assert!(err.to_string().starts_with("HTTP 403"), "{err}");
    // Without TLS there is no HTTPS listener either.
    let plain = Bosun::start(&["--mqtts", "off"]);
    assert!(!plain.tls_listening());
    // And an agent asked to install updates without TLS refuses to start.
    let work = tempfile::tempdir().unwrap();
    let key = ota::SigningKey::generate(ota::Algorithm::Ed25519).unwrap();
    let public = work.path().join("rel.pub");
    std::fs::write(&public, key.public_key().to_pem()).unwrap();
    let hub = plain.mqtt_addr().to_string();
    let public = public.to_str().unwrap();
    let buffer = work.path().join("buf");
    let buffer = buffer.to_str().unwrap();
    let args = [
        "device",
        "run",
        "--id",
        "d",
        "--hub",
        &hub,
        "--buffer-dir",
        buffer,
    ];
    let out = run(&[&args[..], &["--firmware-key", public]].concat(), &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("give --ca"), "{stderr}");
}
