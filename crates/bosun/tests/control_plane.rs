//! The control plane end to end: a device speaking IoT Hub's MQTT topics with plain
//! paho-mqtt (`tests/clients/iothub_device.py`), driven through the REST API: twins
//! (GET, reported and desired patches, ETags), direct methods, C2D messages with
//! feedback, presence and queries — and nothing lost across `kill -9`.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::time::Duration;

use common::Bosun;
use serde_json::{json, Value};
use support::{python, wait_until, Client, STEP};

/// Registers a device through the API.
fn create(broker: &Bosun, body: Value) {
    let r = broker.api("POST", "/api/devices", Some(&body), &[]);
    assert_eq!(r.status, 201, "create device: {}", r.body);
}

/// Starts the paho device and waits until its subscriptions are acknowledged.
fn device(broker: &Bosun, id: &str, extra: &[&str]) -> Client {
    let mut args = vec!["--device", id, "--timeout", "60"];
    args.extend_from_slice(extra);
    let d = python("iothub_device.py", broker.mqtt_addr(), &args);
    d.wait_event("ready", STEP);
    d
}

fn connection_state(broker: &Bosun, id: &str) -> String {
    let r = broker.api("GET", &format!("/api/devices/{id}"), None, &[]);
    r.json()["connectionState"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn twin_methods_c2d_and_queries_work_with_a_plain_mqtt_device() {
    let broker = Bosun::start(&[]);
    create(
        &broker,
        json!({"deviceId": "pump-1", "tags": {"site": "plant-7"}, "desired": {"mode": "running"}}),
    );
    let report = r#"{"mode":"running","firmware":{"version":"1.2.3"}}"#;
    let dev = device(&broker, "pump-1", &["--report", report]);

    let twin = dev.wait_event("twin", STEP);
    assert_eq!(twin["status"], 200, "{twin}");
    assert_eq!(twin["twin"]["desired"]["mode"], "running");
    assert_eq!(twin["twin"]["desired"]["$version"], 1);
    let reported = dev.wait_event("reported", STEP);
    assert_eq!(reported["status"], 204, "{reported}");
    assert!(reported["version"].as_u64().unwrap() >= 1);
    assert!(wait_until(STEP, || connection_state(&broker, "pump-1") == "connected"));

    // Desired patch from the service reaches the device with its version.
    let patch = json!({"properties": {"desired": {"mode": "alarm"}}});
    let r = broker.api("PATCH", "/api/devices/pump-1/twin", Some(&patch), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("etag").is_some());
    // (The device may first get version 1, its initial desired properties, as a
    // patch: it subscribed before it had acknowledged any.)
    assert!(
        wait_until(STEP, || dev
            .events("desired")
            .iter()
            .any(|d| d["version"] == 2)),
        "{}",
        dev.dump()
    );
    let desired = dev.events("desired");
    let v2 = desired.iter().find(|d| d["version"] == 2).unwrap();
    assert_eq!(
        v2["patch"],
        json!({"mode": "alarm", "$version": 2}),
        "{desired:?}"
    );

    let info = broker.api("GET", "/api/devices/pump-1", None, &[]).json();
    assert_eq!(info["firmwareVersion"], "1.2.3", "{info}");
    let twin = broker
        .api("GET", "/api/devices/pump-1/twin", None, &[])
        .json();
    assert_eq!(twin["properties"]["reported"]["mode"], "running", "{twin}");
    assert!(twin["properties"]["desired"]["$metadata"]["mode"]["$lastUpdated"].is_string());

    // Direct method: the device's answer comes back to the caller.
    let call = json!({"payload": {"rate_hz": 10000}, "responseTimeoutInSeconds": 10});
    let r = broker.api(
        "POST",
        "/api/devices/pump-1/methods/capture",
        Some(&call),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"status": 200, "payload": {"echo": {"rate_hz": 10000}}})
    );

    // C2D with application properties, then its feedback.
    let msg = json!({"payload": "hello", "properties": {"k": "v w&x"}});
    let r = broker.api("POST", "/api/devices/pump-1/messages", Some(&msg), &[]);
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["messageId"].as_str().unwrap().to_owned();
    let c2d = dev.wait_event("c2d", STEP);
    assert_eq!(c2d["payload"], "hello");
    assert_eq!(c2d["properties"]["k"], "v w&x", "{c2d}");
    assert_eq!(c2d["properties"]["$.mid"], id.as_str());
    assert!(wait_until(STEP, || {
        let f = broker
            .api("GET", "/api/feedback?deviceId=pump-1", None, &[])
            .json();
        f["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|i| i["messageId"] == id.as_str() && i["outcome"] == "delivered")
        })
    }));

    let q = json!({"query": "SELECT deviceId, properties.reported.mode FROM devices WHERE tags.site = 'plant-7' AND properties.desired.mode = 'alarm'"});
    let r = broker.api("POST", "/api/query", Some(&q), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.json()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["deviceId"], "pump-1");

    drop(dev);
    assert!(wait_until(STEP, || connection_state(&broker, "pump-1")
        == "disconnected"));
}

#[test]
fn an_offline_device_catches_up_after_a_hub_crash() {
    let mut broker = Bosun::start(&[]);
    create(
        &broker,
        json!({"deviceId": "fan-9", "desired": {"mode": "idle"}}),
    );
    let dev = device(&broker, "fan-9", &["--report", r#"{"temp":40}"#]);
    dev.wait_event("twin", STEP);
    dev.wait_event("reported", STEP);
    drop(dev);
    assert!(wait_until(STEP, || connection_state(&broker, "fan-9")
        == "disconnected"));

    // While it is away: two desired changes (one deletes a key) and a C2D message.
    for patch in [json!({"a": 1}), json!({"b": 2, "mode": null})] {
        let body = json!({"properties": {"desired": patch}});
        let r = broker.api("PATCH", "/api/devices/fan-9/twin", Some(&body), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let msg = json!({"payload": "while-away"});
    let r = broker.api("POST", "/api/devices/fan-9/messages", Some(&msg), &[]);
    assert_eq!(r.status, 202, "{}", r.body);

    broker.kill9();
    let broker = broker.restart_same();
    assert_eq!(connection_state(&broker, "fan-9"), "disconnected");

    let dev = device(&broker, "fan-9", &[]);
    let c2d = dev.wait_event("c2d", STEP);
    assert_eq!(c2d["payload"], "while-away");
    let desired = dev.wait_events("desired", 1, STEP);
    let last = desired.last().unwrap();
    assert_eq!(last["version"], 3, "{desired:?}");
    assert_eq!(last["patch"]["a"], 1);
    assert_eq!(last["patch"]["b"], 2);
    assert!(
        last["patch"]["mode"].is_null() && last["patch"].get("mode").is_some(),
        "{last}"
    );
    let twin = dev.wait_event("twin", STEP);
    assert_eq!(twin["twin"]["reported"]["temp"], 40, "{twin}");
    assert_eq!(twin["twin"]["desired"]["$version"], 3);
}

#[test]
fn bad_requests_get_clear_errors() {
    let broker = Bosun::start(&[]);
    create(&broker, json!({"deviceId": "d1"}));
    let problem = |r: &common::HttpResponse| {
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.contains("application/problem+json")),
            "{:?}",
            r.headers
        );
        r.json()
    };

    let r = broker.api("GET", "/api/devices/nope/twin", None, &[]);
    assert_eq!(r.status, 404);
    problem(&r);
    let r = broker.api(
        "POST",
        "/api/devices",
        Some(&json!({"deviceId": "a/b"})),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = broker.api(
        "POST",
        "/api/devices",
        Some(&json!({"deviceId": "d1"})),
        &[],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let mut deep = json!(1);
    for _ in 0..12 {
        deep = json!({ "k": deep });
    }
    let deep = json!({"properties": {"desired": deep}});
    let r = broker.api("PATCH", "/api/devices/d1/twin", Some(&deep), &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        problem(&r)["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("deeper than 10"),
        "{}",
        r.body
    );
    let r = broker.api(
        "PATCH",
        "/api/devices/d1/twin",
        Some(&json!({"properties": {"desired": {"x": 1}}})),
        &[("If-Match", "\"999\"")],
    );
    assert_eq!(r.status, 412, "{}", r.body);
    let call = json!({"payload": {}, "connectTimeoutInSeconds": 0});
    let r = broker.api("POST", "/api/devices/d1/methods/reboot", Some(&call), &[]);
    assert_eq!(r.status, 404, "method on a disconnected device: {}", r.body);
    let r = common::http_request(
        broker.http_addr(),
        "POST",
        "/api/devices",
        &[
            ("Authorization", &format!("Bearer {}", broker.admin_token())),
            ("Content-Type", "application/json"),
        ],
        Some("{not json"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    problem(&r);
    let r = common::http_request(broker.http_addr(), "GET", "/api/devices", &[], None);
    assert_eq!(r.status, 401);
}

/// Fifty writers patch one counter with `If-Match`, retrying on 412: every increment
/// lands exactly once.
#[test]
fn concurrent_if_match_writers_never_lose_an_update() {
    let broker = Bosun::start(&[]);
    create(&broker, json!({"deviceId": "hot", "desired": {"n": 0}}));
    std::thread::scope(|scope| {
        for _ in 0..50 {
            scope.spawn(|| loop {
                let r = broker.api("GET", "/api/devices/hot/twin", None, &[]);
                let etag = r.header("etag").unwrap().to_owned();
                let n = r.json()["properties"]["desired"]["n"].as_i64().unwrap();
                let body = json!({"properties": {"desired": {"n": n + 1}}});
                let r = broker.api(
                    "PATCH",
                    "/api/devices/hot/twin",
                    Some(&body),
                    &[("If-Match", &etag)],
                );
                match r.status {
                    200 => break,
                    412 => std::thread::sleep(Duration::from_millis(1)),
                    other => panic!("unexpected {other}: {}", r.body),
                }
            });
        }
    });
    let twin = broker.api("GET", "/api/devices/hot/twin", None, &[]).json();
    assert_eq!(twin["properties"]["desired"]["n"], 50, "{twin}");
    assert_eq!(twin["properties"]["desired"]["$version"], 51);
}

/// Feedback records every outcome: delivered, expired (TTL passed while offline),
/// purged; a full queue refuses more.
#[test]
fn c2d_feedback_covers_expiry_purge_and_a_full_queue() {
    let broker = Bosun::start(&[]);
    create(&broker, json!({"deviceId": "c1"}));
    let send = |body: Value| broker.api("POST", "/api/devices/c1/messages", Some(&body), &[]);
    let short = send(json!({"payload": "stale", "ttlSeconds": 1}));
    assert_eq!(short.status, 202, "{}", short.body);
    let stale = short.json()["messageId"].as_str().unwrap().to_owned();
    let outcome_of = |id: &str| {
        let f = broker
            .api("GET", "/api/feedback?deviceId=c1", None, &[])
            .json();
        f["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["messageId"] == id)
                .map(|i| i["outcome"].clone())
        })
    };
    assert!(
        wait_until(Duration::from_secs(20), || outcome_of(&stale)
            == Some(json!("expired"))),
        "{:?}",
        outcome_of(&stale)
    );

    for i in 0..50 {
        assert_eq!(send(json!({"payload": format!("m{i}")})).status, 202);
    }
    let full = send(json!({"payload": "one too many"}));
    assert!(
        matches!(full.status, 403 | 429),
        "{} {}",
        full.status,
        full.body
    );
    let queued = broker
        .api("GET", "/api/devices/c1/messages", None, &[])
        .json();
    let first = queued["items"][0]["messageId"].as_str().unwrap().to_owned();
    let r = broker.api("DELETE", "/api/devices/c1/messages", None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["purged"], 50);
    assert_eq!(outcome_of(&first), Some(json!("purged")), "{queued}");
}

/// Several method calls in flight to one device at once, each answered to its caller.
#[test]
fn concurrent_method_calls_to_one_device_each_get_their_answer() {
    let broker = Bosun::start(&[]);
    create(&broker, json!({"deviceId": "m1"}));
    let dev = device(&broker, "m1", &[]);
    std::thread::scope(|scope| {
        for i in 0..8 {
            let broker = &broker;
            scope.spawn(move || {
                let call = json!({"payload": {"n": i}, "responseTimeoutInSeconds": 10});
                let r = broker.api("POST", "/api/devices/m1/methods/echo", Some(&call), &[]);
                assert_eq!(r.status, 200, "{}", r.body);
                assert_eq!(r.json()["payload"]["echo"]["n"], i);
            });
        }
    });
    assert_eq!(dev.events("method").len(), 8);
    // No desired properties: the device was sent no (empty) desired patch.
    assert!(dev.events("desired").is_empty(), "{}", dev.dump());
}

/// In `--dev` a device is registered when it first subscribes to its own topics; it
/// is connected at that moment, and the registry says so.
#[test]
fn a_device_registered_on_first_use_shows_as_connected() {
    let broker = Bosun::start(&[]);
    let sub = support::mosquitto_sub(
        broker.mqtt_addr(),
        support::Version::V5,
        &[
            "-i",
            "auto-7",
            "-t",
            "devices/auto-7/messages/devicebound/#",
            "-W",
            "60",
        ],
    );
    support::wait_subscribed(&sub);
    let ok = wait_until(STEP, || connection_state(&broker, "auto-7") == "connected");
    assert!(ok, "state: {}", connection_state(&broker, "auto-7"));
    drop(sub);
}
