//! The updater against a small HTTPS image server (tokio-rustls, a throwaway
//! certificate): a good image installs and asks for a reboot; a resumed download
//! verifies; every refusal ends in `failed` with its reason and the active slot
//! untouched; a crashing image rolls back at its health deadline; a kill (a new
//! `Updater` on the same directory) counts a boot attempt.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ota::{Algorithm, Manifest, SigningKey, UpdateState};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::record::Slot;
use super::*;

/// What the test server does.
struct Served {
    image: Vec<u8>,
    /// Cut the first response after this many body bytes.
    cut_first: Option<usize>,
    /// Requests that carried a `Range` header.
    ranged: AtomicUsize,
    requests: AtomicUsize,
    /// Where each connection came from.
    peers: std::sync::Mutex<Vec<std::net::IpAddr>>,
}

/// An HTTPS server for `served`; returns its address and the client TLS config.
async fn server(served: Arc<Served>) -> (SocketAddr, Arc<ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("cert");
    let cert_der = CertificateDer::from(cert.cert.der().to_vec());
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).expect("root");
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            if let Ok(mut peers) = served.peers.lock() {
                peers.push(peer.ip());
            }
            let acceptor = acceptor.clone();
            let served = served.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    answer(&mut tls, &served).await;
                }
            });
        }
    });
    (addr, Arc::new(client))
}

/// One request: the image from the `Range` offset.
async fn answer(stream: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin), served: &Served) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let n = served.requests.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head).to_string();
    let offset = head
        .lines()
        .find_map(|l| l.strip_prefix("Range: bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let len = served.image.len();
    let response = match offset {
        Some(start) if start >= len => {
            format!("HTTP/1.1 416 R\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n")
                .into_bytes()
        }
        Some(start) => {
            served.ranged.fetch_add(1, Ordering::SeqCst);
            let mut r = format!("HTTP/1.1 206 P\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{len}\r\n\r\n", len - start, len - 1).into_bytes();
            r.extend_from_slice(&served.image[start..]);
            r
        }
        None => {
            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
            let body = match served.cut_first {
                Some(cut) if n == 0 => &served.image[..cut],
                _ => &served.image[..],
            };
            r.extend_from_slice(body);
            r
        }
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

struct Setup {
    dir: tempfile::TempDir,
    key: SigningKey,
    served: Arc<Served>,
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
}

impl Setup {
    async fn new(image: &[u8], cut_first: Option<usize>) -> Setup {
        let served = Arc::new(Served {
            image: image.to_vec(),
            cut_first,
            ranged: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            peers: std::sync::Mutex::new(Vec::new()),
        });
        let (addr, tls) = server(served.clone()).await;
        Setup {
            dir: tempfile::tempdir().expect("dir"),
            key: SigningKey::generate(Algorithm::Ed25519).expect("key"),
            served,
            addr,
            tls,
        }
    }

    fn options(&self) -> OtaOptions {
        self.options_in(self.dir.path())
    }

    fn options_in(&self, dir: &std::path::Path) -> OtaOptions {
        let mut o = OtaOptions::new(self.key.public_key(), dir.into(), "hw-a");
        o.server = Some(self.addr.to_string());
        o.health_deadline = Duration::from_millis(300);
        o
    }

    fn updater(&self) -> Updater {
        Updater::boot(
            self.options(),
            "1.0.0",
            Some(self.tls.clone()),
            ("127.0.0.1:1883", None),
        )
        .expect("boot")
    }

    fn desired(&self, manifest: &Manifest) -> Value {
        let id = manifest.sha256.to_hex();
        json!({ "id": id, "url": format!("/api/firmware/{id}/image"), "manifest": manifest })
    }

    fn manifest(&self, image: &[u8], version: &str, hw: &str) -> Manifest {
        let version = Version::parse(version).expect("version");
        Manifest::describe(image, version, vec![hw.into()])
            .sign(&self.key)
            .expect("sign")
    }
}

/// Events until a reboot request or a final report.
async fn run_to_end(updater: &mut Updater) -> (Vec<ReportedFirmware>, bool) {
    let mut reports = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), updater.next_event())
            .await
            .expect("an event within 10 s");
        match updater.on_event(event) {
            Step::Reboot => return (reports, true),
            Step::Report(r) => {
                let done = matches!(r.state, UpdateState::Failed | UpdateState::RolledBack);
                reports.push(r);
                if done {
                    return (reports, false);
                }
            }
            Step::Continue => {}
        }
    }
}

fn states(reports: &[ReportedFirmware]) -> Vec<UpdateState> {
    let mut s: Vec<UpdateState> = reports.iter().map(|r| r.state).collect();
    s.dedup();
    s
}

#[tokio::test]
async fn installs_confirms_and_rolls_back_on_request() {
    let image: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let s = Setup::new(&image, None).await;
    let manifest = s.manifest(&image, "2.0.0", "hw-a");
    let mut u = s.updater();
    assert_eq!(u.version(), "1.0.0");
    assert_eq!(u.on_desired(&s.desired(&manifest), true), Step::Continue);
    let (reports, reboot) = run_to_end(&mut u).await;
    assert!(reboot, "{reports:?}");
    assert_eq!(
        states(&reports),
        [
            UpdateState::Downloading,
            UpdateState::Verifying,
            UpdateState::Installing,
            UpdateState::Rebooting
        ]
    );
    assert_eq!(
        std::fs::read(s.dir.path().join("slot-b.bin")).expect("slot"),
        image
    );
    u.reboot();
    assert_eq!(u.version(), "2.0.0");
    assert!(u.deadline().is_some() && !u.crashed());
    // The same desired value again (a reconnect's twin GET) does nothing.
    assert_eq!(u.on_desired(&s.desired(&manifest), true), Step::Continue);
    let [Step::Report(ok), Step::Continue] = &u.on_healthy()[..] else {
        panic!("confirm")
    };
    assert_eq!(
        (ok.state, ok.version.to_string()),
        (UpdateState::Succeeded, "2.0.0".into())
    );
    assert_eq!(u.deadline(), None);
    // The hub's rollback patch: back to 1.0.0, reported after the reboot.
    assert_eq!(
        u.on_desired(&json!({ "rollBack": true }), false),
        Step::Reboot
    );
    u.reboot();
    assert_eq!(u.version(), "1.0.0");
    let latest = u.latest().cloned().expect("latest");
    assert_eq!(latest.state, UpdateState::RolledBack);
}

#[tokio::test]
async fn downloads_connect_from_the_source_address() {
    let image: Vec<u8> = (0..20_000u32).map(|i| (i % 13) as u8).collect();
    let s = Setup::new(&image, None).await;
    let manifest = s.manifest(&image, "1.2.0", "hw-a");
    let from: std::net::IpAddr = "127.0.0.3".parse().expect("ip");
    let hub = ("127.0.0.1:1883", Some(from));
    let mut u = Updater::boot(s.options(), "1.0.0", Some(s.tls.clone()), hub).expect("boot");
    u.on_desired(&s.desired(&manifest), true);
    let (reports, reboot) = run_to_end(&mut u).await;
    assert!(reboot, "{reports:?}");
    let peers = s.served.peers.lock().expect("peers").clone();
    assert_eq!(peers, [from], "every download connection from 127.0.0.3");
}

#[tokio::test]
async fn a_cut_download_resumes_with_range() {
    let image: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
    let s = Setup::new(&image, Some(40_000)).await;
    let manifest = s.manifest(&image, "1.1.0", "hw-a");
    let mut u = s.updater();
    u.on_desired(&s.desired(&manifest), true);
    let (reports, reboot) = run_to_end(&mut u).await;
    assert!(reboot, "{reports:?}");
    assert_eq!(
        s.served.ranged.load(Ordering::SeqCst),
        1,
        "one resumed request"
    );
}

#[tokio::test]
async fn a_kill_mid_download_resumes_from_the_slot() {
    let image: Vec<u8> = (0..50_000u32).map(|i| (i % 11) as u8).collect();
    let s = Setup::new(&image, None).await;
    let manifest = s.manifest(&image, "1.1.0", "hw-a");
    // A previous life wrote the first 20,000 bytes, then died.
    let mut record = BootRecord::factory(Version::parse("1.0.0").expect("v"));
    record.start_download(&manifest.sha256.to_hex());
    let slots = Slots::open(s.dir.path()).expect("slots");
    slots.save(&record).expect("save");
    std::fs::write(slots.path(Slot::B), &image[..20_000]).expect("partial");
    let mut u = s.updater();
    u.on_desired(&s.desired(&manifest), true);
    let (_, reboot) = run_to_end(&mut u).await;
    assert!(reboot);
    assert_eq!(s.served.ranged.load(Ordering::SeqCst), 1);
    assert_eq!(std::fs::read(slots.path(Slot::B)).expect("slot"), image);
}

/// Runs an update that must be refused (on a fresh device); returns the reason.
async fn refused(s: &Setup, desired: Value) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let mut u = Updater::boot(
        s.options_in(dir.path()),
        "1.0.0",
        Some(s.tls.clone()),
        ("h:1", None),
    )
    .expect("boot");
    u.on_desired(&desired, true);
    let (reports, reboot) = run_to_end(&mut u).await;
    assert!(!reboot);
    let last = reports.last().cloned().expect("a report");
    assert_eq!(last.state, UpdateState::Failed);
    assert_eq!(u.version(), "1.0.0", "active slot untouched");
    let record = Slots::open(dir.path())
        .expect("slots")
        .load()
        .expect("load");
    assert_eq!(record.map(|r| r.active), Some(Slot::A));
    last.reason.unwrap_or_default()
}

#[tokio::test]
async fn refusals_leave_the_active_slot() {
    let image = b"a good image, signed".to_vec();
    let s = Setup::new(&image, None).await;
    // Tampered: the server's bytes are not the signed ones.
    let mut other = image.clone();
    other[0] ^= 1;
    let tampered = s.manifest(&other, "2.0.0", "hw-a");
    let reason = refused(&s, s.desired(&tampered)).await;
    assert!(reason.contains("tampered"), "{reason}");
    // Wrong key: signed by a key this device does not trust.
    let stranger = SigningKey::generate(Algorithm::Ed25519).expect("key");
    let foreign = Manifest::describe(
        &image,
        Version::parse("2.0.0").expect("v"),
        vec!["hw-a".into()],
    )
    .sign(&stranger)
    .expect("sign");
    let reason = refused(&s, s.desired(&foreign)).await;
    assert!(reason.contains("not trusted"), "{reason}");
    // Downgrade and other hardware.
    let reason = refused(&s, s.desired(&s.manifest(&image, "0.9.0", "hw-a"))).await;
    assert!(reason.contains("older"), "{reason}");
    let reason = refused(&s, s.desired(&s.manifest(&image, "2.0.0", "hw-z"))).await;
    assert!(reason.contains("hardware"), "{reason}");
    // Truncated: the manifest announces more than the server has.
    let mut longer = Manifest::describe(
        &[image.clone(), vec![0; 10]].concat(),
        Version::parse("2.0.0").expect("v"),
        vec!["hw-a".into()],
    );
    longer = longer.sign(&s.key).expect("sign");
    let reason = refused(&s, s.desired(&longer)).await;
    assert!(reason.contains("truncated"), "{reason}");
}

#[tokio::test]
async fn a_crashing_image_rolls_back_at_its_deadline_and_kills_count() {
    let mut image = b"firmware ".to_vec();
    image.extend_from_slice(super::slots::CRASH_MARKER);
    let s = Setup::new(&image, None).await;
    let manifest = s.manifest(&image, "3.0.0", "hw-a");
    let mut u = s.updater();
    u.on_desired(&s.desired(&manifest), true);
    let (_, reboot) = run_to_end(&mut u).await;
    assert!(reboot);
    u.reboot();
    assert!(u.crashed() && u.version() == "3.0.0");
    let due = u.deadline().expect("deadline");
    assert_eq!(u.on_deadline(), Step::Continue, "not yet");
    tokio::time::sleep_until(due).await;
    assert_eq!(u.on_deadline(), Step::Reboot);
    u.reboot();
    assert_eq!(u.version(), "1.0.0");
    let latest = u.latest().cloned().expect("latest");
    assert_eq!(latest.state, UpdateState::Failed);
    assert!(latest
        .reason
        .unwrap_or_default()
        .contains("did not confirm"));
    // Killed during the trial instead: each new process is a boot attempt.
    let s = Setup::new(&image, None).await;
    let mut u = s.updater();
    u.on_desired(&s.desired(&s.manifest(&image, "3.0.0", "hw-a")), true);
    assert!(run_to_end(&mut u).await.1);
    drop(u);
    for _ in 0..record::MAX_BOOT_ATTEMPTS {
        assert_eq!(s.updater().version(), "3.0.0", "on trial");
    }
    let u = s.updater();
    assert_eq!(u.version(), "1.0.0", "attempts used up: rolled back");
    assert_eq!(u.latest().map(|l| l.state), Some(UpdateState::Failed));
}

#[test]
fn merge_patch_and_targets() {
    let mut v = json!({ "id": "x", "url": "/a" });
    merge(&mut v, &json!({ "rollBack": true, "url": null }));
    assert_eq!(v, json!({ "id": "x", "rollBack": true }));
    assert_eq!(host_of("[::1]:8443"), "::1");
    assert_eq!(host_of("hub.example:8443"), "hub.example");
}

#[tokio::test]
async fn boots_are_counted_across_processes_and_reported_at_connect() {
    let image: Vec<u8> = (0..10_000u32).map(|i| (i % 17) as u8).collect();
    let s = Setup::new(&image, None).await;
    let mut u = s.updater();
    assert_eq!(u.boots(), 1);
    assert_eq!(u.greeting(), json!({ "boots": 1 }), "nothing to report yet");
    let manifest = s.manifest(&image, "1.5.0", "hw-a");
    u.on_desired(&s.desired(&manifest), true);
    let (_, reboot) = run_to_end(&mut u).await;
    assert!(reboot);
    u.reboot();
    assert_eq!(u.boots(), 2);
    assert!(!u.on_healthy().is_empty(), "confirmed");
    let greeting = u.greeting();
    assert_eq!(greeting["boots"], 2);
    assert_eq!(greeting["state"], "succeeded", "{greeting}");
    assert_eq!(greeting["version"], "1.5.0", "{greeting}");
    drop(u);
    // A new process (a kill -9 and restart) counts on from boot.json.
    assert_eq!(s.updater().boots(), 3);
}
