//! Device groups end to end: devices are created through the REST API, a group is
//! defined and listed with `bosun group`, and its membership follows a tag changed
//! through the API; a condition that does not parse exits 1 naming its position.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::process::Output;

use common::{run, Bosun};
use serde_json::{json, Value};

/// Runs `bosun ARGS --api … --token …` with the hub's admin token.
fn cli(broker: &Bosun, args: &[&str]) -> Output {
    let api = format!("http://{}", broker.http_addr());
    let token = broker.admin_token();
    let mut all = args.to_vec();
    all.extend(["--api", &api, "--token", &token]);
    run(&all, &[])
}

/// Runs a CLI command that must succeed with `--output json`; its JSON.
fn ok_json(broker: &Bosun, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = cli(broker, &all);
    assert!(
        out.status.success(),
        "bosun {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The device ids of a `{items}` listing.
fn ids(listing: &Value) -> Vec<&str> {
    listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deviceId"].as_str().unwrap())
        .collect()
}

/// Sets a device's `site` tag through the API.
fn tag_site(broker: &Bosun, id: &str, site: &str) {
    let patch = json!({"tags": {"site": site}});
    let r = broker.api(
        "PATCH",
        &format!("/api/devices/{id}/twin"),
        Some(&patch),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn group_membership_follows_tags_and_bad_conditions_name_their_position() {
    let broker = Bosun::start(&[]);
    for (id, site) in [
        ("pump-1", "plant-7"),
        ("pump-2", "plant-9"),
        ("pump-3", "plant-7"),
    ] {
        let body = json!({"deviceId": id, "tags": {"site": site}});
        let r = broker.api("POST", "/api/devices", Some(&body), &[]);
        assert_eq!(r.status, 201, "create {id}: {}", r.body);
    }

    let group = ok_json(
        &broker,
        &[
            "group",
            "put",
            "plant-7",
            "--where",
            "tags.site = 'plant-7'",
        ],
    );
    assert_eq!(group["name"], "plant-7", "{group}");
    assert_eq!(group["condition"], "tags.site = 'plant-7'");
    let members = ok_json(&broker, &["group", "devices", "plant-7"]);
    assert_eq!(ids(&members), ["pump-1", "pump-3"], "{members}");
    assert_eq!(members["items"][0]["status"], "enabled");

    // Retagging through the API moves devices in and out; the group is not touched.
    tag_site(&broker, "pump-2", "plant-7");
    tag_site(&broker, "pump-1", "plant-9");
    let members = ok_json(
        &broker,
        &["group", "devices", "plant-7", "--limit", "1", "--all"],
    );
    assert_eq!(ids(&members), ["pump-2", "pump-3"], "{members}");
    assert!(members.get("continuation").is_none(), "{members}");

    let table = cli(&broker, &["group", "devices", "plant-7"]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("DEVICE "), "{text}");
    assert!(
        text.contains("pump-2") && !text.contains("pump-1"),
        "{text}"
    );
    let listed = cli(&broker, &["group", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("plant-7") && text.contains("tags.site = 'plant-7'"),
        "{text}"
    );

    // A condition that does not parse: exit 1, the position on stderr, nothing stored.
    let bad = cli(
        &broker,
        &["group", "put", "broken", "--where", "tags.site = "],
    );
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("at 12"), "{stderr}");
    let r = broker.api("GET", "/api/groups/broken", None, &[]);
    assert_eq!(r.status, 404, "{}", r.body);

    let missing = cli(&broker, &["group", "get", "ghost"]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("Group not found"), "{stderr}");

    let deleted = cli(&broker, &["group", "delete", "plant-7"]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let r = broker.api("GET", "/api/groups/plant-7", None, &[]);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = broker.api("GET", "/api/devices/pump-2", None, &[]);
    assert_eq!(
        r.status, 200,
        "deleting a group keeps its devices: {}",
        r.body
    );
}

#[test]
fn group_help_has_examples() {
    for args in [&["group", "--help"][..], &["group", "put", "--help"]] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Examples:") && help.contains("--where"),
            "{args:?}: {help}"
        );
    }
}
