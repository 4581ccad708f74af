//! Rollouts at fleet scale: a real `bosun serve` (TLS on, so images download over
//! HTTPS), the real CLI (`firmware keygen|keys add|sign|upload`, `rollout
//! create|status`) and `bosun sim` as a separate process whose agents ([`CI_FLEET`], or
//! `BOSUN_FLEET_DEVICES`) all
//! install updates (`--firmware-key`). One fleet, three rollouts in a row:
//!
//! 1. a good 2.0.0 in phases `1%,10%,50%,100%` reaches every device;
//! 2. a good 3.0.0 whose hub is killed with SIGKILL once phase 2 has started, and
//!    started again on the same data directory and ports: the rollout resumes where it
//!    was and completes, and every device's desired `firmware` was written exactly once
//!    (its desired `$version` went up by one: nobody was offered it twice);
//! 3. a 4.0.0 that "crashes on boot" under `--policy rollback`: stopped in its first
//!    phase, at most 1 % of the fleet was ever offered it, and every device that got it
//!    rolled back by itself (`failed`) or on the hub's request (`rolledBack`) and runs
//!    3.0.0 again.
//!
//! Then SIGTERM ends the simulator early, and its report must count every device on
//! 3.0.0. Nothing sleeps for a fixed time: every wait polls the API with a deadline.
//!
//! A second, smaller test plays "bad firmware later" from a scenario file: the
//! simulator itself uploads a crashing image and rolls it out to its 40 devices.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{bosun_command, cli_ok as cli, publish_firmware, send_signal, Bosun, FleetTurn};
use serde_json::{json, Value};
use support::{wait_until, Client};

/// Simulated devices in CI. The issue asks for 1,000; on a shared 2-core machine that
/// takes 60-120 s of debug-build CPU, so CI runs 300 and the 1,000-device run is done
/// by hand (`BOSUN_FLEET_DEVICES=1000`; its numbers are in docs/ota.md).
const CI_FLEET: usize = 300;

/// The fleet size: `BOSUN_FLEET_DEVICES`, else [`CI_FLEET`].
fn fleet_size() -> usize {
    std::env::var("BOSUN_FLEET_DEVICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CI_FLEET)
}
/// Their hardware id.
const HW: &str = "sim-fleet";
/// How long any one stage (fleet up, one rollout) may take.
const STAGE: Duration = Duration::from_secs(90);
/// The devices' health deadline: long enough for a busy 2-core machine to reconnect
/// hundreds of rebooted agents, short enough for the crashing stage.
const HEALTH_DEADLINE: &str = "12s";

/// The fleet: one axis, a feature message every 20 s, starts spread over 3 s, and a
/// duration far beyond the test's (SIGTERM ends it).
fn scenario(devices: usize) -> String {
    format!(
        "devices = {devices}\nprefix = \"fl-\"\naxes = 1\ninterval = \"20s\"\nstagger = \"3s\"\nduration = \"600s\"\n"
    )
}

/// A 16 KiB image of `version` (distinct bytes per version).
fn image(version: &str, crash: bool) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..16 * 1024u32).map(|i| (i % 241) as u8).collect();
    bytes.extend_from_slice(version.as_bytes());
    if crash {
        bytes.extend_from_slice(b"BOSUN-SIM-CRASH-ON-BOOT");
    }
    bytes
}

/// Every fleet twin (a paged `SELECT *`).
fn twins(hub: &Bosun) -> Vec<Value> {
    let mut all = Vec::new();
    let mut continuation = Value::Null;
    loop {
        let mut body = json!({ "query": "SELECT * FROM devices", "limit": 1000 });
        if !continuation.is_null() {
            body["continuation"] = continuation.clone();
        }
        let r = hub.api("POST", "/api/query", Some(&body), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        continuation = page["continuation"].clone();
        if continuation.is_null() {
            return all;
        }
    }
}

/// Devices whose reported `firmware` satisfies `cond`.
fn count_reported(hub: &Bosun, cond: impl Fn(&Value) -> bool) -> usize {
    twins(hub)
        .iter()
        .filter(|t| cond(&t["properties"]["reported"]["firmware"]))
        .count()
}

/// Each device's desired `$version` (bumped by every desired patch).
fn desired_versions(hub: &Bosun) -> BTreeMap<String, i64> {
    twins(hub)
        .iter()
        .map(|t| {
            let id = t["deviceId"].as_str().unwrap_or_default().to_owned();
            (
                id,
                t["properties"]["desired"]["$version"]
                    .as_i64()
                    .unwrap_or(-1),
            )
        })
        .collect()
}

/// Devices whose desired `firmware` names image `id`.
fn offered(hub: &Bosun, id: &str) -> usize {
    twins(hub)
        .iter()
        .filter(|t| t["properties"]["desired"]["firmware"]["id"] == id)
        .count()
}

/// The reported `firmware` of devices whose last update failed.
fn failures(hub: &Bosun) -> String {
    let failed: Vec<String> = twins(hub)
        .iter()
        .filter(|t| t["properties"]["reported"]["firmware"]["state"] == "failed")
        .map(|t| {
            format!(
                "{}: {}",
                t["deviceId"], t["properties"]["reported"]["firmware"]
            )
        })
        .take(20)
        .collect();
    failed.join("\n")
}

/// The rollout document (`GET /api/rollouts/NAME`).
fn rollout(hub: &Bosun, name: &str) -> Value {
    let r = hub.api("GET", &format!("/api/rollouts/{name}"), None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn status_of(doc: &Value) -> &str {
    doc["progress"]["status"]["status"].as_str().unwrap_or("")
}

/// Polls until `cond` holds on rollout `name` (panics with the simulator's output
/// past [`STAGE`]); returns the document.
fn wait_rollout(hub: &Bosun, sim: &Client, name: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let held = wait_until(STAGE, || {
        last = rollout(hub, name);
        cond(&last)
    });
    assert!(held, "rollout {name}: {last}\n{}", sim.dump());
    last
}

/// `bosun rollout create NAME` over group `fleet`.
fn create(hub: &Bosun, name: &str, id: &str, policy: &str) {
    let args = [
        "rollout",
        "create",
        name,
        "--firmware",
        id,
        "--group",
        "fleet",
        "--phases",
        "1%,10%,50%,100%",
        "--soak",
        "1s",
        "--start-delay",
        "1s",
        "--max-concurrent",
        "250",
        "--max-failure",
        "2%",
        "--max-offline-excess",
        "30%",
        "--max-anomaly-excess",
        "100%",
        "--device-timeout",
        "60s",
        "--policy",
        policy,
    ];
    cli(hub, &args);
}

/// `bosun sim` over the hub's MQTT/TLS listener with `scenario` (written to `dir`),
/// every device OTA-capable with `public` pinned and `health` as its deadline.
fn simulate(hub: &Bosun, dir: &Path, scenario: &str, public: &str, health: &str) -> Client {
    let file = dir.join("fleet.toml");
    std::fs::write(&file, scenario).unwrap();
    let ca = hub.data_dir().join("tls").join("ca.pem");
    let mut cmd = bosun_command();
    cmd.args(["sim", "--hub", &hub.mqtts_addr().to_string()])
        .arg("--ca")
        .arg(&ca)
        .args(["--api", &format!("http://{}", hub.http_addr())])
        .arg("--data-dir")
        .arg(hub.data_dir())
        .arg("--scenario")
        .arg(&file)
        .args(["--firmware-key", public, "--hw", HW])
        .args(["--firmware-server", &hub.https_addr().to_string()])
        .args(["--health-deadline", health]);
    Client::spawn("bosun sim", cmd)
}

/// A publisher key pair made offline with the CLI in `dir`: (private, public) files.
fn keygen(hub: &Bosun, dir: &Path) -> (String, String) {
    let key = dir.join("release");
    cli(hub, &["firmware", "keygen", "--out", key.to_str().unwrap()]);
    (
        format!("{}.key", key.display()),
        format!("{}.pub", key.display()),
    )
}

/// Connected fleet devices, from the registry.
fn connected(hub: &Bosun) -> usize {
    let body = json!({
        "query": "SELECT COUNT() FROM devices WHERE connectionState = 'connected'"
    });
    let r = hub.api("POST", "/api/query", Some(&body), &[]);
    r.json()["items"][0]["numberOfDevices"]
        .as_u64()
        .unwrap_or(0) as usize
}

/// Restarts a killed hub on its data directory and on all of its ports.
fn restart(hub: &Bosun) -> Bosun {
    let (mqtts, https, http) = (
        hub.mqtts_addr().to_string(),
        hub.https_addr().to_string(),
        hub.http_addr().to_string(),
    );
    let args = ["--mqtts", &mqtts, "--https", &https, "--http", &http];
    Bosun::start_on(hub.data_dir(), hub.mqtt_addr(), &args)
}

#[test]
fn a_fleet_takes_good_firmware_survives_a_hub_crash_and_stops_bad_firmware() {
    let _turn = FleetTurn::take();
    let t0 = Instant::now();
    let fleet = fleet_size();
    let mut hub = Bosun::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (private, public) = keygen(&hub, dir);
    let add = [
        "firmware", "keys", "add", "--name", "release", "--file", &public,
    ];
    cli(&hub, &add);
    let group = json!({ "condition": "deviceId >= 'fl-'" });
    let r = hub.api("PUT", "/api/groups/fleet", Some(&group), &[]);
    assert!(r.status < 300, "{}", r.body);
    let v2 = publish_firmware(&hub, dir, &private, HW, &image("2.0.0", false), "2.0.0");
    let v3 = publish_firmware(&hub, dir, &private, HW, &image("3.0.0", false), "3.0.0");
    let v4 = publish_firmware(&hub, dir, &private, HW, &image("4.0.0", true), "4.0.0");

    let mut sim = simulate(&hub, dir, &scenario(fleet), &public, HEALTH_DEADLINE);
    let up = wait_until(STAGE, || connected(&hub) == fleet);
    assert!(
        up,
        "fleet not connected: {}\n{}",
        connected(&hub),
        sim.dump()
    );
    eprintln!("[{:>5.1?}] {fleet} devices connected", t0.elapsed());

    // 1. Good firmware reaches everyone, phase by phase.
    let started = Instant::now();
    create(&hub, "good", &v2, "pause");
    let doc = wait_rollout(&hub, &sim, "good", |d| status_of(d) != "running");
    assert_eq!(status_of(&doc), "completed", "{doc}\n{}", failures(&hub));
    eprintln!(
        "[{:>5.1?}] 2.0.0 on every device in {:?}",
        t0.elapsed(),
        started.elapsed()
    );
    let on_v2 = |f: &Value| f["version"] == "2.0.0" && f["state"] == "succeeded";
    assert!(wait_until(STAGE, || count_reported(&hub, on_v2) == fleet));
    // Every agent reports its boot counter (the reboot gate's input): the first boot
    // and the reboot into 2.0.0.
    let rebooted = |f: &Value| f["boots"].as_u64() >= Some(2);
    assert!(wait_until(STAGE, || count_reported(&hub, rebooted) == fleet));
    let status = cli(&hub, &["rollout", "status", "good"]);
    assert!(status.contains("completed"), "{status}");

    // 2. The hub dies in phase 2 and comes back: the rollout resumes and completes.
    let before = desired_versions(&hub);
    let started = Instant::now();
    create(&hub, "resume", &v3, "pause");
    let doc = wait_rollout(&hub, &sim, "resume", |d| {
        d["progress"]["phase"].as_u64() >= Some(1)
    });
    eprintln!(
        "[{:>5.1?}] phase 2 reached: {}",
        t0.elapsed(),
        doc["progress"]
    );
    hub.kill9();
    let hub2 = restart(&hub);
    eprintln!("[{:>5.1?}] hub restarted", t0.elapsed());
    let doc = wait_rollout(&hub2, &sim, "resume", |d| status_of(d) != "running");
    assert_eq!(status_of(&doc), "completed", "{doc}");
    eprintln!(
        "[{:>5.1?}] 3.0.0 completed in {:?} across the crash",
        t0.elapsed(),
        started.elapsed()
    );
    let on_v3 = |f: &Value| f["version"] == "3.0.0" && f["state"] == "succeeded";
    assert!(wait_until(STAGE, || count_reported(&hub2, on_v3) == fleet));
    let after = desired_versions(&hub2);
    let twice: Vec<(&String, i64, i64)> = before
        .iter()
        .filter_map(|(id, v)| {
            let now = after.get(id).copied().unwrap_or(-1);
            (now != v + 1).then_some((id, *v, now))
        })
        .collect();
    assert!(
        twice.is_empty(),
        "desired firmware written other than once: {twice:?}"
    );

    // 3. A firmware that crashes on boot: stopped in phase 1, its devices roll back.
    create(&hub2, "crash", &v4, "rollback");
    let doc = wait_rollout(&hub2, &sim, "crash", |d| status_of(d) != "running");
    assert_eq!(status_of(&doc), "cancelled", "{doc}");
    assert_eq!(doc["progress"]["phase"], 0, "{doc}");
    let touched = offered(&hub2, &v4);
    assert!(
        touched >= 1 && touched <= fleet / 100,
        "offered to {touched}"
    );
    let got_it = |f: &Value| f["id"] == v4.as_str();
    let back = |f: &Value| {
        got_it(f)
            && f["version"] == "3.0.0"
            && (f["state"] == "failed" || f["state"] == "rolledBack")
    };
    let settled = wait_until(STAGE, || count_reported(&hub2, back) == touched);
    let states: Vec<Value> = twins(&hub2)
        .iter()
        .map(|t| t["properties"]["reported"]["firmware"].clone())
        .filter(|f| got_it(f))
        .collect();
    assert!(settled, "not all rolled back: {states:?}");
    eprintln!(
        "[{:>5.1?}] 4.0.0 stopped: {touched} offered, all back on 3.0.0",
        t0.elapsed()
    );

    // The simulator ends on SIGTERM and reports what the fleet runs.
    send_signal(sim.pid(), "-TERM");
    let exit = sim.wait_exit(STAGE);
    let report = sim.stdout_lines().join("\n");
    eprintln!(
        "[{:>5.1?}] simulator stopped ({exit})\n{report}",
        t0.elapsed()
    );
    assert!(exit.success(), "{}", sim.dump());
    let on_3 = format!("| devices on firmware 3.0.0 | {fleet} |");
    assert!(report.contains(&on_3), "{report}");
    assert!(report.contains("| **messages lost** | **0** |"), "{report}");
    drop(hub);
}

/// "Bad firmware later" as a scenario file: the simulator itself uploads a signed
/// image that crashes on boot and rolls it out to its fleet at 8 s (`[[events]] kind =
/// "rollout"`); the rollback policy stops it in its first phase (one device of 40),
/// which rolls back, and the simulator's report shows the rollout cancelled with one
/// device offered and the run passing (nothing lost, everyone connected).
#[test]
fn a_scenario_file_rolls_out_bad_firmware_later() {
    let _turn = FleetTurn::take();
    let hub = Bosun::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (private, public) = keygen(&hub, dir);
    let (image_file, manifest) = (dir.join("bad.bin"), dir.join("bad.json"));
    std::fs::write(&image_file, image("4.0.0", true)).unwrap();
    let (image_file, manifest) = (image_file.to_str().unwrap(), manifest.to_str().unwrap());
    let sign = [
        "firmware",
        "sign",
        "--key",
        &private,
        "--file",
        image_file,
        "--version",
        "4.0.0",
        "--hw",
        HW,
        "--out",
        manifest,
    ];
    cli(&hub, &sign);
    let scenario = format!(
        "devices = 40\nprefix = \"sc-\"\naxes = 1\ninterval = \"20s\"\nstagger = \"2s\"\n\
         duration = \"28s\"\n\n[[events]]\nkind = \"rollout\"\nat = \"8s\"\nname = \"bad\"\n\
         manifest = \"{manifest}\"\nimage = \"{image_file}\"\nphases = \"2%,100%\"\n\
         policy = \"rollback\"\nsoak = \"2s\"\nstart_delay = \"0s\"\n"
    );
    let mut sim = simulate(&hub, dir, &scenario, &public, "4s");
    let status = sim.wait_exit(STAGE);
    let out = sim.dump();
    assert!(status.success(), "{out}\n{}", hub.stderr());
    assert!(out.contains("rollout bad of firmware"), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("| bad |"))
        .unwrap_or_else(|| panic!("no rollout row: {out}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | bad | status | phase | offered | succeeded | failed | rolled back |
    assert_eq!(
        (cells[2], cells[3], cells[4]),
        ("cancelled", "1", "1"),
        "{row}"
    );
    assert_eq!(cells[5], "0", "nobody runs the crashing image: {row}");
}
