//! MQTT over TLS: where the server certificate comes from, and swapping it at run time.
//!
//! Owns the rustls `ServerConfig` the TLS listener hands to each new handshake, behind a
//! `RwLock<Arc<_>>`: a handshake clones the `Arc` (a read lock held for a pointer copy),
//! a reload builds a new config and swaps it in. Connections already established keep
//! the config they started with, so a reload never drops anyone.
//!
//! The certificate is either the operator's (`cert_file`/`key_file`, PEM) or made by
//! the local CA in `local_ca`. A small task stats the files every few seconds and
//! reloads when they change, so renewing a certificate is "replace the files".
//! The TLS handshake itself runs in the connection task (`connection::serve_tls`); the
//! byte-level transport is `connection::transport`.
//!
//! Client certificates (mutual TLS) are requested once a device CA is registered in
//! `DATA_DIR/ca/`: `device_ca` owns that directory, the `bosun ca` operations and the
//! client verifier; `der` reads the few certificate and CSR fields webpki does not hand
//! out; `live` remembers which connections use which certificate, so a revocation
//! closes them. The watcher reloads on changes there too.
//!
//! Crypto is rustls on its `ring` provider, chosen explicitly per config rather than
//! through a process-wide default, so nothing else in the process can change it.

mod der;
pub mod device_ca;
mod live;
mod local_ca;
mod pem;

pub(crate) use live::{CertConnections, Revoked, Tracked};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use thiserror::Error;
use tokio::sync::watch;

use crate::config::TlsConfig;

/// How often the certificate files and the device CA directory are checked for
/// changes. A few stats are nothing; a renewed certificate or a revocation is live
/// within this long, and connections using a revoked certificate are closed, so it is
/// well under the second a revocation promises.
const RELOAD_CHECK: Duration = Duration::from_millis(500);

/// Why TLS could not be set up or reloaded. Every variant that involves a file names it.
#[derive(Debug, Error)]
pub enum TlsError {
    /// Only one of `cert_file` and `key_file` was given.
    #[error(
        "tls.cert_file and tls.key_file must be given together (or neither, to use the local CA)"
    )]
    IncompletePair,
    /// A certificate file could not be read or is not PEM.
    #[error("cannot read certificate file {path}")]
    ReadCert {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate file holds no `CERTIFICATE` section.
    #[error("no PEM certificate in {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file could not be read or is not PEM.
    #[error("cannot read private key file {path}")]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: rustls::pki_types::pem::Error,
    },
    /// A key file holds no private key section.
    #[error("no PEM private key in {path}")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair: unsupported key type, or the key does not match the
    /// certificate.
    #[error("cannot use certificate {cert} with key {key}")]
    Unusable {
        /// Certificate chain file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// Underlying error.
        source: rustls::Error,
    },
    /// Writing a generated file (or creating its directory) failed.
    #[error("cannot write {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// rcgen could not load a local CA key or generate a certificate (for example, a
    /// subject alternative name that is neither a DNS name nor an IP address).
    #[error("cannot generate or load {path}")]
    Generate {
        /// The file being loaded or generated.
        path: PathBuf,
        /// Underlying error.
        source: rcgen::Error,
    },
    /// A configured subject alternative name is neither a DNS name nor an IP address.
    #[error("tls.subject_alt_names: {name:?} is neither a DNS name nor an IP address")]
    InvalidName {
        /// The name as configured.
        name: String,
    },
    /// A freshly issued local certificate does not verify.
    #[error("the local CA cannot issue a usable certificate at {path}: {reason}")]
    LocalCa {
        /// The server certificate.
        path: PathBuf,
        /// What verification said.
        reason: String,
    },
    /// The device CA directory holds something unusable, or a `bosun ca` command
    /// cannot do what was asked.
    #[error("device CA: {path}: {reason}")]
    DeviceCa {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `reload_tls` on a broker without a TLS listener.
    #[error("TLS is not enabled")]
    NotEnabled,
}

fn cert_read_error(path: PathBuf, source: rustls::pki_types::pem::Error) -> TlsError {
    match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoCertificate { path },
        source => TlsError::ReadCert { path, source },
    }
}

fn key_read_error(path: PathBuf, source: rustls::pki_types::pem::Error) -> TlsError {
    match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey { path },
        source => TlsError::ReadKey { path, source },
    }
}

/// The crypto provider: rustls on `ring`.
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Where the certificate comes from.
#[derive(Debug)]
enum Source {
    /// The operator's files.
    Files { cert: PathBuf, key: PathBuf },
    /// The local CA in `dir`, issuing for `names`.
    Local { dir: PathBuf, names: Vec<String> },
}

impl Source {
    /// The chain and key files a `ServerConfig` is built from.
    fn files(&self) -> (PathBuf, PathBuf) {
        match self {
            Source::Files { cert, key } => (cert.clone(), key.clone()),
            Source::Local { dir, .. } => (
                dir.join(local_ca::SERVER_CERT),
                dir.join(local_ca::SERVER_KEY),
            ),
        }
    }
}

/// What identifies one version of a file: a replaced file differs in at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

/// The TLS listener's certificate state, shared by the listener, its connection tasks,
/// the reload watcher and [`crate::Broker::reload_tls`].
#[derive(Debug)]
pub(crate) struct TlsState {
    source: Source,
    /// What new handshakes use.
    current: RwLock<Arc<ServerConfig>>,
    /// `DATA_DIR/ca`: the device CAs whose client certificates are accepted.
    ca_dir: PathBuf,
    /// Live connections by client certificate serial, so a revocation closes them.
    pub(crate) cert_connections: Arc<CertConnections>,
    /// The registered device CAs by subject, as loaded with the current verifier.
    ca_names: RwLock<Arc<device_ca::CaNames>>,
    /// The files' stamps when they were last loaded (or a load was attempted), so the
    /// watcher retries only after another change, not every tick.
    stamps: Mutex<Stamps>,
}

/// What the watcher compares: the server certificate and key, and every device CA file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamps {
    server: [Option<Stamp>; 2],
    ca: Vec<(PathBuf, Option<Stamp>)>,
}

impl Stamps {
    fn now(source: &Source, ca_dir: &Path) -> Stamps {
        let (cert, key) = source.files();
        Stamps {
            server: [stamp(&cert), stamp(&key)],
            ca: device_ca::stamps(ca_dir),
        }
    }
}

impl TlsState {
    /// Loads the operator's files, or prepares the local CA's under `data_dir`.
    pub(crate) fn open(config: &TlsConfig, data_dir: &Path) -> Result<TlsState, TlsError> {
        let source = match (&config.cert_file, &config.key_file) {
            (Some(cert), Some(key)) => Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (None, None) => Source::Local {
                dir: local_ca::dir(data_dir),
                names: local_ca::required_names(config.addr.ip(), &config.subject_alt_names)?,
            },
            _ => return Err(TlsError::IncompletePair),
        };
        let ca_dir = device_ca::dir(data_dir);
        let (server_config, stamps) = load(&source, &ca_dir)?;
        let ca_names = device_ca::CaNames::read(&ca_dir)?;
        match &source {
            Source::Local { dir, names } => tracing::info!(
                ca = %dir.join(local_ca::CA_CERT).display(),
                ?names,
                "MQTT over TLS with a certificate from the local CA; clients verify it with the CA file"
            ),
            Source::Files { cert, .. } => {
                tracing::info!(cert = %cert.display(), "MQTT over TLS with the configured certificate")
            }
        }
        Ok(TlsState {
            source,
            ca_dir,
            cert_connections: Arc::default(),
            ca_names: RwLock::new(Arc::new(ca_names)),
            current: RwLock::new(server_config),
            stamps: Mutex::new(stamps),
        })
    }

    /// The config for a new handshake.
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The registered device CAs, to name the one that signed a client certificate.
    pub(crate) fn ca_names(&self) -> Arc<device_ca::CaNames> {
        self.ca_names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the certificate again (reissuing a local one if needed) and makes it the
    /// one new handshakes use. On error the previous certificate stays in use.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let (cert, _) = self.source.files();
        // Held throughout, so concurrent reloads (watcher and caller) take turns.
        let mut stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        let before = Stamps::now(&self.source, &self.ca_dir);
        let loaded = load(&self.source, &self.ca_dir).and_then(|(config, new_stamps)| {
            Ok((config, new_stamps, device_ca::CaNames::read(&self.ca_dir)?))
        });
        match loaded {
            Ok((config, new_stamps, names)) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
                *self
                    .ca_names
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(names);
                *stamps = new_stamps;
                tracing::info!(cert = %cert.display(), "TLS certificate loaded; new connections use it");
                Ok(())
            }
            Err(e) => {
                // What was seen before trying: a change during the attempt is retried.
                *stamps = before;
                Err(e)
            }
        }
    }

    /// Asks the router to close live connections whose client certificate is now
    /// revoked: its serial in the revoked list, or its (issuer, serial) in an imported
    /// CRL.
    pub(crate) fn close_revoked(&self, router: &tokio::sync::mpsc::Sender<crate::router::Request>) {
        let revoked = device_ca::read_revoked(&self.ca_dir).and_then(|serials| {
            Ok(Revoked {
                serials,
                by_issuer: device_ca::read_crl_entries(&self.ca_dir)?,
            })
        });
        match revoked {
            Ok(revoked) => self.cert_connections.close_revoked(&revoked, router),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot read the revoked certificates")
            }
        }
    }

    /// Reloads whenever the certificate or key file or a device CA file changes, until
    /// `stop` flips; after a device CA change, closes connections with revoked
    /// certificates.
    pub(crate) async fn watch(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        router: tokio::sync::mpsc::Sender<crate::router::Request>,
    ) {
        let mut tick = tokio::time::interval(RELOAD_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let now = Stamps::now(&self.source, &self.ca_dir);
            let changed = *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) != now;
            if changed {
                // Blocking file reads on a runtime thread: two small files, rarely.
                match self.reload() {
                    Ok(()) => self.close_revoked(&router),
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "TLS certificate or device CA files changed but cannot be loaded; keeping the previous configuration")
                    }
                }
            }
        }
    }
}

/// `e` and its sources on one line, for log fields.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Builds a `ServerConfig` from `source`, with the files' stamps taken before reading
/// (so a change during the read is seen by the next check).
fn load(source: &Source, ca_dir: &Path) -> Result<(Arc<ServerConfig>, Stamps), TlsError> {
    if let Source::Local { dir, names } = source {
        local_ca::ensure(dir, names)?;
    }
    let (cert_path, key_path) = source.files();
    let stamps = Stamps::now(source, ca_dir);
    let client_verifier = device_ca::client_verifier(ca_dir)?;
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| cert_read_error(cert_path.clone(), e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_read_error(cert_path.clone(), e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path });
    }
    let key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(|e| key_read_error(key_path.clone(), e))?;
    let unusable = |source| TlsError::Unusable {
        cert: cert_path.clone(),
        key: key_path.clone(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(unusable)?;
    // Client certificates are requested (never required) once a device CA is registered.
    let builder = match client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).map_err(unusable)?;
    Ok((Arc::new(config), stamps))
}
