//! TLS to the hub: rustls on the ring provider (as the broker), trusting the CA
//! certificates of one PEM file (a `bosun serve` data directory's `tls/ca.pem`, or the
//! operator's CA). The server name is the host part of `--hub` (a DNS name or an IP
//! address), checked against the hub's certificate as any TLS client does.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::Error;

/// A client configuration trusting the certificates in `ca_file`, presenting the
/// certificate chain and key of `client` (PEM files) if given.
pub fn client_config(
    ca_file: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| Error::Tls(format!("{}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| Error::Tls(format!("{}: {e}", ca_file.display())))?;
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("{}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(Error::Tls(format!("{}: no certificate", ca_file.display())));
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let chain = CertificateDer::pem_file_iter(cert_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Error::Tls(format!("{}: {e}", cert_file.display())))?;
            if chain.is_empty() {
                return Err(Error::Tls(format!(
                    "{}: no certificate",
                    cert_file.display()
                )));
            }
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| Error::Tls(format!("{}: {e}", key_file.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls(format!("client certificate: {e}")))?
        }
    };
    Ok(Arc::new(config))
}

/// The name to verify the hub's certificate against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| Error::Tls(format!("{host:?} is not a server name")))
}
