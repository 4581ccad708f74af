//! Helpers for the interoperability tests: running third-party MQTT clients (the
//! `mosquitto_pub`/`mosquitto_sub` command-line tools and the paho-mqtt scripts in
//! `tests/clients/`) in the background and collecting what they print, waiting for
//! conditions with deadlines, and a tiny hand-written MQTT packet writer/reader for raw
//! `TcpStream` tests (deliberately independent of the `mqtt` crate under test).
//!
//! Used together with `common` (the `bosun` process harness): `mod common; mod support;`.
//! Nothing here sleeps for a fixed time; every wait polls a condition until a deadline and
//! panics with everything the client printed when the deadline passes.
#![allow(dead_code)] // each test binary uses a different part of these helpers

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Default deadline for one client step (a connection, a subscription, a delivery).
pub(crate) const STEP: Duration = Duration::from_secs(15);

/// The directory holding the paho-mqtt scripts.
pub(crate) fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub(crate) fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines read from one pipe, shared between the reader thread and the test.
#[derive(Default)]
struct Lines {
    state: Mutex<LinesState>,
    changed: Condvar,
}

#[derive(Default)]
struct LinesState {
    lines: Vec<String>,
    closed: bool,
}

impl Lines {
    fn collect(pipe: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let writer = Arc::clone(&lines);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_owned();
                        let mut state = writer.state.lock().expect("lines lock");
                        state.lines.push(line);
                        writer.changed.notify_all();
                    }
                }
            }
            writer.state.lock().expect("lines lock").closed = true;
            writer.changed.notify_all();
        });
        lines
    }

    fn snapshot(&self) -> Vec<String> {
        self.state.lock().expect("lines lock").lines.clone()
    }

    /// Waits until `cond(lines, closed)` holds or the deadline passes.
    fn wait(&self, limit: Duration, mut cond: impl FnMut(&[String], bool) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.state.lock().expect("lines lock");
        loop {
            if cond(&state.lines, state.closed) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left.min(Duration::from_millis(100)))
                .expect("lines lock")
                .0;
        }
    }
}

/// A client process running in the background; stdout and stderr are collected line by
/// line. Dropping it kills the process (SIGKILL) if it still runs.
pub(crate) struct Client {
    name: String,
    child: Child,
    out: Arc<Lines>,
    err: Arc<Lines>,
    status: Option<ExitStatus>,
}

impl Client {
    /// Spawns `cmd` with piped stdout/stderr; `name` labels it in failure messages.
    pub(crate) fn spawn(name: &str, mut cmd: Command) -> Client {
        let description = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({description}): {e}"));
        let out = Lines::collect(child.stdout.take().expect("piped stdout"));
        let err = Lines::collect(child.stderr.take().expect("piped stderr"));
        Client {
            name: format!("{name}: {description}"),
            child,
            out,
            err,
            status: None,
        }
    }

    /// Everything printed on stdout so far.
    pub(crate) fn stdout_lines(&self) -> Vec<String> {
        self.out.snapshot()
    }

    /// Everything printed so far on both pipes, for failure messages.
    pub(crate) fn dump(&self) -> String {
        let mut text = format!("=== client {}", self.name);
        if let Some(status) = self.status {
            let _ = write!(text, " ({status})");
        }
        let out = self.out.snapshot();
        let err = self.err.snapshot();
        // Long outputs (the durability clients) are cut to their last lines.
        let tail = |lines: &[String]| -> String {
            let skip = lines.len().saturating_sub(60);
            let mut s = String::new();
            if skip > 0 {
                let _ = writeln!(s, "... {skip} earlier lines");
            }
            for line in &lines[skip..] {
                let _ = writeln!(s, "{line}");
            }
            s
        };
        let _ = write!(
            text,
            "\n--- stdout ---\n{}--- stderr ---\n{}",
            tail(&out),
            tail(&err)
        );
        text
    }

    /// Waits until `cond` holds over the stdout lines; panics with the output otherwise.
    pub(crate) fn wait_stdout(
        &self,
        what: &str,
        limit: Duration,
        mut cond: impl FnMut(&[String]) -> bool,
    ) {
        if !self.out.wait(limit, |lines, _| cond(lines)) {
            panic!("{what}: not seen within {limit:?}\n{}", self.dump());
        }
    }

    /// Like [`Client::wait_stdout`] but returns whether `cond` held instead of panicking.
    pub(crate) fn try_wait_stdout(
        &self,
        limit: Duration,
        mut cond: impl FnMut(&[String]) -> bool,
    ) -> bool {
        self.out.wait(limit, |lines, _| cond(lines))
    }

    /// Waits for a stdout line containing `needle`; returns it.
    pub(crate) fn wait_line(&self, needle: &str, limit: Duration) -> String {
        let mut found = None;
        self.wait_stdout(&format!("a line containing {needle:?}"), limit, |lines| {
            found = lines.iter().find(|l| l.contains(needle)).cloned();
            found.is_some()
        });
        found.expect("set by the wait")
    }

    /// Waits until stdout is closed (the process exited or closed it).
    pub(crate) fn wait_stdout_closed(&self, limit: Duration) -> bool {
        self.out.wait(limit, |_, closed| closed)
    }

    /// Waits for the process to exit; panics with its output past the deadline.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll client") {
                self.status = Some(status);
                // Let the reader threads see the end of both pipes.
                self.out.wait(Duration::from_secs(2), |_, closed| closed);
                self.err.wait(Duration::from_secs(2), |_, closed| closed);
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "client did not exit within {limit:?} (killed)\n{}",
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit with status 0; panics with its output otherwise.
    pub(crate) fn wait_success(&mut self, limit: Duration) {
        let status = self.wait_exit(limit);
        assert!(status.success(), "client failed\n{}", self.dump());
    }

    /// SIGKILL and reap: the client's connection ends without DISCONNECT.
    pub(crate) fn kill9(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = Some(self.child.wait().expect("reap client"));
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Parsed JSON lines (paho scripts) whose `"event"` is `event`.
    pub(crate) fn events(&self, event: &str) -> Vec<serde_json::Value> {
        events_in(&self.stdout_lines(), event)
    }

    /// Waits for the first JSON line with `"event": event`; returns it.
    pub(crate) fn wait_event(&self, event: &str, limit: Duration) -> serde_json::Value {
        let mut found = None;
        self.wait_stdout(&format!("event {event:?}"), limit, |lines| {
            found = events_in(lines, event).into_iter().next();
            found.is_some()
        });
        found.expect("set by the wait")
    }

    /// Waits until at least `n` JSON lines with `"event": event` were printed; returns them.
    pub(crate) fn wait_events(
        &self,
        event: &str,
        n: usize,
        limit: Duration,
    ) -> Vec<serde_json::Value> {
        let mut seen = 0;
        let mut scanned = 0;
        self.wait_stdout(&format!("{n} events {event:?}"), limit, |lines| {
            seen += lines[scanned..]
                .iter()
                .filter(|l| is_event(l, event))
                .count();
            scanned = lines.len();
            seen >= n
        });
        self.events(event)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.dump());
        }
    }
}

/// Cheap pre-filter so counting events over 20,000 lines does not parse every line.
fn is_event(line: &str, event: &str) -> bool {
    line.contains(&format!("\"event\": \"{event}\""))
}

/// The JSON lines among `lines` whose `"event"` is `event`.
pub(crate) fn events_in(lines: &[String], event: &str) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter(|l| is_event(l, event))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}

/// MQTT protocol version for the command-line clients and scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.0.
    V5,
}

impl Version {
    /// The `-V` value of the mosquitto tools.
    pub(crate) fn mosquitto(self) -> &'static str {
        match self {
            Version::V311 => "mqttv311",
            Version::V5 => "mqttv5",
        }
    }

    /// The `--protocol` value of the paho scripts.
    pub(crate) fn paho(self) -> &'static str {
        match self {
            Version::V311 => "311",
            Version::V5 => "5",
        }
    }
}

/// A `mosquitto_sub` connected to `addr`, with `-d` so that its `received SUBACK` line
/// tells when it is subscribed. Messages are printed as `MSG|retain|qos|topic|payload`.
pub(crate) fn mosquitto_sub(addr: SocketAddr, version: Version, args: &[&str]) -> Client {
    // stdbuf: mosquitto_sub block-buffers stdout when it is a pipe.
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "mosquitto_sub"]);
    cmd.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-V", version.mosquitto(), "-d", "-F", "MSG|%r|%q|%t|%p"])
        .args(args);
    Client::spawn("mosquitto_sub", cmd)
}

/// The `MSG|retain|qos|topic|payload` lines of a [`mosquitto_sub`], parsed.
pub(crate) fn mosquitto_messages(client: &Client) -> Vec<Received> {
    client
        .stdout_lines()
        .iter()
        .filter_map(|l| Received::parse(l))
        .collect()
}

/// One message printed by [`mosquitto_sub`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Received {
    /// Retain flag as delivered.
    pub(crate) retain: bool,
    /// QoS as delivered.
    pub(crate) qos: u8,
    /// Topic name.
    pub(crate) topic: String,
    /// Payload (UTF-8 in these tests).
    pub(crate) payload: String,
}

impl Received {
    fn parse(line: &str) -> Option<Received> {
        let rest = line.strip_prefix("MSG|")?;
        let mut parts = rest.splitn(4, '|');
        let retain = parts.next()? == "1";
        let qos = parts.next()?.parse().ok()?;
        let topic = parts.next()?.to_owned();
        let payload = parts.next()?.to_owned();
        Some(Received {
            retain,
            qos,
            topic,
            payload,
        })
    }
}

/// Waits until `sub` printed `n` messages; returns them (panics with its output otherwise).
pub(crate) fn wait_messages(sub: &Client, n: usize, limit: Duration) -> Vec<Received> {
    sub.wait_stdout(&format!("{n} messages"), limit, |lines| {
        lines.iter().filter(|l| l.starts_with("MSG|")).count() >= n
    });
    mosquitto_messages(sub)
}

/// Waits until a [`mosquitto_sub`] is subscribed (its `-d` output shows the SUBACK).
pub(crate) fn wait_subscribed(sub: &Client) {
    sub.wait_line("received SUBACK", STEP);
}

/// Runs `mosquitto_pub` to completion (it waits for its own acknowledgements); `stdin`,
/// if given, is fed to it (for `-l`, one message per line). Panics if it fails.
pub(crate) fn mosquitto_pub(
    addr: SocketAddr,
    version: Version,
    args: &[&str],
    stdin: Option<&str>,
) {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-V", version.mosquitto()])
        .args(args);
    let description = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {description}: {e}"));
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let text = text.to_owned();
        // A writer thread, so a full pipe cannot block the deadline below.
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(text.as_bytes());
        });
    }
    let mut client = Client {
        name: format!("mosquitto_pub: {description}"),
        out: Lines::collect(child.stdout.take().expect("piped stdout")),
        err: Lines::collect(child.stderr.take().expect("piped stderr")),
        child,
        status: None,
    };
    client.wait_success(STEP * 2);
}

/// `python3 tests/clients/<script> --port P [args]`, in the background.
pub(crate) fn python(script: &str, addr: SocketAddr, args: &[&str]) -> Client {
    let mut cmd = Command::new("python3");
    cmd.arg("-u")
        .arg(clients_dir().join(script))
        .args([
            "--host",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args(args);
    Client::spawn(script, cmd)
}

/// Raw MQTT over `std::net::TcpStream`: hand-encoded packets, so these tests trust
/// nothing of the codec under test.
pub(crate) mod raw {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    /// Control packet types (high nibble of the first byte).
    pub(crate) const CONNACK: u8 = 2;
    /// PUBLISH.
    pub(crate) const PUBLISH: u8 = 3;
    /// PUBACK.
    pub(crate) const PUBACK: u8 = 4;
    /// PUBREC.
    pub(crate) const PUBREC: u8 = 5;
    /// SUBACK.
    pub(crate) const SUBACK: u8 = 9;
    /// DISCONNECT.
    pub(crate) const DISCONNECT: u8 = 14;

    /// Variable byte integer.
    pub(crate) fn varint(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut byte = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                byte |= 0x80;
            }
            out.push(byte);
            if n == 0 {
                return out;
            }
        }
    }

    /// Two-byte length prefix and the bytes (UTF-8 string or binary data).
    pub(crate) fn lp(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    /// A v5 property block: the length then the properties.
    pub(crate) fn props(body: &[u8]) -> Vec<u8> {
        let mut out = varint(body.len());
        out.extend_from_slice(body);
        out
    }

    /// A packet: first byte, remaining length, body.
    pub(crate) fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        out.extend(varint(body.len()));
        out.extend_from_slice(body);
        out
    }

    /// CONNECT with protocol name "MQTT", the given level, clean start, keep-alive 30 s.
    /// `v5_props` is the raw property block content (ignored below level 5).
    pub(crate) fn connect(level: u8, client_id: &str, v5_props: &[u8]) -> Vec<u8> {
        let mut body = lp(b"MQTT");
        body.push(level);
        body.push(0x02); // clean start / clean session
        body.extend_from_slice(&30u16.to_be_bytes());
        if level >= 5 {
            body.extend(props(v5_props));
        }
        body.extend(lp(client_id.as_bytes()));
        packet(0x10, &body)
    }

    /// SUBSCRIBE (v5) of one filter at `qos`.
    pub(crate) fn subscribe_v5(packet_id: u16, filter: &str, qos: u8) -> Vec<u8> {
        let mut body = packet_id.to_be_bytes().to_vec();
        body.extend(props(&[]));
        body.extend(lp(filter.as_bytes()));
        body.push(qos);
        packet(0x82, &body)
    }

    /// PUBLISH (v5) with raw topic bytes; `packet_id` is required for QoS 1 and 2.
    pub(crate) fn publish_v5(
        qos: u8,
        topic: &[u8],
        packet_id: Option<u16>,
        v5_props: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut body = lp(topic);
        if let Some(id) = packet_id {
            body.extend_from_slice(&id.to_be_bytes());
        }
        body.extend(props(v5_props));
        body.extend_from_slice(payload);
        packet(0x30 | (qos << 1), &body)
    }

    /// PUBLISH (3.1.1).
    pub(crate) fn publish_v311(
        qos: u8,
        topic: &[u8],
        packet_id: Option<u16>,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut body = lp(topic);
        if let Some(id) = packet_id {
            body.extend_from_slice(&id.to_be_bytes());
        }
        body.extend_from_slice(payload);
        packet(0x30 | (qos << 1), &body)
    }

    /// Property: Topic Alias (0x23).
    pub(crate) fn prop_topic_alias(alias: u16) -> Vec<u8> {
        let mut out = vec![0x23];
        out.extend_from_slice(&alias.to_be_bytes());
        out
    }

    /// One control packet as read from the wire.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) struct Packet {
        /// First byte (type and flags).
        pub(crate) first: u8,
        /// Everything after the remaining length.
        pub(crate) body: Vec<u8>,
    }

    impl Packet {
        /// The packet type (high nibble).
        pub(crate) fn kind(&self) -> u8 {
            self.first >> 4
        }

        /// CONNACK: the return/reason code byte. DISCONNECT (v5): the reason code
        /// (0x00 when the body is empty).
        pub(crate) fn reason(&self) -> Option<u8> {
            match self.kind() {
                CONNACK => self.body.get(1).copied(),
                DISCONNECT => Some(self.body.first().copied().unwrap_or(0)),
                _ => None,
            }
        }

        /// A v5 CONNACK's property `id` as an integer (byte, two- or four-byte integer).
        pub(crate) fn connack_int_property(&self, id: u8) -> Option<u32> {
            if self.kind() != CONNACK || self.body.len() < 3 {
                return None;
            }
            find_int_property(&self.body[2..], id)
        }

        /// A v5 PUBLISH's packet identifier (QoS 1 and 2).
        pub(crate) fn publish_packet_id(&self) -> Option<u16> {
            if self.kind() != PUBLISH || (self.first >> 1) & 3 == 0 {
                return None;
            }
            let topic_len = u16::from_be_bytes([*self.body.first()?, *self.body.get(1)?]) as usize;
            let at = 2 + topic_len;
            Some(u16::from_be_bytes([
                *self.body.get(at)?,
                *self.body.get(at + 1)?,
            ]))
        }

        /// A v5 PUBLISH's payload (assumes the topic name is present).
        pub(crate) fn publish_payload_v5(&self) -> Option<Vec<u8>> {
            let topic_len = u16::from_be_bytes([*self.body.first()?, *self.body.get(1)?]) as usize;
            let mut at = 2 + topic_len;
            if (self.first >> 1) & 3 != 0 {
                at += 2;
            }
            let (props_len, used) = read_varint(self.body.get(at..)?)?;
            at += used + props_len;
            Some(self.body.get(at..)?.to_vec())
        }

        /// A short description for failure messages.
        pub(crate) fn describe(&self) -> String {
            let name = match self.kind() {
                1 => "CONNECT",
                2 => "CONNACK",
                3 => "PUBLISH",
                4 => "PUBACK",
                5 => "PUBREC",
                6 => "PUBREL",
                7 => "PUBCOMP",
                8 => "SUBSCRIBE",
                9 => "SUBACK",
                11 => "UNSUBACK",
                13 => "PINGRESP",
                14 => "DISCONNECT",
                15 => "AUTH",
                _ => "?",
            };
            let shown: Vec<String> = self
                .body
                .iter()
                .take(24)
                .map(|b| format!("{b:02x}"))
                .collect();
            format!(
                "{name}(0x{:02x}, {} bytes: {}{})",
                self.first,
                self.body.len(),
                shown.join(" "),
                if self.body.len() > 24 { " ..." } else { "" }
            )
        }
    }

    /// Reads a variable byte integer; returns (value, bytes used).
    pub(crate) fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
        let mut value = 0usize;
        for (i, b) in bytes.iter().take(4).enumerate() {
            value |= ((b & 0x7f) as usize) << (7 * i);
            if b & 0x80 == 0 {
                return Some((value, i + 1));
            }
        }
        None
    }

    /// Looks up an integer property in a v5 property block (length included).
    fn find_int_property(block: &[u8], wanted: u8) -> Option<u32> {
        let (len, used) = read_varint(block)?;
        let mut p = block.get(used..used + len)?;
        while let Some((&id, rest)) = p.split_first() {
            let size = match id {
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => 1,
                0x13 | 0x21 | 0x22 | 0x23 => 2,
                0x02 | 0x11 | 0x18 | 0x27 => 4,
                0x0B => read_varint(rest)?.1,
                0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                    2 + u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize
                }
                0x26 => {
                    let k = 2 + u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize;
                    let v = u16::from_be_bytes([*rest.get(k)?, *rest.get(k + 1)?]) as usize;
                    k + 2 + v
                }
                _ => return None,
            };
            let value = rest.get(..size)?;
            if id == wanted {
                return match size {
                    1 => Some(value[0] as u32),
                    2 => Some(u16::from_be_bytes([value[0], value[1]]) as u32),
                    4 => Some(u32::from_be_bytes([value[0], value[1], value[2], value[3]])),
                    _ => read_varint(value).map(|(v, _)| v as u32),
                };
            }
            p = &rest[size..];
        }
        None
    }

    /// How a read ended when no complete packet came.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum End {
        /// The peer closed the connection (read returned 0 or reset).
        Closed(String),
        /// Nothing within the deadline.
        TimedOut,
    }

    /// A raw client connection.
    pub(crate) struct Conn {
        stream: TcpStream,
        buf: Vec<u8>,
        /// Every packet read so far, for failure messages.
        pub(crate) seen: Vec<Packet>,
    }

    impl Conn {
        /// Opens a TCP connection to the broker.
        pub(crate) fn open(addr: SocketAddr) -> Conn {
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .expect("raw TCP connect to the broker");
            stream.set_nodelay(true).expect("set TCP_NODELAY");
            Conn {
                stream,
                buf: Vec::new(),
                seen: Vec::new(),
            }
        }

        /// Connects and completes a v5 handshake; returns the CONNACK (asserting success).
        pub(crate) fn connect_v5(
            addr: SocketAddr,
            client_id: &str,
            v5_props: &[u8],
        ) -> (Conn, Packet) {
            let mut conn = Conn::open(addr);
            conn.send(&connect(5, client_id, v5_props));
            let connack = conn.expect(CONNACK, Duration::from_secs(10));
            assert_eq!(
                connack.reason(),
                Some(0),
                "CONNACK refused: {}",
                connack.describe()
            );
            (conn, connack)
        }

        /// Connects and completes a 3.1.1 handshake.
        pub(crate) fn connect_v311(addr: SocketAddr, client_id: &str) -> Conn {
            let mut conn = Conn::open(addr);
            conn.send(&connect(4, client_id, &[]));
            let connack = conn.expect(CONNACK, Duration::from_secs(10));
            assert_eq!(
                connack.reason(),
                Some(0),
                "CONNACK refused: {}",
                connack.describe()
            );
            conn
        }

        /// Writes bytes; a write error is returned, not a panic (the broker may already
        /// have closed the connection, which is what several tests provoke).
        pub(crate) fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.stream.write_all(bytes)
        }

        /// Writes bytes; panics on error.
        pub(crate) fn send(&mut self, bytes: &[u8]) {
            self.try_send(bytes).expect("write to the broker");
        }

        /// Reads the next packet, waiting at most `limit`.
        pub(crate) fn read(&mut self, limit: Duration) -> Result<Packet, End> {
            let deadline = Instant::now() + limit;
            loop {
                if let Some(packet) = self.parse_one() {
                    self.seen.push(packet.clone());
                    return Ok(packet);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(End::TimedOut);
                }
                self.stream
                    .set_read_timeout(Some(left.min(Duration::from_millis(200))))
                    .expect("set read timeout");
                let mut chunk = [0u8; 16 * 1024];
                match self.stream.read(&mut chunk) {
                    Ok(0) => return Err(End::Closed("read returned 0 (FIN)".into())),
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(End::Closed(format!("read error: {e}"))),
                }
            }
        }

        /// Reads until a packet of `kind` arrives (skipping others); panics otherwise.
        pub(crate) fn expect(&mut self, kind: u8, limit: Duration) -> Packet {
            let deadline = Instant::now() + limit;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.read(left) {
                    Ok(p) if p.kind() == kind => return p,
                    Ok(_) => {}
                    Err(end) => panic!(
                        "expected packet type {kind}, got {end:?}; packets read: {}",
                        self.history()
                    ),
                }
            }
        }

        /// Reads until the broker closes the connection; returns the packets read meanwhile,
        /// or `Err` with them if the connection is still open after `limit`.
        pub(crate) fn read_until_closed(
            &mut self,
            limit: Duration,
        ) -> Result<Vec<Packet>, Vec<Packet>> {
            let deadline = Instant::now() + limit;
            let mut packets = Vec::new();
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.read(left) {
                    Ok(p) => packets.push(p),
                    Err(End::Closed(_)) => return Ok(packets),
                    Err(End::TimedOut) => return Err(packets),
                }
            }
        }

        /// All packets read on this connection, described.
        pub(crate) fn history(&self) -> String {
            let list: Vec<String> = self.seen.iter().map(Packet::describe).collect();
            format!("[{}]", list.join(", "))
        }

        fn parse_one(&mut self) -> Option<Packet> {
            let first = *self.buf.first()?;
            let (len, used) = read_varint(self.buf.get(1..)?)?;
            let total = 1 + used + len;
            if self.buf.len() < total {
                return None;
            }
            let body = self.buf[1 + used..total].to_vec();
            self.buf.drain(..total);
            Some(Packet { first, body })
        }
    }
}
