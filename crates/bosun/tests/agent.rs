//! The device agent (`bosun device run`) against a real `bosun serve --dev`: feature
//! messages reach a subscriber and decode, a C2D capture command yields the announced
//! chunks, and feature messages produced while the hub is dead (kill -9) all arrive, in
//! order, after it restarts.
//!
//! Real processes on free ports; every wait polls a condition under a deadline. The
//! agent runs with `--interval 1s --speed 5` (a window every 200 ms) so the tests are
//! short. Subscribers are `mosquitto_sub` printing `MSG|topic|content type|hex payload`.

mod common;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{bosun_command, Bosun};
use support::{Client, STEP};

/// One message as our `mosquitto_sub` prints it.
#[derive(Debug, Clone)]
struct Message {
    topic: String,
    content_type: String,
    payload: Vec<u8>,
}

impl Message {
    fn parse(line: &str) -> Option<Message> {
        let mut parts = line.strip_prefix("MSG|")?.splitn(3, '|');
        let topic = parts.next()?.to_owned();
        let content_type = parts.next()?.to_owned();
        let payload = hex(parts.next()?)?;
        Some(Message {
            topic,
            content_type,
            payload,
        })
    }

    /// The topic's property bag, decoded by the hub's own parser.
    fn properties(&self) -> Vec<(String, String)> {
        match hub::topics::parse(&self.topic) {
            Some(Ok(hub::topics::DeviceTopic::Telemetry { properties, .. })) => properties,
            other => panic!("not a telemetry topic: {} ({other:?})", self.topic),
        }
    }

    fn property(&self, name: &str) -> Option<String> {
        self.properties()
            .into_iter()
            .find_map(|(k, v)| (k == name).then_some(v))
    }

    /// The feature record's sequence number (panics if the payload does not decode).
    fn seq(&self) -> u32 {
        device::encode::cbor::decode(&self.payload)
            .unwrap_or_else(|e| panic!("feature payload does not decode: {e}"))
            .seq
    }

    fn is_features(&self) -> bool {
        self.property("$.ct").as_deref() == Some("application/vnd.bosun.features+cbor")
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A `mosquitto_sub` on `filter`, with `-d` (for the SUBACK line) and our format.
fn subscriber(addr: SocketAddr, version: &str, filter: &str, extra: &[&str]) -> Client {
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "mosquitto_sub"])
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-V", version, "-d", "-q", "1", "-t", filter])
        .args(["-F", "MSG|%t|%C|%x"])
        .args(extra);
    let client = Client::spawn("mosquitto_sub", cmd);
    client.wait_line("received SUBACK", STEP);
    client
}

fn messages(sub: &Client) -> Vec<Message> {
    sub.stdout_lines()
        .iter()
        .filter_map(|l| Message::parse(l))
        .collect()
}

/// Waits until `sub` has printed messages satisfying `cond`; returns them all.
fn wait_for(
    sub: &Client,
    what: &str,
    limit: Duration,
    cond: impl Fn(&[Message]) -> bool,
) -> Vec<Message> {
    sub.wait_stdout(what, limit, |lines| {
        let parsed: Vec<Message> = lines.iter().filter_map(|l| Message::parse(l)).collect();
        cond(&parsed)
    });
    messages(sub)
}

/// `bosun device run` for `id` against `hub` with a fast clock and its buffer in `dir`.
fn agent(id: &str, hub: SocketAddr, dir: &Path, extra: &[&str]) -> Client {
    let mut cmd = bosun_command();
    cmd.args(["device", "run", "--id", id, "--hub", &hub.to_string()])
        .args(["--interval", "1s", "--speed", "5"])
        .arg("--buffer-dir")
        .arg(dir)
        .args(extra);
    Client::spawn("agent", cmd)
}

/// Polls `GET path` until `cond` holds on its JSON; returns it (panics past [`STEP`]).
fn wait_json(
    hub: &Bosun,
    path: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let held = support::wait_until(STEP, || {
        last = hub.api("GET", path, None, &[]).json();
        cond(&last)
    });
    assert!(held, "GET {path}: condition not met; last answer {last}");
    last
}

/// Record files in the agent's offline buffer.
fn buffered(dir: &Path) -> Vec<u64> {
    let mut keys: Vec<u64> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".rec")?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

#[test]
fn agent_features_reach_subscribers_and_decode() {
    let hub = Bosun::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = subscriber(
        hub.mqtt_addr(),
        "mqttv5",
        "devices/+/messages/events/#",
        &[],
    );
    let tls_dir = hub.data_dir().join("tls/ca.pem");
    let ca = tls_dir.to_str().expect("utf-8 path");
    // Over TLS, trusting the hub's CA; the subscriber listens on plain MQTT.
    let agent = agent(
        "agent-tls",
        hub.mqtts_addr(),
        dir.path(),
        &["--ca", ca, "--firmware", "9.9.9"],
    );
    let got = wait_for(&sub, "3 feature messages", Duration::from_secs(20), |m| {
        m.iter().filter(|m| m.is_features()).count() >= 3
    });
    for message in got.iter().filter(|m| m.is_features()) {
        assert!(message
            .topic
            .starts_with("devices/agent-tls/messages/events/"));
        assert_eq!(
            message.content_type, "application/vnd.bosun.features+cbor",
            "MQTT 5 content type"
        );
        let features = device::encode::cbor::decode(&message.payload).expect("CBOR decodes");
        assert_eq!(features.window_len, 4096);
        assert_eq!(features.sample_rate_hz, 12_000.0);
        assert!(
            features.axes.iter().all(Option::is_some),
            "the synthetic motor has 3 axes"
        );
        let x = features.axes[0].expect("axis x");
        assert!(x.rms > 0.0 && x.rms.is_finite());
    }
    // The twin shows what the agent reported.
    let reported = wait_json(&hub, "/api/devices/agent-tls/twin", |twin| {
        twin["properties"]["reported"]["mode"] == "running"
    });
    assert_eq!(
        reported["properties"]["reported"]["firmware"]["version"],
        "9.9.9"
    );
    assert_eq!(reported["properties"]["reported"]["interval_s"], 1.0);
    assert_eq!(reported["properties"]["reported"]["window"], 4096);
    assert_eq!(reported["properties"]["reported"]["buffer"]["evicted"], 0);
    // Desired properties: idle stops features (and is reported), running resumes them.
    let patch = |desired: serde_json::Value| {
        let body = serde_json::json!({ "properties": { "desired": desired } });
        let r = hub.api("PATCH", "/api/devices/agent-tls/twin", Some(&body), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
    };
    patch(serde_json::json!({ "mode": "idle", "window": 2048 }));
    wait_json(&hub, "/api/devices/agent-tls/twin", |t| {
        t["properties"]["reported"]["mode"] == "idle"
            && t["properties"]["reported"]["window"] == 2048
    });
    let before = messages(&sub).len();
    patch(serde_json::json!({ "mode": "running" }));
    // (A message produced before idle may still be on its way: look for the new window.)
    let window = |m: &Message| {
        device::encode::cbor::decode(&m.payload)
            .map(|f| f.window_len)
            .ok()
    };
    wait_for(
        &sub,
        "2048-sample features after idle",
        Duration::from_secs(20),
        |m| {
            m.iter()
                .skip(before)
                .any(|m| m.is_features() && window(m) == Some(2048))
        },
    );
    // SIGTERM: a clean DISCONNECT and exit status 0.
    let mut agent = agent;
    common::send_signal(agent.pid(), "-TERM");
    agent.wait_success(STEP);
    let stderr = agent.dump();
    assert!(stderr.contains("agent stopped"), "{stderr}");
}

#[test]
fn agent_capture_command_yields_announced_chunks() {
    let hub = Bosun::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = subscriber(
        hub.mqtt_addr(),
        "mqttv5",
        "devices/agent-cap/messages/events/#",
        &[],
    );
    let agent = agent("agent-cap", hub.mqtt_addr(), dir.path(), &[]);
    wait_for(&sub, "a feature message", Duration::from_secs(20), |m| {
        m.iter().any(Message::is_features)
    });
    // The hub registers a --dev device asynchronously: wait until its twin has the report.
    wait_json(&hub, "/api/devices/agent-cap/twin", |t| {
        t["properties"]["reported"]["mode"] == "running"
    });
    let body = serde_json::json!({ "payload": r#"{"cmd":"capture","rate_hz":10000,"seconds":2}"# });
    let sent = hub.api("POST", "/api/devices/agent-cap/messages", Some(&body), &[]);
    assert_eq!(sent.status, 202, "{}", sent.body);
    let message_id = sent.json()["messageId"]
        .as_str()
        .expect("messageId")
        .to_owned();
    // 10 kHz × 2 s = 20,000 frames of the synthetic motor's 3 axes = 14 chunks of 1365
    // frames (16 KiB) and one of 890.
    let is_chunk =
        |m: &Message| m.property("$.ct").as_deref() == Some("application/vnd.bosun.capture+f32");
    let got = wait_for(&sub, "15 capture chunks", Duration::from_secs(20), |m| {
        m.iter().filter(|m| is_chunk(m)).count() >= 15
    });
    let chunks: Vec<&Message> = got.iter().filter(|m| is_chunk(m)).collect();
    assert_eq!(chunks.len(), 15, "exactly the announced chunks");
    for (seq, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.content_type, "application/vnd.bosun.capture+f32");
        assert_eq!(chunk.property("capture-id"), Some(message_id.clone()));
        assert_eq!(chunk.property("chunk"), Some(seq.to_string()));
        assert_eq!(chunk.property("chunks").as_deref(), Some("15"));
        assert_eq!(chunk.property("rate-hz").as_deref(), Some("10000"));
        assert_eq!(chunk.property("axes").as_deref(), Some("3"));
        let frames = if seq < 14 { 1365 } else { 20_000 - 14 * 1365 };
        assert_eq!(chunk.payload.len(), 4 * 3 * frames, "chunk {seq}");
        let finite = device::raw::samples_le(&chunk.payload).all(f32::is_finite);
        assert!(finite, "chunk {seq} holds finite samples");
    }
    // Features resume after the capture.
    let after = got.len();
    wait_for(
        &sub,
        "features after the capture",
        Duration::from_secs(20),
        |m| m.iter().skip(after).any(Message::is_features),
    );
    // An abrupt loss (kill -9) publishes the Last Will.
    let mut agent = agent;
    agent.kill9();
    let is_will = |m: &Message| m.content_type == "application/json";
    let got = wait_for(&sub, "the Last Will", Duration::from_secs(20), |m| {
        m.iter().any(is_will)
    });
    let will = got.iter().find(|m| is_will(m)).expect("will");
    let will: serde_json::Value = serde_json::from_slice(&will.payload).expect("JSON will");
    assert_eq!(will["event"], "offline");
    assert_eq!(will["deviceId"], "agent-cap");
}

#[test]
fn agent_buffers_offline_and_delivers_everything_in_order() {
    let mut hub = Bosun::start(&[]);
    let addr = hub.mqtt_addr();
    let dir = tempfile::tempdir().expect("tempdir");
    let filter = "devices/agent-off/messages/events/#";
    let session = ["-c", "-i", "agent-off-watch"];
    let mut before = subscriber(addr, "mqttv311", filter, &session);
    let agent = agent("agent-off", addr, dir.path(), &[]);
    wait_for(
        &before,
        "3 feature messages",
        Duration::from_secs(20),
        |m| m.iter().filter(|m| m.is_features()).count() >= 3,
    );

    hub.kill9();
    before.kill9();
    // The agent keeps producing while the hub is gone: at least 10 windows on disk.
    let produced =
        support::wait_until(Duration::from_secs(30), || buffered(dir.path()).len() >= 10);
    assert!(
        produced,
        "the agent did not buffer 10 messages offline\n{}",
        agent.dump()
    );
    let hub = hub.restart_same();
    let down = buffered(dir.path());
    let newest_while_down = *down.last().expect("buffered keys");

    let after = subscriber(addr, "mqttv311", filter, &session);
    let wanted = u32::try_from(newest_while_down).expect("small key");
    let got = wait_for(
        &after,
        "everything buffered while down",
        Duration::from_secs(30),
        |m| {
            m.iter()
                .filter(|m| m.is_features())
                .any(|m| m.seq() >= wanted)
        },
    );

    // Before the kill, then after the restart: every sequence number from 0 to the
    // newest buffered one, in order; QoS 1 may repeat one that was in flight at the kill.
    let all: Vec<u32> = messages(&before)
        .iter()
        .chain(got.iter())
        .filter(|m| m.is_features())
        .map(Message::seq)
        .collect();
    let mut firsts = Vec::new();
    for seq in &all {
        if !firsts.contains(seq) {
            firsts.push(*seq);
        }
    }
    eprintln!(
        "{} buffered while down (newest key {wanted}); received {all:?}",
        down.len()
    );
    let expected: Vec<u32> = (0..=wanted).collect();
    assert_eq!(
        firsts.get(..expected.len()),
        Some(&expected[..]),
        "lost or reordered messages; received {all:?}\n{}",
        agent.dump()
    );
    drop(hub);
}

/// `bosun ca ARGS --data-dir DATA`, which must succeed.
fn ca(hub: &Bosun, args: &[&str]) {
    let data = hub.data_dir().to_str().expect("utf-8 path").to_owned();
    let mut all = vec!["ca"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", &data]);
    let out = common::run(&all, &[]);
    assert!(
        out.status.success(),
        "bosun {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every way to authenticate, each shown by a feature message from that device: a SAS
/// device key, provisioning with a group key, a client certificate, provisioning with
/// a client certificate; a wrong key is refused.
#[test]
fn agent_identities_sas_dps_and_x509() {
    let hub = Bosun::start(&[]);
    let mqtts = hub.mqtts_addr();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_pem = hub.data_dir().join("tls/ca.pem");
    let ca_pem = ca_pem.to_str().expect("utf-8 path");
    let sub = subscriber(
        hub.mqtt_addr(),
        "mqttv5",
        "devices/+/messages/events/#",
        &[],
    );
    let from = |id: &str| {
        let prefix = format!("devices/{id}/messages/events/");
        wait_for(
            &sub,
            &format!("features from {id}"),
            Duration::from_secs(20),
            |m| {
                m.iter()
                    .any(|m| m.topic.starts_with(&prefix) && m.is_features())
            },
        );
    };
    let run = |id: &str, extra: &[&str]| {
        agent(
            id,
            mqtts,
            &dir.path().join(id),
            &[&["--ca", ca_pem], extra].concat(),
        )
    };

    // A SAS device with its own key.
    let created = hub.api(
        "POST",
        "/api/devices",
        Some(&serde_json::json!({"deviceId": "sas-1", "authKind": "sas"})),
        &[],
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let keys = hub.api("GET", "/api/devices/sas-1/keys", None, &[]).json();
    let key = keys["primaryKey"].as_str().expect("primaryKey").to_owned();
    let _sas = run("sas-1", &["--key", &key]);
    from("sas-1");

    // A wrong key is refused (0x86) and retried, never admitted.
    let wrong = run(
        "sas-1",
        &["--key", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="],
    );
    let refused = support::wait_until(STEP, || wrong.dump().contains("reason code 0x86"));
    assert!(refused, "{}", wrong.dump());
    drop(wrong);

    // Provisioning with a group key: the hub creates the device with the derived key.
    let group_key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let body = serde_json::json!({"key": group_key, "initialTwin": {"desired": {"interval_s": 2}}});
    let put = hub.api("PUT", "/api/enrollments/groups/line-1", Some(&body), &[]);
    assert!(put.status == 200 || put.status == 201, "{}", put.body);
    let _dps = run(
        "dps-1",
        &["--group-key", group_key, "--id-scope", "0ne00000001"],
    );
    from("dps-1");
    let device = hub.api("GET", "/api/devices/dps-1", None, &[]).json();
    assert_eq!(device["authKind"], "sas", "{device}");
    // The enrollment's initial desired interval reached the agent, which reports it.
    wait_json(&hub, "/api/devices/dps-1/twin", |t| {
        t["properties"]["reported"]["interval_s"] == 2.0
    });

    // Client certificates from the built-in device CA.
    ca(&hub, &["init"]);
    let loaded = support::wait_until(Duration::from_secs(10), || {
        hub.stderr().contains("TLS certificate loaded")
    });
    assert!(loaded, "device CA not picked up\n{}", hub.stderr());
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let certs_arg = certs.to_str().expect("utf-8 path");
    for id in ["x509-1", "x509-dps"] {
        ca(&hub, &["issue-device", "--id", id, "--out-dir", certs_arg]);
    }
    let cert_args = |id: &str| {
        let path = |ext: &str| {
            certs
                .join(format!("{id}.{ext}"))
                .to_str()
                .expect("utf-8 path")
                .to_owned()
        };
        vec![
            "--cert".to_owned(),
            path("pem"),
            "--cert-key".to_owned(),
            path("key"),
        ]
    };
    let created = hub.api(
        "POST",
        "/api/devices",
        Some(&serde_json::json!({"deviceId": "x509-1", "authKind": "x509"})),
        &[],
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let args = cert_args("x509-1");
    let _x509 = run(
        "x509-1",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    from("x509-1");

    // Provisioning with the certificate: an X.509 enrollment group by CA.
    let put = hub.api(
        "PUT",
        "/api/enrollments/groups/x509s",
        Some(&serde_json::json!({"x509": {"ca": "bosun"}})),
        &[],
    );
    assert!(put.status == 200 || put.status == 201, "{}", put.body);
    let mut args = cert_args("x509-dps");
    args.extend(["--id-scope".to_owned(), "0ne00000001".to_owned()]);
    let _x509_dps = run(
        "x509-dps",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    from("x509-dps");
    let device = hub.api("GET", "/api/devices/x509-dps", None, &[]).json();
    assert_eq!(device["authKind"], "x509", "{device}");
}

/// Unusable flags fail at once with a message, before any connection.
#[test]
fn agent_refuses_bad_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = dir.path().to_str().expect("utf-8 path");
    let base = [
        "device",
        "run",
        "--id",
        "d-1",
        "--hub",
        "127.0.0.1:1",
        "--buffer-dir",
        buffer,
    ];
    let cases: [(&[&str], &str); 4] = [
        (&["--cert", "c.pem", "--cert-key", "c.key"], "needs TLS"),
        (&["--source", "microphone"], "unknown source"),
        (&["--interval", "soon"], "bad duration"),
        (&["--speed", "0"], "speed"),
    ];
    for (extra, message) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = common::run(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// The whole loop with the hub's data pipeline: a synthetic motor whose outer race
/// starts to fail after the anomaly model's warm-up → the pipeline scores it anomalous,
/// patches desired `mode` to `alarm` and sends the `capture` command → the agent
/// reports `alarm` and streams 10 kHz × 30 s → the pipeline stores the whole capture.
/// `--speed 10`: a window every 100 ms, the fault at 40 device-seconds, the capture in 3 s.
#[test]
fn agent_closes_the_loop_with_the_pipeline() {
    let hub = Bosun::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = bosun_command();
    cmd.args([
        "device",
        "run",
        "--id",
        "loop-1",
        "--hub",
        &hub.mqtt_addr().to_string(),
    ])
    .args(["--interval", "1s", "--speed", "10"])
    .args(["--source", "synthetic:fault=bpfo,onset=40s,growth=20s"])
    .arg("--buffer-dir")
    .arg(dir.path());
    let agent = Client::spawn("agent", cmd);
    let limit = Duration::from_secs(25);
    let mut last = serde_json::Value::Null;
    let stored = support::wait_until(limit, || {
        last = hub
            .api("GET", "/api/captures?deviceId=loop-1", None, &[])
            .json();
        last["items"].as_array().is_some_and(|items| {
            items
                .iter()
                // 300,000 frames of the synthetic motor's 3 axes, 1365 frames a chunk.
                .any(|c| c["samples"] == 300_000 && c["chunks"] == 220 && c["axes"] == 3)
        })
    });
    assert!(
        stored,
        "no complete capture: {last}\n{}\n{}",
        agent.dump(),
        hub.stderr()
    );
    let capture = last["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["samples"] == 300_000))
        .expect("capture");
    assert_eq!(capture["missing"], serde_json::json!([]), "{capture}");
    assert_eq!(capture["rateHz"], 10_000.0, "{capture}");
    let twin = wait_json(&hub, "/api/devices/loop-1/twin", |t| {
        t["properties"]["reported"]["mode"] == "alarm"
    });
    assert_eq!(twin["properties"]["desired"]["mode"], "alarm");
}
