//! HTTPS for the HTTP API: the certificate of the MQTT TLS listener (its PEM files),
//! re-read when they change, and an axum listener that hands axum only connections
//! whose TLS handshake has finished.
//!
//! Handshakes run in their own tasks, with a deadline and at most [`MAX_HANDSHAKES`] at
//! once, so a slow or silent client never holds up the others and a connection flood
//! costs a bounded number of tasks. The certificate files are checked every
//! [`RELOAD_CHECK`]: a renewed certificate reaches new HTTPS connections as it reaches
//! the MQTT listener (which the broker reloads the same way); a broken replacement is
//! logged and the previous certificate stays.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

/// Longest a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them; the acceptor waits when full.
const HANDSHAKE_QUEUE: usize = 64;
/// TLS handshakes in progress at once; past this the acceptor stops accepting until
/// one ends.
const MAX_HANDSHAKES: usize = 256;
/// How often the certificate files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// What identifies one version of a file: a replaced file differs in one of these.
type Stamp = Option<(SystemTime, u64)>;

/// The stamp of `path` now.
fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The HTTPS server identity: a rustls configuration whose certificate follows the
/// files it was read from.
#[derive(Clone)]
pub(crate) struct TlsIdentity {
    /// The server configuration (ALPN `http/1.1`, the live certificate).
    config: Arc<ServerConfig>,
    /// The certificate it serves.
    live: Arc<LiveCert>,
}

impl TlsIdentity {
    /// Reads the PEM certificate chain `cert` and its key `key`.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<TlsIdentity> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let live = Arc::new(LiveCert::load(cert, key, provider.clone())?);
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(live.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsIdentity {
            config: Arc::new(config),
            live,
        })
    }
}

/// The certificate in use and the files it comes from.
struct LiveCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    /// The certificate and the stamps of the files it was read from.
    current: RwLock<(Arc<CertifiedKey>, (Stamp, Stamp))>,
}

impl fmt::Debug for LiveCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

impl LiveCert {
    fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<LiveCert> {
        let stamps = (stamp(cert), stamp(key));
        let certified = read(cert, key, &provider)?;
        Ok(LiveCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new((Arc::new(certified), stamps)),
        })
    }

    /// Re-reads the files if they changed since the last read.
    fn check(&self) {
        let stamps = (stamp(&self.cert), stamp(&self.key));
        let unchanged = self
            .current
            .read()
            .map(|current| current.1 == stamps)
            .unwrap_or(false);
        if unchanged {
            return;
        }
        let reloaded = read(&self.cert, &self.key, &self.provider);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        match reloaded {
            Ok(certified) => {
                *current = (Arc::new(certified), stamps);
                tracing::info!(cert = %self.cert.display(), "https certificate reloaded");
            }
            Err(e) => {
                // Remember the stamps: one warning per change, not one per check.
                current.1 = stamps;
                tracing::warn!(error = %format!("{e:#}"), "https certificate not reloaded; keeping the previous one");
            }
        }
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Some(current.0.clone())
    }
}

/// Reads a PEM chain and key into a certified key.
fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read {}", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{}: no certificate", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read {}", key.display()))?;
    CertifiedKey::from_der(chain, key_der, provider).with_context(|| {
        format!(
            "{} and {} do not make a TLS identity",
            cert.display(),
            key.display()
        )
    })
}

/// An axum listener yielding connections whose TLS handshake has finished.
pub(super) struct TlsListener {
    /// Handshaken connections, from the acceptor task.
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    /// The bound address.
    local_addr: SocketAddr,
    /// The acceptor task and the certificate watcher; stopped with the listener.
    tasks: [JoinHandle<()>; 2],
}

impl TlsListener {
    /// Accepts on `listener` and handshakes each connection in its own task.
    pub(super) fn start(
        listener: TcpListener,
        local_addr: SocketAddr,
        tls: TlsIdentity,
    ) -> TlsListener {
        let (tx, ready) = mpsc::channel(HANDSHAKE_QUEUE);
        let live = tls.live.clone();
        let watcher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_CHECK);
            loop {
                tick.tick().await;
                live.check();
            }
        });
        let acceptor = tokio::spawn(accept(listener, tls.config, tx));
        TlsListener {
            ready,
            local_addr,
            tasks: [acceptor, watcher],
        }
    }
}

/// Accepts connections and handshakes each in its own task, at most
/// [`MAX_HANDSHAKES`] at once.
async fn accept(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: back off, do not spin.
                tracing::warn!(error = %e, "https accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(permit);
            match handshake {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "https handshake failed"),
                Err(_) => tracing::debug!(%peer, "https handshake timed out"),
            }
        });
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The acceptor is gone (only at shutdown): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate and key (PEM) from a throwaway device CA: any valid pair will do.
    fn pair(data: &Path, id: &str) -> (String, String) {
        let issued = broker::device_ca::issue_device(data, id, 1).expect("issue");
        (issued.cert_pem, issued.key_pem.expect("key"))
    }

    fn served(live: &LiveCert) -> Vec<u8> {
        let current = live.current.read().expect("lock");
        current
            .0
            .cert
            .first()
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn a_replaced_certificate_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        broker::device_ca::init(dir.path(), None).expect("ca");
        let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
        let (c1, k1) = pair(dir.path(), "one");
        std::fs::write(&cert, &c1).expect("cert");
        std::fs::write(&key, &k1).expect("key");
        let identity = TlsIdentity::load(&cert, &key).expect("load");
        let first = served(&identity.live);
        identity.live.check();
        assert_eq!(
            served(&identity.live),
            first,
            "unchanged files, same certificate"
        );
        let (c2, k2) = pair(dir.path(), "second-longer-name");
        std::fs::write(&cert, &c2).expect("cert");
        std::fs::write(&key, &k2).expect("key");
        identity.live.check();
        let second = served(&identity.live);
        assert_ne!(second, first, "reloaded");
        std::fs::write(&cert, "not a certificate at all").expect("cert");
        identity.live.check();
        assert_eq!(
            served(&identity.live),
            second,
            "a broken file keeps the last good one"
        );
        assert!(TlsIdentity::load(&cert, &key).is_err());
    }
}
