//! Unit tests of the layering and its error messages.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use super::env::is_setting_var;
use super::*;
use crate::cli::ServeArgs;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    f
}

fn load_err(file: Option<&Path>, vars: &[(&str, &str)]) -> String {
    format!(
        "{:#}",
        Settings::load(file, &env(vars)).expect_err("should fail")
    )
}

#[test]
fn nothing_given_means_broker_defaults() {
    let s = Settings::load(None, &[]).expect("defaults load");
    assert_eq!(s, Settings::default());
    let b = broker::Config::default();
    let c = s.broker_config();
    assert_eq!(
        (c.max_inflight, c.max_packet_size, c.mqtt_addr),
        (b.max_inflight, b.max_packet_size, b.mqtt_addr)
    );
    assert_eq!(c.max_session_expiry, b.max_session_expiry);
    assert_eq!(s.serve.http.to_string(), "127.0.0.1:8080");
}

#[test]
fn file_beats_defaults_env_beats_file_flags_beat_env() {
    let f = file("[serve]\nmqtt = \"127.0.0.1:1000\"\nhttp = \"127.0.0.1:2000\"\n[mqtt]\nmax_inflight = 5\nreceive_maximum = 9\n");
    let vars = [
        ("BOSUN_SERVE__MQTT", "127.0.0.1:3000"),
        ("BOSUN_MQTT__MAX_INFLIGHT", "32"),
    ];
    let mut s = Settings::load(Some(f.path()), &env(&vars)).expect("loads");
    assert_eq!((s.mqtt.max_inflight, s.mqtt.receive_maximum), (32, 9));
    assert_eq!(s.serve.http.to_string(), "127.0.0.1:2000");
    assert_eq!(s.serve.mqtt.to_string(), "127.0.0.1:3000");
    let flags = ServeArgs {
        mqtt: Some(SocketAddr::from(([127, 0, 0, 1], 4000))),
        dev: true,
        ..ServeArgs::default()
    };
    s.apply_flags(&flags);
    assert_eq!(s.serve.mqtt.to_string(), "127.0.0.1:4000");
    assert!(s.serve.dev);
    assert_eq!(
        s.serve.http.to_string(),
        "127.0.0.1:2000",
        "unset flags keep lower layers"
    );
}

#[test]
fn env_values_are_typed_by_their_default() {
    let vars = [
        ("BOSUN_SERVE__DEV", "true"),
        ("BOSUN_SERVE__LOG_FORMAT", "json"),
        ("BOSUN_MQTT__OVERFLOW", "drop_newest"),
        ("BOSUN_STORAGE__FSYNC", "0"),
        ("BOSUN_STORAGE__SEGMENT_BYTES", " 4096 "),
    ];
    let s = Settings::load(None, &env(&vars)).expect("loads");
    assert!(s.serve.dev && !s.storage.fsync);
    assert_eq!(s.serve.log_format, LogFormat::Json);
    assert_eq!(s.mqtt.overflow, Overflow::DropNewest);
    assert_eq!(s.storage.segment_bytes, 4096);
}

#[test]
fn unrelated_bosun_variables_are_ignored() {
    let s = Settings::load(None, &env(&[("BOSUN_SOMETHING", "x")])).expect("loads");
    assert_eq!(s, Settings::default());
    assert!(!is_setting_var("BOSUN_SOMETHING") && is_setting_var("BOSUN_MQTT__MAX_INFLIGHT"));
}

#[test]
fn unknown_file_key_is_named() {
    let f = file("[mqtt]\nmax_inflite = 3\n");
    let err = load_err(Some(f.path()), &[]);
    assert!(
        err.contains("max_inflite") && err.contains("invalid configuration file"),
        "{err}"
    );
    let f = file("[mqqt]\nmax_inflight = 3\n");
    assert!(load_err(Some(f.path()), &[]).contains("mqqt"));
}

#[test]
fn bad_file_value_is_named() {
    let f = file("[mqtt]\nmax_inflight = \"many\"\n");
    let err = load_err(Some(f.path()), &[]);
    assert!(err.contains("max_inflight"), "{err}");
    let f = file("[serve]\nmqtt = \"localhost\"\n");
    assert!(load_err(Some(f.path()), &[]).contains("mqtt"));
}

#[test]
fn missing_file_is_a_clear_error() {
    let err = load_err(Some(Path::new("/nonexistent/bosun.toml")), &[]);
    assert!(
        err.starts_with("cannot read configuration file /nonexistent/bosun.toml"),
        "{err}"
    );
}

#[test]
fn env_errors_name_the_variable() {
    let cases = [
        ("BOSUN_MQTT__MAX_INFLIGHT", "many", "expected an integer"),
        ("BOSUN_MQTT__MAX_INFLIGHT", "70000", "u16"),
        (
            "BOSUN_MQTT__MAX_INFLITE",
            "3",
            "no configuration key mqtt.max_inflite",
        ),
        ("BOSUN_NOPE__X", "3", "no configuration key nope.x"),
        ("BOSUN_SERVE__DEV", "maybe", "expected true or false"),
        ("BOSUN_SERVE__MQTT", "localhost", "address"),
        ("BOSUN_MQTT__OVERFLOW", "drop_all", "drop_oldest"),
    ];
    for (name, value, want) in cases {
        let err = load_err(None, &[(name, value)]);
        assert!(
            err.contains(name) && err.contains(want),
            "{name}={value}: {err}"
        );
    }
}

#[test]
fn zero_limits_are_rejected_by_name() {
    let err = load_err(None, &[("BOSUN_MQTT__RECEIVE_MAXIMUM", "0")]);
    assert!(err.contains("mqtt.receive_maximum"), "{err}");
}

#[test]
fn shown_toml_loads_back_to_the_same_settings() {
    let s = Settings::load(None, &env(&[("BOSUN_MQTT__MAX_INFLIGHT", "7")])).expect("loads");
    let f = file(&toml::to_string_pretty(&s).expect("renders"));
    assert_eq!(Settings::load(Some(f.path()), &[]).expect("reloads"), s);
}

#[test]
fn tls_is_on_at_8883_with_the_local_ca_by_default() {
    let c = Settings::default().broker_config();
    let tls = c.tls.expect("TLS on by default");
    assert_eq!(tls.addr.to_string(), "127.0.0.1:8883");
    assert!(tls.cert_file.is_none() && tls.key_file.is_none());
}

#[test]
fn mqtts_flag_moves_or_disables_tls() {
    let mut s = Settings::default();
    s.apply_flags(&ServeArgs {
        mqtts: Some(crate::cli::ListenFlag::Addr(SocketAddr::from((
            [127, 0, 0, 1],
            0,
        )))),
        ..ServeArgs::default()
    });
    assert_eq!(
        s.broker_config().tls.expect("on").addr.to_string(),
        "127.0.0.1:0"
    );
    s.apply_flags(&ServeArgs {
        mqtts: Some(crate::cli::ListenFlag::Off),
        ..ServeArgs::default()
    });
    assert!(s.broker_config().tls.is_none());
}

#[test]
fn tls_section_from_file_and_environment() {
    let f = file("[tls]\naddr = \"127.0.0.1:9883\"\ncert_file = \"/etc/bosun/chain.pem\"\nkey_file = \"/etc/bosun/key.pem\"\n");
    let vars = [("BOSUN_TLS__SUBJECT_ALT_NAMES", "broker.local, 10.0.0.5,")];
    let s = Settings::load(Some(f.path()), &env(&vars)).expect("loads");
    let tls = s.broker_config().tls.expect("on");
    assert_eq!(tls.addr.to_string(), "127.0.0.1:9883");
    assert_eq!(
        tls.cert_file.as_deref(),
        Some(Path::new("/etc/bosun/chain.pem"))
    );
    assert_eq!(tls.subject_alt_names, ["broker.local", "10.0.0.5"]);
    let off = Settings::load(None, &env(&[("BOSUN_TLS__ENABLED", "false")])).expect("loads");
    assert!(off.broker_config().tls.is_none());
}

#[test]
fn tls_cert_without_key_is_rejected_naming_both_keys() {
    let err = load_err(None, &[("BOSUN_TLS__CERT_FILE", "/etc/bosun/chain.pem")]);
    assert!(
        err.contains("tls.cert_file") && err.contains("tls.key_file"),
        "{err}"
    );
}

#[test]
fn pipeline_rules_come_from_the_file_and_knobs_from_the_environment() {
    let f = file(
        r#"
[pipeline]
anomaly_warmup = 50

[[pipeline.rules]]
name = "hot"
sql = "SELECT rms FROM telemetry WHERE rms > 1"

[[pipeline.rules.actions]]
type = "republish"
topic = "alerts/{deviceId}"
"#,
    );
    let vars = [
        ("BOSUN_PIPELINE__CAPTURE_IDLE_SECS", "3"),
        ("BOSUN_PIPELINE__ANOMALY_ENTER", "10"),
    ];
    let s = Settings::load(Some(f.path()), &env(&vars)).expect("loads");
    assert_eq!(s.pipeline.rules.len(), 1);
    assert_eq!(s.pipeline.rules[0].name, "hot");
    let config = s.pipeline.pipeline_config(Path::new("/data"));
    assert_eq!(config.dir, Path::new("/data/pipeline"));
    assert_eq!(config.anomaly.as_ref().map(|a| a.warmup), Some(50));
    assert_eq!(config.capture_idle, std::time::Duration::from_secs(3));
    assert_eq!(config.anomaly.map(|a| a.enter), Some(10.0));
    let nan = [("BOSUN_PIPELINE__ANOMALY_ENTER", "NaN")];
    assert!(load_err(None, &nan).contains("BOSUN_PIPELINE__ANOMALY_ENTER"));

    let bad = file("[[pipeline.rules]]\nname = \"x\"\nsql = \"SELECT\"\n[[pipeline.rules.actions]]\ntype = \"teleport\"\n");
    assert!(load_err(Some(bad.path()), &[]).contains("teleport"));
}
