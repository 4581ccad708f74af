//! Accepts TCP connections and spawns one task each, under a connection limit.
//!
//! The limit is a semaphore whose permit moves into the connection task, so a
//! connection over the limit waits in the kernel's backlog instead of costing memory
//! here; accept errors (such as running out of descriptors) back off exponentially
//! instead of spinning.
//!
//! The MQTT and MQTT-over-TLS listeners are two instances of this loop sharing the
//! semaphore and the stop signal. A TLS listener only picks the task to spawn: the TLS
//! handshake runs in that task, so a slow client never delays the next accept.
//!
//! At start the process's descriptor table is grown, once and off the accept path, to
//! fit `max_connections` ([`reserve_descriptor_table`]): growing it later would stall
//! the accepting worker, and every connection with it, in the middle of a connect storm.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::connection::{self, Shared};
use crate::tls::TlsState;

/// Longest pause after repeated accept errors.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts until `stop` flips to true; with `tls`, each connection starts with a TLS
/// handshake using the certificate current at that moment.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    tls: Option<Arc<TlsState>>,
) {
    reserve_descriptor_table(shared.config.max_connections);
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                // MQTT packets are small and latency matters more than segment count.
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                // Two spawn sites, so a plain connection's task is sized for TCP only.
                match &tls {
                    None => {
                        tokio::spawn(async move {
                            connection::serve(stream, peer, shared).await;
                            drop(permit);
                        });
                    }
                    Some(tls) => {
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            connection::serve_tls(stream, peer, shared, tls).await;
                            drop(permit);
                        });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}

/// Descriptors counted on top of `max_connections` for everything that is not a client
/// (log segments, the control plane's database, HTTP connections).
#[cfg(target_os = "linux")]
const OTHER_DESCRIPTORS: usize = 64;

/// Grows the process's descriptor table, in the background and once per process, so
/// that `connections` client sockets fit without the table growing again.
///
/// Why: when a multi-threaded process needs a descriptor beyond its table, the kernel
/// doubles the table and, because other threads share it, waits for an RCU grace period
/// first (`synchronize_rcu` in `expand_fdtable`), inside the `accept4` that needed the
/// slot. On one tokio worker that wait stops every connection. Measured on the 2-core
/// VM (`perf sched`, `docs/benchmarks.md`): a 10,000-client connect storm met six such
/// waits of 15–30 ms, about 130 ms of a 450 ms storm, the worker in `D` state in
/// `expand_files`. Mosquitto is single-threaded and never waits there.
///
/// How, with the standard library only: duplicate a descriptor of `/dev/null` until a
/// copy's number reaches the size wanted (the kernel sizes the table in powers of two),
/// then close the copies. That passes each doubling once, on a blocking thread, about
/// 10 ms per doubling here (~90 ms for 16,384 slots); the kernel never shrinks the
/// table, so later storms find it ready. Kernel memory: 8 bytes per slot. At most half
/// the soft descriptor limit is ever held, so files opened meanwhile elsewhere in the
/// process still get descriptors; without a readable limit nothing is reserved and the
/// table grows on demand as before.
#[cfg(target_os = "linux")]
fn reserve_descriptor_table(connections: usize) {
    use std::os::fd::AsRawFd;

    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(soft_limit) = soft_descriptor_limit() else {
            return;
        };
        // A descriptor numbered n makes the table at least next_power_of_two(n + 1) long.
        let wanted = connections.saturating_add(OTHER_DESCRIPTORS);
        let highest =
            (wanted.checked_next_power_of_two().unwrap_or(usize::MAX) / 2).min(soft_limit / 2);
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let Ok(null) = std::fs::File::open("/dev/null") else {
                return;
            };
            let mut held = Vec::new();
            while let Ok(copy) = null.try_clone() {
                let number = usize::try_from(copy.as_raw_fd()).unwrap_or(0);
                held.push(copy);
                if number >= highest {
                    break;
                }
            }
            let reached = held.last().map_or(0, |fd| fd.as_raw_fd());
            drop(held);
            tracing::debug!(
                descriptor = reached,
                ms = started.elapsed().as_millis() as u64,
                "descriptor table reserved"
            );
        });
    });
}

/// Elsewhere the table is left to grow on demand.
#[cfg(not(target_os = "linux"))]
fn reserve_descriptor_table(_connections: usize) {}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits`.
#[cfg(target_os = "linux")]
fn soft_descriptor_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line["Max open files".len()..].split_whitespace().next()? {
        "unlimited" => Some(usize::MAX),
        soft => soft.parse().ok(),
    }
}
