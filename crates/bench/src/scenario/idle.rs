//! `idle`: many connected clients that each hold one subscription and then do nothing.
//!
//! Reports broker memory per connection ((RSS after − RSS before) / N) and the connect
//! rate (CONNECT+CONNACK+SUBSCRIBE+SUBACK completed per second). One process may hold
//! at most 20,000 descriptors and one source address has a limited ephemeral port
//! range, so the connections are opened by worker processes (this executable re-run
//! with the hidden `worker` subcommand), 5,000 each, each from its own loopback source
//! address (127.0.B.2, 127.0.B.3, … with a new block B for every run, so the previous
//! run's TIME_WAIT ports never collide with the new ones).
//!
//! Parent and workers talk over the workers' stdin/stdout: a worker prints `armed` when
//! it is ready, starts connecting when it reads `go`, prints `ready` once all its
//! clients are subscribed (or `error …`), and exits when its stdin closes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mqtt::QoS;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};

use super::{metric, Better, Metric, Settings, Window};
use crate::client::{self, Options};
use crate::peer::Broker;

/// Connections per worker process.
pub(crate) const PER_WORKER: usize = 5_000;
/// Handshakes a worker keeps under way at once.
const CONCURRENCY: usize = 32;

/// What a worker is asked to do (the `worker` subcommand's arguments).
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// Broker MQTT address.
    #[arg(long)]
    pub(crate) addr: SocketAddr,
    /// Local address to connect from.
    #[arg(long)]
    pub(crate) source: IpAddr,
    /// Connections to open.
    #[arg(long)]
    pub(crate) count: usize,
    /// Index of the first client, for unique client ids and topics.
    #[arg(long)]
    pub(crate) first: usize,
}

/// Runs the idle scenario and returns its metrics.
pub(crate) async fn run(broker: &mut Broker, settings: &Settings) -> Result<Vec<Metric>> {
    let total = settings.idle_clients.max(1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = broker.rss_kib()?;

    // A fresh block of source addresses per run: the previous run's connections linger
    // in TIME_WAIT on their (source, port) pairs, which makes binding slow, then fail.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let block = 1 + (RUNS.fetch_add(1, Ordering::Relaxed) % 250) as u8;
    let mut workers = Vec::new();
    let mut first = 0;
    while first < total {
        let count = PER_WORKER.min(total - first);
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, block, 2 + (first / PER_WORKER) as u8));
        let mut child = Command::new(&settings.exe)
            .arg("worker")
            .args([
                "--addr",
                &broker.addr.to_string(),
                "--source",
                &source.to_string(),
            ])
            .args(["--count", &count.to_string(), "--first", &first.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start an idle worker")?;
        let stdin = child.stdin.take().context("worker has no stdin")?;
        let mut lines =
            BufReader::new(child.stdout.take().context("worker has no stdout")?).lines();
        match lines
            .next_line()
            .await
            .context("cannot read from a worker")?
        {
            Some(line) if line == "armed" => {}
            other => bail!("worker did not arm: {other:?}"),
        }
        workers.push((child, stdin, lines));
        first += count;
    }

    let connected = Arc::new(AtomicUsize::new(0));
    let window = Window::open(broker)?;
    let start = Instant::now();
    let mut stdins: Vec<ChildStdin> = Vec::new();
    let mut readers = tokio::task::JoinSet::new();
    let mut children = Vec::new();
    for (child, mut stdin, mut lines) in workers {
        stdin
            .write_all(b"go\n")
            .await
            .context("cannot start a worker")?;
        stdin.flush().await.context("cannot start a worker")?;
        stdins.push(stdin);
        children.push(child);
        let connected = Arc::clone(&connected);
        readers.spawn(async move {
            while let Some(line) = lines.next_line().await? {
                if let Some(n) = line.strip_prefix("progress ") {
                    connected.fetch_add(n.parse().unwrap_or(0), Ordering::Relaxed);
                } else if line == "ready" {
                    return Ok(start.elapsed());
                } else if let Some(e) = line.strip_prefix("error ") {
                    bail!("worker failed: {e}");
                }
            }
            bail!("worker exited before all its clients connected")
        });
    }
    let mut elapsed = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last_print = Instant::now();
    while !readers.is_empty() {
        match tokio::time::timeout(Duration::from_secs(1), readers.join_next()).await {
            Ok(Some(done)) => elapsed = elapsed.max(done.context("worker reader panicked")??),
            Ok(None) => break,
            Err(_) => {}
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            crate::progress(&format!(
                "idle: {}/{total} connected",
                connected.load(Ordering::Relaxed)
            ));
        }
        if Instant::now() > deadline {
            bail!(
                "idle: only {} of {total} clients connected in 180 s",
                connected.load(Ordering::Relaxed)
            );
        }
    }
    let cpu = window.cpu_spent(broker)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = broker.rss_kib()?;
    broker.check_alive()?;
    drop(stdins);
    for mut child in children {
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }

    let n = total as f64;
    Ok(vec![
        metric(
            "RSS per connection",
            "bytes",
            Better::Lower,
            (rss_after as f64 - rss_before as f64) * 1024.0 / n,
        ),
        metric(
            "connect+subscribe rate",
            "conn/s",
            Better::Higher,
            n / elapsed.as_secs_f64().max(1e-9),
        ),
        metric(
            "broker CPU per connection",
            "µs",
            Better::Lower,
            cpu * 1e6 / n,
        ),
        metric(
            "RSS before",
            "MiB",
            Better::Lower,
            rss_before as f64 / 1024.0,
        ),
        metric(
            "RSS with all connected",
            "MiB",
            Better::Lower,
            rss_after as f64 / 1024.0,
        ),
    ])
}

/// The `worker` subcommand: opens the connections, reports, then holds them until stdin closes.
pub(crate) async fn worker(args: WorkerArgs) -> Result<()> {
    println!("armed");
    match stdin_line().await {
        Some(line) if line.trim() == "go" => {}
        _ => return Ok(()),
    }
    let WorkerArgs {
        addr,
        source,
        count,
        first,
    } = args;
    let done = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut reported = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let now = done.load(Ordering::Relaxed);
                println!("progress {}", now - reported);
                reported = now;
            }
        })
    };
    let clients = client::connect_many(
        addr,
        count,
        CONCURRENCY,
        QoS::AtMostOnce,
        Arc::clone(&done),
        move |i| {
            let mut opts = Options::new(format!("bench-idle-{}", first + i));
            opts.source = Some(source);
            opts.read_chunk = 512;
            (opts, format!("idle/{}", first + i))
        },
    )
    .await;
    let clients = match clients {
        Ok(clients) => clients,
        Err(e) => {
            println!("error {e:#}");
            return Err(e);
        }
    };
    ticker.abort();
    println!("ready");
    while stdin_line().await.is_some() {}
    drop(clients);
    Ok(())
}

/// One line from stdin, `None` at end of input (read on a blocking thread).
async fn stdin_line() -> Option<String> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    })
    .await
    .ok()
    .flatten()
}
