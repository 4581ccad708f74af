//! Webhook delivery: one JSON POST over HTTP/1.1, and the retry loop around it.
//!
//! A dozen lines of HTTP client instead of a client crate: the pipeline only ever sends
//! `POST` with a JSON body and reads the status line, and bosun already carries one
//! HTTP stack (the server's) — see `docs/dependencies.md`. Plain `http://` only for now;
//! `https://` targets are refused when the rule is used, with that reason, rather than
//! sent in clear.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a connect, the write or the response may take per attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of the response read to find its status line.
const STATUS_BYTES: usize = 1024;

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhookError {
    /// The URL is not one this client sends to.
    #[error("unsupported webhook URL {0:?}: only http://host[:port]/path is supported")]
    Url(String),
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
            WebhookError::Io(_) | WebhookError::Timeout => true,
        }
    }
}

/// Where a plain-HTTP URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    authority: String,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, WebhookError> {
    let bad = || WebhookError::Url(url.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || path.contains(['\r', '\n', ' ']) || authority.contains('@') {
        return Err(bad());
    }
    Ok(Target {
        authority: authority.to_string(),
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// Sends `body` as a JSON POST to `url`; Ok on a 2xx answer.
pub(crate) async fn post_json(url: &str, body: &[u8]) -> Result<(), WebhookError> {
    let target = parse_url(url)?;
    tokio::time::timeout(ATTEMPT_TIMEOUT, exchange(&target, body))
        .await
        .map_err(|_| WebhookError::Timeout)?
}

async fn exchange(target: &Target, body: &[u8]) -> Result<(), WebhookError> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
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
        for bad in [
            "https://example.com/",
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
        post_json(&url, br#"{"a":1}"#).await.expect("first is 204");
        let second = post_json(&url, br#"{"a":1}"#).await;
        assert!(matches!(second, Err(WebhookError::Status(503))));
        let seen = server.await.expect("server");
        assert!(
            seen[0].starts_with("POST /hook HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("Content-Length: 7\r\n"));
    }
}
