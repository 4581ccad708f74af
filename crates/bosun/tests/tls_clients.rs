//! MQTT over TLS as OpenSSL-based clients see it: `mosquitto_pub`/`mosquitto_sub`
//! trusting the local CA's `ca.pem`, `openssl s_client` handshakes over TLS 1.3 and 1.2,
//! a client sending garbage instead of a ClientHello (dropped, counted, harmless to
//! others), `--mqtts off`, and hot reload of operator-supplied certificate files while a
//! subscriber stays connected. Every broker is on free loopback ports; every wait has a
//! deadline.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Bosun;
use support::{
    mosquitto_pub, mosquitto_sub, wait_messages, wait_subscribed, wait_until, Client, Version, STEP,
};

/// Certificate reloads are checked every 2 s; allow for a loaded machine.
const RELOAD_DEADLINE: Duration = Duration::from_secs(30);

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The local CA certificate a started broker generated.
fn local_ca(bosun: &Bosun) -> PathBuf {
    let ca = bosun.data_dir().join("tls/ca.pem");
    assert!(ca.is_file(), "{} was not generated", ca.display());
    ca
}

/// Runs `openssl s_client` against `addr` with `args` (stdin closed, so it disconnects
/// right after the handshake) and returns its stdout; panics if it fails.
fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()])
        .args(args);
    let mut client = Client::spawn("openssl s_client", cmd);
    let status = client.wait_exit(STEP);
    assert!(status.success(), "s_client failed\n{}", client.dump());
    client.stdout_lines().join("\n")
}

/// The first PEM certificate in `text`.
fn first_pem(text: &str) -> String {
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate in:\n{text}"));
    let end_marker = "-----END CERTIFICATE-----";
    let end = text[begin..].find(end_marker).expect("certificate end") + begin;
    format!("{}\n", &text[begin..end + end_marker.len()])
}

/// `openssl x509 -fingerprint -sha256` of a PEM certificate.
fn fingerprint(pem: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl x509");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pem.as_bytes())
        .expect("write certificate");
    let out = child.wait_with_output().expect("openssl x509");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The fingerprint of the certificate a new connection to `addr` is given.
fn served_fingerprint(addr: SocketAddr) -> String {
    fingerprint(&first_pem(&s_client(addr, &["-servername", "localhost"])))
}

/// A self-signed P-256 certificate for 127.0.0.1 and localhost, written by OpenSSL
/// (not by the code under test) to `cert` and `key`.
fn openssl_self_signed(cert: &Path, key: &Path, name: &str) {
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args([
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-keyout", path_str(key), "-out", path_str(cert)])
        .output()
        .expect("run openssl req");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of an unlabelled metric, polled until `want` holds or the deadline passes.
fn wait_metric(bosun: &Bosun, name: &str, want: impl Fn(u64) -> bool) -> u64 {
    let mut last = None;
    let ok = wait_until(STEP, || {
        let body = bosun.http_get("/metrics").body;
        last = body
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<u64>().ok());
        last.is_some_and(&want)
    });
    assert!(ok, "{name} is {last:?}\n{}", bosun.stderr());
    last.expect("checked above")
}

fn pub_sub_over_tls(version: Version) {
    let bosun = Bosun::start(&[]);
    let tls = bosun.mqtts_addr();
    assert_ne!(tls, bosun.mqtt_addr());
    let ca = local_ca(&bosun);
    let cafile = path_str(&ca);
    let topic = format!("tls/{}", version.paho());
    let sub = mosquitto_sub(
        tls,
        version,
        &["-t", &topic, "-q", "1", "-C", "2", "--cafile", cafile],
    );
    wait_subscribed(&sub);
    // One publisher over TLS, one over plain TCP: both reach the TLS subscriber.
    mosquitto_pub(
        tls,
        version,
        &[
            "-t", &topic, "-q", "1", "-m", "over tls", "--cafile", cafile,
        ],
        None,
    );
    mosquitto_pub(
        bosun.mqtt_addr(),
        version,
        &["-t", &topic, "-q", "1", "-m", "over tcp"],
        None,
    );
    let got = wait_messages(&sub, 2, STEP);
    let payloads: Vec<&str> = got.iter().map(|m| m.payload.as_str()).collect();
    assert_eq!(payloads, ["over tls", "over tcp"], "{}", sub.dump());
}

#[test]
fn mosquitto_pub_and_sub_over_tls_with_the_local_ca_v311() {
    pub_sub_over_tls(Version::V311);
}

#[test]
fn mosquitto_pub_and_sub_over_tls_with_the_local_ca_v5() {
    pub_sub_over_tls(Version::V5);
}

#[test]
fn openssl_s_client_handshakes_tls13_and_tls12_and_verifies_the_local_chain() {
    let bosun = Bosun::start(&[]);
    let ca = local_ca(&bosun);
    for (flag, protocol) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let out = s_client(
            bosun.mqtts_addr(),
            &[
                flag,
                "-CAfile",
                path_str(&ca),
                "-verify_return_error",
                "-verify_ip",
                "127.0.0.1",
                "-servername",
                "localhost",
                "-showcerts",
            ],
        );
        assert!(
            out.contains(&format!("Protocol  : {protocol}"))
                || out.contains(&format!("New, {protocol}")),
            "{flag}: not {protocol}\n{out}"
        );
        assert!(out.contains("Verify return code: 0 (ok)"), "{flag}\n{out}");
        // The chain as served: our leaf, issued by the local CA in ca.pem.
        assert!(out.contains("Certificate chain"), "{out}");
        assert!(out.contains("CN = bosun local CA"), "{flag}: issuer\n{out}");
        assert!(
            out.contains("CN = bosun, O = bosun"),
            "{flag}: subject\n{out}"
        );
    }
    let served = fingerprint(&first_pem(&s_client(bosun.mqtts_addr(), &[])));
    let on_disk = fingerprint(
        &std::fs::read_to_string(bosun.data_dir().join("tls/server.pem")).expect("server.pem"),
    );
    assert_eq!(served, on_disk, "the served leaf is tls/server.pem");
}

#[test]
fn garbage_instead_of_a_client_hello_is_dropped_and_counted() {
    let bosun = Bosun::start(&[]);
    assert_eq!(
        wait_metric(&bosun, "bosun_tls_handshake_failures_total", |_| true),
        0
    );
    let mut raw = TcpStream::connect(bosun.mqtts_addr()).expect("connect");
    raw.set_read_timeout(Some(STEP)).expect("read timeout");
    raw.write_all(b"this is not a TLS ClientHello\r\n\r\n")
        .expect("send garbage");
    let mut rest = Vec::new();
    match raw.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "the broker should close the connection, got {e}"
        ),
    }
    wait_metric(&bosun, "bosun_tls_handshake_failures_total", |n| n == 1);

    // A good client on the same broker is unaffected.
    let ca = local_ca(&bosun);
    let sub = mosquitto_sub(
        bosun.mqtts_addr(),
        Version::V5,
        &["-t", "after/garbage", "-C", "1", "--cafile", path_str(&ca)],
    );
    wait_subscribed(&sub);
    mosquitto_pub(
        bosun.mqtt_addr(),
        Version::V5,
        &["-t", "after/garbage", "-m", "fine"],
        None,
    );
    assert_eq!(wait_messages(&sub, 1, STEP)[0].payload, "fine");
    assert_eq!(
        wait_metric(&bosun, "bosun_tls_handshake_failures_total", |_| true),
        1,
        "the good client's handshake is not a failure"
    );
}

#[test]
fn mqtts_off_binds_no_tls_listener_and_generates_nothing() {
    let bosun = Bosun::start(&["--mqtts", "off"]);
    assert!(!bosun.tls_listening(), "no `listening mqtts` line expected");
    assert!(!bosun.data_dir().join("tls").exists());
}

#[test]
fn replaced_certificate_files_are_served_to_new_connections_while_old_ones_keep_working() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    openssl_self_signed(&cert, &key, "bosun-test-first");
    let first_ca = certs.path().join("first.pem");
    std::fs::copy(&cert, &first_ca).expect("keep the first certificate");
    let config = certs.path().join("bosun.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            path_str(&cert),
            path_str(&key)
        ),
    )
    .expect("write config");
    let bosun = Bosun::start(&["--config", path_str(&config)]);
    let tls = bosun.mqtts_addr();
    let first = fingerprint(&std::fs::read_to_string(&cert).expect("cert"));
    assert_eq!(served_fingerprint(tls), first);

    let sub = mosquitto_sub(
        tls,
        Version::V311,
        &[
            "-t",
            "reload/#",
            "-q",
            "1",
            "-C",
            "2",
            "--cafile",
            path_str(&first_ca),
        ],
    );
    wait_subscribed(&sub);

    // Replace both files the way a certificate renewal would: write aside, rename over.
    let (new_cert, new_key) = (
        certs.path().join("new-cert.pem"),
        certs.path().join("new-key.pem"),
    );
    openssl_self_signed(&new_cert, &new_key, "bosun-test-second");
    let second = fingerprint(&std::fs::read_to_string(&new_cert).expect("new cert"));
    assert_ne!(first, second);
    let second_ca = certs.path().join("second.pem");
    std::fs::copy(&new_cert, &second_ca).expect("keep the second certificate");
    std::fs::rename(&new_key, &key).expect("replace key");
    std::fs::rename(&new_cert, &cert).expect("replace cert");

    let mut served = String::new();
    let reloaded = wait_until(RELOAD_DEADLINE, || {
        served = served_fingerprint(tls);
        served == second
    });
    assert!(
        reloaded,
        "new connections still get {served}, want {second}\n{}",
        bosun.stderr()
    );

    // The subscriber connected with the first certificate still receives, from a
    // publisher that trusts only the second.
    mosquitto_pub(
        tls,
        Version::V311,
        &[
            "-t",
            "reload/a",
            "-q",
            "1",
            "-m",
            "after reload",
            "--cafile",
            path_str(&second_ca),
        ],
        None,
    );
    mosquitto_pub(
        bosun.mqtt_addr(),
        Version::V311,
        &["-t", "reload/b", "-q", "1", "-m", "plain"],
        None,
    );
    let got = wait_messages(&sub, 2, STEP);
    let payloads: Vec<&str> = got.iter().map(|m| m.payload.as_str()).collect();
    assert_eq!(payloads, ["after reload", "plain"], "{}", sub.dump());
    // And a client trusting only the old certificate is now refused.
    let mut stale = Command::new("mosquitto_pub");
    stale
        .args(["-h", "127.0.0.1", "-p", &tls.port().to_string()])
        .args(["-t", "reload/c", "-m", "x", "--cafile", path_str(&first_ca)]);
    let mut stale = Client::spawn("mosquitto_pub (stale trust)", stale);
    assert!(!stale.wait_exit(STEP).success(), "{}", stale.dump());
}
