//! The broker as its own certificate authority, so MQTT over TLS works on first start.
//!
//! Owns `data_dir/tls/`: `ca.pem` and `ca.key` (the local CA, created once and then
//! kept, because clients are told to trust it) and `server.pem`/`server.key` (a server
//! certificate signed by it). The server certificate is reused across starts while it
//! still verifies, against the CA, for every name the broker must answer to (the listen
//! IP, `localhost`, 127.0.0.1 and the configured extra names) a month from now; otherwise
//! it is reissued with the same CA, so clients keep working without new trust.
//!
//! Verification is rustls' own (webpki): the same code a client would run, and no X.509
//! parser of our own. Loading the files into a `ServerConfig` is the parent's job.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::RootCertStore;

use super::pem::{encode, write_file};
use super::{provider, TlsError};

/// The CA certificate clients trust (`--cafile`).
pub(crate) const CA_CERT: &str = "ca.pem";
/// The CA's private key; never leaves the data directory.
pub(crate) const CA_KEY: &str = "ca.key";
/// The server certificate the TLS listener presents.
pub(crate) const SERVER_CERT: &str = "server.pem";
/// Its private key.
pub(crate) const SERVER_KEY: &str = "server.key";

const DAY: Duration = Duration::from_secs(24 * 3600);
/// The local CA outlives any sensible deployment of one data directory; replacing it
/// means touching every client's trust store.
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// Server certificates are cheap to reissue (same CA) but are only checked at start,
/// so they too are long-lived; see `RENEW_MARGIN`.
const SERVER_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A start this close to the server certificate's expiry reissues it.
const RENEW_MARGIN: Duration = Duration::from_secs(30 * 24 * 3600);
/// Every generated certificate is valid from January 1st of this year: a gateway that
/// boots without a real-time clock (1970 until NTP answers) must neither see the CA as
/// "not yet valid" and replace it, nor serve a certificate that clients with lagging
/// clocks reject.
const NOT_BEFORE_YEAR: i32 = 1975;

/// The names the server certificate must cover: what clients on this machine type
/// (`localhost`, 127.0.0.1), the listen IP unless it is a wildcard, and the extras.
/// An extra that is neither a DNS name nor an IP address is an error here, before
/// anything is issued: a certificate for it could never verify, and every start would
/// try to reissue it.
pub(crate) fn required_names(listen: IpAddr, extra: &[String]) -> Result<Vec<String>, TlsError> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    add("localhost".into());
    add("127.0.0.1".into());
    if !listen.is_unspecified() {
        add(listen.to_string());
    }
    for name in extra {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if ServerName::try_from(name).is_err() {
            return Err(TlsError::InvalidName {
                name: name.to_owned(),
            });
        }
        add(name.to_owned());
    }
    Ok(names)
}

/// Makes sure `dir` holds a CA and a server certificate good for `names`, creating or
/// reissuing what is missing or no longer fits.
pub(crate) fn ensure(dir: &Path, names: &[String]) -> Result<(), TlsError> {
    super::pem::create_private_dir(dir)?;
    let mut ca = match load_ca(dir)? {
        Some(ca) => ca,
        None => {
            tracing::info!(dir = %dir.display(), "creating a local certificate authority for MQTT over TLS");
            create_ca(dir)?
        }
    };
    let now = SystemTime::now();
    if let Err(why) = server_fits(dir, &ca, names, now + RENEW_MARGIN) {
        tracing::info!(reason = %why, ?names, "issuing a new TLS server certificate");
        issue_server(dir, &ca, names, now)?;
        if let Err(why) = server_fits(dir, &ca, names, now + RENEW_MARGIN) {
            // A fresh certificate that does not verify means the CA itself is unusable
            // (expired, or ca.pem no longer matches ca.key).
            tracing::warn!(
                reason = %why,
                ca = %dir.join(CA_CERT).display(),
                "replacing the local certificate authority; clients must trust the new ca.pem"
            );
            ca = create_ca(dir)?;
            issue_server(dir, &ca, names, now)?;
            server_fits(dir, &ca, names, now + RENEW_MARGIN).map_err(|reason| {
                TlsError::LocalCa {
                    path: dir.join(SERVER_CERT),
                    reason,
                }
            })?;
        }
    }
    Ok(())
}

/// The local CA: its key and its certificate as written to `ca.pem`.
struct Ca {
    key: KeyPair,
    cert: CertificateDer<'static>,
}

/// The CA from `dir`; `None` when either file is missing (a CA without its key cannot
/// sign, and one without its certificate was never handed out). Present but unreadable
/// files are an error: quietly replacing a CA that clients trust would lock them out.
fn load_ca(dir: &Path) -> Result<Option<Ca>, TlsError> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {}
        (false, false) => return Ok(None),
        (cert, _) => {
            let missing = if cert { &key_path } else { &cert_path };
            tracing::warn!(
                missing = %missing.display(),
                "half a local CA: replacing it; clients must trust the new ca.pem"
            );
            return Ok(None);
        }
    }
    let key = super::pem::read_key_pair(&key_path)?;
    let cert = CertificateDer::from_pem_file(&cert_path)
        .map_err(|source| super::cert_read_error(cert_path.clone(), source))?;
    Ok(Some(Ca { key, cert }))
}

/// The CA's distinguished name and extensions, derived from its key alone so that the
/// issuer of a reissued server certificate matches `ca.pem` exactly. The key's tail in
/// the name keeps CAs of different brokers apart in a client's trust store.
fn ca_params(key: &KeyPair, now: SystemTime) -> CertificateParams {
    let tag: String = key
        .public_key_raw()
        .iter()
        .rev()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("bosun local CA {tag}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "bosun");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(NOT_BEFORE_YEAR, 1, 1);
    params.not_after =
        rcgen::date_time_ymd(1970, 1, 1) + days_since_epoch(valid_until(now, CA_VALIDITY));
    params
}

fn create_ca(dir: &Path) -> Result<Ca, TlsError> {
    let key_path = dir.join(CA_KEY);
    let generate = |source| TlsError::Generate {
        path: key_path.clone(),
        source,
    };
    let key = KeyPair::generate().map_err(generate)?;
    let cert = ca_params(&key, SystemTime::now())
        .self_signed(&key)
        .map_err(generate)?;
    // Key first: a crash in between leaves no certificate that nothing can sign for.
    write_file(
        &key_path,
        &encode("PRIVATE KEY", &key.serialize_der()),
        true,
    )?;
    write_file(
        &dir.join(CA_CERT),
        &encode("CERTIFICATE", cert.der()),
        false,
    )?;
    Ok(Ca {
        key,
        cert: cert.der().clone(),
    })
}

/// Signs a new server certificate (with a new key) for `names` and writes it.
fn issue_server(dir: &Path, ca: &Ca, names: &[String], now: SystemTime) -> Result<(), TlsError> {
    let cert_path = dir.join(SERVER_CERT);
    let generate = |source| TlsError::Generate {
        path: cert_path.clone(),
        source,
    };
    // rcgen signs with a `Certificate` of the issuer; rebuilding it from the key gives
    // the same name and key identifier as ca.pem, which is all a signature refers to.
    let issuer = ca_params(&ca.key, now)
        .self_signed(&ca.key)
        .map_err(generate)?;
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(generate)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "bosun");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "bosun");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = rcgen::date_time_ymd(NOT_BEFORE_YEAR, 1, 1);
    params.not_after =
        rcgen::date_time_ymd(1970, 1, 1) + days_since_epoch(valid_until(now, SERVER_VALIDITY));
    let cert = params.signed_by(&key, &issuer, &ca.key).map_err(generate)?;
    write_file(
        &dir.join(SERVER_KEY),
        &encode("PRIVATE KEY", &key.serialize_der()),
        true,
    )?;
    write_file(&cert_path, &encode("CERTIFICATE", cert.der()), false)
}

/// Whether the server certificate in `dir` is usable: its key matches, and it verifies
/// against the CA for every name at time `at`. The error says why not, for the log.
fn server_fits(dir: &Path, ca: &Ca, names: &[String], at: SystemTime) -> Result<(), String> {
    let (cert_path, key_path) = (dir.join(SERVER_CERT), dir.join(SERVER_KEY));
    if !cert_path.exists() || !key_path.exists() {
        return Err("no server certificate yet".into());
    }
    let leaf = CertificateDer::from_pem_file(&cert_path)
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    rustls::sign::CertifiedKey::from_der(vec![leaf.clone()], key, &provider()).map_err(|e| {
        format!(
            "{} does not match {}: {e}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.cert.clone())
        .map_err(|e| format!("unusable CA certificate: {e}"))?;
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider()))
            .build()
            .map_err(|e| format!("cannot build a verifier: {e}"))?;
    let since_epoch = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970".to_owned())?;
    let at = UnixTime::since_unix_epoch(since_epoch);
    for name in names {
        let server_name = ServerName::try_from(name.as_str())
            .map_err(|_| format!("{name:?} is not a DNS name or IP address"))?;
        verifier
            .verify_server_cert(&leaf, &[], &server_name, &[], at)
            .map_err(|e| format!("not valid for {name} a month from now: {e}"))?;
    }
    Ok(())
}

/// When a certificate issued at `now` for `validity` expires. A clock before 2025 is
/// wrong (a gateway without a real-time clock, before NTP): counting from it would
/// issue certificates that are already expired once the clock is set.
fn valid_until(now: SystemTime, validity: Duration) -> SystemTime {
    let floor = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600); // 2025-01-01
    now.max(floor) + validity
}

/// Time since the epoch in whole days: added to `rcgen::date_time_ymd(1970, 1, 1)` it
/// gives rcgen's date type without a direct dependency on `time`. A day's precision is
/// plenty for certificate validity.
fn days_since_epoch(t: SystemTime) -> Duration {
    let since_epoch = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    DAY * (since_epoch.as_secs() / DAY.as_secs()) as u32
}

/// Where the generated files of a data directory live.
pub(crate) fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        required_names("127.0.0.1".parse().unwrap(), &["broker.example".into()]).unwrap()
    }

    #[test]
    fn first_run_creates_then_later_runs_reuse() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        ensure(&dir, &names()).unwrap();
        let first: Vec<Vec<u8>> = [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY]
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect();
        ensure(&dir, &names()).unwrap();
        let second: Vec<Vec<u8>> = [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY]
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect();
        assert_eq!(first, second, "a second start must reuse every file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in [CA_KEY, SERVER_KEY] {
                let mode = std::fs::metadata(dir.join(key))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{key}");
            }
        }
    }

    #[test]
    fn a_new_listen_address_reissues_the_server_certificate_with_the_same_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        ensure(&dir, &names()).unwrap();
        let ca = std::fs::read(dir.join(CA_CERT)).unwrap();
        let server = std::fs::read(dir.join(SERVER_CERT)).unwrap();
        let moved = required_names("10.1.2.3".parse().unwrap(), &[]).unwrap();
        ensure(&dir, &moved).unwrap();
        assert_eq!(std::fs::read(dir.join(CA_CERT)).unwrap(), ca, "same CA");
        assert_ne!(std::fs::read(dir.join(SERVER_CERT)).unwrap(), server);
        let loaded = load_ca(&dir).unwrap().unwrap();
        server_fits(&dir, &loaded, &moved, SystemTime::now()).unwrap();
        // A wildcard listen address adds no name, so the old set still covers it.
        let wildcard = required_names("0.0.0.0".parse().unwrap(), &[]).unwrap();
        let before = std::fs::read(dir.join(SERVER_CERT)).unwrap();
        ensure(&dir, &wildcard).unwrap();
        assert_eq!(std::fs::read(dir.join(SERVER_CERT)).unwrap(), before);
    }

    #[test]
    fn a_corrupt_ca_key_is_an_error_naming_the_file_not_a_new_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        ensure(&dir, &names()).unwrap();
        std::fs::write(dir.join(CA_KEY), "not a key").unwrap();
        let err = ensure(&dir, &names()).unwrap_err();
        assert!(err.to_string().contains("ca.key"), "{err}");
    }

    #[test]
    fn names_are_deduplicated_and_wildcards_skipped() {
        let n = required_names(
            "0.0.0.0".parse().unwrap(),
            &["localhost".into(), " ".into()],
        )
        .unwrap();
        assert_eq!(n, ["localhost", "127.0.0.1"]);
    }

    #[test]
    fn a_name_no_certificate_can_carry_is_refused_up_front() {
        let err = required_names("127.0.0.1".parse().unwrap(), &["bad name!".into()]).unwrap_err();
        assert!(err.to_string().contains("bad name!"), "{err}");
    }
}
