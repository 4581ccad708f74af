//! Signed firmware end to end, with a real process and the real CLI: a publisher makes
//! a key and signs an image offline, an admin registers the key, the image is uploaded
//! (unsigned-by-a-registered-key, tampered and truncated uploads are refused with their
//! reason), a device-like client downloads it in two ranged requests (a resumed
//! download) and verifies it against the pinned key, and the store survives a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{cli, http_request, Bosun};
use serde_json::Value;

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output, reason: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(reason), "{reason:?} not in {stderr:?}");
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

/// `GET /api/firmware/{id}/image` with a `Range` header, as admin.
fn get_range(broker: &Bosun, id: &str, range: &str) -> common::HttpResponse {
    let auth = format!("Bearer {}", broker.admin_token());
    let headers = [("Authorization", auth.as_str()), ("Range", range)];
    let target = format!("/api/firmware/{id}/image");
    http_request(broker.http_addr(), "GET", &target, &headers, None)
}

#[test]
fn a_signed_image_is_uploaded_downloaded_in_ranges_and_verified() {
    let broker = Bosun::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // An ASCII image, so the test harness's text bodies compare byte for byte.
    let image: String = (0..4000).map(|i| format!("line {i:05}\n")).collect();
    std::fs::write(dir.join("fw.bin"), &image).unwrap();
    let (key, fw, manifest) = (path(dir, "rel"), path(dir, "fw.bin"), path(dir, "fw.json"));

    // Offline: key pair and signature.
    ok(&cli(&broker, &["firmware", "keygen", "--out", &key]));
    let key_file = format!("{key}.key");
    let pub_file = format!("{key}.pub");
    let sign = [
        "firmware",
        "sign",
        "--key",
        &key_file,
        "--file",
        &fw,
        "--version",
        "1.4.0",
        "--hw",
        "sensor-v2",
        "--out",
        &manifest,
    ];
    ok(&cli(&broker, &sign));
    let upload = ["firmware", "upload", "--manifest", &manifest, "--file", &fw];

    // Refused before the key is registered, then accepted.
    refused(&cli(&broker, &upload), "not trusted");
    let add = [
        "firmware", "keys", "add", "--name", "release", "--file", &pub_file,
    ];
    ok(&cli(&broker, &add));
    let uploaded = ok(&cli(&broker, &upload));
    let id = uploaded
        .trim()
        .strip_prefix("uploaded ")
        .unwrap()
        .to_owned();

    // Tampered and truncated images are refused with their reason.
    let tampered = path(dir, "tampered.bin");
    std::fs::write(&tampered, image.replacen("line 00007", "line 0000X", 1)).unwrap();
    let bad = [
        "firmware",
        "upload",
        "--manifest",
        &manifest,
        "--file",
        &tampered,
    ];
    refused(&cli(&broker, &bad), "tampered");
    let cut = path(dir, "cut.bin");
    std::fs::write(&cut, &image[..1000]).unwrap();
    let bad = [
        "firmware",
        "upload",
        "--manifest",
        &manifest,
        "--file",
        &cut,
    ];
    refused(&cli(&broker, &bad), "truncated");

    // A resumed download: the first 1000 bytes, the connection "drops", then the rest.
    let first = get_range(&broker, &id, "bytes=0-999");
    assert_eq!(first.status, 206, "{}", first.body);
    let rest = get_range(&broker, &id, "bytes=1000-");
    assert_eq!(rest.status, 206);
    let total = image.len();
    assert_eq!(
        rest.header("content-range"),
        Some(format!("bytes 1000-{}/{total}", total - 1).as_str())
    );
    let downloaded = first.body + &rest.body;
    let m = ota::Manifest::from_json(&std::fs::read(&manifest).unwrap()).unwrap();
    let pinned = ota::PublicKey::from_pem(&std::fs::read_to_string(&pub_file).unwrap()).unwrap();
    ota::verify_image(&m, downloaded.as_bytes(), &[pinned]).unwrap();
    let version = ota::Version::parse("1.3.0").unwrap();
    ota::check_update(&m, &version, "sensor-v2").unwrap();
    let wrong_hw = ota::check_update(&m, &version, "sensor-v1").unwrap_err();
    assert!(wrong_hw.to_string().contains("sensor-v1"), "{wrong_hw}");

    // The store survives a restart.
    let mut broker = broker;
    broker.terminate();
    let broker = broker.restart_same();
    let list = ok(&cli(&broker, &["firmware", "list", "--output", "json"]));
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["items"][0]["id"], id.as_str(), "{list}");
    assert_eq!(list["items"][0]["manifest"]["version"], "1.4.0");
    let keys = ok(&cli(&broker, &["firmware", "keys", "list"]));
    assert!(keys.contains("release"), "{keys}");
}
