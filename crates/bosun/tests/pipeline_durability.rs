//! Nothing the hub acknowledged is lost, with a real process killed with `kill -9`:
//! a burst far larger than a (deliberately tiny and slow) pipeline queue is held back by
//! withholding PUBACKs rather than skipped, and every message is a point after the
//! restart; chunks of a 3-axis capture acknowledged before the kill complete the capture
//! when the rest arrive after it, and a chunk that never comes is still reported missing;
//! an `https://` webhook verifies the server against the configured CA file, and one
//! whose certificate does not verify is retried and then dead-lettered with the reason.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use common::Bosun;
use serde_json::{json, Value};
use support::{mosquitto_pub, wait_until, Version, STEP};

fn create(broker: &Bosun, id: &str) {
    let body = json!({ "deviceId": id });
    let r = broker.api("POST", "/api/devices", Some(&body), &[]);
    assert_eq!(r.status, 201, "create {id}: {}", r.body);
}

fn topic(device: &str, bag: &str) -> String {
    format!("devices/{device}/messages/events/{bag}")
}

/// Publishes `payload` as `device`, QoS 1, MQTT 5; returns once it is acknowledged.
fn publish_file(broker: &Bosun, device: &str, bag: &str, payload: &[u8], name: &str) {
    let file = broker.data_dir().join(format!("payload-{name}.bin"));
    std::fs::write(&file, payload).unwrap();
    let topic = topic(device, bag);
    let file = file.to_str().unwrap();
    let args = ["-i", device, "-q", "1", "-t", topic.as_str(), "-f", file];
    mosquitto_pub(broker.mqtt_addr(), Version::V5, &args, None);
}

/// A counter's value in `/metrics`.
fn counter(broker: &Bosun, name: &str) -> f64 {
    let text = broker.http_get("/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[test]
fn a_slow_pipeline_holds_pubacks_and_every_acknowledged_message_survives_kill9() {
    let mut broker = Bosun::launch(&[])
        .env("BOSUN_PIPELINE_TEST_HANDOFF", "4")
        .env("BOSUN_PIPELINE_TEST_DELAY_MS", "5")
        .start();
    create(&broker, "slow-1");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let n = 300;
    let lines: Vec<String> = (0..n)
        .map(|i| json!({ "n": i, "ts": now_ms - 400_000 + i * 1_000 }).to_string())
        .collect();
    let topic = topic("slow-1", "$.ct=application%2Fjson");
    let stdin = lines.join("\n") + "\n";
    let args = ["-i", "slow-1", "-q", "1", "-t", topic.as_str(), "-l"];
    // Returns once every PUBACK arrived: from here on each message must be on disk.
    mosquitto_pub(broker.mqtt_addr(), Version::V5, &args, Some(&stdin));
    let waited = counter(&broker, "bosun_pipeline_backpressure_total");
    assert!(waited > 0.0, "the burst never filled the 4-message queue");
    assert_eq!(counter(&broker, "bosun_pipeline_lagged_total"), 0.0);
    broker.kill9();

    let broker = broker.restart_same();
    let path = "/api/series?deviceId=slow-1&field=n&from=-10m&agg=count&step=1ms";
    let r = broker.api("GET", path, None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let points = r.json()["series"][0]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        points.len(),
        n as usize,
        "acknowledged messages lost (backpressure waits: {waited})"
    );
}

/// Chunk `seq` of a 3-axis capture with two frames a chunk: frame `f` is
/// `(f, 100 + f, 200 + f)`.
fn frames(seq: u32) -> Vec<u8> {
    (0..2)
        .flat_map(|i| {
            let f = (seq * 2 + i) as f32;
            [f, 100.0 + f, 200.0 + f]
        })
        .flat_map(f32::to_le_bytes)
        .collect()
}

fn capture_bag(id: &str, seq: u32, chunks: u32) -> String {
    format!(
        "$.ct=application%2Fvnd.bosun.capture%2Bf32&capture-id={id}&chunk={seq}\
         &chunks={chunks}&rate-hz=1000&axes=3"
    )
}

fn captures(broker: &Bosun) -> Vec<Value> {
    broker
        .api("GET", "/api/captures?deviceId=cap-1", None, &[])
        .json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn acknowledged_capture_chunks_survive_kill9_and_the_capture_completes_after_it() {
    let mut broker = Bosun::launch(&[])
        .env("BOSUN_PIPELINE__CAPTURE_IDLE_SECS", "2")
        .start();
    create(&broker, "cap-1");
    for seq in 0..3 {
        let bag = capture_bag("whole", seq, 5);
        publish_file(&broker, "cap-1", &bag, &frames(seq), &format!("w{seq}"));
    }
    let bag = capture_bag("gappy", 0, 3);
    publish_file(&broker, "cap-1", &bag, &frames(0), "g0");
    broker.kill9();

    let broker = broker.restart_same();
    assert!(captures(&broker).is_empty(), "nothing was complete yet");
    for seq in 3..5 {
        let bag = capture_bag("whole", seq, 5);
        publish_file(&broker, "cap-1", &bag, &frames(seq), &format!("w{seq}"));
    }
    let bag = capture_bag("gappy", 2, 3);
    publish_file(&broker, "cap-1", &bag, &frames(2), "g2");

    let mut items = Vec::new();
    let both = wait_until(STEP, || {
        items = captures(&broker);
        items.len() == 2
    });
    assert!(both, "{items:?}\n{}", broker.stderr());
    let by_name = |name: &str| {
        items
            .iter()
            .find(|c| c["deviceCaptureId"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no capture {name}: {items:?}"))
    };
    let whole = by_name("whole");
    assert_eq!(whole["missing"], json!([]), "{whole}");
    assert_eq!(
        (whole["samples"].clone(), whole["axes"].clone()),
        (json!(10), json!(3))
    );
    let gappy = by_name("gappy");
    assert_eq!(gappy["missing"], json!([[1, 2]]), "{gappy}");

    let id = whole["id"].as_str().unwrap();
    let body = broker
        .api(
            "GET",
            &format!("/api/captures/{id}?axis=y&format=csv"),
            None,
            &[],
        )
        .body;
    let y: Vec<f32> = body
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next()?.parse().ok())
        .collect();
    assert_eq!(
        y,
        (0..10).map(|f| 100.0 + f as f32).collect::<Vec<_>>(),
        "{body}"
    );
    let csv = broker
        .api("GET", &format!("/api/captures/{id}?format=csv"), None, &[])
        .body;
    assert!(
        csv.starts_with("index,time_s,x,y,z\n0,0,0,100,200\n1,0.001,1,101,201\n"),
        "{csv}"
    );
    let bad = broker.api("GET", &format!("/api/captures/{id}?axis=w"), None, &[]);
    assert_eq!(bad.status, 400);
    let open = broker.data_dir().join("pipeline/captures/open");
    let left = std::fs::read_dir(&open).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "journals of stored captures are removed");
}

/// Sets one rule posting every `hook-1` message to `url`, two attempts 10 ms apart.
fn hook_rule(broker: &Bosun, url: &str) {
    let rules = json!({ "rules": [{
        "name": "tls-hook",
        "sql": "SELECT * FROM telemetry WHERE deviceId = 'hook-1'",
        "actions": [{ "type": "webhook", "url": url, "max_attempts": 2, "backoff_ms": 10 }],
    }]});
    let r = broker.api("PUT", "/api/rules", Some(&rules), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Publishes one message as `hook-1` and waits for its webhook dead letter's detail.
fn webhook_dead_letter(broker: &Bosun, n: u32) -> String {
    let topic = topic("hook-1", "$.ct=application%2Fjson");
    let stdin = format!("{}\n", json!({ "n": n }));
    let args = ["-i", "hook-1", "-q", "1", "-t", topic.as_str(), "-l"];
    mosquitto_pub(broker.mqtt_addr(), Version::V5, &args, Some(&stdin));
    let mut detail = String::new();
    let found = wait_until(STEP, || {
        let letters = broker.api("GET", "/api/deadletters", None, &[]).json();
        detail = letters["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["reason"] == "webhook_failed")
            .map(|l| l["detail"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        !detail.is_empty()
    });
    assert!(found, "no webhook dead letter\n{}", broker.stderr());
    detail
}

#[test]
fn https_webhooks_verify_the_server_and_an_untrusted_one_ends_as_a_dead_letter() {
    // The target is bosun's own HTTPS API, whose certificate its local CA issued.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut broker = Bosun::start(&["--data-dir", data]);
    create(&broker, "hook-1");
    let url = format!("https://{}/hook", broker.https_addr());
    // Without `webhook_ca_file` only the system bundle is trusted: not the local CA.
    hook_rule(&broker, &url);
    let detail = webhook_dead_letter(&broker, 1);
    assert!(
        detail.contains("webhook TLS") && detail.contains("2 attempt"),
        "{detail}"
    );
    let reason = ["invalid peer certificate: UnknownIssuer", "no trust roots"];
    assert!(reason.iter().any(|r| detail.contains(r)), "{detail}");
    broker.terminate();

    let ca = dir.path().join("tls/ca.pem");
    let broker = Bosun::launch(&["--data-dir", data])
        .env("BOSUN_PIPELINE__WEBHOOK_CA_FILE", ca.to_str().unwrap())
        .start();
    let url = format!("https://{}/hook", broker.https_addr());
    hook_rule(&broker, &url);
    let topic = topic("hook-1", "$.ct=application%2Fjson");
    let stdin = format!("{}\n", json!({ "n": 2 }));
    let args = ["-i", "hook-1", "-q", "1", "-t", topic.as_str(), "-l"];
    mosquitto_pub(broker.mqtt_addr(), Version::V5, &args, Some(&stdin));
    // Verified: the POST reached the API, which has no such route (an HTTP status, not
    // a TLS failure, and not retried).
    let mut detail = String::new();
    let answered = wait_until(STEP, || {
        let letters = broker.api("GET", "/api/deadletters", None, &[]).json();
        detail = letters["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["detail"].as_str())
            .find(|d| d.contains("webhook answered"))
            .unwrap_or_default()
            .to_owned();
        !detail.is_empty()
    });
    assert!(answered, "no answered webhook\n{}", broker.stderr());
    assert!(detail.contains("1 attempt"), "{detail}");
}

#[test]
fn a_backlogged_publisher_does_not_hold_up_the_control_plane() {
    let broker = Bosun::launch(&[])
        .env("BOSUN_PIPELINE_TEST_HANDOFF", "1")
        .env("BOSUN_PIPELINE_TEST_DELAY_MS", "150")
        .start();
    create(&broker, "busy-1");
    create(&broker, "calm-1");
    // 40 messages through a 1-message queue at ≥ 150 ms a batch: several seconds of
    // withheld PUBACKs for busy-1.
    let addr = broker.mqtt_addr();
    let script = format!(
        "seq 1 40 | sed 's/.*/{{\"n\":&}}/' | mosquitto_pub -h {} -p {} -V mqttv5 -i busy-1 \
         -q 1 -t 'devices/busy-1/messages/events/$.ct=application%2Fjson' -l",
        addr.ip(),
        addr.port()
    );
    let mut command = std::process::Command::new("sh");
    command.args(["-c", &script]);
    let mut busy = support::Client::spawn("busy publisher", command);
    let waited = wait_until(STEP, || {
        counter(&broker, "bosun_pipeline_backpressure_total") > 0.0
    });
    assert!(waited, "busy-1 never waited\n{}", broker.stderr());

    // Meanwhile the hub serves another device: its connection, its subscription, and a
    // C2D message sent to it through the API.
    let calm = support::mosquitto_sub(
        addr,
        Version::V5,
        &[
            "-i",
            "calm-1",
            "-q",
            "1",
            "-t",
            "devices/calm-1/messages/devicebound/#",
        ],
    );
    support::wait_subscribed(&calm);
    let body = json!({ "payload": "still here" });
    let r = broker.api("POST", "/api/devices/calm-1/messages", Some(&body), &[]);
    assert_eq!(r.status, 202, "{}", r.body);
    calm.wait_line("still here", STEP);
    let taken = counter(&broker, "bosun_pipeline_messages_total");
    assert!(
        taken < 40.0,
        "busy-1 was not backlogged any more ({taken} taken)"
    );

    busy.wait_success(STEP * 2);
    let stored = wait_until(STEP, || {
        counter(&broker, "bosun_pipeline_messages_total") >= 40.0
    });
    assert!(stored, "busy-1's messages did not all arrive");
}
