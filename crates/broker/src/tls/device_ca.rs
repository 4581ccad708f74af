//! Device identity by X.509: the built-in device CA, the set of CAs whose certificates
//! the mqtts listener accepts from clients, and revocation.
//!
//! Owns `DATA_DIR/ca/` (files, not SQLite: rustls reads PEM, the broker watches files
//! for its server certificate already, and the operator can inspect and back them up
//! with ordinary tools):
//!
//! | file | what |
//! |---|---|
//! | `root.pem` | the built-in root CA's certificate (`bosun ca init`) |
//! | `root.key` | its key, unless `--root-out` put it elsewhere (offline) |
//! | `issuing.pem`, `issuing.key` | the intermediate that signs device certificates |
//! | `trusted/NAME.pem` | a registered device CA (trust anchor); `bosun.pem` is the intermediate |
//! | `crl/NAME.pem` | an imported certificate revocation list |
//! | `revoked` | serial numbers revoked by `bosun ca revoke`, one hex number a line |
//!
//! The commands (`bosun ca …`) write these files directly; a running broker notices the
//! change (the same stat-based watcher as the server certificate, every 2 s) and builds
//! a new client verifier. Verification is rustls' `WebPkiClientVerifier` (chain,
//! validity, key usage and CRLs), wrapped to also refuse serials in `revoked`.
//! Certificates are optional: a client without one goes on to token authentication.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::der;
use super::live::LiveCert;
use super::pem::{encode, write_file};
use super::{provider, Stamp, TlsError};

/// The built-in root CA certificate.
pub const ROOT_CERT: &str = "root.pem";
/// The built-in root CA key (when not written elsewhere).
pub const ROOT_KEY: &str = "root.key";
/// The intermediate that signs device certificates.
pub const ISSUING_CERT: &str = "issuing.pem";
/// Its key.
pub const ISSUING_KEY: &str = "issuing.key";
/// Directory of registered device CAs.
pub const TRUSTED_DIR: &str = "trusted";
/// Directory of imported CRLs.
pub const CRL_DIR: &str = "crl";
/// Serials revoked by `bosun ca revoke`.
pub const REVOKED: &str = "revoked";
/// The name under which the built-in intermediate is registered.
pub const BUILT_IN_NAME: &str = "bosun";

/// Validity of the built-in root and intermediate.
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// Device certificates are valid from this long before issuing, so a device whose
/// clock lags a little does not see a "not yet valid" certificate.
const BACKDATE: Duration = Duration::from_secs(3600);
/// Days a device certificate is valid when not told otherwise.
pub const DEFAULT_DEVICE_DAYS: u32 = 365;

/// `DATA_DIR/ca`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ca")
}

fn ca_error(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::DeviceCa {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn generate_error(path: &Path) -> impl Fn(rcgen::Error) -> TlsError + '_ {
    move |source| TlsError::Generate {
        path: path.to_owned(),
        source,
    }
}

/// Sets the validity to `[from, to]` (second precision), in rcgen's date type without
/// a direct dependency on `time`.
fn set_validity(params: &mut CertificateParams, from: SystemTime, to: SystemTime) {
    let since = |t: SystemTime| {
        Duration::from_secs(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        )
    };
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since(from);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since(to);
}

/// A short tag from a key, to tell CAs of different installations apart.
fn key_tag(key: &KeyPair) -> String {
    key.public_key_raw()
        .iter()
        .rev()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parameters of the built-in CAs, derived from the key alone so a signer rebuilt from
/// the key has exactly the name (and key identifier) of the certificate on disk.
fn ca_params(key: &KeyPair, root: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let name = if root {
        "bosun device root CA"
    } else {
        "bosun device CA"
    };
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} {}", key_tag(key)));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "bosun");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(if root { 1 } else { 0 }));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // From 1975 like the local TLS CA: a gateway without a clock must not distrust it.
    set_validity(
        &mut params,
        SystemTime::UNIX_EPOCH + Duration::from_secs(157_766_400),
        SystemTime::now() + CA_VALIDITY,
    );
    params
}

/// A random positive 16-byte serial number.
fn random_serial() -> Result<Vec<u8>, TlsError> {
    let mut serial = vec![0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
        .map_err(|_| ca_error(Path::new("-"), "the system random generator failed"))?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial)
}

/// Lower-case hex without leading zero bytes: how serials are compared and shown.
pub fn serial_hex(serial: &[u8]) -> String {
    let trimmed: &[u8] = match serial.iter().position(|&b| b != 0) {
        Some(i) => &serial[i..],
        None => &[0],
    };
    trimmed.iter().map(|b| format!("{b:02x}")).collect()
}

/// Normalises a serial typed by an operator (`0A:1b…`, `0x…`, any case) to
/// [`serial_hex`] form; `None` if it is not hex.
pub fn normalize_serial(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    let bytes: Option<Vec<u8>> = (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).ok())
        .collect();
    Some(serial_hex(&bytes?))
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The root certificate.
    pub root_cert: PathBuf,
    /// Where the root key was written.
    pub root_key: PathBuf,
    /// The intermediate's certificate (registered as device CA `bosun`).
    pub issuing_cert: PathBuf,
}

/// Creates the built-in root and intermediate (ECDSA P-256) and registers the
/// intermediate as a device CA. The root key goes to `root_out` if given (keep it
/// offline: it is only needed to make a new intermediate). Refuses to overwrite an
/// existing built-in CA.
pub fn init(data_dir: &Path, root_out: Option<&Path>) -> Result<Initialized, TlsError> {
    let dir = dir(data_dir);
    super::pem::create_private_dir(&dir)?;
    super::pem::create_private_dir(&dir.join(TRUSTED_DIR))?;
    let issuing_cert = dir.join(ISSUING_CERT);
    if issuing_cert.exists() {
        return Err(ca_error(
            &issuing_cert,
            "a built-in device CA exists already",
        ));
    }
    let root_key_path = root_out.map_or_else(|| dir.join(ROOT_KEY), Path::to_owned);
    let root_key = KeyPair::generate().map_err(generate_error(&root_key_path))?;
    let root = ca_params(&root_key, true)
        .self_signed(&root_key)
        .map_err(generate_error(&root_key_path))?;
    let issuing_key = KeyPair::generate().map_err(generate_error(&issuing_cert))?;
    let mut params = ca_params(&issuing_key, false);
    params.use_authority_key_identifier_extension = true;
    let issuing = params
        .signed_by(&issuing_key, &root, &root_key)
        .map_err(generate_error(&issuing_cert))?;
    write_file(
        &root_key_path,
        &encode("PRIVATE KEY", &root_key.serialize_der()),
        true,
    )?;
    write_file(
        &dir.join(ROOT_CERT),
        &encode("CERTIFICATE", root.der()),
        false,
    )?;
    write_file(
        &dir.join(ISSUING_KEY),
        &encode("PRIVATE KEY", &issuing_key.serialize_der()),
        true,
    )?;
    let issuing_pem = encode("CERTIFICATE", issuing.der());
    write_file(&issuing_cert, &issuing_pem, false)?;
    write_file(
        &dir.join(TRUSTED_DIR).join(format!("{BUILT_IN_NAME}.pem")),
        &issuing_pem,
        false,
    )?;
    Ok(Initialized {
        root_cert: dir.join(ROOT_CERT),
        root_key: root_key_path,
        issuing_cert,
    })
}

/// Whether `name` is usable as a file name for a registered CA or CRL.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// Registers an external CA (a manufacturer's): device certificates that chain to any
/// certificate in `cert` are accepted. Every certificate in the file must parse.
pub fn import(data_dir: &Path, name: &str, cert: &Path) -> Result<PathBuf, TlsError> {
    if !valid_name(name) {
        return Err(ca_error(
            cert,
            format!("{name:?} is not a usable CA name (letters, digits, - _ .)"),
        ));
    }
    let certs = read_certs(cert)?;
    let mut roots = RootCertStore::empty();
    for c in &certs {
        roots
            .add(c.clone())
            .map_err(|e| ca_error(cert, format!("not a usable CA certificate: {e}")))?;
    }
    let dir = dir(data_dir);
    super::pem::create_private_dir(&dir.join(TRUSTED_DIR))?;
    let target = dir.join(TRUSTED_DIR).join(format!("{name}.pem"));
    let text: String = certs.iter().map(|c| encode("CERTIFICATE", c)).collect();
    write_file(&target, &text, false)?;
    Ok(target)
}

/// Imports a CRL (PEM `X509 CRL`) under `crl/NAME.pem`; webpki checks it against the
/// issuing CA's key at each handshake.
pub fn import_crl(data_dir: &Path, file: &Path) -> Result<PathBuf, TlsError> {
    let crls = read_crls(file)?;
    if crls.is_empty() {
        return Err(ca_error(file, "no PEM X509 CRL in the file"));
    }
    for crl in &crls {
        webpki_crl_check(crl).map_err(|e| ca_error(file, e))?;
    }
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| valid_name(s))
        .unwrap_or("imported");
    let dir = dir(data_dir);
    super::pem::create_private_dir(&dir.join(CRL_DIR))?;
    let target = dir.join(CRL_DIR).join(format!("{name}.pem"));
    let text: String = crls.iter().map(|c| encode("X509 CRL", c)).collect();
    write_file(&target, &text, false)?;
    Ok(target)
}

/// Parses a CRL the way the verifier will, so a broken file is refused at import.
fn webpki_crl_check(crl: &CertificateRevocationListDer<'static>) -> Result<(), String> {
    // A verifier with no roots is refused before its CRLs are parsed, so build one
    // with a throwaway root.
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = ca_params(&key, true)
        .self_signed(&key)
        .map_err(|e| e.to_string())?;
    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).map_err(|e| e.to_string())?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider()))
        .with_crls([crl.clone()])
        .build()
        .map(|_| ())
        .map_err(|e| format!("not a usable CRL: {e}"))
}

/// Adds `serial` (hex) to the revoked list; connections are refused from the next
/// handshake. Returns the normalised serial.
pub fn revoke(data_dir: &Path, serial: &str) -> Result<String, TlsError> {
    let dir = dir(data_dir);
    let path = dir.join(REVOKED);
    let serial =
        normalize_serial(serial).ok_or_else(|| ca_error(&path, "the serial is not hex"))?;
    super::pem::create_private_dir(&dir)?;
    let mut list = read_revoked(&dir)?;
    if list.insert(serial.clone()) {
        let mut lines: Vec<&String> = list.iter().collect();
        lines.sort();
        let text: String = lines.iter().map(|s| format!("{s}\n")).collect();
        write_file(&path, &text, false)?;
    }
    Ok(serial)
}

/// The revoked serials (normalised); empty when there is no list.
pub fn read_revoked(ca_dir: &Path) -> Result<HashSet<String>, TlsError> {
    let path = ca_dir.join(REVOKED);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(source) => return Err(TlsError::Write { path, source }),
    };
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(normalize_serial)
        .collect())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| super::cert_read_error(path.to_owned(), e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| super::cert_read_error(path.to_owned(), e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| ca_error(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(path, e.to_string()))
}

/// A device certificate just issued.
#[derive(Debug, Clone)]
pub struct IssuedDevice {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM), when the CA made it; `None` for a CSR.
    pub key_pem: Option<String>,
    /// The serial number, hex (what `bosun ca revoke` takes).
    pub serial: String,
    /// The subject common name (the device id).
    pub common_name: String,
}

/// The intermediate as a signer: its key, and a certificate rebuilt from it with the
/// same name and key identifier as `issuing.pem`.
fn issuer(ca_dir: &Path) -> Result<(rcgen::Certificate, KeyPair), TlsError> {
    let key_path = ca_dir.join(ISSUING_KEY);
    if !key_path.exists() {
        return Err(ca_error(
            &key_path,
            "no built-in device CA: run `bosun ca init` first",
        ));
    }
    let key = super::pem::read_key_pair(&key_path)?;
    let cert = ca_params(&key, false)
        .self_signed(&key)
        .map_err(generate_error(&key_path))?;
    Ok((cert, key))
}

/// Device certificate parameters: subject CN = device id, clientAuth, digitalSignature,
/// valid from an hour ago for `days` days (0: expires now, for tests of refusal).
fn device_params(id: &str, days: u32) -> Result<(CertificateParams, String), TlsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, id);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let serial = random_serial()?;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = SystemTime::now();
    set_validity(
        &mut params,
        now - BACKDATE,
        now + Duration::from_secs(u64::from(days) * 24 * 3600),
    );
    Ok((params, serial_hex(&serial)))
}

/// Issues a certificate and a new key for device `id`, signed by the intermediate.
pub fn issue_device(data_dir: &Path, id: &str, days: u32) -> Result<IssuedDevice, TlsError> {
    let ca_dir = dir(data_dir);
    let (issuer_cert, issuer_key) = issuer(&ca_dir)?;
    let (params, serial) = device_params(id, days)?;
    let path = ca_dir.join(ISSUING_KEY);
    let key = KeyPair::generate().map_err(generate_error(&path))?;
    let cert = params
        .signed_by(&key, &issuer_cert, &issuer_key)
        .map_err(generate_error(&path))?;
    Ok(IssuedDevice {
        cert_pem: encode("CERTIFICATE", cert.der()),
        key_pem: Some(encode("PRIVATE KEY", &key.serialize_der())),
        serial,
        common_name: id.to_owned(),
    })
}

/// A P-256 public key from a CSR, in the form rcgen signs for.
struct CsrKey(Vec<u8>);

impl PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// Signs a device-generated CSR (PEM `CERTIFICATE REQUEST`): the subject CN becomes the
/// device id, the key never leaves the device. Only ECDSA P-256 requests are accepted,
/// and the request's signature must verify with its own key. Nothing but the CN and the
/// key is taken from the request (no extensions, no other name parts).
pub fn sign_csr(data_dir: &Path, csr: &Path, days: u32) -> Result<IssuedDevice, TlsError> {
    let der = rustls::pki_types::CertificateSigningRequestDer::from_pem_file(csr)
        .map_err(|e| ca_error(csr, format!("not a PEM certificate request: {e}")))?;
    let parsed = der::parse_csr(der.as_ref()).map_err(|e| {
        ca_error(
            csr,
            match e {
                der::CsrError::Malformed => "malformed certificate request",
                der::CsrError::UnsupportedKey => {
                    "only ECDSA P-256 requests signed with SHA-256 are accepted"
                }
                der::CsrError::BadSignature => "the request's signature does not verify",
            },
        )
    })?;
    let cn = parsed
        .common_name
        .filter(|cn| !cn.is_empty())
        .ok_or_else(|| ca_error(csr, "the request has no subject CN (the device id)"))?
        .to_owned();
    let ca_dir = dir(data_dir);
    let (issuer_cert, issuer_key) = issuer(&ca_dir)?;
    let (params, serial) = device_params(&cn, days)?;
    let cert = params
        .signed_by(
            &CsrKey(parsed.public_key.to_vec()),
            &issuer_cert,
            &issuer_key,
        )
        .map_err(generate_error(csr))?;
    Ok(IssuedDevice {
        cert_pem: encode("CERTIFICATE", cert.der()),
        key_pem: None,
        serial,
        common_name: cn,
    })
}

/// Writes an issued certificate (and key, 0600) to `cert` and `key`.
pub fn write_issued(
    issued: &IssuedDevice,
    cert: &Path,
    key: Option<&Path>,
) -> Result<(), TlsError> {
    if let (Some(key_pem), Some(key)) = (&issued.key_pem, key) {
        write_file(key, key_pem, true)?;
    }
    write_file(cert, &issued.cert_pem, false)
}

/// A registered device CA.
#[derive(Debug, Clone)]
pub struct RegisteredCa {
    /// Its name (the file stem under `trusted/`).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Subject common names of the certificates in the file.
    pub subjects: Vec<String>,
}

/// The registered device CAs, by name.
pub fn list(data_dir: &Path) -> Result<Vec<RegisteredCa>, TlsError> {
    let mut out = Vec::new();
    for path in pem_files(&dir(data_dir).join(TRUSTED_DIR))? {
        let certs = read_certs(&path)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let subjects = certs
            .iter()
            .map(|c| {
                der::certificate_fields(c)
                    .and_then(|f| f.common_name)
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect();
        out.push(RegisteredCa {
            name,
            path,
            subjects,
        });
    }
    Ok(out)
}

/// `*.pem` in `dir`, sorted; none if the directory does not exist.
fn pem_files(dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TlsError::Write {
                path: dir.to_owned(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    files.sort();
    Ok(files)
}

/// The files whose change means the client verifier must be rebuilt, with their stamps.
pub(crate) fn stamps(ca_dir: &Path) -> Vec<(PathBuf, Option<Stamp>)> {
    let mut files = pem_files(&ca_dir.join(TRUSTED_DIR)).unwrap_or_default();
    files.extend(pem_files(&ca_dir.join(CRL_DIR)).unwrap_or_default());
    files.push(ca_dir.join(REVOKED));
    files
        .into_iter()
        .map(|p| {
            let s = super::stamp(&p);
            (p, s)
        })
        .collect()
}

/// The client verifier for the mqtts listener: `None` when no device CA is registered
/// (no certificate is requested then).
pub(crate) fn client_verifier(
    ca_dir: &Path,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, TlsError> {
    let mut roots = RootCertStore::empty();
    for path in pem_files(&ca_dir.join(TRUSTED_DIR))? {
        for cert in read_certs(&path)? {
            roots
                .add(cert)
                .map_err(|e| ca_error(&path, format!("not a usable CA certificate: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Ok(None);
    }
    let mut crls = Vec::new();
    for path in pem_files(&ca_dir.join(CRL_DIR))? {
        crls.extend(read_crls(&path)?);
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider()))
        .with_crls(crls)
        // A CRL covers one CA; certificates of the others have no status, which is fine.
        .allow_unknown_revocation_status()
        .allow_unauthenticated()
        .build()
        .map_err(|e| ca_error(ca_dir, format!("cannot build the client verifier: {e}")))?;
    let revoked = read_revoked(ca_dir)?;
    Ok(Some(Arc::new(RevocationList { inner, revoked })))
}

/// webpki's verifier plus the serials of `revoked`.
#[derive(Debug)]
struct RevocationList {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: HashSet<String>,
}

impl ClientCertVerifier for RevocationList {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let serial = der::certificate_fields(end_entity).map(|f| serial_hex(f.serial));
        if serial.is_some_and(|s| self.revoked.contains(&s)) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What the live-connection registry keeps of a client certificate the handshake
/// verified: serial (hex), issuer Name and subject CN.
pub(crate) fn peer_identity(leaf: &[u8]) -> Option<LiveCert> {
    let fields = der::certificate_fields(leaf)?;
    Some(LiveCert {
        serial: serial_hex(fields.serial),
        issuer: fields.issuer.into(),
        cn: Arc::from(fields.common_name?),
    })
}

/// The registered device CAs by subject Name (DER), so a verified client certificate
/// can be told which CA issued it (`Credentials::client_cert_issuer`).
#[derive(Debug, Default)]
pub(crate) struct CaNames(Vec<(Vec<u8>, Arc<str>)>);

impl CaNames {
    /// Reads `trusted/`: every certificate of `NAME.pem` is known as `NAME`.
    pub(crate) fn read(ca_dir: &Path) -> Result<CaNames, TlsError> {
        let mut names = Vec::new();
        for path in pem_files(&ca_dir.join(TRUSTED_DIR))? {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let name: Arc<str> = Arc::from(name);
            for cert in read_certs(&path)? {
                if let Some(fields) = der::certificate_fields(&cert) {
                    names.push((fields.subject.to_vec(), name.clone()));
                }
            }
        }
        Ok(CaNames(names))
    }

    /// The name of the registered CA that signed `leaf` (its issuer is that CA's
    /// subject); `None` when the leaf was signed by an intermediate the client sent.
    pub(crate) fn issuer_of(&self, leaf: &[u8]) -> Option<Arc<str>> {
        let issuer = der::certificate_fields(leaf)?.issuer;
        self.0
            .iter()
            .find(|(subject, _)| subject.as_slice() == issuer)
            .map(|(_, name)| name.clone())
    }
}

/// The entries of the imported CRLs: serial hex → issuer Names (DER). Read when the
/// verifier is rebuilt, so live connections they revoke are closed; a CRL webpki
/// could not use stops the reload before this is read.
pub(crate) fn read_crl_entries(
    ca_dir: &Path,
) -> Result<HashMap<String, HashSet<Vec<u8>>>, TlsError> {
    let mut entries: HashMap<String, HashSet<Vec<u8>>> = HashMap::new();
    for path in pem_files(&ca_dir.join(CRL_DIR))? {
        for crl in read_crls(&path)? {
            let list =
                der::crl_entries(&crl).ok_or_else(|| ca_error(&path, "not a readable CRL"))?;
            for serial in list.serials {
                entries
                    .entry(serial_hex(serial))
                    .or_default()
                    .insert(list.issuer.to_vec());
            }
        }
    }
    Ok(entries)
}

/// What CONNECT authentication is told about a verified client certificate.
#[derive(Debug)]
pub(crate) struct PeerCert<'a> {
    /// The subject CN.
    pub(crate) cn: &'a str,
    /// When it expires (`notAfter`).
    pub(crate) expiry: Option<SystemTime>,
    /// Its serial, lower-case hex (what an individual enrollment may pin).
    pub(crate) serial: String,
}

/// The subject CN, expiry and serial of a verified client certificate.
pub(crate) fn peer_cert(leaf: &[u8]) -> Option<PeerCert<'_>> {
    let fields = der::certificate_fields(leaf)?;
    let expiry = fields
        .not_after
        .and_then(|secs| u64::try_from(secs).ok())
        .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    Some(PeerCert {
        cn: fields.common_name?,
        expiry,
        serial: serial_hex(fields.serial),
    })
}

/// The reason label for a failed handshake (`bosun_tls_client_refusals_total`), when
/// it is about the client's certificate.
pub(crate) fn refusal_reason(error: &rustls::Error) -> Option<&'static str> {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(e) => Some(match e {
            C::Expired | C::ExpiredContext { .. } => "certificate expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate not yet valid",
            C::UnknownIssuer => "unknown CA",
            C::Revoked => "certificate revoked",
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "certificate not for client auth"
            }
            C::BadSignature => "bad certificate signature",
            // webpki's reason travels as an opaque error; a self-signed CA certificate
            // presented as a client certificate is the common case worth naming.
            C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                "CA certificate as client certificate"
            }
            _ => "bad certificate",
        }),
        rustls::Error::InvalidCertRevocationList(_) => Some("unusable CRL"),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn verify(ca_dir: &Path, cert_pem: &str) -> Result<(), rustls::Error> {
        let verifier = client_verifier(ca_dir).unwrap().unwrap();
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        verifier
            .verify_client_cert(&der, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn issued_certificates_verify_until_revoked() {
        let data = tempfile::tempdir().unwrap();
        let offline = data.path().join("offline-root.key");
        let init = init(data.path(), Some(&offline)).unwrap();
        assert!(offline.exists());
        assert!(!dir(data.path()).join(ROOT_KEY).exists());
        assert!(init.issuing_cert.exists());
        assert!(super::init(data.path(), None).is_err(), "init twice");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir(data.path()).join(ISSUING_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let ca_dir = dir(data.path());
        let dev = issue_device(data.path(), "dev-1", 30).unwrap();
        verify(&ca_dir, &dev.cert_pem).unwrap();
        let der = CertificateDer::from_pem_slice(dev.cert_pem.as_bytes()).unwrap();
        let LiveCert { cn, serial, .. } = peer_identity(&der).unwrap();
        assert_eq!(&*cn, "dev-1");
        assert_eq!(serial, dev.serial);
        // The built-in intermediate signed it: groups by CA name it `bosun`.
        let names = CaNames::read(&ca_dir).unwrap();
        assert_eq!(names.issuer_of(&der).as_deref(), Some(BUILT_IN_NAME));
        let root = CertificateDer::from_pem_file(ca_dir.join(ROOT_CERT)).unwrap();
        assert_eq!(names.issuer_of(&root), None, "the root is not registered");

        let revoked = revoke(data.path(), &dev.serial.to_uppercase()).unwrap();
        assert_eq!(revoked, dev.serial);
        let err = verify(&ca_dir, &dev.cert_pem).unwrap_err();
        assert_eq!(refusal_reason(&err), Some("certificate revoked"));
        assert_eq!(list(data.path()).unwrap().len(), 1);
    }

    #[test]
    fn expired_and_foreign_certificates_are_refused_with_their_reason() {
        let data = tempfile::tempdir().unwrap();
        init(data.path(), None).unwrap();
        let ca_dir = dir(data.path());
        let expired = issue_device(data.path(), "old", 0).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let err = verify(&ca_dir, &expired.cert_pem).unwrap_err();
        assert_eq!(refusal_reason(&err), Some("certificate expired"));

        let other = tempfile::tempdir().unwrap();
        init(other.path(), None).unwrap();
        let foreign = issue_device(other.path(), "dev-1", 30).unwrap();
        let err = verify(&ca_dir, &foreign.cert_pem).unwrap_err();
        assert_eq!(refusal_reason(&err), Some("unknown CA"));
        // Importing the other installation's CA makes it trusted.
        import(data.path(), "acme", &dir(other.path()).join(ISSUING_CERT)).unwrap();
        verify(&ca_dir, &foreign.cert_pem).unwrap();
        assert!(import(data.path(), "../x", &dir(other.path()).join(ISSUING_CERT)).is_err());
    }

    #[test]
    fn a_csr_is_signed_for_its_own_key_and_cn() {
        let data = tempfile::tempdir().unwrap();
        init(data.path(), None).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "dev-c");
        let csr = params.serialize_request(&key).unwrap();
        let path = data.path().join("dev-c.csr");
        std::fs::write(&path, encode("CERTIFICATE REQUEST", csr.der())).unwrap();
        let issued = sign_csr(data.path(), &path, 30).unwrap();
        assert!(issued.key_pem.is_none());
        assert_eq!(issued.common_name, "dev-c");
        verify(&dir(data.path()), &issued.cert_pem).unwrap();
        // The certificate carries the requester's key: it and the key form a pair.
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        rustls::sign::CertifiedKey::from_der(vec![der], key_der, &provider()).unwrap();
    }

    #[test]
    fn serials_normalise() {
        assert_eq!(normalize_serial("0A:1B").as_deref(), Some("0a1b"));
        assert_eq!(normalize_serial("00ff").as_deref(), Some("ff"));
        assert_eq!(normalize_serial("0x1").as_deref(), Some("01"));
        assert_eq!(normalize_serial("xyz"), None);
        assert_eq!(normalize_serial(""), None);
    }
}
