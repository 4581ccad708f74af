//! Certificates for `bosun-bench tls`, made once per command before any broker starts:
//!
//! - a server certificate (ECDSA P-256, SAN 127.0.0.1 and `localhost`, signed by a
//!   throwaway bench CA) that both brokers present, so both handshakes sign with the
//!   same key type and send the same chain;
//! - bosun's device CA (`broker::device_ca::init`, what `bosun ca init` runs) and one
//!   certificate per device (`broker::device_ca::issue_device`, what `bosun ca
//!   issue-device` runs), kept in a template `ca/` directory copied into every fresh
//!   bosun data directory; Mosquitto's `cafile` is the same intermediate plus the root
//!   (OpenSSL wants a chain that ends in a self-signed certificate).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Files made for one benchmark command.
pub(crate) struct Pki {
    /// The server certificate (PEM) both brokers present.
    pub(crate) server_cert: PathBuf,
    /// Its key (PKCS#8 PEM).
    pub(crate) server_key: PathBuf,
    /// A data directory whose `ca/` holds bosun's device CA.
    pub(crate) template_data: PathBuf,
    /// Intermediate + root, PEM: Mosquitto's `cafile`.
    pub(crate) mosquitto_cafile: PathBuf,
    /// Trust in the server certificate, for clients.
    roots: Arc<RootCertStore>,
}

fn rcgen_error(e: rcgen::Error) -> anyhow::Error {
    anyhow::anyhow!("certificate generation failed: {e}")
}

impl Pki {
    /// Makes the server certificate and bosun's device CA under `dir`.
    pub(crate) fn create(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ca_key = KeyPair::generate().map_err(rcgen_error)?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "bosun-bench server CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(rcgen_error)?;
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(rcgen_error)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "bosun-bench server");
        let server_cert = server
            .signed_by(&key, &ca_cert, &ca_key)
            .map_err(rcgen_error)?;
        let server_cert_path = dir.join("server.pem");
        let server_key_path = dir.join("server.key");
        std::fs::write(&server_cert_path, pem("CERTIFICATE", server_cert.der()))
            .context("cannot write server.pem")?;
        std::fs::write(&server_key_path, pem("PRIVATE KEY", &key.serialize_der()))
            .context("cannot write server.key")?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca_cert.der().clone())
            .context("cannot trust the bench CA")?;

        let template_data = dir.join("template-data");
        broker::device_ca::init(&template_data, None).context("cannot make bosun's device CA")?;
        let ca_dir = broker::device_ca::dir(&template_data);
        let mut cafile = std::fs::read_to_string(ca_dir.join(broker::device_ca::ISSUING_CERT))
            .context("cannot read issuing.pem")?;
        cafile.push_str(
            &std::fs::read_to_string(ca_dir.join(broker::device_ca::ROOT_CERT))
                .context("cannot read root.pem")?,
        );
        let mosquitto_cafile = dir.join("mosquitto-ca.pem");
        std::fs::write(&mosquitto_cafile, cafile).context("cannot write mosquitto-ca.pem")?;
        Ok(Pki {
            server_cert: server_cert_path,
            server_key: server_key_path,
            template_data,
            mosquitto_cafile,
            roots: Arc::new(roots),
        })
    }

    /// Issues a device certificate for `id` and returns a client configuration that
    /// presents it.
    pub(crate) fn device_config(&self, id: &str) -> Result<Arc<ClientConfig>> {
        let issued = broker::device_ca::issue_device(&self.template_data, id, 30)
            .with_context(|| format!("cannot issue a certificate for {id}"))?;
        let key_pem = issued.key_pem.context("no key with the certificate")?;
        let cert = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("issued certificate unreadable: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("issued key unreadable: {e}"))?;
        let config = builder()?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_client_auth_cert(vec![cert], key)
            .context("rustls refused the device certificate")?;
        Ok(finish(config))
    }

    /// A client configuration without a client certificate.
    pub(crate) fn anonymous_config(&self) -> Result<Arc<ClientConfig>> {
        let config = builder()?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_no_client_auth();
        Ok(finish(config))
    }

    /// Copies the device CA into a new bosun data directory.
    pub(crate) fn install_ca(&self, data_dir: &Path) -> Result<()> {
        copy_dir(
            &broker::device_ca::dir(&self.template_data),
            &broker::device_ca::dir(data_dir),
        )
    }
}

/// rustls on the ring provider (as the broker) with its default protocol versions
/// (TLS 1.3 and 1.2; 1.3 is what both brokers negotiate).
fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("rustls has no usable protocol version")
}

/// Every connection is a full handshake: no session resumption, no tickets.
fn finish(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// PEM armour around DER (rcgen is built without its `pem` feature).
fn pem(label: &str, der: &[u8]) -> String {
    let body = hub::base64::encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Copies a directory tree of plain files.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry.context("cannot list a directory")?;
        let target = to.join(entry.file_name());
        if entry.file_type().context("cannot stat")?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy to {}", target.display()))?;
        }
    }
    Ok(())
}
