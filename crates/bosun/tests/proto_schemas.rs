//! Protobuf schemas registered as `.proto` source at run time, end to end: the CLI
//! (`bosun schema add`) sends two files (one importing the other) to a real hub, a
//! `mosquitto_pub` device publishes a message of the new type (MQTT 5 content type),
//! and its numbers are queryable series; after a restart the schema is still there.
//! A `.proto` with an error is refused with 400 and the line and column.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::path::Path;

use common::{cli, Bosun};
use serde_json::{json, Value};
use support::{mosquitto_pub, wait_until, Version, STEP};

const UNITS: &str = r#"syntax = "proto3";
package acme;
enum Mode { MODE_UNKNOWN = 0; MODE_RUN = 1; }
"#;

const READING: &str = r#"// A reading of the new pump model.
syntax = "proto3";
package acme;
import "acme/units.proto";

message Reading {
  double temp = 1;
  Axis axis = 2;
  Mode mode = 3;
  map<string, double> extra = 4;
  message Axis { float rms = 1; }
  reserved 5 to 9;
}
"#;

const READING_TYPE: &str = "application/x-protobuf; messageType=acme.Reading";

/// `Reading { temp, axis { rms }, mode: MODE_RUN, extra { "k": k } }`, encoded by hand.
fn encode_reading(temp: f64, rms: f32, k: f64) -> Vec<u8> {
    let mut m = vec![0x09];
    m.extend_from_slice(&temp.to_le_bytes());
    m.extend_from_slice(&[0x12, 5, 0x0d]);
    m.extend_from_slice(&rms.to_le_bytes());
    m.extend_from_slice(&[0x18, 1]);
    m.extend_from_slice(&[0x22, 12, 0x0a, 1, b'k', 0x11]);
    m.extend_from_slice(&k.to_le_bytes());
    m
}

/// Publishes `payload` as `device`, QoS 1, MQTT 5, with `content_type` if given.
fn publish(broker: &Bosun, device: &str, payload: &[u8], content_type: Option<&str>) {
    let file = broker
        .data_dir()
        .join(format!("payload-{}.bin", payload.len()));
    std::fs::write(&file, payload).unwrap();
    let topic = format!("devices/{device}/messages/events/");
    let mut args = vec!["-i", device, "-q", "1", "-t", &topic, "-f"];
    args.push(file.to_str().unwrap());
    if let Some(ct) = content_type {
        args.extend(["-D", "publish", "content-type", ct]);
    }
    mosquitto_pub(broker.mqtt_addr(), Version::V5, &args, None);
}

/// Waits until `device`'s `field` has `n` raw points; returns their values.
fn wait_points(broker: &Bosun, device: &str, field: &str, n: usize) -> Vec<f64> {
    let path = format!("/api/series?deviceId={device}&field={field}&from=-10m&agg=last&step=1ms");
    let mut values = Vec::new();
    let ok = wait_until(STEP, || {
        let r = broker.api("GET", &path, None, &[]);
        let points = r.json()["series"][0]["points"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        values = points.iter().filter_map(|p| p[1].as_f64()).collect();
        values.len() >= n
    });
    assert!(
        ok,
        "{device}/{field}: {values:?}, wanted {n} points\n{}",
        broker.stderr()
    );
    values
}

fn write_sources(dir: &Path) {
    std::fs::create_dir_all(dir.join("acme")).unwrap();
    std::fs::write(dir.join("acme/units.proto"), UNITS).unwrap();
    std::fs::write(dir.join("acme/reading.proto"), READING).unwrap();
}

#[test]
fn a_proto_registered_through_the_cli_decodes_published_messages_and_survives_restart() {
    let mut broker = Bosun::start(&[]);
    let r = broker.api(
        "POST",
        "/api/devices",
        Some(&json!({ "deviceId": "m-proto" })),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);

    let root = broker.data_dir().join("proto-src");
    write_sources(&root);
    let reading = root.join("acme/reading.proto");
    let units = root.join("acme/units.proto");
    let (reading, units, root) = (
        reading.to_str().unwrap(),
        units.to_str().unwrap(),
        root.to_str().unwrap(),
    );
    let out = cli(&broker, &["schema", "add", reading, units, "--root", root]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("acme.Reading\n"), "{stdout}");
    assert!(stdout.contains("acme.Reading.Axis\n"), "{stdout}");

    publish(
        &broker,
        "m-proto",
        &encode_reading(21.5, 0.25, 2.0),
        Some(READING_TYPE),
    );
    assert_eq!(wait_points(&broker, "m-proto", "temp", 1), [21.5]);
    assert_eq!(wait_points(&broker, "m-proto", "axis.rms", 1), [0.25]);
    assert_eq!(wait_points(&broker, "m-proto", "extra.k", 1), [2.0]);

    // The sources are kept beside the compiled set; after a kill -9 the type still
    // decodes, now as the device's assigned type (no content type on the message).
    let schemas = broker.data_dir().join("pipeline/schemas");
    let kept: Vec<String> = std::fs::read_dir(&schemas)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(kept.iter().any(|n| n.ends_with(".proto.json")), "{kept:?}");
    broker.kill9();
    let broker = broker.restart_same();
    let out = cli(&broker, &["schema", "assign", "m-proto", READING_TYPE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    publish(&broker, "m-proto", &encode_reading(22.5, 0.5, 3.0), None);
    let temps = wait_points(&broker, "m-proto", "temp", 2);
    assert!(temps.contains(&22.5), "{temps:?}");
}

#[test]
fn a_proto_with_an_error_is_refused_with_its_line_and_column() {
    let broker = Bosun::start(&[]);
    let bad = "syntax = \"proto3\";\nmessage M {\n  Featurs f = 1;\n}\n";
    let body = json!({ "proto": { "bad.proto": bad } });
    let r = broker.api("POST", "/api/schemas", Some(&body), &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    let problem: Value = r.json();
    assert_eq!(
        problem["detail"],
        "bad.proto: line 3:3: unknown type `Featurs`"
    );
    assert_eq!(
        (problem["line"].as_u64(), problem["column"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(problem["file"], "bad.proto");

    // Both forms at once, or neither, is a usage error.
    let both = json!({ "proto": { "a.proto": "" }, "descriptorSet": "" });
    assert_eq!(
        broker.api("POST", "/api/schemas", Some(&both), &[]).status,
        400
    );
    assert_eq!(
        broker
            .api("POST", "/api/schemas", Some(&json!({})), &[])
            .status,
        400
    );

    // The CLI exits 1 with the position on stderr.
    let file = broker.data_dir().join("bad.proto");
    std::fs::write(&file, bad).unwrap();
    let out = cli(&broker, &["schema", "add", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.proto: line 3:3: unknown type `Featurs`"),
        "{stderr}"
    );
}
