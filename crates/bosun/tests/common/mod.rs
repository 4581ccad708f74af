//! Test harness for the `bosun` binary: start it on free loopback ports, wait for its
//! `listening` lines, talk HTTP to it, and stop it (SIGTERM or kill -9).
//!
//! Shared by every integration test of this crate (`mod common;`). It owns processes,
//! temporary data directories and deadlines; tests own what they check. Nothing here
//! sleeps for a fixed time: every wait polls a condition until a deadline.
//!
//! A `Bosun`'s stderr goes to `<data dir>/bosun.stderr.log`; when a test panics while a
//! `Bosun` is alive, its drop prints that log and kills the process.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long `bosun serve` gets to print its `listening` lines.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a process gets to exit after SIGTERM, or a one-shot command to finish.
pub(crate) const EXIT_DEADLINE: Duration = Duration::from_secs(20);
/// Polling step while waiting for a process to exit.
const POLL: Duration = Duration::from_millis(20);
/// File in the data directory that receives the process's stderr.
pub(crate) const STDERR_FILE: &str = "bosun.stderr.log";

/// What to start; built by [`Bosun::launch`], remembered for restarts.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    dev: bool,
}

impl Launch {
    /// Adds an environment variable for the process (e.g. `BOSUN_MQTT__MAX_INFLIGHT`).
    pub(crate) fn env(mut self, name: &str, value: &str) -> Launch {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts without `--dev`, so anonymous clients are refused.
    pub(crate) fn no_dev(mut self) -> Launch {
        self.dev = false;
        self
    }

    /// Starts the process and waits for its `listening` lines (panics past the deadline).
    pub(crate) fn start(self) -> Bosun {
        let data = match flag_value(&self.args, "--data-dir") {
            Some(dir) => DataDir::Given(PathBuf::from(dir)),
            None => DataDir::Temp(Arc::new(
                TempDir::with_prefix("bosun-test-").expect("create temp dir"),
            )),
        };
        Bosun::spawn(self, data, None)
    }
}

/// Where a `Bosun` keeps its data; a temp dir is shared with its restarts.
#[derive(Clone, Debug)]
enum DataDir {
    /// Created by the harness, removed when the last `Bosun` using it is dropped.
    Temp(Arc<TempDir>),
    /// Chosen by the test with `--data-dir`.
    Given(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Temp(dir) => dir.path(),
            DataDir::Given(dir) => dir,
        }
    }
}

/// A running `bosun serve`.
pub(crate) struct Bosun {
    child: Child,
    launch: Launch,
    data: DataDir,
    mqtt: SocketAddr,
    /// The TLS listener, unless started with `--mqtts off`.
    mqtts: Option<SocketAddr>,
    /// The HTTPS API listener, when TLS is on (and not `--https off`).
    https: Option<SocketAddr>,
    http: SocketAddr,
    /// Set once the process has been reaped, so drop does not touch it again.
    exited: Option<ExitStatus>,
}

impl Bosun {
    /// Starts `bosun serve` with `args` plus defaults: `--dev`, `--mqtt 127.0.0.1:0`,
    /// `--mqtts 127.0.0.1:0`, `--http 127.0.0.1:0`, and a temporary `--data-dir` — each
    /// unless `args` has it (so parallel tests never contend for 8883). The added
    /// `--mqtts` beats a config file's `[tls]`; pass `--mqtts off` to run without TLS.
    pub(crate) fn start(args: &[&str]) -> Bosun {
        Bosun::launch(args).start()
    }

    /// Like [`Bosun::start`], with options: `Bosun::launch(&[]).env(k, v).no_dev().start()`.
    pub(crate) fn launch(args: &[&str]) -> Launch {
        Launch {
            args: args.iter().map(|a| a.to_string()).collect(),
            envs: Vec::new(),
            dev: true,
        }
    }

    /// Starts a new process on this one's data directory and MQTT address, with the same
    /// arguments and environment (HTTP gets a fresh port). Stop this one first
    /// ([`Bosun::kill9`] or [`Bosun::terminate`]); retries while the port is still held.
    pub(crate) fn restart_same(&self) -> Bosun {
        assert!(
            self.exited.is_some(),
            "stop the old process before restart_same"
        );
        Bosun::spawn(self.launch.clone(), self.data.clone(), Some(self.mqtt))
    }

    /// Starts `bosun serve` on an existing data directory and a fixed MQTT address.
    pub(crate) fn start_on(data_dir: &Path, mqtt: SocketAddr, args: &[&str]) -> Bosun {
        let launch = Bosun::launch(args);
        Bosun::spawn(launch, DataDir::Given(data_dir.to_owned()), Some(mqtt))
    }

    /// The bound MQTT address.
    pub(crate) fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt
    }

    /// The bound MQTT-over-TLS address (from the `listening mqtts` line); panics when
    /// the process was started with `--mqtts off`.
    pub(crate) fn mqtts_addr(&self) -> SocketAddr {
        self.mqtts
            .expect("bosun announced no `listening mqtts` line (started with --mqtts off?)")
    }

    /// Whether the process announced a TLS listener.
    pub(crate) fn tls_listening(&self) -> bool {
        self.mqtts.is_some()
    }

    /// The bound HTTP address.
    pub(crate) fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The bound HTTPS API address (from the `listening https` line); panics when
    /// there is none (`--mqtts off` or `--https off`).
    #[allow(dead_code)]
    pub(crate) fn https_addr(&self) -> SocketAddr {
        self.https
            .expect("bosun announced no `listening https` line (started with --mqtts off?)")
    }

    /// The data directory (also holds [`STDERR_FILE`]).
    pub(crate) fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process (and earlier ones on this data dir) wrote to stderr.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(self.data_dir().join(STDERR_FILE)).unwrap_or_default()
    }

    /// SIGKILL, then reap: no shutdown code runs, like a power cut for the process.
    pub(crate) fn kill9(&mut self) {
        if self.exited.is_none() {
            self.child.kill().expect("kill -9 bosun");
            self.exited = Some(self.child.wait().expect("reap bosun"));
        }
    }

    /// SIGTERM, then wait for exit (panics past [`EXIT_DEADLINE`]); returns the status.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        send_signal(self.child.id(), "-TERM");
        let status = self.wait_exit(EXIT_DEADLINE);
        self.exited = Some(status);
        status
    }

    /// `GET path` over a fresh connection; panics if the server does not answer.
    pub(crate) fn http_get(&self, path: &str) -> HttpResponse {
        http_get(self.http, path)
    }

    fn spawn(launch: Launch, data: DataDir, mqtt: Option<SocketAddr>) -> Bosun {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match Bosun::try_spawn(&launch, &data, mqtt) {
                Ok((
                    child,
                    Listening {
                        mqtt,
                        mqtts,
                        https,
                        http,
                    },
                )) => {
                    return Bosun {
                        child,
                        launch,
                        data,
                        mqtt,
                        mqtts,
                        https,
                        http,
                        exited: None,
                    }
                }
                // A fixed port may still be held briefly by the process we just killed.
                Err(log)
                    if mqtt.is_some() && log.contains("in use") && Instant::now() < deadline =>
                {
                    std::thread::sleep(POLL * 10)
                }
                Err(log) => panic!("bosun serve did not start:\n{log}"),
            }
        }
    }

    /// One attempt; on failure returns the stderr log.
    fn try_spawn(
        launch: &Launch,
        data: &DataDir,
        mqtt: Option<SocketAddr>,
    ) -> Result<(Child, Listening), String> {
        let dir = data.path();
        std::fs::create_dir_all(dir).expect("create data dir");
        let stderr_path = dir.join(STDERR_FILE);
        let args = serve_args(launch, dir, mqtt);
        let stderr = open_log(&stderr_path, &args);
        let mut child = bosun_command()
            .args(&args)
            .envs(launch.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn bosun");
        let stdout = child.stdout.take().expect("piped stdout");
        match wait_listening(stdout, Instant::now() + START_DEADLINE) {
            Ok(listening) => Ok((child, listening)),
            Err(why) => {
                let _ = child.kill();
                let status = child.wait().expect("reap bosun");
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                Err(format!("{why} ({status})\n--- stderr ---\n{log}"))
            }
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll bosun") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "bosun did not exit within {limit:?}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Bosun {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- bosun stderr ({}) ---\n{}",
                self.data_dir().display(),
                self.stderr()
            );
        }
    }
}

/// The `bosun serve` arguments: the caller's, with harness defaults where missing.
fn serve_args(launch: &Launch, dir: &Path, mqtt: Option<SocketAddr>) -> Vec<String> {
    let mut args: Vec<String> = vec!["serve".into()];
    let mut given = launch.args.clone();
    if let Some(addr) = mqtt {
        remove_flag(&mut given, "--mqtt");
        args.extend(["--mqtt".into(), addr.to_string()]);
    }
    remove_flag(&mut given, "--data-dir");
    args.extend(["--data-dir".into(), dir.display().to_string()]);
    if launch.dev && !given.iter().any(|a| a == "--dev") {
        args.push("--dev".into());
    }
    for flag in ["--mqtt", "--mqtts", "--https", "--http"] {
        if !args.iter().chain(&given).any(|a| a == flag) {
            args.extend([flag.into(), "127.0.0.1:0".into()]);
        }
    }
    args.extend(given);
    args
}

/// The value after `flag` in `args`, if present.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Removes `flag` and its value from `args`.
fn remove_flag(args: &mut Vec<String>, flag: &str) {
    if let Some(i) = args.iter().position(|a| a == flag) {
        args.drain(i..(i + 2).min(args.len()));
    }
}

/// Opens the stderr log for appending, with a header naming this start.
fn open_log(path: &Path, args: &[String]) -> File {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open stderr log");
    writeln!(file, "=== bosun {}", args.join(" ")).expect("write stderr log");
    file
}

/// A `Command` for the binary under test.
pub(crate) fn bosun_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bosun"))
}

/// The addresses from the `listening` lines.
struct Listening {
    mqtt: SocketAddr,
    mqtts: Option<SocketAddr>,
    https: Option<SocketAddr>,
    http: SocketAddr,
}

/// Reads stdout on a thread (which keeps draining it, so the process never blocks on
/// a full pipe) until the `listening mqtt` and `listening http` lines have arrived;
/// `listening mqtts` and `listening https`, when TLS is on, come between them.
fn wait_listening(stdout: ChildStdout, deadline: Instant) -> Result<Listening, String> {
    let lines = forward_lines(stdout);
    let (mut mqtt, mut mqtts, mut https, mut http) = (None, None, None, None);
    while mqtt.is_none() || http.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err("no `listening` lines before the deadline".into())
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err("bosun exited before listening".into())
            }
        };
        let addr = |rest: &str| {
            rest.trim()
                .parse::<SocketAddr>()
                .map_err(|e| format!("bad line {line:?}: {e}"))
        };
        if let Some(rest) = line.strip_prefix("listening mqtt ") {
            mqtt = Some(addr(rest)?);
        } else if let Some(rest) = line.strip_prefix("listening mqtts ") {
            mqtts = Some(addr(rest)?);
        } else if let Some(rest) = line.strip_prefix("listening https ") {
            https = Some(addr(rest)?);
        } else if let Some(rest) = line.strip_prefix("listening http ") {
            http = Some(addr(rest)?);
        }
    }
    Ok(Listening {
        mqtt: mqtt.expect("set above"),
        mqtts,
        https,
        http: http.expect("set above"),
    })
}

/// Sends each stdout line to the returned channel, until EOF.
fn forward_lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// Sends a signal with the `kill` command (no libc dependency).
pub(crate) fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed: {status}");
}

/// Runs a one-shot `bosun` command to completion (killed past [`EXIT_DEADLINE`]).
pub(crate) fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut child = bosun_command()
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bosun");
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + EXIT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll bosun") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bosun {args:?} did not exit within {EXIT_DEADLINE:?}");
        }
        std::thread::sleep(POLL);
    };
    let collect = |h: std::thread::JoinHandle<Vec<u8>>| h.join().expect("reader thread");
    Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

/// Reads a pipe to the end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    /// Status code.
    pub(crate) status: u16,
    /// Header lines, as sent (`Name: value`).
    pub(crate) headers: Vec<String>,
    /// Body (the server sends `Content-Length` bodies; we read to EOF).
    pub(crate) body: String,
}

/// `GET path` with a hand-written HTTP/1.1 request and `Connection: close`.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, &[], None)
}

/// Any request, hand-written HTTP/1.1 with `Connection: close`; `body` goes with a
/// `Content-Length` (and whatever `headers` say, such as its content type).
pub(crate) fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    let mut stream = TcpStream::connect_timeout(&addr, EXIT_DEADLINE).expect("connect to http");
    stream
        .set_read_timeout(Some(API_DEADLINE))
        .expect("set read timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).expect("send request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("complete response head");
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    HttpResponse {
        status,
        headers: lines.map(str::to_owned).collect(),
        body: body.to_owned(),
    }
}

/// A loopback TCP listener on a free port, holding it so `bosun` cannot bind it.
pub(crate) fn occupied_port() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port")
}

/// How long an API call may take (a direct method waits up to its own timeout).
const API_DEADLINE: Duration = Duration::from_secs(60);

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if sent.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as JSON (chunked framing removed); `Null` when empty or not JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        let body = if self
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            dechunk(&self.body)
        } else {
            self.body.clone()
        };
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
    }
}

/// Removes HTTP/1.1 chunked framing from a complete body.
fn dechunk(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

impl Bosun {
    /// The admin API token the server created in its data directory.
    pub(crate) fn admin_token(&self) -> String {
        let path = self.data_dir().join("admin.token");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// Calls the REST API as admin with an optional JSON body and extra headers.
    pub(crate) fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        extra: &[(&str, &str)],
    ) -> HttpResponse {
        let auth = format!("Bearer {}", self.admin_token());
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        let text = body.map(|b| b.to_string());
        http_request(self.http, method, path, &headers, text.as_deref())
    }
}

/// Runs `bosun ARGS --api <hub's API> --data-dir <its data>` (the CLI reads the admin
/// token from there), to completion.
pub(crate) fn cli(hub: &Bosun, args: &[&str]) -> Output {
    let api = format!("http://{}", hub.http_addr());
    let data = hub.data_dir().to_string_lossy().into_owned();
    let mut all = args.to_vec();
    all.extend(["--api", &api, "--data-dir", &data]);
    run(&all, &[])
}

/// [`cli`] that must succeed; its stdout.
pub(crate) fn cli_ok(hub: &Bosun, args: &[&str]) -> String {
    let out = cli(hub, args);
    assert!(
        out.status.success(),
        "bosun {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fleet tests' turn (`bosun sim` with hundreds of devices loads both cores): one
/// at a time across test processes, through a lock file holding the owner's pid, taken
/// over when that process is gone or after 4 minutes.
pub(crate) struct FleetTurn(PathBuf);

impl FleetTurn {
    /// Waits for the turn.
    pub(crate) fn take() -> FleetTurn {
        let path = std::env::temp_dir().join("bosun-sim-tests.lock");
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let created = OpenOptions::new().write(true).create_new(true).open(&path);
            if let Ok(mut file) = created {
                let _ = write!(file, "{}", std::process::id());
                return FleetTurn(path);
            }
            // An empty file was just created and its pid is being written.
            let owner = std::fs::read_to_string(&path).unwrap_or_default();
            let owner = owner.trim();
            let alive = owner.is_empty() || Path::new(&format!("/proc/{owner}")).exists();
            if !alive || Instant::now() > deadline {
                let _ = std::fs::remove_file(&path);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for FleetTurn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Signs `image` as `version` for hardware `hw` with the private key file `key` (the
/// offline CLI, files in `dir`), uploads it to `hub`, and returns the image's id.
pub(crate) fn publish_firmware(
    hub: &Bosun,
    dir: &Path,
    key: &str,
    hw: &str,
    image: &[u8],
    version: &str,
) -> String {
    let file = dir.join(format!("fw-{version}.bin"));
    std::fs::write(&file, image).expect("write the image");
    let manifest = dir.join(format!("fw-{version}.json"));
    let (file, manifest) = (file.to_string_lossy(), manifest.to_string_lossy());
    let sign = [
        "firmware",
        "sign",
        "--key",
        key,
        "--file",
        &file,
        "--version",
        version,
        "--hw",
        hw,
        "--out",
        &manifest,
    ];
    cli_ok(hub, &sign);
    let upload = [
        "firmware",
        "upload",
        "--manifest",
        &manifest,
        "--file",
        &file,
    ];
    let out = cli_ok(hub, &upload);
    let id = out.trim().strip_prefix("uploaded ");
    id.unwrap_or_else(|| panic!("no image id in {out:?}"))
        .to_owned()
}
