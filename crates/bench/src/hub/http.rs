//! A tiny HTTP/1.1 client for the REST API, over a plain tokio `TcpStream`.
//!
//! The benchmark needs exactly this much HTTP: requests with a JSON body framed by
//! `Content-Length`, on a keep-alive connection, and responses framed by
//! `Content-Length` or `Transfer-Encoding: chunked` (or, for completeness, by the server
//! closing the connection). Parsing is split from IO: [`parse_response`] looks at the
//! bytes buffered so far and says whether a whole response is there, so it is unit-tested
//! without sockets, and the async side only reads until it is.
//!
//! Not handled, because bosun's API never needs them: request bodies other than JSON,
//! `Expect: 100-continue` (1xx answers are skipped), TLS, redirects, pipelining.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long one request may take, from sending to the last byte of the answer. Longer
/// than the 30 s response timeout of the direct-method calls the benchmark makes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 16 * 1024;

/// A decoded HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    /// Status code, e.g. 201.
    pub(crate) status: u16,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
    /// Whether the server will close the connection after this response.
    pub(crate) close: bool,
}

impl Response {
    /// The body as text, shortened for error messages.
    pub(crate) fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.into_owned(),
        }
    }
}

/// One keep-alive connection to the API, opened on first use and again whenever the
/// server closes it. Every request carries the bearer token.
pub(crate) struct HttpClient {
    addr: SocketAddr,
    authorization: String,
    conn: Option<Conn>,
}

/// An open connection and the bytes read from it but not yet consumed.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

/// Why one attempt failed: before any byte of the answer arrived (on a reused connection
/// that means the server had closed it while idle, so the request may be retried on a
/// new one), or later.
enum Failure {
    /// Nothing of the answer had arrived.
    BeforeAnswer(anyhow::Error),
    /// The connection failed later, or the answer was malformed.
    During(anyhow::Error),
}

impl HttpClient {
    /// A client for the API at `addr` that sends `Authorization: Bearer {token}`.
    pub(crate) fn new(addr: SocketAddr, token: &str) -> HttpClient {
        HttpClient {
            addr,
            authorization: format!("Bearer {token}"),
            conn: None,
        }
    }

    /// Sends one request (a JSON body if `body` is given) and reads the whole answer.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Response> {
        let request = encode_request(method, path, &self.addr, &self.authorization, body);
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(&request))
            .await
            .with_context(|| format!("no answer within {REQUEST_TIMEOUT:?}"))?
            .with_context(|| format!("{method} {path}"))
    }

    /// One attempt, plus a second on a fresh connection if a reused one turned out to
    /// be closed before the server read the request.
    async fn exchange(&mut self, request: &[u8]) -> Result<Response> {
        let reused = self.conn.is_some();
        match self.attempt(request).await {
            Ok(response) => Ok(response),
            Err(Failure::BeforeAnswer(_)) if reused => {
                self.conn = None;
                self.attempt(request).await.map_err(Failure::into_error)
            }
            Err(failure) => Err(failure.into_error()),
        }
    }

    /// Writes the request and reads one response; drops the connection on any error and
    /// when the server announced it will close it.
    async fn attempt(&mut self, request: &[u8]) -> Result<Response, Failure> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("cannot connect to {}", self.addr))
                .map_err(Failure::During)?;
            stream
                .set_nodelay(true)
                .context("cannot set TCP_NODELAY")
                .map_err(Failure::During)?;
            self.conn = Some(Conn {
                stream,
                buf: BytesMut::with_capacity(READ_CHUNK),
            });
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::During(anyhow::anyhow!("no connection")));
        };
        let result = conn.round_trip(request).await;
        if !matches!(&result, Ok(r) if !r.close) {
            self.conn = None;
        }
        result
    }
}

impl Failure {
    /// The error, whichever kind of failure it was.
    fn into_error(self) -> anyhow::Error {
        match self {
            Failure::BeforeAnswer(e) | Failure::During(e) => e,
        }
    }
}

impl Conn {
    /// Writes `request` and reads until one whole response is buffered.
    async fn round_trip(&mut self, request: &[u8]) -> Result<Response, Failure> {
        if let Err(e) = self.stream.write_all(request).await {
            return Err(Failure::BeforeAnswer(
                anyhow::Error::new(e).context("cannot send the request"),
            ));
        }
        let mut eof = false;
        loop {
            match parse_response(&self.buf, eof) {
                Ok(Some((response, used))) => {
                    self.buf.advance(used);
                    return Ok(response);
                }
                Ok(None) => {}
                Err(e) => return Err(Failure::During(e)),
            }
            if eof {
                let e = anyhow::anyhow!("the server closed the connection");
                return Err(if self.buf.is_empty() {
                    Failure::BeforeAnswer(e)
                } else {
                    Failure::During(e.context("in the middle of a response"))
                });
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) if self.buf.is_empty() => {
                    return Err(Failure::BeforeAnswer(
                        anyhow::Error::new(e).context("cannot read the answer"),
                    ))
                }
                Err(e) => {
                    return Err(Failure::During(
                        anyhow::Error::new(e).context("cannot read the answer"),
                    ))
                }
            }
        }
    }
}

/// The bytes of one request.
fn encode_request(
    method: &str,
    path: &str,
    host: &SocketAddr,
    authorization: &str,
    body: Option<&str>,
) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\nAccept: application/json\r\n"
    );
    match body {
        Some(body) => {
            out.push_str("Content-Type: application/json\r\n");
            out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            out.push_str(body);
        }
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out.into_bytes()
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// `Content-Length` (or no body at all: 204, 304).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the server closes the connection.
    UntilClose,
}

/// A parsed status line and the headers the client cares about.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
    close: bool,
    /// Bytes of the head, including the empty line that ends it.
    len: usize,
}

/// A whole response at the start of `buf`, with the number of bytes it used, or `None`
/// if more bytes are needed. `eof` says the server has closed the connection (which
/// completes a body framed by the close). Interim 1xx responses are skipped.
fn parse_response(buf: &[u8], eof: bool) -> Result<Option<(Response, usize)>> {
    let mut offset = 0;
    loop {
        let Some(head) = parse_head(&buf[offset..])? else {
            return Ok(None);
        };
        let body_start = offset + head.len;
        if (100..200).contains(&head.status) {
            offset = body_start;
            continue;
        }
        let rest = &buf[body_start..];
        let (body, used) = match head.framing {
            Framing::Length(n) if rest.len() >= n => (rest[..n].to_vec(), n),
            Framing::Length(_) => return Ok(None),
            Framing::Chunked => match parse_chunked(rest)? {
                Some(done) => done,
                None => return Ok(None),
            },
            Framing::UntilClose if eof => (rest.to_vec(), rest.len()),
            Framing::UntilClose => {
                if rest.len() > MAX_BODY {
                    bail!("response body larger than {MAX_BODY} bytes");
                }
                return Ok(None);
            }
        };
        let close = head.close || head.framing == Framing::UntilClose;
        let response = Response {
            status: head.status,
            body,
            close,
        };
        return Ok(Some((response, body_start + used)));
    }
}

/// The head at the start of `buf`, if it is complete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            bail!("response head longer than {MAX_HEAD} bytes");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x response: {status_line:?}");
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut close = version == "HTTP/1.0";
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .with_context(|| format!("bad Content-Length {value:?}"))?;
            if n > MAX_BODY {
                bail!("response body of {n} bytes is larger than {MAX_BODY}");
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            close = value.contains("close") || (close && !value.contains("keep-alive"));
        }
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    Ok(Some(Head {
        status,
        framing,
        close,
        len: end + 4,
    }))
}

/// A complete chunked body at the start of `buf` (de-chunked) and its length on the
/// wire including the trailer section, or `None` if more bytes are needed.
fn parse_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find(&buf[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + eol]).context("bad chunk size line")?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(hex, 16).with_context(|| format!("bad chunk size {line:?}"))?;
        pos += eol + 2;
        if size == 0 {
            return Ok(skip_trailers(buf, pos).map(|end| (body, end)));
        }
        if body.len() + size > MAX_BODY {
            bail!("chunked body larger than {MAX_BODY} bytes");
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            bail!("chunk of {size} bytes not followed by CRLF");
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// The end of the trailer section that starts at `pos` (trailer lines, then an empty
/// line), or `None` if it is not all buffered.
fn skip_trailers(buf: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let eol = find(&buf[pos..], b"\r\n")?;
        pos += eol + 2;
        if eol == 0 {
            return Some(pos);
        }
    }
}

/// Index of the first occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, eof: bool) -> Option<(Response, usize)> {
        parse_response(text.as_bytes(), eof).expect("parses")
    }

    #[test]
    fn content_length_body_and_what_follows_it() {
        let wire = "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1";
        let (r, used) = parsed(wire, false).expect("complete");
        assert_eq!(
            (r.status, r.body.as_slice(), r.close),
            (201, &b"{}"[..], false)
        );
        assert_eq!(&wire[used..], "HTTP/1.1");
    }

    #[test]
    fn incomplete_head_or_body_needs_more() {
        assert!(parsed("HTTP/1.1 200 OK\r\ncontent-le", false).is_none());
        assert!(parsed("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc", false).is_none());
    }

    #[test]
    fn chunked_body_with_extension_and_trailer() {
        let wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let (r, used) = parsed(wire, false).expect("complete");
        assert_eq!(r.body, b"abcde");
        assert_eq!(used, wire.len());
        assert!(parsed(&wire[..wire.len() - 2], false).is_none());
    }

    #[test]
    fn body_until_close_and_connection_close() {
        let wire = "HTTP/1.1 200 OK\r\n\r\nhello";
        assert!(parsed(wire, false).is_none());
        let (r, _) = parsed(wire, true).expect("complete at eof");
        assert_eq!((r.body.as_slice(), r.close), (&b"hello"[..], true));
        let wire = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(parsed(wire, false).expect("complete").0.close);
    }

    #[test]
    fn interim_responses_and_204_are_bodiless() {
        let wire = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let (r, used) = parsed(wire, false).expect("complete");
        assert_eq!((r.status, r.body.len(), used), (204, 0, wire.len()));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for wire in [
            "SSH-2.0\r\n\r\n",
            "HTTP/1.1 abc\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nabc",
        ] {
            assert!(parse_response(wire.as_bytes(), false).is_err(), "{wire:?}");
        }
    }

    #[test]
    fn requests_carry_token_and_length() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        let wire = encode_request("POST", "/api/devices", &addr, "Bearer t", Some("{}"));
        let text = String::from_utf8(wire).expect("utf-8");
        assert!(text.starts_with("POST /api/devices HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(text.contains("Authorization: Bearer t\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"));
    }
}
