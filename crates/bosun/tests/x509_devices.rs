//! X.509 device identity with real OpenSSL-based clients, against `bosun serve`
//! without `--dev`:
//!
//! - `bosun ca init` on a running server, `bosun ca issue-device`, then `mosquitto_pub
//!   --cert/--key` publishes telemetry; `openssl s_client` completes the mutual handshake;
//! - refusals at the TLS handshake (expired, unregistered CA, revoked serial) and at
//!   CONNECT (CN ≠ client id: 0x87, disabled device: 0x8A), each counted by reason;
//! - a CSR made by `openssl req` on the "device", signed by `bosun ca issue-device --csr`;
//! - revoking the certificate of a live connection closes it within a second, with
//!   `bosun ca revoke` or with a CRL made by `openssl ca -gencrl` and imported.
//!
//! Every broker is on free loopback ports; every wait has a deadline.
#![allow(clippy::unwrap_used)]

mod common;
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Bosun;
use serde_json::json;
use support::{wait_until, Client, STEP};

/// The device CA directory is checked twice a second; allow for a loaded machine.
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A hub without `--dev`, with the built-in device CA made after it started (so the
/// reload path is what enables client certificates).
fn hub() -> Bosun {
    let hub = Bosun::launch(&[]).no_dev().start();
    ca(&hub, &["init"]);
    // Client certificates are requested once the watcher picked the new CA up.
    let ok = wait_until(RELOAD_DEADLINE, || {
        hub.stderr().contains("TLS certificate loaded")
    });
    assert!(ok, "device CA not picked up\n{}", hub.stderr());
    hub
}

/// `bosun ca ARGS --data-dir DATA`, which must succeed; its stdout.
fn ca(hub: &Bosun, args: &[&str]) -> String {
    let mut all = vec!["ca"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", path_str(hub.data_dir())]);
    let out = common::run(&all, &[]);
    assert!(
        out.status.success(),
        "bosun {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Registers an x509 device.
fn x509_device(hub: &Bosun, id: &str) {
    let r = hub.api(
        "POST",
        "/api/devices",
        Some(&json!({"deviceId": id, "authKind": "x509"})),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Issues a certificate for `id` into `dir`: (cert, key).
fn issue(hub: &Bosun, id: &str, dir: &Path, days: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    ca(
        hub,
        &[
            "issue-device",
            "--id",
            id,
            "--out-dir",
            path_str(dir),
            "--days",
            days,
        ],
    );
    (dir.join(format!("{id}.pem")), dir.join(format!("{id}.key")))
}

/// One `mosquitto_pub -V 5 -d` of a telemetry message over TLS with a client
/// certificate, as client `client`; its output (it exits on its own either way).
fn publish(addr: SocketAddr, cafile: &Path, cert: &Path, key: &Path, client: &str) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(["-V", "5", "-d", "-q", "1", "-i", client])
        .args(["--cafile", path_str(cafile)])
        .args(["--cert", path_str(cert), "--key", path_str(key)])
        .args(["-t", &format!("devices/{client}/messages/events/")])
        .args(["-m", "{\"t\":21.5}"])
        .stdin(Stdio::null())
        .output()
        .expect("run mosquitto_pub")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The value of `bosun_…{reason="…"}`, polled until at least `want`.
fn wait_reason(hub: &Bosun, metric: &str, reason: &str, want: u64) {
    let line = format!("{metric}{{reason=\"{reason}\"}} ");
    let mut last = None;
    let ok = wait_until(STEP, || {
        last = hub
            .http_get("/metrics")
            .body
            .lines()
            .find_map(|l| l.strip_prefix(&line).map(str::to_owned))
            .and_then(|v| v.trim().parse::<u64>().ok());
        last.is_some_and(|n| n >= want)
    });
    assert!(ok, "{metric} {reason:?} is {last:?}\n{}", hub.stderr());
}

const TLS_REFUSALS: &str = "bosun_tls_client_cert_refusals_total";
const AUTH_REFUSALS: &str = "bosun_auth_refusals_total";

#[test]
fn a_device_certificate_from_the_built_in_ca_publishes_and_openssl_handshakes() {
    let hub = hub();
    let cafile = hub.data_dir().join("tls/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    x509_device(&hub, "dev-1");
    let (cert, key) = issue(&hub, "dev-1", dir.path(), "30");
    let out = publish(hub.mqtts_addr(), &cafile, &cert, &key, "dev-1");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("received PUBACK"), "{}", text(&out));

    // The mutual handshake as OpenSSL sees it.
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &hub.mqtts_addr().to_string()])
        .args(["-CAfile", path_str(&cafile), "-verify_return_error"])
        .args(["-cert", path_str(&cert), "-key", path_str(&key)]);
    let mut client = Client::spawn("openssl s_client", cmd);
    let status = client.wait_exit(STEP);
    assert!(status.success(), "{}", client.dump());
    let out = client.stdout_lines().join("\n");
    assert!(
        out.contains("Acceptable client certificate CA names"),
        "{out}"
    );
    assert!(out.contains("bosun device CA"), "{out}");

    // `bosun ca list` shows the built-in CA.
    assert!(ca(&hub, &["list"]).starts_with("bosun\t"));
}

#[test]
fn refusals_expired_unknown_ca_revoked_cn_mismatch_and_disabled() {
    let hub = hub();
    let cafile = hub.data_dir().join("tls/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    for id in ["dev-a", "dev-b", "dev-old", "dev-rev", "dev-off"] {
        x509_device(&hub, id);
    }

    // Expired: valid until the moment it was issued.
    let (cert, key) = issue(&hub, "dev-old", &dir.path().join("old"), "0");
    std::thread::sleep(Duration::from_millis(1100));
    let out = publish(hub.mqtts_addr(), &cafile, &cert, &key, "dev-old");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("certificate expired"), "{}", text(&out));
    wait_reason(&hub, TLS_REFUSALS, "certificate expired", 1);

    // A self-signed certificate (an unregistered CA), made by OpenSSL.
    let (ss_cert, ss_key) = (dir.path().join("ss.pem"), dir.path().join("ss.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=dev-a"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=clientAuth"])
        .args(["-keyout", path_str(&ss_key), "-out", path_str(&ss_cert)])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let out = publish(hub.mqtts_addr(), &cafile, &ss_cert, &ss_key, "dev-a");
    assert!(!out.status.success(), "{}", text(&out));
    wait_reason(&hub, TLS_REFUSALS, "unknown CA", 1);

    // Revoked by serial (as OpenSSL prints it: upper case).
    let (cert, key) = issue(&hub, "dev-rev", &dir.path().join("rev"), "30");
    let serial = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in", path_str(&cert)])
        .output()
        .unwrap();
    let serial = String::from_utf8_lossy(&serial.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_owned();
    ca(&hub, &["revoke", "--serial", &serial]);
    let ok = wait_until(RELOAD_DEADLINE, || {
        let out = publish(hub.mqtts_addr(), &cafile, &cert, &key, "dev-rev");
        text(&out).contains("certificate revoked")
    });
    assert!(ok, "revoked certificate still accepted\n{}", hub.stderr());
    wait_reason(&hub, TLS_REFUSALS, "certificate revoked", 1);

    // A valid certificate for dev-a, used as client id dev-b: 0x87.
    let (cert, key) = issue(&hub, "dev-a", &dir.path().join("a"), "30");
    let out = publish(hub.mqtts_addr(), &cafile, &cert, &key, "dev-b");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("CONNACK (135)"), "{}", text(&out));
    wait_reason(
        &hub,
        AUTH_REFUSALS,
        "certificate CN does not match client id",
        1,
    );

    // A disabled device: 0x8A.
    let (cert, key) = issue(&hub, "dev-off", &dir.path().join("off"), "30");
    let r = hub.api(
        "PATCH",
        "/api/devices/dev-off",
        Some(&json!({"status": "disabled"})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let out = publish(hub.mqtts_addr(), &cafile, &cert, &key, "dev-off");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("CONNACK (138)"), "{}", text(&out));
    wait_reason(&hub, AUTH_REFUSALS, "device disabled", 1);
}

#[test]
fn a_device_generated_csr_is_signed_and_connects() {
    let hub = hub();
    let cafile = hub.data_dir().join("tls/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    x509_device(&hub, "dev-c");
    let (key, csr, cert) = (
        dir.path().join("dev-c.key"),
        dir.path().join("dev-c.csr"),
        dir.path().join("dev-c.pem"),
    );
    let made = Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=dev-c"])
        .args(["-keyout", path_str(&key), "-out", path_str(&csr)])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let out = ca(
        &hub,
        &[
            "issue-device",
            "--csr",
            path_str(&csr),
            "--out",
            path_str(&cert),
        ],
    );
    assert!(out.contains("device:      dev-c"), "{out}");
    let out = publish(hub.mqtts_addr(), &cafile, &cert, &key, "dev-c");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("received PUBACK"), "{}", text(&out));
}

#[test]
fn revoking_a_live_connections_certificate_closes_it_within_a_second() {
    let hub = hub();
    let cafile = hub.data_dir().join("tls/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    x509_device(&hub, "dev-live");
    let (cert, key) = issue(&hub, "dev-live", dir.path(), "30");
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &hub.mqtts_addr().port().to_string(),
    ])
    .args(["-V", "5", "-d", "-i", "dev-live"])
    .args(["--cafile", path_str(&cafile)])
    .args(["--cert", path_str(&cert), "--key", path_str(&key)])
    .args(["-t", "devices/dev-live/messages/devicebound/#"]);
    let sub = Client::spawn("mosquitto_sub", cmd);
    let connected = || {
        hub.api("GET", "/api/devices/dev-live", None, &[]).json()["connectionState"] == "connected"
    };
    assert!(wait_until(STEP, connected), "{}", hub.stderr());

    let pem = std::fs::read_to_string(&cert).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(pem.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let serial = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_owned();
    let revoked_at = Instant::now();
    ca(&hub, &["revoke", "--serial", &serial]);
    let closed = wait_until(RELOAD_DEADLINE, || !connected());
    let took = revoked_at.elapsed();
    assert!(closed, "still connected\n{}\n{}", hub.stderr(), sub.dump());
    // Twice a second checked, so within a second; generous for loaded CI machines.
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    assert!(
        hub.stderr()
            .contains("closing a connection whose client certificate was revoked"),
        "{}",
        hub.stderr()
    );
}

#[test]
fn the_readme_three_commands_connect_a_device() {
    // README "From nothing to connected in three commands": no `ca init` first, the
    // first issue-device makes the CA, the running server picks it up.
    let hub = Bosun::launch(&[]).no_dev().start();
    let cafile = hub.data_dir().join("tls/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    x509_device(&hub, "dev-1");
    let (cert, key) = issue(&hub, "dev-1", dir.path(), "365");
    let ok = wait_until(RELOAD_DEADLINE, || {
        publish(hub.mqtts_addr(), &cafile, &cert, &key, "dev-1")
            .status
            .success()
    });
    assert!(ok, "{}", hub.stderr());
}

/// A CRL of the built-in intermediate revoking `cert`, made by `openssl ca` (its own
/// database in `dir`): what a manufacturer's CA would publish.
fn openssl_crl(hub: &Bosun, cert: &Path, dir: &Path) -> PathBuf {
    let config = dir.join("ca.cnf");
    let conf = format!(
        "[ca]\ndefault_ca = crl_ca\n[crl_ca]\ndatabase = {}\ncrlnumber = {}\n\
         default_md = sha256\ndefault_crl_days = 30\n",
        path_str(&dir.join("index.txt")),
        path_str(&dir.join("crlnumber")),
    );
    std::fs::write(&config, conf).unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    let ca_dir = hub.data_dir().join("ca");
    let crl = dir.join("line.pem");
    let openssl_ca = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(["ca", "-batch", "-config", path_str(&config)])
            .args(["-keyfile", path_str(&ca_dir.join("issuing.key"))])
            .args(["-cert", path_str(&ca_dir.join("issuing.pem"))])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl ca {args:?}: {}", text(&out));
    };
    openssl_ca(&["-revoke", path_str(cert)]);
    openssl_ca(&["-gencrl", "-out", path_str(&crl)]);
    crl
}

#[test]
fn an_imported_crl_closes_the_live_connection_it_revokes() {
    let hub = hub();
    let cafile = hub.data_dir().join("tls/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    for id in ["dev-crl", "dev-kept"] {
        x509_device(&hub, id);
    }
    let (cert, key) = issue(&hub, "dev-crl", &dir.path().join("crl"), "30");
    let (kept_cert, kept_key) = issue(&hub, "dev-kept", &dir.path().join("kept"), "30");
    let subscribe = |id: &str, cert: &Path, key: &Path| {
        // stdbuf: mosquitto_sub block-buffers stdout into a pipe.
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "mosquitto_sub", "-h", "127.0.0.1"])
            .args(["-p", &hub.mqtts_addr().port().to_string()])
            .args(["-V", "5", "-d", "-i", id])
            .args(["--cafile", path_str(&cafile)])
            .args(["--cert", path_str(cert), "--key", path_str(key)])
            .args(["-t", &format!("devices/{id}/messages/devicebound/#")]);
        Client::spawn("mosquitto_sub", cmd)
    };
    let sub = subscribe("dev-crl", &cert, &key);
    let kept = subscribe("dev-kept", &kept_cert, &kept_key);
    let state = |id: &str| {
        hub.api("GET", &format!("/api/devices/{id}"), None, &[])
            .json()["connectionState"]
            .clone()
    };
    let connected = |id: &str| state(id) == "connected";
    assert!(
        wait_until(STEP, || connected("dev-crl") && connected("dev-kept")),
        "{}",
        hub.stderr()
    );

    let crl = openssl_crl(&hub, &cert, dir.path());
    let import = common::run(
        &[
            "ca",
            "import-crl",
            path_str(&crl),
            "--data-dir",
            path_str(hub.data_dir()),
        ],
        &[],
    );
    assert!(import.status.success(), "{}", text(&import));
    let imported_at = Instant::now();
    // mosquitto_sub prints the server's DISCONNECT (0x87 = 135) with -d.
    let disconnected = wait_until(RELOAD_DEADLINE, || {
        sub.stdout_lines()
            .iter()
            .any(|l| l.contains("DISCONNECT") && l.contains("135"))
    });
    let took = imported_at.elapsed();
    assert!(
        disconnected,
        "not disconnected\n{}\n{}",
        sub.dump(),
        hub.stderr()
    );
    // Checked twice a second: within a second, with slack for a loaded machine.
    eprintln!("closed {took:?} after the CRL import");
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    assert!(
        wait_until(STEP, || !connected("dev-crl")),
        "{}",
        hub.stderr()
    );
    assert!(
        hub.stderr()
            .contains("closing a connection whose client certificate was revoked"),
        "{}",
        hub.stderr()
    );
    // Another certificate of the same CA stays connected, and the revoked one cannot
    // come back: its handshake is refused by the CRL.
    assert!(connected("dev-kept"), "{}", kept.dump());
    let out = publish(hub.mqtts_addr(), &cafile, &cert, &key, "dev-crl");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("certificate revoked"), "{}", text(&out));
    wait_reason(&hub, TLS_REFUSALS, "certificate revoked", 1);
}
