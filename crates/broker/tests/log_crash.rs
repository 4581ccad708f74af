//! A real crash test of the durable log: a child process appends numbered records and
//! reports each one once its completion ran (the moment the broker would send PUBACK);
//! the parent SIGKILLs it mid-stream, reopens the log, and checks that every reported
//! number survived. The child is this same test binary, re-executed with
//! [`CHILD_ENV`] set and `--exact` selecting [`crash_child`].
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use broker::log::{Log, LogConfig};
use broker::metrics::Metrics;
use bytes::Bytes;

/// Set (to the log directory) in the child process only.
const CHILD_ENV: &str = "BOSUN_LOG_CRASH_CHILD_DIR";
/// Prefix of the child's "this record is durable" lines (libtest prints other lines too).
const DURABLE_PREFIX: &str = "durable ";
/// Kill rounds; each one recovers the previous round's log and continues it.
const ROUNDS: usize = 4;
/// Small segments so rotation happens while the child is being killed.
const SEGMENT_BYTES: u64 = 16 * 1024;
/// Records the child keeps in flight between flushes.
const WINDOW: u64 = 64;

fn record(n: u64) -> Bytes {
    // Padding makes records span more bytes, so kills land inside writes more often.
    Bytes::from(format!("{n:012}:{}", "p".repeat(40)))
}

fn number(record: &[u8]) -> u64 {
    std::str::from_utf8(&record[..12]).unwrap().parse().unwrap()
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        fsync: true,
        ..LogConfig::default()
    }
}

/// Opens the log in `dir`, returning it and the numbers it replayed, checked contiguous.
fn open_and_check(dir: &Path) -> (Log, Vec<u64>) {
    let mut numbers = Vec::new();
    let log = Log::open(dir, config(), Arc::new(Metrics::default()), |r| {
        numbers.push(number(r))
    })
    .unwrap();
    for (i, n) in numbers.iter().enumerate() {
        assert_eq!(
            *n, i as u64,
            "replay must be the appends in order, without gaps"
        );
    }
    (log, numbers)
}

/// Child mode: continue the log forever, printing each number once it is durable.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // A normal test run: nothing to do.
    };
    let (log, replayed) = open_and_check(Path::new(&dir));
    let mut next = replayed.len() as u64;
    loop {
        for _ in 0..WINDOW {
            let n = next;
            log.append(
                record(n),
                Some(Box::new(move || println!("{DURABLE_PREFIX}{n}"))),
            );
            next += 1;
        }
        log.flush().unwrap();
    }
}

fn spawn_child(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads durable numbers until `kill_after` of them, SIGKILLs the child, then drains what
/// it had already printed; returns every number it reported durable.
fn run_and_kill(dir: &Path, kill_after: usize) -> Vec<u64> {
    let mut child = spawn_child(dir);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut reported = Vec::new();
    while reported.len() < kill_after {
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(n) = line.strip_prefix(DURABLE_PREFIX) {
            reported.push(n.parse::<u64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush.
    child.wait().unwrap();
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix(DURABLE_PREFIX) {
            reported.push(n.parse().unwrap());
        }
    }
    reported
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut last_durable = None;
    for round in 0..ROUNDS {
        let reported = run_and_kill(dir.path(), 1000 + 1500 * round);
        let max_reported = *reported.iter().max().unwrap();
        let (log, replayed) = open_and_check(dir.path());
        println!(
            "round {round}: child reported up to {max_reported}, log replayed {}",
            replayed.len()
        );
        assert!(
            (replayed.len() as u64) > max_reported,
            "record {max_reported} was acknowledged but lost"
        );
        if let Some(previous) = last_durable {
            assert!(max_reported > previous, "each round must make progress");
        }
        last_durable = Some(max_reported);
        log.close();
    }
}
