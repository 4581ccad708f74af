//! The firmware operations in-process, over a real store in a temporary directory.

use ota::{Algorithm, Manifest, SigningKey, Version};
use serde_json::{json, Value};

use crate::fake::Fake;
use crate::testing::{request, Client};

const IMAGE: &[u8] = b"0123456789abcdefghij";

fn client() -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ota::FirmwareStore::open(&dir.path().join("firmware")).expect("store");
    (dir, Client::with_firmware(Fake::new(), Some(store)))
}

fn key() -> SigningKey {
    SigningKey::generate(Algorithm::Ed25519).expect("key")
}

fn signed(key: &SigningKey, version: &str) -> Manifest {
    let version = Version::parse(version).expect("version");
    Manifest::describe(IMAGE, version, vec!["hw-a".into()])
        .sign(key)
        .expect("sign")
}

fn upload_body(manifest: &Manifest, image: &[u8]) -> Value {
    let manifest: Value = serde_json::from_str(&manifest.to_json()).expect("manifest json");
    json!({ "manifest": manifest, "image": crate::base64::encode(image) })
}

async fn register(client: &Client, key: &SigningKey) {
    let body = json!({ "name": "release", "publicKey": key.public_key().to_pem() });
    let r = client.call("POST", "/api/firmware/keys", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["id"], key.public_key().id());
}

async fn get_range(client: &Client, path: &str, range: &str) -> crate::testing::TestResponse {
    let req = request("GET", path, Some(&client.reader), &[("range", range)], None);
    client.send(req).await
}

#[tokio::test]
async fn upload_list_manifest_and_ranged_download() {
    let (_dir, client) = client();
    let key = key();
    register(&client, &key).await;
    let m = signed(&key, "1.2.0");
    let body = upload_body(&m, IMAGE);
    let r = client
        .send_raw("POST", "/api/firmware", Some(&client.operator), Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = m.sha256.to_hex();
    assert_eq!(r.json["id"], id);

    let r = client.call("GET", "/api/firmware", None).await;
    assert_eq!(r.json["items"][0]["manifest"]["version"], "1.2.0");
    let r = client
        .call("GET", &format!("/api/firmware/{id}"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["manifest"]["signature"]["algorithm"], "ed25519");

    let path = format!("/api/firmware/{id}/image");
    let r = client.call("GET", &path, None).await;
    assert_eq!((r.status, r.text.as_bytes()), (200, IMAGE));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let r = get_range(&client, &path, "bytes=5-").await;
    assert_eq!((r.status, r.text.as_str()), (206, "56789abcdefghij"));
    assert_eq!(r.header("content-range"), Some("bytes 5-19/20"));
    let r = get_range(&client, &path, "bytes=-3").await;
    assert_eq!((r.status, r.text.as_str()), (206, "hij"));
    let r = get_range(&client, &path, "bytes=20-").await;
    assert_eq!(r.status, 416, "{}", r.text);
    assert_eq!(r.header("content-range"), Some("bytes */20"));
}

#[tokio::test]
async fn refuses_unsigned_tampered_wrong_key_and_bad_manifests() {
    let (_dir, client) = client();
    let key = key();
    register(&client, &key).await;
    let m = signed(&key, "1.0.0");
    let mut unsigned = m.clone();
    unsigned.signature = None;
    let cases = [
        (upload_body(&unsigned, IMAGE), 422, "not signed"),
        (upload_body(&m, b"0123456789abcdefghiJ"), 422, "tampered"),
        (upload_body(&m, &IMAGE[..10]), 422, "truncated"),
        (
            upload_body(&signed(&self::key(), "1.0.0"), IMAGE),
            422,
            "not trusted",
        ),
        (
            json!({ "manifest": {"version": "1"}, "image": "" }),
            400,
            "semantic version",
        ),
        (json!({ "manifest": {}, "image": "%%" }), 400, "base64"),
    ];
    for (body, status, detail) in cases {
        let r = client.call("POST", "/api/firmware", Some(&body)).await;
        assert_eq!(r.status, status, "{}", r.text);
        let text = r.json["detail"].as_str().unwrap_or_default();
        assert!(text.contains(detail), "{detail:?} not in {text:?}");
    }
    let r = client.call("GET", "/api/firmware", None).await;
    assert_eq!(r.json["items"], json!([]));
}

#[tokio::test]
async fn keys_are_admin_only_and_checked() {
    let (_dir, client) = client();
    let body = json!({ "name": "k", "publicKey": key().public_key().to_pem() });
    let r = client
        .send_raw(
            "POST",
            "/api/firmware/keys",
            Some(&client.operator),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 403);
    let bad = json!({ "name": "k", "publicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" });
    let r = client.call("POST", "/api/firmware/keys", Some(&bad)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = client.call("POST", "/api/firmware/keys", Some(&body)).await;
    let id = r.json["id"].as_str().unwrap_or_default().to_owned();
    let r = client.call("GET", "/api/firmware/keys", None).await;
    assert_eq!(r.json["items"][0]["name"], "k");
    let path = format!("/api/firmware/keys/{id}");
    assert_eq!(client.call("DELETE", &path, None).await.status, 204);
    assert_eq!(client.call("DELETE", &path, None).await.status, 404);
    let r = client.call("GET", "/api/firmware/nope/image", None).await;
    assert_eq!(r.status, 404);
}

/// Images above axum's default 2 MB body limit are accepted (the route raises it).
#[tokio::test]
async fn large_images_fit_the_upload_limit() {
    let (_dir, client) = client();
    let key = key();
    register(&client, &key).await;
    let image: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let version = Version::parse("3.0.0").expect("version");
    let m = Manifest::describe(&image, version, vec!["hw-a".into()])
        .sign(&key)
        .expect("sign");
    let r = client
        .call("POST", "/api/firmware", Some(&upload_body(&m, &image)))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn without_a_store_answers_503() {
    let client = Client::new();
    let r = client.call("GET", "/api/firmware", None).await;
    assert_eq!(r.status, 503);
}

/// Creates `n` devices tagged `site=p7`, the group `p7`, and a stored signed image.
async fn fleet(client: &Client, n: usize) -> String {
    for i in 0..n {
        let body = json!({ "deviceId": format!("d{i:02}"), "tags": { "site": "p7" } });
        let r = client.call("POST", "/api/devices", Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let body = json!({ "condition": "tags.site = 'p7'" });
    let r = client.call("PUT", "/api/groups/p7", Some(&body)).await;
    assert!(r.status < 300, "{}", r.text);
    let key = key();
    register(client, &key).await;
    let m = signed(&key, "2.0.0");
    let r = client
        .call("POST", "/api/firmware", Some(&upload_body(&m, IMAGE)))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    m.sha256.to_hex()
}

/// Devices whose desired `firmware` is set, and how many of those are told to roll back.
async fn desired(client: &Client, n: usize) -> (Vec<String>, usize) {
    let (mut notified, mut rolled_back) = (Vec::new(), 0);
    for i in 0..n {
        let r = client
            .call("GET", &format!("/api/devices/d{i:02}/twin"), None)
            .await;
        let firmware = &r.json["properties"]["desired"]["firmware"];
        if firmware.is_object() {
            notified.push(format!("d{i:02}"));
            rolled_back += usize::from(firmware["rollBack"] == true);
        }
    }
    (notified, rolled_back)
}

#[tokio::test]
async fn a_rollout_notifies_its_first_phase_and_obeys_the_operator() {
    let (_dir, client) = client();
    let id = fleet(&client, 20).await;
    let body = json!({
        "name": "spring", "firmware": id, "group": "p7",
        "phases": [10, 50, 100], "maxConcurrent": 5,
    });
    let r = client.call("POST", "/api/rollouts", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["progress"]["members"], 20);
    assert_eq!(r.json["progress"]["phases"][0]["target"], 2);
    assert_eq!(r.json["progress"]["phases"][0]["inProgress"], 2);
    let (notified, _) = desired(&client, 20).await;
    assert_eq!(notified.len(), 2, "{notified:?}");
    let twin = client
        .call("GET", &format!("/api/devices/{}/twin", notified[0]), None)
        .await;
    let desired_fw = &twin.json["properties"]["desired"]["firmware"];
    assert_eq!(desired_fw["id"], id.as_str());
    assert_eq!(desired_fw["rollout"], "spring");
    assert_eq!(desired_fw["manifest"]["version"], "2.0.0");
    presigned_url_is_the_devices_alone(&client, &id, &notified[0], desired_fw).await;

    let r = client.call("POST", "/api/rollouts", Some(&body)).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let r = client
        .call("POST", "/api/rollouts/spring/pause", None)
        .await;
    assert_eq!(r.json["progress"]["status"]["status"], "paused");
    let r = client
        .call("POST", "/api/rollouts/spring/resume", None)
        .await;
    assert_eq!(r.json["progress"]["status"]["status"], "running");
    let cancel = json!({ "rollBack": true });
    let r = client
        .call("POST", "/api/rollouts/spring/cancel", Some(&cancel))
        .await;
    assert_eq!(r.json["progress"]["status"]["status"], "cancelled");
    assert_eq!(desired(&client, 20).await.1, 2);
    let r = client.call("GET", "/api/rollouts", None).await;
    assert_eq!(r.json["items"][0]["name"], "spring");
    let r = client.call("GET", "/api/rollouts/spring", None).await;
    let events: Vec<&str> = r.json["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["event"]["event"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(events, ["paused", "resumed", "cancelled"]);
}

/// The desired URL downloads without a token, for this image only, until it expires;
/// a changed device, expiry or signature is 403, no token and no signature 401.
async fn presigned_url_is_the_devices_alone(
    client: &Client,
    id: &str,
    device: &str,
    desired: &Value,
) {
    let url = desired["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!(
            "/api/firmware/{id}/image?device={device}&expires="
        )),
        "{url}"
    );
    let anonymous = |path: &str| request("GET", path, None, &[("range", "bytes=2-")], None);
    let r = client.send(anonymous(url)).await;
    assert_eq!(r.status, 206, "{}", r.text);
    let other = url.replace(&format!("device={device}"), "device=someone-else");
    let r = client.send(anonymous(&other)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("signature"),
        "{}",
        r.text
    );
    let (base, _) = url.split_once("&expires=").expect("expires");
    let sig = client_sig(url);
    let expired = format!("{base}&expires=1&sig={sig}");
    assert_eq!(client.send(anonymous(&expired)).await.status, 403);
    let r = client
        .send(anonymous(&format!("/api/firmware/{id}/image")))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // A URL signed under another secret (not the hub's) is refused.
    let store = ota::UrlSigner::new(b"not the hub's");
    let forged = store.url(id, device, u64::MAX);
    assert_eq!(client.send(anonymous(&forged)).await.status, 403);
}

/// The `sig` parameter of a URL.
fn client_sig(url: &str) -> &str {
    url.rsplit_once("&sig=").map(|(_, s)| s).unwrap_or_default()
}

#[tokio::test]
async fn rollouts_refuse_bad_input() {
    let (_dir, client) = client();
    let id = fleet(&client, 2).await;
    let cases = [
        (
            json!({ "name": "a", "firmware": id, "group": "p7", "phases": [50, 20, 100] }),
            400,
        ),
        (json!({ "name": "a b", "firmware": id, "group": "p7" }), 400),
        (json!({ "name": "a", "firmware": "00", "group": "p7" }), 404),
        (json!({ "name": "a", "firmware": id, "group": "nope" }), 404),
    ];
    for (body, status) in cases {
        let r = client.call("POST", "/api/rollouts", Some(&body)).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
    }
    let r = client.call("POST", "/api/rollouts/nope/pause", None).await;
    assert_eq!(r.status, 404);
}
