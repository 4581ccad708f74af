//! `bosun sim` and `bosun demo` end to end, against real `bosun serve` processes.
//!
//! - `two_thousand_simulated_devices_lose_nothing_and_faults_are_found`: 2,000 agents
//!   (two shard processes of 1,000, one axis each, a feature message every 4 s) against
//!   `serve --dev` with a 10-message anomaly warm-up; three motors' outer races start
//!   failing at 50 s. The report (from the hub's API) must show every device connected,
//!   0 messages lost, the three faults detected and no false alarms.
//! - `the_demo_closes_the_loop`: `bosun demo` (CA, enrollment group, DPS over TLS)
//!   with a 5× device clock and an 8-message warm-up runs to its end with exit status
//!   0 and prints every phase.
//! - `a_hub_restart_loses_nothing_and_every_device_comes_back`: `bosun sim` starts
//!   its own hub, 300 agents connect from two loopback source addresses (checked with
//!   `ss` on the hub's port), the hub is killed with SIGKILL at 6 s and restarted on
//!   the same data and ports; the report must show 0 messages lost and all 300 devices
//!   reconnected, with the reconnection time.
//! - `an_external_hub_cannot_be_restarted`: the same scenario with `--hub` is refused.
//!
//! Both load the two cores fully, so they take turns (a lock file), and neither
//! sleeps for a fixed time: the simulator's own duration paces the first, and the demo
//! ends itself when the capture is stored.

mod common;

use std::io::Read;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bosun_command, Bosun, FleetTurn};

/// How long one simulator or demo process may take.
const DEADLINE: Duration = Duration::from_secs(240);

const SCENARIO: &str = r#"
axes = 1
interval = "4s"
stagger = "8s"
duration = "64s"
seed = 7
[faults]
count = 3
onset = "50s"
growth = "1s"
severity = 3.0
"#;

/// The hub's anomaly model for the test: a 10-message warm-up (40 s here) instead of
/// 30, and an entering score of 10 instead of 6. With so short a warm-up about one
/// healthy motor in 2,000 scores 6–9 (a noise-dominated spectral bin dipping, see
/// docs/simulator.md); the faulty ones score over 30.
const HUB_CONFIG: &str = "[pipeline]\nanomaly_warmup = 10\nanomaly_enter = 10.0\n";

#[test]
fn two_thousand_simulated_devices_lose_nothing_and_faults_are_found() {
    let _turn = FleetTurn::take();
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("bosun.toml");
    std::fs::write(&config, HUB_CONFIG).expect("write config");
    let hub = Bosun::start(&[
        "--mqtts",
        "off",
        "--config",
        config.to_str().expect("utf-8 path"),
    ]);
    let scenario = hub.data_dir().join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).expect("write scenario");
    let started = Instant::now();
    let out = run(&[
        "sim",
        "--hub",
        &hub.mqtt_addr().to_string(),
        "--api",
        &format!("http://{}", hub.http_addr()),
        "--data-dir",
        hub.data_dir().to_str().expect("utf-8 path"),
        "--devices",
        "2000",
        "--shards",
        "2",
        "--scenario",
        scenario.to_str().expect("utf-8 path"),
    ]);
    let (stdout, stderr) = texts(&out);
    eprintln!("bosun sim took {:?}\n{stdout}", started.elapsed());
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for row in [
        "| devices | 2000 |",
        "| connected at the end | 2000 |",
        "| **messages lost** | **0** |",
        "| faulty devices detected | 3 of 3 |",
        "| false alarms | 0 |",
        "| agents failed | 0 |",
        "result: PASS",
    ] {
        assert!(stdout.contains(row), "missing {row:?}:\n{stdout}\n{stderr}");
    }
    assert!(
        stderr.contains("2 shards, hub: 2000/2000 connected"),
        "no progress lines:\n{stderr}"
    );
    assert!(
        stderr.contains("2000 provisioned, 2000 connected"),
        "no progress lines:\n{stderr}"
    );
}

/// 300 devices, a message every 2 s, the hub killed at 6 s.
const RESTART_SCENARIO: &str = r#"
devices = 300
axes = 1
interval = "2s"
stagger = "2s"
duration = "20s"
[[events]]
kind = "hub_restart"
at = "6s"
"#;

#[test]
fn a_hub_restart_loses_nothing_and_every_device_comes_back() {
    let _turn = FleetTurn::take();
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("restart.toml");
    std::fs::write(&scenario, RESTART_SCENARIO).expect("write scenario");
    let started = Instant::now();
    let mut child = bosun_command()
        .args(["sim", "--scenario", scenario.to_str().expect("utf-8 path")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bosun sim");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let (lines, stderr) = lines_of(child.stderr.take().expect("stderr"));
    let port = wait_for_hub_port(&lines);
    let sources = wait_for_sources(port, 2);
    let status = wait_exit(&mut child);
    let stdout = String::from_utf8_lossy(&stdout.join().expect("reader")).into_owned();
    let stderr = stderr.join().expect("reader");
    eprintln!("bosun sim took {:?}\n{stdout}", started.elapsed());
    assert!(sources.len() >= 2, "the hub saw only {sources:?}");
    assert!(status.success(), "{stdout}\n{stderr}");
    for row in [
        "| devices | 300 |",
        "| connected at the end | 300 |",
        "| **messages lost** | **0** |",
        "| hub restart at 6.0 s: devices reconnected | 300 of 300 |",
        "| hub restart at 6.0 s: reconnection time (listening → all connected) | ",
        "result: PASS",
    ] {
        assert!(stdout.contains(row), "missing {row:?}:\n{stdout}\n{stderr}");
    }
    assert!(stderr.contains("hub killed (kill -9)"), "{stderr}");
    assert!(
        stderr.contains("all 300 devices connected again"),
        "{stderr}"
    );
}

#[test]
fn an_external_hub_cannot_be_restarted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("restart.toml");
    std::fs::write(&scenario, RESTART_SCENARIO).expect("write scenario");
    let out = run(&[
        "sim",
        "--hub",
        "127.0.0.1:1",
        "--scenario",
        scenario.to_str().expect("utf-8 path"),
    ]);
    let (stdout, stderr) = texts(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("leave --hub out"), "{stderr}");
}

/// Stderr as lines on a channel (for watching) and as one text at the end.
fn lines_of(
    pipe: impl Read + Send + 'static,
) -> (
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let all = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    (rx, all)
}

/// The MQTT port of the hub `bosun sim` started (from its `started a hub` line).
fn wait_for_hub_port(lines: &std::sync::mpsc::Receiver<String>) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("no `started a hub` line");
        let port = line
            .strip_prefix("started a hub: mqtt ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.port());
        if let Some(port) = port {
            return port;
        }
    }
}

/// The distinct peer addresses of established connections to `port`, as `ss` lists
/// them, once there are at least `want` (or whatever was seen by the deadline).
fn wait_for_sources(port: u16, want: usize) -> std::collections::BTreeSet<std::net::IpAddr> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < want && Instant::now() < deadline {
        let filter = format!("( sport = :{port} )");
        let out = std::process::Command::new("ss")
            .args(["-Htn", "state", "established", &filter])
            .output()
            .expect("run ss");
        for field in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(addr) = field.parse::<std::net::SocketAddr>() {
                if addr.port() != port {
                    seen.insert(addr.ip());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    seen
}

/// Waits for `child` to exit (killed past [`DEADLINE`]).
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("poll") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bosun sim did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_demo_closes_the_loop() {
    let _turn = FleetTurn::take();
    let out = run(&[
        "demo",
        "--speed",
        "5",
        "--warmup",
        "8",
        "--axes",
        "1",
        "--deadline",
        "120s",
    ]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let phases = [
        "device CA created",
        "enrollment group demo-motors created",
        "provisioned: 100/100 motors",
        "first features:",
        "anomaly on motor-17: score",
        "capture command delivered to motor-17",
        "capture stored: motor-17, 300000 samples at 10000 Hz",
        "## Where to look",
    ];
    let mut at = 0;
    for phase in phases {
        let found = stdout[at..].find(phase);
        assert!(
            found.is_some(),
            "{phase:?} missing or out of order:\n{stdout}"
        );
        at += found.unwrap_or_default();
    }
    assert!(stdout.contains("| **messages lost** | **0** |"), "{stdout}");
}

/// Runs `bosun args…` to completion (killed past [`DEADLINE`]).
fn run(args: &[&str]) -> Output {
    let mut child: Child = bosun_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bosun");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = wait_exit(&mut child);
    Output {
        status,
        stdout: stdout.join().expect("reader"),
        stderr: stderr.join().expect("reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
