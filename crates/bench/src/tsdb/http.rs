//! Just enough HTTP/1.1 for the benchmark, over `std::net`: a client that sends one
//! request per connection (`Connection: close`, read to EOF), and a line-protocol
//! server that feeds bosun's store, so bosun can also be measured behind the same kind
//! of HTTP write path InfluxDB has.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use tsdb::{Point, Tsdb};

/// Sends a request and returns the status code and body.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<(u16, String)> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .context("cannot send request")?;
    stream.write_all(body).context("cannot send body")?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .context("cannot read response")?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| {
            format!(
                "bad response: {:?}",
                text.chars().take(80).collect::<String>()
            )
        })?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// Joins the chunks of a `Transfer-Encoding: chunked` body (stops at anything malformed).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = size.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        let Some(chunk) = rest.get(..size) else {
            break;
        };
        out.push_str(chunk);
        body = rest.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query-string value.
pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A line-protocol write endpoint in front of a store (a thread per connection).
pub(crate) struct LineServer {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LineServer {
    /// Starts serving `POST /write` on an ephemeral loopback port.
    pub(crate) fn start(db: Arc<Tsdb>) -> Result<LineServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind")?;
        let addr = listener.local_addr().context("no local address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(stream) = stream {
                    let db = Arc::clone(&db);
                    std::thread::spawn(move || {
                        if let Err(e) = serve(stream, &db) {
                            eprintln!("line server: {e:#}");
                        }
                    });
                }
            }
        });
        Ok(LineServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the server thread.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request, appends its lines, answers 204 (or 400 with the error).
fn serve(stream: TcpStream, db: &Tsdb) -> Result<()> {
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let mut reader = BufReader::new(&stream);
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).context("cannot read header")? == 0 {
            bail!("connection closed in headers");
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().context("bad content-length")?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).context("cannot read body")?;
    let text = std::str::from_utf8(&body).context("body is not UTF-8")?;
    let result = parse_lines(text).and_then(|points| db.append(&points).context("append failed"));
    let mut out = &stream;
    match result {
        Ok(()) => out.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"),
        Err(e) => {
            let msg = format!("{e:#}");
            let head = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                msg.len()
            );
            out.write_all(head.as_bytes())
                .and_then(|()| out.write_all(msg.as_bytes()))
        }
    }
    .context("cannot answer")
}

/// Parses `measurement,device=D k=v,k=v TS` lines into points (ms timestamps).
fn parse_lines(text: &str) -> Result<Vec<Point<'_>>> {
    let mut points = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (series, rest) = line.split_once(' ').context("no fields")?;
        let (fields, ts) = rest.rsplit_once(' ').context("no timestamp")?;
        let ts_ms: i64 = ts.parse().context("bad timestamp")?;
        let device = series
            .split(',')
            .find_map(|t| t.strip_prefix("device="))
            .context("no device tag")?;
        for kv in fields.split(',') {
            let (field, value) = kv.split_once('=').context("bad field")?;
            let value: f64 = value.parse().context("bad value")?;
            points.push(Point {
                device,
                field,
                ts_ms,
                value,
            });
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_line_protocol() -> Result<()> {
        let points = parse_lines("vib,device=d1 a=1.5,b=2 1000\nvib,device=d2 a=3 2000\n")?;
        assert_eq!(points.len(), 3);
        assert_eq!(
            points[1],
            Point {
                device: "d1",
                field: "b",
                ts_ms: 1000,
                value: 2.0
            }
        );
        assert_eq!(points[2].device, "d2");
        Ok(())
    }

    #[test]
    fn joins_chunks() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
