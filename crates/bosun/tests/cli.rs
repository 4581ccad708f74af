//! The `bosun` binary's command-line contract: the `listening` lines, `/metrics`,
//! graceful SIGTERM, exit codes 0/1/2, and configuration layering as users see it.

mod common;

use std::io::Write;

use common::{run, Bosun};

#[test]
fn serve_announces_serves_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().expect("utf-8 path");
    let mut bosun = Bosun::start(&[
        "--data-dir",
        data,
        "--mqtt",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]);
    assert!(data_dir.is_dir(), "serve creates the data dir");
    assert_ne!(bosun.mqtt_addr().port(), 0);
    assert_ne!(bosun.http_addr().port(), 0);

    let metrics = bosun.http_get("/metrics");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(
        metrics.body.contains("bosun_mqtt_connections"),
        "{}",
        metrics.body
    );
    let content_type = metrics
        .headers
        .iter()
        .find(|h| h.to_ascii_lowercase().starts_with("content-type:"));
    assert_eq!(
        content_type.map(|h| h.to_ascii_lowercase()).as_deref(),
        Some("content-type: text/plain; version=0.0.4")
    );
    let health = bosun.http_get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));

    let status = bosun.terminate();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", bosun.stderr());
}

#[test]
fn port_in_use_exits_1_with_one_line() {
    let taken = common::occupied_port();
    let addr = taken.local_addr().expect("local addr").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let out = run(
        &[
            "serve",
            "--data-dir",
            data,
            "--mqtt",
            &addr,
            "--mqtts",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .expect("an error line");
    assert!(error.contains(&addr), "{error}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing announced");
}

#[test]
fn http_port_in_use_exits_1() {
    let taken = common::occupied_port();
    let addr = taken.local_addr().expect("local addr").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let out = run(
        &[
            "serve",
            "--data-dir",
            data,
            "--mqtt",
            "127.0.0.1:0",
            "--mqtts",
            "127.0.0.1:0",
            "--http",
            &addr,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = run(&["serve", "--bogus"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}

#[test]
fn help_has_examples_and_exits_0() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["config", "show", "--help"],
    ] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Examples:"),
            "{args:?}"
        );
    }
}

#[test]
fn config_show_applies_environment() {
    let out = run(&["config", "show"], &[("BOSUN_MQTT__MAX_INFLIGHT", "7")]);
    assert_eq!(out.status.code(), Some(0));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.lines().any(|l| l.trim() == "max_inflight = 7"),
        "{shown}"
    );

    let out = run(
        &["config", "show", "--output", "json"],
        &[("BOSUN_MQTT__MAX_INFLIGHT", "7")],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(json["mqtt"]["max_inflight"], 7);
}

#[test]
fn config_show_rejects_bad_environment_naming_the_variable() {
    let out = run(&["config", "show"], &[("BOSUN_MQTT__MAX_INFLIGHT", "lots")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BOSUN_MQTT__MAX_INFLIGHT"));
}

#[test]
fn config_file_with_unknown_key_fails_naming_it() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "[mqtt]\nmax_inflight = 8\nmax_infligth = 9").expect("write config");
    let path = file.path().to_str().expect("utf-8 path");
    let out = run(&["config", "show", "--config", path], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("max_infligth") && stderr.contains(path),
        "{stderr}"
    );

    let out = run(
        &[
            "serve",
            "--config",
            path,
            "--mqtt",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "serve refuses it too");
}

#[test]
fn restart_after_kill9_reuses_data_dir_and_port() {
    let mut first = Bosun::start(&[]);
    first.kill9();
    let mut second = first.restart_same();
    assert_eq!(second.mqtt_addr(), first.mqtt_addr());
    assert_eq!(second.data_dir(), first.data_dir());
    assert_eq!(second.terminate().code(), Some(0));
}
