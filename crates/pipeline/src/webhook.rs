//! Webhook delivery: one JSON POST over HTTP/1.1 (plain or TLS), and the retry loop
//! around it.
//!
//! A dozen lines of HTTP client instead of a client crate: the pipeline only ever sends
//! `POST` with a JSON body and reads the status line, and bosun already carries one
//! HTTP stack (the server's) — see `docs/dependencies.md`. `https://` goes through
//! rustls on the `ring` provider (already the broker's and the agent's TLS), trusting
//! the pipeline's `webhook_ca_file` (PEM) if set, else the system bundle
//! ([`SYSTEM_BUNDLE`]); no roots crate is compiled in. A certificate that does not
//! verify fails the attempt with rustls' reason (retried, then a dead letter).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Trust roots used for `https://` webhooks when no CA file is configured.
pub(crate) const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Longest a connect, the write or the response may take per attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of the response read to find its status line.
const STATUS_BYTES: usize = 1024;

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhookError {
    /// The URL is not one this client sends to.
    #[error("unsupported webhook URL {0:?}: only http(s)://host[:port]/path is supported")]
    Url(String),
    /// TLS could not be set up or the server's certificate did not verify.
    #[error("webhook TLS: {0}")]
    Tls(String),
    /// Connecting, writing or reading failed.
    #[error("webhook I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The attempt took longer than [`ATTEMPT_TIMEOUT`].
    #[error("webhook timed out")]
    Timeout,
    /// The server answered with a status outside 2xx.
    #[error("webhook answered {0}")]
    Status(u16),
    /// The answer was not HTTP.
    #[error("webhook answered something that is not HTTP")]
    BadResponse,
}

impl WebhookError {
    /// Whether another attempt could succeed (a 4xx other than 408/429 will not).
    pub(crate) fn retryable(&self) -> bool {
        match self {
            WebhookError::Url(_) | WebhookError::BadResponse => false,
            WebhookError::Status(code) => *code >= 500 || *code == 408 || *code == 429,
            // A certificate may be fixed on the server's side between attempts.
            WebhookError::Io(_) | WebhookError::Timeout | WebhookError::Tls(_) => true,
        }
    }
}

/// Where a webhook URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// `https://`.
    tls: bool,
    authority: String,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, WebhookError> {
    let bad = || WebhookError::Url(url.to_string());
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return Err(bad()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || path.contains(['\r', '\n', ' ']) || authority.contains('@') {
        return Err(bad());
    }
    Ok(Target {
        tls,
        authority: authority.to_string(),
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// The TLS client settings for `https://` webhooks, or why there are none.
#[derive(Clone)]
pub(crate) struct Tls {
    config: Result<Arc<rustls::ClientConfig>, String>,
}

impl Tls {
    /// Trusts the certificates in `ca_file` (PEM), or the system bundle when `None`. A
    /// configured file that cannot be read is an error now; a missing system bundle
    /// only fails `https://` deliveries, with that reason.
    pub(crate) fn load(ca_file: Option<&Path>) -> Result<Tls, WebhookError> {
        let roots =
            match ca_file {
                Some(path) => Ok(roots(path)
                    .map_err(|e| WebhookError::Tls(format!("{}: {e}", path.display())))?),
                None => roots(Path::new(SYSTEM_BUNDLE)).map_err(|e| {
                    format!("no trust roots ({SYSTEM_BUNDLE}: {e}); set a webhook CA file")
                }),
            };
        Ok(Tls {
            config: roots.and_then(client_config),
        })
    }

    /// Wraps `stream` in TLS for `host`.
    async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, WebhookError> {
        let config = self.config.clone().map_err(WebhookError::Tls)?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| WebhookError::Tls(format!("{host:?} is not a valid server name")))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| WebhookError::Tls(e.to_string()))
    }
}

/// The certificates of a PEM file as trust roots; an error if none is usable.
fn roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    match added {
        0 => Err("no usable certificate".into()),
        _ => Ok(store),
    }
}

fn client_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Whether `url` is one this client can send to.
pub(crate) fn check_url(url: &str) -> Result<(), WebhookError> {
    parse_url(url).map(|_| ())
}

/// Sends `body` as a JSON POST to `url`; Ok on a 2xx answer.
pub(crate) async fn post_json(url: &str, body: &[u8], tls: &Tls) -> Result<(), WebhookError> {
    let target = parse_url(url)?;
    let attempt = async {
        let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
        match target.tls {
            true => exchange(&target, body, tls.connect(&target.host, stream).await?).await,
            false => exchange(&target, body, stream).await,
        }
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
        .await
        .map_err(|_| WebhookError::Timeout)?
}

async fn exchange(
    target: &Target,
    body: &[u8],
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
) -> Result<(), WebhookError> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bosun\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.authority,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut buf = vec![0u8; STATUS_BYTES];
    let mut len = 0;
    while len < buf.len() && !buf[..len].contains(&b'\n') {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let code = status_code(&buf[..len]).ok_or(WebhookError::BadResponse)?;
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(WebhookError::Status(code))
    }
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 204 No Content`).
fn status_code(response: &[u8]) -> Option<u16> {
    let line = response.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_host_port_and_path() {
        let t = parse_url("http://127.0.0.1:9000/hooks/a?x=1").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9000));
        assert_eq!(t.path, "/hooks/a?x=1");
        let t = parse_url("http://example.com").expect("valid");
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = parse_url("http://[::1]:8080/x").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        let t = parse_url("https://hooks.example.com/a").expect("valid");
        assert!(t.tls);
        assert_eq!((t.host.as_str(), t.port), ("hooks.example.com", 443));
        for bad in [
            "ftp://x",
            "http://",
            "http://:80/",
            "http://host:99999/",
            "http://u:p@host/",
            "http://host/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn status_lines_give_their_code() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 500\r\n"), Some(500));
        assert_eq!(status_code(b"SSH-2.0\r\n"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(WebhookError::Status(503).retryable());
        assert!(WebhookError::Status(429).retryable());
        assert!(!WebhookError::Status(404).retryable());
        assert!(WebhookError::Timeout.retryable());
    }

    #[tokio::test]
    async fn posts_reach_a_real_server_and_statuses_are_reported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for status in ["204 No Content", "503 Busy"] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                while !String::from_utf8_lossy(&buf[..len]).contains("{\"a\":1}") {
                    len += s.read(&mut buf[len..]).await.expect("read");
                }
                seen.push(String::from_utf8_lossy(&buf[..len]).into_owned());
                let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                s.write_all(reply.as_bytes()).await.expect("write");
            }
            seen
        });
        let url = format!("http://{addr}/hook");
        let tls = Tls::load(None).expect("no file to read");
        post_json(&url, br#"{"a":1}"#, &tls)
            .await
            .expect("first is 204");
        let second = post_json(&url, br#"{"a":1}"#, &tls).await;
        assert!(matches!(second, Err(WebhookError::Status(503))));
        let seen = server.await.expect("server");
        assert!(
            seen[0].starts_with("POST /hook HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("Content-Length: 7\r\n"));
    }

    /// A CA (its PEM) and a server certificate for 127.0.0.1 signed by it (DER, key).
    fn test_ca() -> (String, Vec<u8>, Vec<u8>) {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).expect("params");
        let cert = params.signed_by(&key, &ca, &ca_key).expect("cert");
        let b64 = base64::encode(ca.der());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .filter_map(|l| std::str::from_utf8(l).ok())
            .collect();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        );
        (pem, cert.der().to_vec(), key.serialize_der())
    }

    /// An https server answering 204 to every request, on a free port.
    async fn tls_server(cert: Vec<u8>, key: Vec<u8>) -> std::net::SocketAddr {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::try_from(key).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert)], key)
            .expect("config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let mut len = 0;
                    while !String::from_utf8_lossy(&buf[..len]).contains("{\"a\":1}") {
                        match s.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => len += n,
                        }
                    }
                    let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                    let _ = s.shutdown().await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn https_posts_verify_the_server_against_the_configured_ca() {
        let (ca_pem, cert, key) = test_ca();
        let (other_ca, _, _) = test_ca();
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("ca.pem");
        let wrong = dir.path().join("other.pem");
        std::fs::write(&good, ca_pem).expect("write");
        std::fs::write(&wrong, other_ca).expect("write");
        let addr = tls_server(cert, key).await;
        let url = format!("https://{addr}/hook");
        let trusted = Tls::load(Some(&good)).expect("ca file");
        post_json(&url, br#"{"a":1}"#, &trusted)
            .await
            .expect("verified and 204");
        let untrusted = Tls::load(Some(&wrong)).expect("ca file");
        let err = post_json(&url, br#"{"a":1}"#, &untrusted)
            .await
            .expect_err("wrong CA");
        assert!(
            matches!(err, WebhookError::Tls(_)) && err.retryable(),
            "{err}"
        );
        assert!(err.to_string().contains("certificate"), "{err}");
        let missing = Tls::load(Some(&dir.path().join("none.pem")));
        assert!(matches!(missing, Err(WebhookError::Tls(_))));
        std::fs::write(&wrong, "not pem").expect("write");
        assert!(Tls::load(Some(&wrong)).is_err());
    }
}
