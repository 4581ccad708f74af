//! The data pipeline end to end, with real clients and a real process: JSON, CBOR and
//! Protobuf feature messages published by `mosquitto_pub` become queryable series; an
//! injected anomaly produces the anomaly event, the `capture` C2D command on the
//! device's topic and desired `mode` = `alarm`; the device's raw capture (one chunk
//! missing) is stored with the gap reported; bad input is dead-lettered and counted;
//! a point whose PUBACK the publisher saw survives `kill -9` right after.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use common::Bosun;
use serde_json::{json, Value};
use support::{mosquitto_pub, mosquitto_sub, wait_until, Version, STEP};

/// A device's telemetry topic with a property bag.
fn events(device: &str, bag: &str) -> String {
    format!("devices/{device}/messages/events/{bag}")
}

fn create(broker: &Bosun, id: &str, tags: Value) {
    let r = broker.api(
        "POST",
        "/api/devices",
        Some(&json!({ "deviceId": id, "tags": tags })),
        &[],
    );
    assert_eq!(r.status, 201, "create {id}: {}", r.body);
}

/// Publishes `lines` (one message each) as `device`, QoS 1, MQTT 5.
fn publish_lines(broker: &Bosun, device: &str, bag: &str, lines: &[String]) {
    let topic = events(device, bag);
    let stdin = lines.join("\n") + "\n";
    let args = ["-i", device, "-q", "1", "-t", topic.as_str(), "-l"];
    mosquitto_pub(broker.mqtt_addr(), Version::V5, &args, Some(&stdin));
}

/// Publishes the bytes of `payload` (written to a file) as `device`.
fn publish_bytes(broker: &Bosun, device: &str, bag: &str, payload: &[u8]) {
    let file = broker
        .data_dir()
        .join(format!("payload-{device}-{}.bin", payload.len()));
    std::fs::write(&file, payload).unwrap();
    let topic = events(device, bag);
    let args = [
        "-i",
        device,
        "-q",
        "1",
        "-t",
        topic.as_str(),
        "-f",
        file.to_str().unwrap(),
    ];
    mosquitto_pub(broker.mqtt_addr(), Version::V5, &args, None);
}

/// `GET /api/series` for one device and field over all time, raw points (no step).
fn series(broker: &Bosun, device: &str, field: &str, agg: &str) -> Vec<Value> {
    let path = format!("/api/series?deviceId={device}&field={field}&from=-10m&agg={agg}&step=1ms");
    let r = broker.api("GET", &path, None, &[]);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()["series"][0]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_points(broker: &Bosun, device: &str, field: &str, n: usize) -> Vec<Value> {
    let mut points = Vec::new();
    let ok = wait_until(STEP, || {
        points = series(broker, device, field, "last");
        points.len() >= n
    });
    assert!(
        ok,
        "{device}/{field}: {} of {n} points\n{}",
        points.len(),
        broker.stderr()
    );
    points
}

fn features(rms: f32) -> device::Features {
    let mut axis = device::AxisFeatures {
        rms,
        kurtosis: 3.0,
        crest: 3.5,
        ..Default::default()
    };
    axis.envelope.bpfi = [0.01, 0.005, 0.002];
    device::Features {
        seq: 7,
        sample_rate_hz: 12_000.0,
        window_len: 4096,
        shaft_hz: 29.95,
        axes: [Some(axis), None, None],
    }
}

#[test]
fn acknowledged_json_cbor_and_protobuf_messages_are_series_even_after_kill9() {
    let mut broker = Bosun::start(&[]);
    create(&broker, "m-json", json!({ "line": "A" }));
    create(&broker, "m-cbor", json!({}));
    // Device timestamps, one second apart: five points, not one overwritten four times.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let lines: Vec<String> = (0..5)
        .map(|i| {
            json!({ "temp": 20 + i, "ok": true, "ts": now_ms - 5_000 + i * 1_000 }).to_string()
        })
        .collect();
    publish_lines(&broker, "m-json", "$.ct=application%2Fjson", &lines);
    publish_bytes(
        &broker,
        "m-cbor",
        "$.ct=application%2Fvnd.bosun.features%2Bcbor",
        &device::encode::cbor::to_vec(&features(0.5)),
    );
    publish_bytes(
        &broker,
        "m-cbor",
        "$.ct=application%2Fvnd.bosun.features%2Bprotobuf",
        &device::encode::protobuf::to_vec(&features(0.75)),
    );

    // mosquitto_pub has seen every PUBACK: the points must already be on disk.
    broker.kill9();
    let mut broker = broker.restart_same();
    let temps = series(&broker, "m-json", "temp", "last");
    let values: Vec<f64> = temps.iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert_eq!(values, [20.0, 21.0, 22.0, 23.0, 24.0], "{temps:?}");
    let rms = series(&broker, "m-cbor", "x.rms", "last");
    assert_eq!(rms.len(), 2, "{rms:?}");
    assert_eq!(
        series(&broker, "m-cbor", "x.envelope.bpfi.0", "last").len(),
        2
    );

    // Grouping by tag and CSV export.
    let r = broker.api(
        "GET",
        "/api/series?field=temp&tag=line:A&from=0&agg=max",
        None,
        &[],
    );
    assert_eq!(r.json()["series"][0]["points"][0][1], 24.0, "{}", r.body);
    let r = broker.api(
        "GET",
        "/api/series?field=temp&deviceId=m-json&from=0&agg=count&format=csv",
        None,
        &[],
    );
    assert!(
        r.body.starts_with("device_id,time_ms,value\nm-json,"),
        "{}",
        r.body
    );
    assert!(r.body.trim_end().ends_with(",5"), "{}", r.body);

    broker.kill9();
    let broker = broker.restart_same();
    assert_eq!(series(&broker, "m-json", "temp", "last").len(), 5);
    assert_eq!(series(&broker, "m-cbor", "x.rms", "last").len(), 2);
}

#[test]
fn an_anomaly_sends_the_capture_command_and_the_capture_is_stored_with_its_gap() {
    let broker = Bosun::launch(&[])
        .env("BOSUN_PIPELINE__CAPTURE_IDLE_SECS", "1")
        .start();
    create(&broker, "motor-17", json!({ "line": "A" }));

    // 40 ordinary messages (the model's warm-up is 30), then a bearing going bad.
    let mut lines: Vec<String> = (0..40)
        .map(|i| {
            let wobble = f64::from(i % 5) * 0.01;
            json!({ "rms": 0.5 + wobble, "kurtosis": 3.0 - wobble, "bpfi": 0.01 + wobble / 10.0 })
                .to_string()
        })
        .collect();
    lines.extend((0..4).map(|_| json!({ "rms": 2.5, "kurtosis": 9.0, "bpfi": 0.4 }).to_string()));
    publish_lines(&broker, "motor-17", "", &lines);

    let mut anomalies = Value::Null;
    let raised = wait_until(STEP, || {
        anomalies = broker
            .api("GET", "/api/anomalies?deviceId=motor-17", None, &[])
            .json();
        anomalies["items"].as_array().is_some_and(|a| !a.is_empty())
    });
    assert!(raised, "no anomaly: {anomalies}\n{}", broker.stderr());

    // The device comes back and finds the command waiting (C2D is durable).
    let mut c2d = mosquitto_sub(
        broker.mqtt_addr(),
        Version::V5,
        &[
            "-i",
            "motor-17",
            "-q",
            "1",
            "-t",
            "devices/motor-17/messages/devicebound/#",
            "-C",
            "1",
            "-W",
            "60",
        ],
    );
    c2d.wait_exit(STEP);
    let command = support::mosquitto_messages(&c2d);
    let body: Value = serde_json::from_str(&command[0].payload).unwrap();
    assert_eq!(
        body,
        json!({ "cmd": "capture", "rate_hz": 10000, "seconds": 30 })
    );

    let event = anomalies["items"][0].clone();
    assert_eq!(event["transition"], "entered", "{anomalies}");
    assert!(event["score"].as_f64().unwrap() >= 6.0, "{event}");
    let top = event["explanation"][0]["feature"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        ["rms", "kurtosis", "bpfi"].contains(&top.as_str()),
        "{event}"
    );
    let twin = broker
        .api("GET", "/api/devices/motor-17/twin", None, &[])
        .json();
    assert_eq!(twin["properties"]["desired"]["mode"], "alarm", "{twin}");
    assert!(!series(&broker, "motor-17", "anomaly.score", "max").is_empty());

    // The capture: chunks 0, 1 and 3 of 4 (chunk 2 lost), 3 samples each.
    for seq in [0u32, 1, 3] {
        let samples: Vec<u8> = (0..3)
            .flat_map(|i| (seq as f32 + i as f32 / 10.0).to_le_bytes())
            .collect();
        let bag = format!("$.ct=application%2Fvnd.bosun.capture%2Bf32&capture-id=cap1&chunk={seq}&chunks=4&rate-hz=10000");
        publish_bytes(&broker, "motor-17", &bag, &samples);
    }
    let mut captures = Vec::new();
    let stored = wait_until(STEP, || {
        captures = broker
            .api("GET", "/api/captures?deviceId=motor-17", None, &[])
            .json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        !captures.is_empty()
    });
    assert!(stored, "no capture stored\n{}", broker.stderr());
    let capture = &captures[0];
    assert_eq!(capture["missing"], json!([[2, 3]]), "{capture}");
    assert_eq!(capture["samples"], 9);
    assert_eq!(capture["anomalyId"], event["id"], "{capture}");
    let id = capture["id"].as_str().unwrap();
    let csv = broker
        .api("GET", &format!("/api/captures/{id}?format=csv"), None, &[])
        .body;
    assert!(
        csv.starts_with("# missing chunks 2..3\nindex,time_s,value\n0,0,0\n"),
        "{csv}"
    );
}

#[test]
fn bad_payloads_are_dead_lettered_counted_and_harmless() {
    let broker = Bosun::start(&[]);
    create(&broker, "m-bad", json!({}));
    publish_lines(
        &broker,
        "m-bad",
        "$.ct=application%2Fjson",
        &["{\"temp\": 1,".into()],
    );
    publish_bytes(
        &broker,
        "m-bad",
        "$.ct=application%2Fcbor",
        &[0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
    );
    publish_bytes(
        &broker,
        "m-bad",
        "$.ct=application%2Fvnd.bosun.features%2Bcbor",
        &[0x85, 0x01],
    );
    publish_lines(&broker, "m-bad", "", &[json!({ "temp": 5 }).to_string()]);

    let mut reasons: Vec<String> = Vec::new();
    let ok = wait_until(STEP, || {
        let r = broker.api("GET", "/api/deadletters", None, &[]);
        reasons = r.json()["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["reason"].as_str().unwrap_or_default().to_owned())
            .collect();
        reasons.len() >= 3
    });
    assert!(ok, "dead letters: {reasons:?}\n{}", broker.stderr());
    assert!(reasons.iter().all(|r| !r.is_empty()), "{reasons:?}");
    // The good message after the bad ones is stored.
    wait_points(&broker, "m-bad", "temp", 1);
    let metrics = broker.http_get("/metrics").body;
    assert!(
        metrics.contains("bosun_pipeline_dead_letters_total{reason="),
        "{metrics}"
    );
}

/// Appends a length-delimited field (`key` = field number << 3 | 2).
fn nested(field: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(field << 3 | 2);
    let mut len = body.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(body);
}

/// A `FileDescriptorSet` for `package acme; message Reading { double temp = 1; double
/// rms = 2; }`, encoded by hand (no protoc here).
fn reading_descriptor_set() -> Vec<u8> {
    let field = |name: &str, number: u8| {
        let mut f = Vec::new();
        nested(1, name.as_bytes(), &mut f);
        f.extend_from_slice(&[3 << 3, number, 4 << 3, 1, 5 << 3, 1]); // number, optional, double
        f
    };
    let mut message = Vec::new();
    nested(1, b"Reading", &mut message);
    nested(2, &field("temp", 1), &mut message);
    nested(2, &field("rms", 2), &mut message);
    let mut file = Vec::new();
    nested(1, b"acme/reading.proto", &mut file);
    nested(2, b"acme", &mut file);
    nested(4, &message, &mut file);
    nested(12, b"proto3", &mut file);
    let mut set = Vec::new();
    nested(1, &file, &mut set);
    set
}

#[test]
fn protobuf_schemas_registered_at_run_time_decode_without_a_content_type() {
    let mut broker = Bosun::start(&[]);
    create(&broker, "m-proto", json!({}));
    let descriptor = hub::base64::encode(&reading_descriptor_set());
    let r = broker.api(
        "POST",
        "/api/schemas",
        Some(&json!({ "descriptorSet": descriptor })),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["messages"], json!(["acme.Reading"]));
    let ct = json!({ "contentType": "application/x-protobuf; messageType=acme.Reading" });
    let r = broker.api("PUT", "/api/schemas/devices/m-proto", Some(&ct), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let unknown = json!({ "contentType": "application/x-protobuf; messageType=acme.Nope" });
    let r = broker.api("PUT", "/api/schemas/devices/m-proto", Some(&unknown), &[]);
    assert_eq!(r.status, 400, "{}", r.body);

    // The schema survives a restart; the message names no content type at all.
    broker.kill9();
    let broker = broker.restart_same();
    let mut reading = vec![1 << 3 | 1];
    reading.extend_from_slice(&21.5f64.to_le_bytes());
    reading.push(2 << 3 | 1);
    reading.extend_from_slice(&0.25f64.to_le_bytes());
    publish_bytes(&broker, "m-proto", "", &reading);
    let temp = wait_points(&broker, "m-proto", "temp", 1);
    assert_eq!(temp[0][1], 21.5);
    assert_eq!(wait_points(&broker, "m-proto", "rms", 1)[0][1], 0.25);
}

/// A one-shot HTTP server on a free port: answers `status` to each request and hands
/// the request bodies over a channel.
fn webhook_server(status: &'static str) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the body announced by Content-Length is complete.
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length || n == 0 {
                        let _ = tx.send(text[end + 4..].to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ = stream
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
        }
    });
    (url, rx)
}

#[test]
fn operator_rules_republish_and_call_webhooks_and_bad_rules_name_the_column() {
    let broker = Bosun::start(&[]);
    create(&broker, "m-rules", json!({ "line": "A" }));
    let (url, bodies) = webhook_server("204 No Content");
    let rules = json!({ "rules": [{
        "name": "hot",
        "sql": "SELECT rms, tags.line FROM telemetry WHERE tags.line = 'A' AND rms > 1",
        "actions": [
            { "type": "republish", "topic": "alerts/{deviceId}/{rule}", "qos": 1 },
            { "type": "webhook", "url": url },
        ],
    }]});
    let r = broker.api("PUT", "/api/rules", Some(&rules), &[]);
    assert_eq!(r.status, 200, "{}", r.body);

    let bad = json!({ "rules": [{ "name": "broken", "sql": "SELECT rms FROM telemetry WHERE rms >", "actions": [] }] });
    let r = broker.api("PUT", "/api/rules", Some(&bad), &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("broken") && r.body.contains("column"),
        "{}",
        r.body
    );

    let mut alerts = mosquitto_sub(
        broker.mqtt_addr(),
        Version::V5,
        &["-t", "alerts/#", "-C", "1", "-W", "30"],
    );
    support::wait_subscribed(&alerts);
    let lines = [
        json!({ "rms": 0.5 }).to_string(),
        json!({ "rms": 1.5 }).to_string(),
    ];
    publish_lines(&broker, "m-rules", "", &lines);

    alerts.wait_exit(STEP);
    let got = support::mosquitto_messages(&alerts);
    assert_eq!(got[0].topic, "alerts/m-rules/hot");
    let body: Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(
        body,
        json!({ "rule": "hot", "deviceId": "m-rules", "data": { "rms": 1.5, "tags.line": "A" } })
    );
    let hooked: Value = serde_json::from_str(&bodies.recv_timeout(STEP).unwrap()).unwrap();
    assert_eq!(hooked, body);

    let mut counters = Value::Null;
    let counted = wait_until(STEP, || {
        let rules = broker.api("GET", "/api/rules", None, &[]).json();
        counters = rules["items"]
            .as_array()
            .and_then(|items| items.iter().find(|r| r["name"] == "hot"))
            .map(|r| r["counters"].clone())
            .unwrap_or_default();
        counters["actionsOk"] == 2
    });
    assert!(counted, "{counters}");
    assert_eq!(counters["matched"], 1);
    let metrics = broker.http_get("/metrics").body;
    assert!(metrics.contains("rule=\"hot\""), "{metrics}");
}

/// With `anomaly_group_tag`, machines with the same tag value share one model: two of
/// them warm it up, a third is scored from its first message, and its fault raises
/// only its own alarm; an untagged device still warms up a model of its own.
#[test]
fn machines_of_one_group_share_a_model_and_keep_their_own_alarms() {
    let broker = Bosun::launch(&[])
        .env("BOSUN_PIPELINE__ANOMALY_GROUP_TAG", "model")
        .start();
    for id in ["wx-1", "wx-2", "wx-3"] {
        create(&broker, id, json!({ "model": "wx-200" }));
    }
    create(&broker, "solo", json!({}));
    let healthy = |i: u32| {
        let wobble = f64::from(i % 5) * 0.01;
        json!({ "rms": 0.5 + wobble, "kurtosis": 3.0 - wobble }).to_string()
    };
    // The model's warm-up (30 messages) from two machines of the group.
    for id in ["wx-1", "wx-2"] {
        let lines: Vec<String> = (0..15).map(healthy).collect();
        publish_lines(&broker, id, "", &lines);
    }
    // The third machine is scored at once; the untagged device is not (warming up).
    publish_lines(&broker, "wx-3", "", &[healthy(2)]);
    publish_lines(&broker, "solo", "", &[healthy(2)]);
    let scored = wait_until(STEP, || {
        !series(&broker, "wx-3", "anomaly.score", "last").is_empty()
    });
    assert!(
        scored,
        "wx-3 not scored on its first message\n{}",
        broker.stderr()
    );
    assert!(series(&broker, "solo", "anomaly.score", "last").is_empty());

    let faulty: Vec<String> = (0..4)
        .map(|_| json!({ "rms": 2.5, "kurtosis": 9.0 }).to_string())
        .collect();
    publish_lines(&broker, "wx-3", "", &faulty);
    let mut events = Value::Null;
    let raised = wait_until(STEP, || {
        events = broker.api("GET", "/api/anomalies", None, &[]).json();
        events["items"].as_array().is_some_and(|a| !a.is_empty())
    });
    assert!(raised, "no anomaly: {events}\n{}", broker.stderr());
    let devices: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["deviceId"].as_str())
        .collect();
    assert_eq!(devices, ["wx-3"], "{events}");
}
