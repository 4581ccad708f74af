//! A minimal HTTP/1.1 client for one thing: `GET` an image, or the rest of it
//! (`Range: bytes=N-`), over TLS from the hub. Not a general client: one request per
//! connection (`Connection: close`), bodies framed by `Content-Length` only (the hub's
//! image route always sends it; chunked bodies are refused), every read under a timeout.
//!
//! The response head parser is pure ([`parse_head`]) and property-tested; [`get`]
//! drives it over any async stream, so tests use plain TCP and the agent TLS.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest response head accepted.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Longest wait for any single read or write: a hub that stalls longer is a dropped
/// connection (and the download resumes on a new one).
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of an error body kept for the failure reason.
const MAX_ERROR_BODY: u64 = 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection failed, stalled or closed early: worth retrying.
    #[error("connection: {0}")]
    Io(String),
    /// The response is not HTTP/1.1 as this client reads it.
    #[error("bad response: {0}")]
    Malformed(String),
    /// The server answered with an error status.
    #[error("HTTP {status}: {detail}")]
    Status {
        /// The status code.
        status: u16,
        /// The body's `detail` (problem+json) or its first bytes.
        detail: String,
    },
}

impl HttpError {
    /// Whether trying again later may help (network trouble, a server error).
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Io(_) => true,
            HttpError::Status { status, .. } => *status >= 500 || *status == 429,
            HttpError::Malformed(_) => false,
        }
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// `Content-Length`, if sent.
    pub content_length: Option<u64>,
    /// `Content-Range: bytes start-end/total`, if sent (`start`, `total`).
    pub content_range: Option<(u64, u64)>,
    /// Whether the body is chunked (refused by [`get`]).
    pub chunked: bool,
}

/// Parses a response head from the start of `buf`: `Ok(None)` until the blank line has
/// arrived, then the head and its length in bytes.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD_LEN {
            return Err(HttpError::Malformed("response head too long".into()));
        }
        return Ok(None);
    };
    if end > MAX_HEAD_LEN {
        return Err(HttpError::Malformed("response head too long".into()));
    }
    let text = std::str::from_utf8(buf.get(..end).unwrap_or_default())
        .map_err(|_| HttpError::Malformed("response head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next(), parts.next());
    if !matches!(version, Some("HTTP/1.1" | "HTTP/1.0")) {
        return Err(HttpError::Malformed(format!(
            "status line {:?}",
            status_line.chars().take(64).collect::<String>()
        )));
    }
    let status = code
        .filter(|c| c.len() == 3)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| HttpError::Malformed("bad status code".into()))?;
    let mut head = Head {
        status,
        content_length: None,
        content_range: None,
        chunked: false,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("header line without a colon".into()));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .map_err(|_| HttpError::Malformed("bad Content-Length".into()))?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err(HttpError::Malformed("conflicting Content-Length".into()));
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("content-range") {
            head.content_range = parse_content_range(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = !value.eq_ignore_ascii_case("identity");
        }
    }
    Ok(Some((head, end + 4)))
}

/// `bytes start-end/total` → (`start`, `total`); `None` for anything else.
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let rest = value.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (
        start.parse::<u64>().ok()?,
        end.parse::<u64>().ok()?,
        total.parse::<u64>().ok()?,
    );
    (start <= end && end < total).then_some((start, total))
}

/// What a ranged GET amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The body (from `start`) was delivered whole; `total` is the resource's length
    /// when the server said it.
    Body {
        /// Offset of the first byte delivered (0 when the server ignored `Range`).
        start: u64,
        /// The resource's length, if known.
        total: Option<u64>,
    },
    /// 416: nothing at or after the offset (the resource is no longer than it).
    NothingLeft,
}

/// `GET path` from `offset` on `stream` (already connected, TLS done), `host` in the
/// `Host` header. `on_start(start)` is called once before the body with the offset it
/// begins at (0 if the server ignored `Range`); `on_body` gets each piece of the body.
/// Returns when the body is complete; a body cut short is an [`HttpError::Io`].
pub async fn get<S, E>(
    stream: &mut S,
    host: &str,
    path: &str,
    offset: u64,
    mut on_start: impl FnMut(u64) -> Result<(), E>,
    mut on_body: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<Result<Fetched, E>, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let range = if offset > 0 {
        format!("Range: bytes={offset}-\r\n")
    } else {
        String::new()
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{range}Accept: application/octet-stream\r\nConnection: close\r\nUser-Agent: bosun-agent\r\n\r\n"
    );
    timed(stream.write_all(request.as_bytes())).await?;
    timed(stream.flush()).await?;
    let mut buf = Vec::with_capacity(4096);
    let (head, used) = loop {
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        let mut chunk = [0u8; 4096];
        let n = timed(stream.read(&mut chunk)).await?;
        if n == 0 {
            return Err(HttpError::Io("closed before the response head".into()));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let early = buf.get(used..).unwrap_or_default().to_vec();
    if head.status == 416 {
        return Ok(Ok(Fetched::NothingLeft));
    }
    if !(head.status == 200 || head.status == 206) {
        let detail = error_detail(stream, &head, early).await;
        return Err(HttpError::Status {
            status: head.status,
            detail,
        });
    }
    if head.chunked {
        return Err(HttpError::Malformed(
            "chunked bodies are not supported".into(),
        ));
    }
    let length = head
        .content_length
        .ok_or_else(|| HttpError::Malformed("no Content-Length".into()))?;
    let (start, total) = match (head.status, head.content_range) {
        (206, Some((start, total))) if start == offset => (start, Some(total)),
        (206, _) => return Err(HttpError::Malformed("206 without our Content-Range".into())),
        _ => (0, Some(length)),
    };
    if let Err(e) = on_start(start) {
        return Ok(Err(e));
    }
    let mut left = length;
    let length_usize = usize::try_from(length).unwrap_or(usize::MAX);
    let first = early
        .get(..early.len().min(length_usize))
        .unwrap_or_default();
    if !first.is_empty() {
        left -= first.len() as u64;
        if let Err(e) = on_body(first) {
            return Ok(Err(e));
        }
    }
    let mut chunk = vec![0u8; 16 * 1024];
    while left > 0 {
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = timed(stream.read(chunk.get_mut(..want).unwrap_or_default())).await?;
        if n == 0 {
            return Err(HttpError::Io(format!(
                "connection closed with {left} bytes of the body missing"
            )));
        }
        left -= n as u64;
        if let Err(e) = on_body(chunk.get(..n).unwrap_or_default()) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(Fetched::Body { start, total }))
}

/// The `detail` of a problem+json error body, or its first bytes.
async fn error_detail<S: AsyncRead + Unpin>(stream: &mut S, head: &Head, early: Vec<u8>) -> String {
    let want = head.content_length.unwrap_or(0).min(MAX_ERROR_BODY) as usize;
    let mut body = early;
    body.truncate(want);
    while body.len() < want {
        let mut chunk = [0u8; 512];
        match tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            _ => break,
        }
    }
    body.truncate(want);
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v["detail"].is_string() => v["detail"].as_str().unwrap_or_default().to_owned(),
        _ => String::from_utf8_lossy(&body).chars().take(200).collect(),
    }
}

/// An I/O step under [`IO_TIMEOUT`].
async fn timed<T>(
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, HttpError> {
    match tokio::time::timeout(IO_TIMEOUT, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(HttpError::Io(e.to_string())),
        Err(_) => Err(HttpError::Io(format!("no progress for {IO_TIMEOUT:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_heads() {
        let raw = b"HTTP/1.1 206 Partial Content\r\ncontent-length: 5\r\nContent-Range: bytes 10-14/15\r\n\r\nhello";
        let (head, used) = parse_head(raw).expect("ok").expect("complete");
        assert_eq!(head.status, 206);
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.content_range, Some((10, 15)));
        assert_eq!(&raw[used..], b"hello");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").expect("ok").is_none());
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2000 X\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        let two = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n";
        assert!(parse_head(two).is_err());
        assert_eq!(parse_content_range("bytes 5-4/9"), None);
        assert_eq!(parse_content_range("bytes 0-9/9"), None);
    }

    /// Serves `response` to one connection on a loopback listener.
    async fn serve_once(response: Vec<u8>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).await;
                let _ = s.write_all(&response).await;
            }
        });
        addr
    }

    async fn fetch(response: &[u8], offset: u64) -> (Result<Fetched, ()>, Vec<u8>, u64) {
        let addr = serve_once(response.to_vec()).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut body, mut start) = (Vec::new(), u64::MAX);
        let r = get(
            &mut stream,
            "h",
            "/x",
            offset,
            |s| {
                start = s;
                Ok::<(), ()>(())
            },
            |b| {
                body.extend_from_slice(b);
                Ok(())
            },
        )
        .await;
        match r {
            Ok(inner) => (inner, body, start),
            Err(e) => (Err(()), format!("{e}").into_bytes(), start),
        }
    }

    #[tokio::test]
    async fn full_partial_unsatisfiable_cut_and_refused() {
        let (r, body, start) = fetch(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 0).await;
        assert_eq!(
            r,
            Ok(Fetched::Body {
                start: 0,
                total: Some(3)
            })
        );
        assert_eq!((body.as_slice(), start), (&b"abc"[..], 0));
        let part = b"HTTP/1.1 206 P\r\nContent-Length: 2\r\nContent-Range: bytes 1-2/3\r\n\r\nbc";
        let (r, body, _) = fetch(part, 1).await;
        assert_eq!(
            r,
            Ok(Fetched::Body {
                start: 1,
                total: Some(3)
            })
        );
        assert_eq!(body, b"bc");
        let (r, _, _) = fetch(b"HTTP/1.1 416 R\r\nContent-Range: bytes */3\r\n\r\n", 3).await;
        assert_eq!(r, Ok(Fetched::NothingLeft));
        let (r, msg, _) = fetch(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0).await;
        assert!(r.is_err() && String::from_utf8_lossy(&msg).contains("missing"));
        let forbidden = b"HTTP/1.1 403 F\r\nContent-Length: 22\r\n\r\n{\"detail\":\"expired!\"}";
        let (r, msg, _) = fetch(forbidden, 0).await;
        assert!(r.is_err());
        assert!(
            String::from_utf8_lossy(&msg).contains("HTTP 403: expired!"),
            "{msg:?}"
        );
    }

    proptest! {
        /// Arbitrary bytes never panic the head parser.
        #[test]
        fn parse_head_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_head(&bytes);
        }

        /// A well-formed head always parses to what it says.
        #[test]
        fn well_formed_heads_parse(status in 100u16..600, len in any::<u64>(), start in 0u64..1000, extra in 0u64..1000) {
            let total = start + extra + 1;
            let raw = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nContent-Range: bytes {start}-{}/{total}\r\n\r\n", start + extra);
            let (head, used) = parse_head(raw.as_bytes()).expect("ok").expect("complete");
            prop_assert_eq!(used, raw.len());
            prop_assert_eq!(head.status, status);
            prop_assert_eq!(head.content_length, Some(len));
            prop_assert_eq!(head.content_range, Some((start, total)));
        }
    }
}
