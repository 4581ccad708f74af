//! `idle`: many connected clients that each hold one subscription and then do nothing.
//!
//! Reports broker memory per connection ((RSS after − RSS before) / N) and the connect
//! rate (CONNECT+CONNACK+SUBSCRIBE+SUBACK completed per second). One process may hold
//! at most 20,000 descriptors and one source address has a limited ephemeral port
//! range, so the connections are opened by worker processes (this executable re-run
//! with the hidden `worker` subcommand), 5,000 each, each from its own loopback source
//! address (127.0.B.2, 127.0.B.3, … with a new block B for every run, also across
//! invocations, so earlier runs' TIME_WAIT ports never collide with the new ones).
//!
//! Parent and workers talk over the workers' stdin/stdout: a worker prints `armed` when
//! it is ready, starts connecting when it reads `go`, prints `ready <CPU ns>` once all
//! its clients are subscribed (with the CPU time it spent on them), or `error …`, and
//! exits when its stdin closes.

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

    let block = source_block();
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
    let idle_before = machine_idle_ticks();
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
                } else if let Some(cpu) = line.strip_prefix("ready ") {
                    let cpu_ns: u64 = cpu.trim().parse().context("bad worker CPU time")?;
                    return Ok((start.elapsed(), cpu_ns));
                } else if let Some(e) = line.strip_prefix("error ") {
                    bail!("worker failed: {e}");
                }
            }
            bail!("worker exited before all its clients connected")
        });
    }
    let mut elapsed = Duration::ZERO;
    let mut generator_ns = 0u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last_print = Instant::now();
    while !readers.is_empty() {
        match tokio::time::timeout(Duration::from_secs(1), readers.join_next()).await {
            Ok(Some(done)) => {
                let (took, cpu_ns) = done.context("worker reader panicked")??;
                elapsed = elapsed.max(took);
                generator_ns += cpu_ns;
            }
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
    let idle_ticks = machine_idle_ticks().saturating_sub(idle_before);
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
            "generator CPU per connection",
            "µs",
            Better::Lower,
            generator_ns as f64 / 1e3 / n,
        ),
        metric(
            "machine idle during connect",
            "%",
            Better::Lower,
            super::percent(
                idle_ticks as f64 / crate::process::clock_ticks() as f64,
                elapsed.as_secs_f64() * cpus() as f64,
            ),
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
    reserve_descriptors(args.count);
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
    let cpu_at_go = own_cpu_ns();
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
    // The generator's own CPU for the handshakes, so a run can show whether the load
    // generator (and not the broker) was what limited the rate.
    println!("ready {}", own_cpu_ns().saturating_sub(cpu_at_go));
    while stdin_line().await.is_some() {}
    drop(clients);
    Ok(())
}

/// Grows this process's descriptor table to fit `count` more sockets before the clock
/// starts, by duplicating stdin that many times and closing the copies (the kernel never
/// shrinks the table).
///
/// Why: this process is multi-threaded (tokio), and in such a process the kernel waits
/// for an RCU grace period each time the table doubles, inside the `socket()` call that
/// needed the slot. Measured (`perf sched`): five or six waits of 8–30 ms per worker
/// during the storm, the generator thread in `D` state in `expand_files`, against
/// either broker. Doing it before `armed` takes the generator's own table out of the
/// measurement; it is the same for both brokers.
fn reserve_descriptors(count: usize) {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut held = Vec::with_capacity(count);
    while held.len() < count {
        match stdin.as_fd().try_clone_to_owned() {
            Ok(fd) => held.push(fd),
            Err(_) => break, // the descriptor limit: the run itself will report it
        }
    }
}

/// A fresh block B of source addresses 127.0.B.x for this run. The previous runs'
/// connections linger in TIME_WAIT (60 s) on their (source, port) pairs, and binding
/// next to thousands of them is slow: measured, the generator's CPU per connection went
/// from ~21 µs to ~500 µs and both brokers' rates fell tenfold. A counter alone restarts
/// at the same block in every invocation, so the first block comes from the clock
/// (seconds modulo 250): an invocation uses one block per run and each run takes over a
/// second, so the next invocation starts past the blocks of the previous one, and a
/// block comes back only after 250 s, long after its TIME_WAIT ended.
fn source_block() -> u8 {
    static FIRST: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let first = *FIRST.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as usize)
    });
    1 + ((first + RUNS.fetch_add(1, Ordering::Relaxed)) % 250) as u8
}

/// CPU time used so far by all threads of this process, in nanoseconds (the first
/// field of each thread's `schedstat`: time on a CPU, user and kernel).
fn own_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Idle plus I/O-wait time of all CPUs so far, in clock ticks (`/proc/stat`).
fn machine_idle_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0)
}

/// CPUs this machine has.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
