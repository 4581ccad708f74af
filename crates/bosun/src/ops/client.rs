//! A small blocking HTTP/1.1 client over `std::net::TcpStream`, for the operator
//! commands talking to the hub's REST API.
//!
//! Why not an HTTP crate: the peer is our own axum server, the CLI makes one request per
//! connection (`Connection: close`), and the whole protocol needed is a request line,
//! headers, and a body framed by `Content-Length`, chunked transfer coding or the end of
//! the connection. This file owns exactly that; JSON, tokens and problem documents are
//! `api.rs`'s. Every parse step has a bound (line length, header count, body size) and
//! malformed input is an `InvalidData` error, never a panic.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest status or header line accepted.
const MAX_LINE: usize = 8 * 1024;
/// Most header lines accepted in one response (including trailers).
const MAX_HEADERS: usize = 100;
/// Largest response body read into memory; listings are paged well below this.
pub(crate) const MAX_BODY: u64 = 64 * 1024 * 1024;
/// How long to wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the API listens: `http://host:port/base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
    /// Path prefix before `/api` (empty, or `/something` without a trailing slash), for
    /// an API behind a reverse proxy.
    pub(crate) base: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/base]`; a URL without a scheme is taken as http.
    pub(crate) fn parse(url: &str) -> io::Result<Endpoint> {
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(invalid(
                    "https is not supported by the built-in client: point --api at the \
                     hub's plain HTTP listener (through an SSH tunnel when remote)",
                ))
            }
            Some((scheme, _)) => return Err(invalid(format!("unsupported scheme {scheme:?}"))),
            None => url,
        };
        let (authority, base) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported; use --token",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| invalid(format!("bad IPv6 address in {url:?}")))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(invalid(format!("no host in {url:?}")));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| invalid(format!("bad port in {url:?}")))?,
            None => 80,
        };
        if base
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
        {
            return Err(invalid(format!("bad path in {url:?}")));
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The `Host` header value.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.base)
    }
}

/// A request to send.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// `GET`, `POST`, ...
    pub(crate) method: &'a str,
    /// Path and query, already percent-encoded, starting with `/` (the endpoint's base
    /// is put in front).
    pub(crate) target: &'a str,
    /// Extra headers (`Authorization`, `Accept`, `If-Match`, ...).
    pub(crate) headers: Vec<(&'a str, String)>,
    /// Body, sent with `Content-Length` (and `Content-Type: application/json`).
    pub(crate) body: Option<&'a [u8]>,
}

/// Status line and headers of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// Status code.
    pub(crate) status: u16,
    /// Reason phrase (informational only).
    pub(crate) reason: String,
    /// Headers in order, names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A whole response.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status line and headers.
    pub(crate) head: Head,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

/// Sends `request` and reads the whole response.
pub(crate) fn send(
    endpoint: &Endpoint,
    request: &Request<'_>,
    timeout: Duration,
) -> io::Result<Response> {
    let (head, body) = open(endpoint, request, Some(timeout))?;
    let body = read_body(body)?;
    Ok(Response { head, body })
}

/// Sends `request` and returns the head and a reader of the body, for streams.
/// `timeout` bounds each read (`None`: wait forever).
pub(crate) fn open(
    endpoint: &Endpoint,
    request: &Request<'_>,
    timeout: Option<Duration>,
) -> io::Result<(Head, BodyReader<BufReader<TcpStream>>)> {
    let stream = connect(endpoint)?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(Some(timeout.unwrap_or(CONNECT_TIMEOUT)))?;
    let mut writer = io::BufWriter::new(stream.try_clone()?);
    write_request(&mut writer, endpoint, request)?;
    writer.flush()?;
    let mut reader = BufReader::new(stream);
    let head = read_head(&mut reader)?;
    let framing = framing(&head, request.method)?;
    Ok((head, BodyReader::new(reader, framing)))
}

/// Connects to the first address of `endpoint` that answers.
fn connect(endpoint: &Endpoint) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in (endpoint.host.as_str(), endpoint.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Writes the request line, headers and body.
pub(crate) fn write_request(
    out: &mut impl Write,
    endpoint: &Endpoint,
    request: &Request<'_>,
) -> io::Result<()> {
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !is_token(request.method) {
        return Err(invalid(format!("bad method {:?}", request.method)));
    }
    if !request.target.starts_with('/') || request.target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(invalid(format!("bad request target {:?}", request.target)));
    }
    write!(
        out,
        "{} {}{} HTTP/1.1\r\n",
        request.method, endpoint.base, request.target
    )?;
    write!(out, "Host: {}\r\n", endpoint.authority())?;
    out.write_all(b"Connection: close\r\n")?;
    write!(
        out,
        "User-Agent: bosun-cli/{}\r\n",
        env!("CARGO_PKG_VERSION")
    )?;
    for (name, value) in &request.headers {
        if !is_token(name) || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(invalid(format!("bad header {name}")));
        }
        write!(out, "{name}: {value}\r\n")?;
    }
    if let Some(body) = request.body {
        out.write_all(b"Content-Type: application/json\r\n")?;
        write!(out, "Content-Length: {}\r\n\r\n", body.len())?;
        out.write_all(body)?;
    } else if matches!(request.method, "POST" | "PUT" | "PATCH") {
        out.write_all(b"Content-Length: 0\r\n\r\n")?;
    } else {
        out.write_all(b"\r\n")?;
    }
    Ok(())
}

/// Reads a status line and headers, skipping interim (1xx) responses.
pub(crate) fn read_head(input: &mut impl BufRead) -> io::Result<Head> {
    loop {
        let line = read_line(input)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection without a response",
            )
        })?;
        let (status, reason) = parse_status_line(&line)?;
        let headers = read_fields(input)?;
        if (100..200).contains(&status) {
            continue;
        }
        return Ok(Head {
            status,
            reason,
            headers,
        });
    }
}

/// `HTTP/1.1 200 OK` → (200, "OK").
fn parse_status_line(line: &str) -> io::Result<(u16, String)> {
    let bad = || invalid(format!("not an HTTP/1.x status line: {:?}", truncate(line)));
    let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let status = code.parse::<u16>().map_err(|_| bad())?;
    if status < 100 {
        return Err(bad());
    }
    Ok((status, reason.to_owned()))
}

/// Header (or trailer) lines up to the empty line.
fn read_fields(input: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let line = read_line(input)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the headers",
            )
        })?;
        if line.is_empty() {
            return Ok(fields);
        }
        if fields.len() == MAX_HEADERS {
            return Err(invalid("too many header lines"));
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && !n.contains(char::is_whitespace))
            .ok_or_else(|| invalid(format!("bad header line {:?}", truncate(&line))))?;
        fields.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// One line without its CRLF (or LF); `None` at a clean end of input.
fn read_line(input: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    let n = input
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut bytes)?;
    if n == 0 {
        return Ok(None);
    }
    if bytes.last() != Some(&b'\n') {
        return Err(if n > MAX_LINE {
            invalid("header line too long")
        } else {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a line",
            )
        });
    }
    bytes.pop();
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| invalid("header line is not UTF-8"))
}

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// The framing `head` announces for a response to `method`.
pub(crate) fn framing(head: &Head, method: &str) -> io::Result<Framing> {
    if method == "HEAD" || head.status == 204 || head.status == 304 {
        return Ok(Framing::Empty);
    }
    if let Some(coding) = head.header("transfer-encoding") {
        let last = coding.rsplit(',').next().unwrap_or_default().trim();
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for (_, value) in head.headers.iter().filter(|(n, _)| n == "content-length") {
        let n = value
            .trim()
            .parse::<u64>()
            .map_err(|_| invalid(format!("bad Content-Length {value:?}")))?;
        if length.is_some_and(|l| l != n) {
            return Err(invalid("conflicting Content-Length headers"));
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Reads a body as its framing says; `Read` yields the payload bytes only.
pub(crate) struct BodyReader<R> {
    /// The connection, positioned after the head.
    input: R,
    /// Where in the body we are.
    state: BodyState,
}

/// Progress through a body.
#[derive(Debug, Clone, Copy)]
enum BodyState {
    /// Everything read.
    Done,
    /// This many bytes of a `Content-Length` body left.
    Length(u64),
    /// Chunked: bytes left in the current chunk, and whether a chunk's CRLF is due
    /// before the next size line.
    Chunk { left: u64, crlf_due: bool },
    /// Until the connection closes.
    UntilClose,
}

impl<R: BufRead> BodyReader<R> {
    /// A reader of a body framed by `framing`.
    pub(crate) fn new(input: R, framing: Framing) -> BodyReader<R> {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunk {
                left: 0,
                crlf_due: false,
            },
            Framing::UntilClose => BodyState::UntilClose,
        };
        BodyReader { input, state }
    }

    /// Reads the next chunk-size line (after the previous chunk's CRLF); at the last
    /// chunk, reads the trailers and finishes.
    fn next_chunk(&mut self, crlf_due: bool) -> io::Result<()> {
        if crlf_due {
            match read_line(&mut self.input)? {
                Some(line) if line.is_empty() => {}
                Some(_) => return Err(invalid("chunk data longer than its size")),
                None => return Err(eof_in_body()),
            }
        }
        let line = read_line(&mut self.input)?.ok_or_else(eof_in_body)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!("bad chunk size {:?}", truncate(&line))));
        }
        let size = u64::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            read_fields(&mut self.input)?;
            self.state = BodyState::Done;
        } else {
            self.state = BodyState::Chunk {
                left: size,
                crlf_due: false,
            };
        }
        Ok(())
    }
}

impl<R: BufRead> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                BodyState::Done => return Ok(0),
                BodyState::UntilClose => return self.input.read(buf),
                BodyState::Length(left) => {
                    let n = read_some(&mut self.input, buf, left)?;
                    self.state = if left == n as u64 {
                        BodyState::Done
                    } else {
                        BodyState::Length(left - n as u64)
                    };
                    return Ok(n);
                }
                BodyState::Chunk { left: 0, crlf_due } => self.next_chunk(crlf_due)?,
                BodyState::Chunk { left, .. } => {
                    let n = read_some(&mut self.input, buf, left)?;
                    self.state = BodyState::Chunk {
                        left: left - n as u64,
                        crlf_due: true,
                    };
                    return Ok(n);
                }
            }
        }
    }
}

/// Reads at most `left` bytes (and at least one); the input ending first is an error.
fn read_some(input: &mut impl Read, buf: &mut [u8], left: u64) -> io::Result<usize> {
    let max = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
    let n = input.read(&mut buf[..max])?;
    if n == 0 {
        return Err(eof_in_body());
    }
    Ok(n)
}

/// Reads a whole body, at most [`MAX_BODY`] bytes.
pub(crate) fn read_body(body: impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    body.take(MAX_BODY + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_BODY {
        return Err(invalid(format!(
            "response body larger than {MAX_BODY} bytes"
        )));
    }
    Ok(out)
}

fn eof_in_body() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed inside the response body",
    )
}

/// An `InvalidData` error: the peer did not speak HTTP as we expect.
fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// At most 80 characters of `s`, for error messages about untrusted input.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], method: &str) -> io::Result<(Head, Vec<u8>)> {
        let mut input = raw;
        let head = read_head(&mut input)?;
        let framing = framing(&head, method)?;
        let body = read_body(BodyReader::new(input, framing))?;
        Ok((head, body))
    }

    #[test]
    fn content_length_bodies() {
        let (head, body) = parse(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}trailing",
            "POST",
        )
        .expect("parses");
        assert_eq!(head.status, 201);
        assert_eq!(head.reason, "Created");
        assert_eq!(head.header("content-type"), Some("application/json"));
        assert_eq!(body, b"{\"a\":1}");
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
        let (_, body) = parse(raw, "GET").expect("parses");
        assert_eq!(body, b"hello 0123456789");
    }

    #[test]
    fn chunked_bodies_read_in_tiny_pieces() {
        let raw: &[u8] = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let mut reader = BodyReader::new(raw, Framing::Chunked);
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while reader.read(&mut byte).expect("reads") == 1 {
            out.push(byte[0]);
        }
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn interim_responses_are_skipped_and_empty_bodies_have_no_framing() {
        let (head, body) = parse(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            "DELETE",
        )
        .expect("parses");
        assert_eq!(head.status, 204);
        assert!(body.is_empty());
        let (_, body) = parse(b"HTTP/1.0 200 OK\n\nuntil close", "GET").expect("parses");
        assert_eq!(body, b"until close");
    }

    #[test]
    fn malformed_responses_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"HTTP/1.1",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
            b"HTTP/1.1 200 OK\r\nX: \xff\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: y",
        ];
        for raw in cases {
            assert!(
                parse(raw, "GET").is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn limits_hold() {
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
        long.extend(b"\r\n\r\n");
        assert!(parse(&long, "GET").is_err());
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert!(parse(&many, "GET").is_err());
    }

    #[test]
    fn requests_are_written_with_length_and_host() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8080/proxy/").expect("url");
        let mut out = Vec::new();
        write_request(
            &mut out,
            &endpoint,
            &Request {
                method: "POST",
                target: "/api/devices",
                headers: vec![("Authorization", "Bearer t".into())],
                body: Some(b"{}"),
            },
        )
        .expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.starts_with("POST /proxy/api/devices HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"),
            "{text}"
        );
        assert!(text.contains("Authorization: Bearer t\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"), "{text}");

        for (target, header) in [("/a b", "ok"), ("/a", "x\r\nInjected: 1"), ("nope", "ok")] {
            let request = Request {
                method: "GET",
                target,
                headers: vec![("X", header.into())],
                body: None,
            };
            assert!(
                write_request(&mut Vec::new(), &endpoint, &request).is_err(),
                "{target} {header:?}"
            );
        }
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://localhost:9000").expect("url");
        assert_eq!(
            (e.host.as_str(), e.port, e.base.as_str()),
            ("localhost", 9000, "")
        );
        let e = Endpoint::parse("127.0.0.1:8080").expect("url");
        assert_eq!(e.to_string(), "http://127.0.0.1:8080");
        let e = Endpoint::parse("HTTP://[::1]:8080/base/").expect("url");
        assert_eq!(
            (e.host.as_str(), e.port, e.base.as_str()),
            ("::1", 8080, "/base")
        );
        assert_eq!(e.authority(), "[::1]:8080");
        assert_eq!(Endpoint::parse("http://example").expect("url").port, 80);
        for bad in [
            "https://h:1",
            "ftp://h",
            "http://:80",
            "http://h:99999",
            "http://u:p@h",
            "http://[::1",
            "http://h/a b",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
