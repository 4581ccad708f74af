//! End-to-end tests against the real [`hub::service::Hub`] (over a broker and an
//! in-memory SQLite store), not the fake.
//!
//! They check what the fake cannot: that the hub's errors, ETags, paging cursors and
//! events come out of the API as documented.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use broker::{metrics::Metrics, Broker, Config};
use futures_util::StreamExt;
use hub::service::{broker_spec, Hub, HubConfig};
use serde_json::json;
use store::SqliteStore;

use crate::testing::{request, Client};

/// A running hub over a broker on an ephemeral port (its log in `dir`) and an
/// in-memory store; the broker is returned so it lives as long as the test.
async fn start_hub(dir: &std::path::Path) -> (Hub, Broker) {
    let config = Config {
        data_dir: dir.to_path_buf(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    let (broker, service, events) =
        Broker::start_with_service(config, Arc::new(Metrics::default()), broker_spec())
            .await
            .expect("broker starts");
    let store = SqliteStore::open_in_memory().expect("store");
    let hub = Hub::start(Arc::new(store), service, events, HubConfig::default());
    (hub, broker)
}

#[tokio::test]
async fn devices_twins_queries_and_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub, _broker) = start_hub(dir.path()).await;
    let c = Client::with_hub(hub);

    let created = c
        .call(
            "POST",
            "/api/devices",
            Some(&json!({"deviceId": "e2e-1", "group": "g", "tags": {"site": "a"}, "desired": {"mode": "idle"}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["connectionState"], "disconnected");
    assert_eq!(
        c.call("POST", "/api/devices", Some(&json!({"deviceId": "e2e-1"})))
            .await
            .status,
        409
    );
    assert_eq!(
        c.call(
            "POST",
            "/api/devices",
            Some(&json!({"deviceId": "bad id/"}))
        )
        .await
        .status,
        400
    );
    c.call(
        "POST",
        "/api/devices",
        Some(&json!({"deviceId": "e2e-2", "status": "disabled"})),
    )
    .await;

    let page = c.call("GET", "/api/devices?limit=1", None).await;
    assert_eq!(page.json["items"][0]["deviceId"], "e2e-1");
    let token = page.json["continuation"].as_str().expect("a second page");
    let next = c
        .call(
            "GET",
            &format!("/api/devices?limit=1&continuation={token}"),
            None,
        )
        .await;
    assert_eq!(next.json["items"][0]["deviceId"], "e2e-2");
    let disabled = c.call("GET", "/api/devices?status=disabled", None).await;
    assert_eq!(disabled.json["items"].as_array().map(Vec::len), Some(1));
    let tagged = c.call("GET", "/api/devices?tag=site:a", None).await;
    assert_eq!(tagged.json["items"][0]["deviceId"], "e2e-1");

    let twin = c.call("GET", "/api/devices/e2e-1/twin", None).await;
    assert_eq!(twin.status, 200);
    let etag = twin.header("etag").expect("etag").to_owned();
    let patch = json!({"properties": {"desired": {"mode": "alarm"}}});
    let ok = c
        .send(request(
            "PATCH",
            "/api/devices/e2e-1/twin",
            Some(&c.operator),
            &[("if-match", &etag)],
            Some(&patch),
        ))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_ne!(ok.header("etag"), Some(etag.as_str()));
    let stale = c
        .send(request(
            "PATCH",
            "/api/devices/e2e-1/twin",
            Some(&c.operator),
            &[("if-match", &etag)],
            Some(&patch),
        ))
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.json["currentEtag"].as_str(), ok.header("etag"));

    let query = c
        .call(
            "POST",
            "/api/query",
            Some(
                &json!({"query": "SELECT * FROM devices WHERE properties.desired.mode = 'alarm'"}),
            ),
        )
        .await;
    assert_eq!(query.status, 200, "{}", query.text);
    assert_eq!(query.json["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        c.call("POST", "/api/query", Some(&json!({"query": "SELEKT"})))
            .await
            .status,
        400
    );

    let sent = c
        .call(
            "POST",
            "/api/devices/e2e-1/messages",
            Some(&json!({"payload": "hi", "properties": {"k": "v"}})),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let queue = c.call("GET", "/api/devices/e2e-1/messages", None).await;
    assert_eq!(queue.json["items"][0]["payload"], "hi");
    let purged = c.call("DELETE", "/api/devices/e2e-1/messages", None).await;
    assert_eq!(purged.json["purged"], 1);
    let feedback = c.call("GET", "/api/feedback?deviceId=e2e-1", None).await;
    assert_eq!(feedback.json["items"][0]["outcome"], "purged");

    let offline = c
        .call(
            "POST",
            "/api/devices/e2e-1/methods/reboot",
            Some(&json!({})),
        )
        .await;
    assert_eq!(offline.status, 404, "{}", offline.text);
    assert_eq!(
        offline.json["type"],
        "urn:bosun:problem:device-not-connected"
    );

    assert_eq!(
        c.call("DELETE", "/api/devices/e2e-1", None).await.status,
        204
    );
    assert_eq!(c.call("GET", "/api/devices/e2e-1", None).await.status, 404);
}

#[tokio::test]
async fn events_stream_device_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub, _broker) = start_hub(dir.path()).await;
    let c = Client::with_hub(hub);
    let response = c
        .open(request(
            "GET",
            "/api/events?deviceId=ev-1",
            Some(&c.reader),
            &[],
            None,
        ))
        .await;
    assert_eq!(response.status(), 200);
    let mut body = Body::into_data_stream(response.into_body());
    c.call("POST", "/api/devices", Some(&json!({"deviceId": "ev-1"})))
        .await;
    let frame = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("an event in time")
        .expect("open")
        .expect("frame");
    let text = String::from_utf8_lossy(&frame);
    assert!(text.starts_with("event: deviceCreated\n"), "{text}");
}

#[tokio::test]
async fn group_membership_follows_twin_tags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub, _broker) = start_hub(dir.path()).await;
    let c = Client::with_hub(hub);
    for (id, site) in [("g-1", "x"), ("g-2", "y"), ("g-3", "x")] {
        let r = c
            .call(
                "POST",
                "/api/devices",
                Some(&json!({"deviceId": id, "tags": {"site": site}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let put = c
        .send_raw(
            "PUT",
            "/api/groups/site-x",
            Some(&c.operator),
            Some(&json!({"condition": "tags.site = 'x'"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json["condition"], "tags.site = 'x'");
    let members = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|d| d["deviceId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = c.call("GET", "/api/groups/site-x/devices", None).await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert_eq!(members(&before.json), ["g-1", "g-3"]);
    assert_eq!(before.json["items"][0]["status"], "enabled");
    assert_eq!(before.json["items"][0]["connectionState"], "disconnected");

    let moved = c
        .call(
            "PATCH",
            "/api/devices/g-2/twin",
            Some(&json!({"tags": {"site": "x"}})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    c.call(
        "PATCH",
        "/api/devices/g-1/twin",
        Some(&json!({"tags": {"site": null}})),
    )
    .await;
    let first = c
        .call("GET", "/api/groups/site-x/devices?limit=1", None)
        .await;
    assert_eq!(members(&first.json), ["g-2"]);
    let token = first.json["continuation"].as_str().expect("a second page");
    let second = c
        .call(
            "GET",
            &format!("/api/groups/site-x/devices?limit=1&continuation={token}"),
            None,
        )
        .await;
    assert_eq!(members(&second.json), ["g-3"]);

    let listed = c.call("GET", "/api/groups", None).await;
    assert_eq!(listed.json["items"][0]["name"], "site-x", "{}", listed.text);
    let bad = c
        .call(
            "PUT",
            "/api/groups/broken",
            Some(&json!({"condition": "tags.site = "})),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(
        bad.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("at 12")),
        "{}",
        bad.text
    );
    assert_eq!(
        c.call("DELETE", "/api/groups/site-x", None).await.status,
        204
    );
    let gone = c.call("GET", "/api/groups/site-x/devices", None).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert_eq!(gone.json["type"], "urn:bosun:problem:group-not-found");
    assert_eq!(c.call("GET", "/api/devices/g-2", None).await.status, 200);
}

#[tokio::test]
async fn sas_keys_are_made_read_and_regenerated_by_the_hub() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub, _broker) = start_hub(dir.path()).await;
    let c = Client::with_hub(hub);
    let given = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";
    for (body, status) in [
        (
            json!({"deviceId": "k1", "authKind": "sas", "symmetricKey": given}),
            201,
        ),
        (json!({"deviceId": "k2", "authKind": "sas"}), 201),
        (
            json!({"deviceId": "k3", "authKind": "sas", "symmetricKey": "c2hvcnQ="}),
            400,
        ),
        (
            json!({"deviceId": "k4", "authKind": "sas", "symmetricKey": "not base64"}),
            400,
        ),
        (json!({"deviceId": "k5", "symmetricKey": given}), 400),
        (json!({"deviceId": "k6"}), 201),
    ] {
        let r = c.call("POST", "/api/devices", Some(&body)).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert!(
            !r.text.contains(given),
            "a key in the device view: {}",
            r.text
        );
    }
    let k1 = c.call("GET", "/api/devices/k1/keys", None).await;
    assert_eq!(k1.status, 200, "{}", k1.text);
    assert_eq!(k1.json["primaryKey"], given);
    assert_eq!(
        k1.json["connectionString"],
        format!("HostName=127.0.0.1;DeviceId=k1;SharedAccessKey={given}")
    );
    let k2 = c.call("GET", "/api/devices/k2/keys", None).await.json;
    let (primary, secondary) = (k2["primaryKey"].clone(), k2["secondaryKey"].clone());
    assert_ne!(primary, secondary);
    let decoded = hub::base64::decode(primary.as_str().expect("text")).expect("base64");
    assert_eq!(decoded.len(), 32);

    let fresh = c
        .call(
            "POST",
            "/api/devices/k2/keys/regenerate",
            Some(&json!({"which": "secondary"})),
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert_eq!(fresh.json["primaryKey"], primary);
    assert_ne!(fresh.json["secondaryKey"], secondary);
    let again = c.call("GET", "/api/devices/k2/keys", None).await.json;
    assert_eq!(again["secondaryKey"], fresh.json["secondaryKey"]);

    assert_eq!(
        c.call("GET", "/api/devices/k6/keys", None).await.status,
        400
    );
    assert_eq!(
        c.call("GET", "/api/devices/nope/keys", None).await.status,
        404
    );
    // Deleting the device deletes its keys.
    assert_eq!(c.call("DELETE", "/api/devices/k1", None).await.status, 204);
    assert_eq!(
        c.call("GET", "/api/devices/k1/keys", None).await.status,
        404
    );
}
