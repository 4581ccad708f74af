//! Crash safety: a child process (this test binary, re-executed) appends batches from
//! two threads and prints each batch whose `append` returned; the parent SIGKILLs it mid-stream, reopens
//! the store and checks that every acknowledged point is there exactly once, and that
//! the batch in flight is all or nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tsdb::{Agg, Options, Point, Query, Tsdb};

const CHILD_DIR: &str = "BOSUN_TSDB_CRASH_CHILD_DIR";
const CHILD_START: &str = "BOSUN_TSDB_CRASH_CHILD_START";
const TEST_NAME: &str = "acknowledged_points_survive_sigkill";
const BATCH: i64 = 100;
const DEVICES: i64 = 5;

/// Batch `b` holds timestamps `b*1000 .. b*1000+BATCH` of device `d{b % DEVICES}`.
fn batch_points(b: i64) -> (String, Vec<(i64, f64)>) {
    let device = format!("d{}", b % DEVICES);
    let points = (0..BATCH)
        .map(|i| (b * 1000 + i, (b * BATCH + i) as f64 / 16.0))
        .collect();
    (device, points)
}

/// Child mode: two threads append forever (until killed), printing `ack <batch>` after
/// each append returns; thread `t` writes batches `start + t`, `start + t + 2`, … so
/// their appends share fsyncs (group commit) when the kill lands.
fn child(dir: &Path, start: i64) -> ! {
    let db = match Tsdb::open(dir, Options::default()) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("child cannot open: {e}");
            std::process::exit(2);
        }
    };
    std::thread::scope(|scope| {
        for t in 0..2 {
            let db = &db;
            scope.spawn(move || {
                for b in (start + t..start + 1_000_000).step_by(2) {
                    child_batch(db, b);
                }
            });
        }
    });
    std::process::exit(0);
}

fn child_batch(db: &Tsdb, b: i64) {
    let (device, points) = batch_points(b);
    let batch: Vec<Point<'_>> = points
        .iter()
        .map(|&(ts_ms, value)| Point {
            device: &device,
            field: "f",
            ts_ms,
            value,
        })
        .collect();
    if let Err(e) = db.append(&batch) {
        eprintln!("child append failed: {e}");
        std::process::exit(3);
    }
    println!("ack {b}");
    // Seal now and then so crashes also hit segment writes and WAL rotation.
    if b % 37 == 0 {
        if let Err(e) = db.flush() {
            eprintln!("child flush failed: {e}");
            std::process::exit(4);
        }
    }
}

/// Runs one child from `start`, kills it after it acknowledged `kill_after` batches and
/// returns the acknowledged batches.
fn run_child(dir: &Path, start: i64, kill_after: usize) -> Vec<i64> {
    let exe = std::env::current_exe().unwrap_or_default();
    let spawned = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_START, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => panic!("cannot spawn child: {e}"),
    };
    let Some(stdout) = child.stdout.take() else {
        panic!("no stdout")
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(b) = line
            .strip_prefix("ack ")
            .and_then(|n| n.trim().parse::<i64>().ok())
        {
            acked.push(b);
        }
        if acked.len() >= kill_after || Instant::now() > deadline {
            break;
        }
    }
    // SIGKILL on Unix.
    assert!(child.kill().is_ok(), "cannot kill the child");
    let _ = child.wait();
    assert!(!acked.is_empty(), "the child acknowledged nothing");
    acked
}

/// Counts per batch after reopening.
fn counts(dir: &Path, end: i64) -> Vec<i64> {
    let db = match Tsdb::open(dir, Options::default()) {
        Ok(db) => db,
        Err(e) => panic!("reopen failed: {e}"),
    };
    let q = Query {
        field: "f".to_owned(),
        devices: None,
        from_ms: 0,
        to_ms: end * 1000,
        step_ms: Some(1000),
        agg: Agg::Count,
    };
    let mut out = vec![0i64; end as usize];
    match db.query(&q) {
        Ok(results) => {
            for r in results {
                for b in r.buckets {
                    if let Some(slot) = out.get_mut((b.ts_ms / 1000) as usize) {
                        *slot += b.value as i64;
                    }
                }
            }
        }
        Err(e) => panic!("query failed: {e}"),
    }
    out
}

#[test]
fn acknowledged_points_survive_sigkill() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let start = std::env::var(CHILD_START)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        child(Path::new(&dir), start);
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let mut start = 0;
    let mut acked: Vec<i64> = Vec::new();
    for (round, kill_after) in [60, 113, 90].into_iter().enumerate() {
        let round_acked = run_child(dir.path(), start, kill_after);
        let last = round_acked.iter().copied().max().unwrap_or(start);
        acked.extend(round_acked);
        // Leave a gap so batches of different rounds never share timestamps.
        let end = last + 1000;
        let counts = counts(dir.path(), end);
        for &b in &acked {
            let have = counts.get(b as usize).copied().unwrap_or(-1);
            assert_eq!(
                have, BATCH,
                "round {round}: acknowledged batch {b} has {have} points"
            );
        }
        for (b, &c) in counts.iter().enumerate() {
            assert!(
                c == 0 || c == BATCH,
                "round {round}: batch {b} is partial ({c} points)"
            );
        }
        start = end;
    }
}
