//! Tests of the durable log through its public interface, plus hand-made files for crash
//! states that are hard to reach by running it. The `log_throughput` benchmark is
//! `#[ignore]`d; run it with
//! `cargo test --release -p bosun-broker -- --ignored log_throughput --nocapture`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::record::{self, HEADER_LEN};
use super::segment::{Kind, LogFile};
use super::*;

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        fsync: true,
        ..LogConfig::default()
    }
}

/// An open log, the records it replayed, and its metrics.
type Opened = (Log, Vec<Vec<u8>>, Arc<Metrics>);

fn open(dir: &Path, config: LogConfig) -> Opened {
    try_open(dir, config).unwrap()
}

fn try_open(dir: &Path, config: LogConfig) -> Result<Opened, LogError> {
    let metrics = Arc::new(Metrics::default());
    let mut replayed = Vec::new();
    let log = Log::open(dir, config, Arc::clone(&metrics), |r| {
        replayed.push(r.to_vec())
    })?;
    Ok((log, replayed, metrics))
}

fn replay(dir: &Path) -> Vec<Vec<u8>> {
    let (log, records, _) = open(dir, LogConfig::default());
    log.close();
    records
}

fn numbered(i: usize) -> Vec<u8> {
    format!("record-{i:06}").into_bytes()
}

fn append_numbered(log: &Log, range: std::ops::Range<usize>) {
    for i in range {
        log.append(Bytes::from(numbered(i)), None);
    }
}

fn expected(range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range.map(numbered).collect()
}

fn counting(counter: &Arc<AtomicUsize>) -> Option<Completion> {
    let counter = Arc::clone(counter);
    Some(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }))
}

/// Log files of a kind, oldest first.
fn files(dir: &Path, kind: Kind) -> Vec<PathBuf> {
    segment::list(dir)
        .unwrap()
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.path(dir))
        .collect()
}

fn bytes_on_disk(dir: &Path) -> u64 {
    segment::list(dir)
        .unwrap()
        .iter()
        .map(|f| fs::metadata(f.path(dir)).unwrap().len())
        .sum()
}

fn framed(records: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = Vec::new();
    for r in records {
        record::encode_into(&mut buf, record::checked_len(r.len()).unwrap(), r);
    }
    buf
}

fn flip_byte(path: &Path, offset_from_end: u64) {
    let mut bytes = fs::read(path).unwrap();
    let at = bytes.len() - offset_from_end as usize;
    bytes[at] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn log_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
}

#[test]
fn replays_appends_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (log, replayed, _) = open(dir.path(), config(256));
    assert!(replayed.is_empty());
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..500 {
        log.append(Bytes::from(numbered(i)), counting(&done));
    }
    log.close();
    assert_eq!(done.load(Ordering::SeqCst), 500);
    assert!(files(dir.path(), Kind::Segment).len() > 10);
    assert_eq!(replay(dir.path()), expected(0..500));
}

#[test]
fn reopened_log_keeps_appending_after_existing_records() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let (log, replayed, _) = open(dir.path(), config(1024));
        assert_eq!(replayed, expected(0..round * 100));
        append_numbered(&log, round * 100..(round + 1) * 100);
        log.close();
    }
    assert_eq!(replay(dir.path()), expected(0..300));
}

#[test]
fn empty_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), LogConfig::default());
    log.append(Bytes::new(), None);
    log.append(Bytes::from_static(b"x"), None);
    log.append(Bytes::new(), None);
    log.close();
    assert_eq!(replay(dir.path()), vec![vec![], b"x".to_vec(), vec![]]);
}

#[test]
fn completion_runs_only_after_the_record_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), config(4096));
    let too_early = Arc::new(AtomicBool::new(false));
    let mut end = 0u64;
    for i in 0..300 {
        let record = numbered(i);
        end += (HEADER_LEN + record.len()) as u64;
        let (too_early, path) = (Arc::clone(&too_early), dir.path().to_path_buf());
        let done: Completion = Box::new(move || {
            if bytes_on_disk(&path) < end {
                too_early.store(true, Ordering::SeqCst);
            }
        });
        log.append(Bytes::from(record), Some(done));
    }
    log.flush().unwrap();
    assert!(!too_early.load(Ordering::SeqCst));
    log.close();
}

#[test]
fn barrier_runs_after_earlier_completions() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), LogConfig::default());
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        log.append(Bytes::from(numbered(i)), counting(&done));
    }
    let seen_at_barrier = Arc::new(AtomicUsize::new(usize::MAX));
    let (seen, count) = (Arc::clone(&seen_at_barrier), Arc::clone(&done));
    log.barrier(Box::new(move || {
        seen.store(count.load(Ordering::SeqCst), Ordering::SeqCst)
    }));
    log.flush().unwrap();
    assert_eq!(seen_at_barrier.load(Ordering::SeqCst), 100);
    log.close();
}

#[test]
fn size_tracks_bytes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), config(512));
    assert_eq!(log.size(), 0);
    append_numbered(&log, 0..100);
    log.flush().unwrap();
    assert_eq!(log.size(), bytes_on_disk(dir.path()));
    assert_eq!(log.size(), framed(&expected(0..100)).len() as u64);
    log.compact(vec![Bytes::from_static(b"state")]);
    log.flush().unwrap();
    assert_eq!(log.size(), (HEADER_LEN + 5) as u64);
    assert_eq!(log.size(), bytes_on_disk(dir.path()));
    log.close();
}

#[test]
fn metrics_count_appends_bytes_and_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, metrics) = open(dir.path(), LogConfig::default());
    append_numbered(&log, 0..10);
    log.close();
    assert_eq!(metrics.log_appends.get(), 10);
    assert_eq!(
        metrics.log_bytes.get(),
        framed(&expected(0..10)).len() as u64
    );
    assert!(metrics.log_fsyncs.get() >= 1);
    assert_eq!(metrics.fsync_seconds.count(), metrics.log_fsyncs.get());
}

#[test]
fn without_fsync_completions_still_run_and_data_survives_close() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        fsync: false,
        ..config(1024)
    };
    let (log, _, metrics) = open(dir.path(), cfg);
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..200 {
        log.append(Bytes::from(numbered(i)), counting(&done));
    }
    log.flush().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 200);
    assert_eq!(metrics.log_fsyncs.get(), 0);
    drop(log); // Drop, not close: must stop the thread and keep the data too.
    assert_eq!(replay(dir.path()), expected(0..200));
}

#[test]
fn oversized_record_is_refused_without_running_its_completion() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), LogConfig::default());
    let done = Arc::new(AtomicUsize::new(0));
    log.append(Bytes::from(vec![0u8; MAX_RECORD_LEN + 1]), counting(&done));
    log.append(Bytes::from(numbered(1)), counting(&done));
    log.close();
    assert_eq!(done.load(Ordering::SeqCst), 1);
    assert_eq!(replay(dir.path()), expected(1..2));
}

#[test]
fn failed_write_drops_its_completions_and_leaves_no_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), LogConfig::default());
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..5 {
        log.append(Bytes::from(numbered(i)), counting(&done));
    }
    log.flush().unwrap();
    log.fail_writes(true);
    let lost = Arc::new(AtomicUsize::new(0));
    for i in 5..10 {
        log.append(Bytes::from(numbered(i)), counting(&lost));
    }
    // Whether the barrier shares a failed batch (Err) or gets one of its own (Ok) depends
    // on timing; either way every record before it has been tried.
    let _ = log.flush();
    assert_eq!(log.size(), framed(&expected(0..5)).len() as u64);
    log.fail_writes(false);
    for i in 10..15 {
        log.append(Bytes::from(numbered(i)), counting(&done));
    }
    log.close();
    assert_eq!(
        lost.load(Ordering::SeqCst),
        0,
        "unwritten records must not be acked"
    );
    assert_eq!(done.load(Ordering::SeqCst), 10);
    let mut want = expected(0..5);
    want.extend(expected(10..15));
    assert_eq!(replay(dir.path()), want);
}

/// Writes 10 records, closes, damages the last segment with `damage`, and checks that
/// reopening keeps the first 9, cuts the file back, and that appending still works.
fn check_torn_tail_recovery(damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), LogConfig::default());
    append_numbered(&log, 0..10);
    log.close();
    let last = files(dir.path(), Kind::Segment).pop().unwrap();
    damage(&last);

    let (log, replayed, _) = open(dir.path(), LogConfig::default());
    assert_eq!(replayed, expected(0..9));
    let good_len = framed(&expected(0..9)).len() as u64;
    assert_eq!(fs::metadata(&last).unwrap().len(), good_len);
    assert_eq!(log.size(), good_len);
    append_numbered(&log, 9..12);
    log.close();
    assert_eq!(replay(dir.path()), expected(0..12));
}

#[test]
fn torn_tail_cut_short_is_truncated() {
    check_torn_tail_recovery(|path| {
        let len = fs::metadata(path).unwrap().len();
        let file = fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(len - 3).unwrap();
    });
}

#[test]
fn torn_tail_inside_the_header_is_truncated() {
    check_torn_tail_recovery(|path| {
        let len = fs::metadata(path).unwrap().len();
        let record_len = (HEADER_LEN + numbered(9).len()) as u64;
        let file = fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(len - record_len + 5).unwrap();
    });
}

#[test]
fn torn_tail_with_flipped_byte_is_truncated() {
    check_torn_tail_recovery(|path| flip_byte(path, 2));
}

#[test]
fn zero_filled_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), LogConfig::default());
    append_numbered(&log, 0..5);
    log.close();
    let last = files(dir.path(), Kind::Segment).pop().unwrap();
    let mut bytes = fs::read(&last).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&last, bytes).unwrap();
    assert_eq!(replay(dir.path()), expected(0..5));
    assert_eq!(
        fs::metadata(&last).unwrap().len(),
        framed(&expected(0..5)).len() as u64
    );
}

#[test]
fn damage_in_an_earlier_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), config(100));
    append_numbered(&log, 0..50);
    log.close();
    let segments = files(dir.path(), Kind::Segment);
    assert!(segments.len() >= 3);
    let first = &segments[0];
    // Damage the second record of the first segment.
    let second_record_at = (HEADER_LEN + numbered(0).len()) as u64;
    let mut bytes = fs::read(first).unwrap();
    bytes[second_record_at as usize + HEADER_LEN] ^= 1;
    fs::write(first, bytes).unwrap();

    match try_open(dir.path(), LogConfig::default()) {
        Err(LogError::Corrupt { segment, offset }) => {
            assert_eq!(segment, first.file_name().unwrap().to_str().unwrap());
            assert_eq!(offset, second_record_at);
        }
        other => panic!("expected corruption, got {:?}", other.map(|o| o.1)),
    }
}

#[test]
fn compaction_replaces_history_and_keeps_later_appends_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), config(200));
    append_numbered(&log, 0..50);
    log.compact(vec![
        Bytes::from_static(b"snap-1"),
        Bytes::from_static(b"snap-2"),
    ]);
    append_numbered(&log, 50..60);
    log.close();

    let snaps = files(dir.path(), Kind::Snapshot);
    assert_eq!(snaps.len(), 1);
    let snap_seq = LogFile::parse(snaps[0].file_name().unwrap().to_str().unwrap())
        .unwrap()
        .seq;
    assert!(segment::list(dir.path())
        .unwrap()
        .iter()
        .all(|f| f.seq >= snap_seq));

    let mut want = vec![b"snap-1".to_vec(), b"snap-2".to_vec()];
    want.extend(expected(50..60));
    assert_eq!(replay(dir.path()), want);

    // A second compaction after reopening supersedes the first.
    let (log, _, _) = open(dir.path(), LogConfig::default());
    log.compact(vec![Bytes::from_static(b"snap-3")]);
    append_numbered(&log, 60..61);
    log.close();
    assert_eq!(files(dir.path(), Kind::Snapshot).len(), 1);
    assert_eq!(replay(dir.path()), vec![b"snap-3".to_vec(), numbered(60)]);
}

#[test]
fn empty_snapshot_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path(), LogConfig::default());
    append_numbered(&log, 0..10);
    log.compact(Vec::new());
    log.close();
    assert!(replay(dir.path()).is_empty());
}

fn write_file(dir: &Path, file: LogFile, records: &[Vec<u8>]) {
    fs::write(file.path(dir), framed(records)).unwrap();
}

#[test]
fn crash_between_snapshot_and_deleting_old_segments_replays_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_file(d, LogFile::segment(0), &expected(0..5));
    write_file(d, LogFile::segment(1), &expected(5..10));
    let snapshot = LogFile {
        seq: 2,
        kind: Kind::Snapshot,
    };
    write_file(d, snapshot, &[b"snapshot".to_vec()]);
    write_file(d, LogFile::segment(3), &expected(10..12));
    // A later compaction that died before its rename.
    let partial = LogFile {
        seq: 4,
        kind: Kind::Partial,
    };
    fs::write(partial.path(d), b"half a snap").unwrap();

    let (log, replayed, _) = open(d, LogConfig::default());
    let mut want = vec![b"snapshot".to_vec()];
    want.extend(expected(10..12));
    assert_eq!(replayed, want);
    assert_eq!(
        segment::list(d).unwrap(),
        vec![snapshot, LogFile::segment(3)]
    );
    // New files never reuse a sequence number seen on disk, even a deleted partial one.
    log.compact(vec![Bytes::from_static(b"next")]);
    log.close();
    assert_eq!(
        files(d, Kind::Snapshot),
        vec![LogFile {
            seq: 5,
            kind: Kind::Snapshot
        }
        .path(d)]
    );
}

#[test]
fn crash_before_snapshot_rename_keeps_the_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_file(d, LogFile::segment(0), &expected(0..5));
    let partial = LogFile {
        seq: 1,
        kind: Kind::Partial,
    };
    write_file(d, partial, &[b"snapshot".to_vec()]);
    assert_eq!(replay(d), expected(0..5));
    assert!(!partial.path(d).exists());
}

#[test]
fn snapshot_as_last_file_then_appends_go_to_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let snapshot = LogFile {
        seq: 7,
        kind: Kind::Snapshot,
    };
    write_file(d, snapshot, &[b"snapshot".to_vec()]);
    let (log, replayed, _) = open(d, LogConfig::default());
    assert_eq!(replayed, vec![b"snapshot".to_vec()]);
    append_numbered(&log, 0..2);
    log.close();
    assert_eq!(
        segment::list(d).unwrap(),
        vec![snapshot, LogFile::segment(8)]
    );
}

#[test]
fn group_commit_batches_concurrent_appends() {
    const THREADS: usize = 8;
    const PER_THREAD: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let (log, _, metrics) = open(dir.path(), LogConfig::default());
    let done = Arc::new(AtomicUsize::new(0));
    let out_of_order = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (log, done, out_of_order) = (&log, &done, &out_of_order);
            s.spawn(move || {
                let next_expected = Arc::new(AtomicU64::new(0));
                for i in 0..PER_THREAD {
                    let (done, out_of_order) = (Arc::clone(done), Arc::clone(out_of_order));
                    let next_expected = Arc::clone(&next_expected);
                    let record = Bytes::from(format!("thread-{t}-record-{i}"));
                    log.append(
                        record,
                        Some(Box::new(move || {
                            if next_expected.fetch_add(1, Ordering::SeqCst) != i {
                                out_of_order.store(true, Ordering::SeqCst);
                            }
                            done.fetch_add(1, Ordering::SeqCst);
                        })),
                    );
                }
            });
        }
    });
    log.flush().unwrap();
    let fsyncs = metrics.log_fsyncs.get();
    println!(
        "group commit: {} records, {fsyncs} fsyncs",
        THREADS as u64 * PER_THREAD
    );
    assert_eq!(done.load(Ordering::SeqCst), THREADS * PER_THREAD as usize);
    assert!(!out_of_order.load(Ordering::SeqCst));
    assert!(fsyncs < 20_000, "{fsyncs} fsyncs");
    log.close();
    assert_eq!(replay(dir.path()).len(), THREADS * PER_THREAD as usize);
}

/// Median and 99th percentile of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    (samples[samples.len() / 2], p99)
}

/// Latency of one 100-byte write plus `fdatasync` on a plain file, for reference.
fn measure_raw_fsync(dir: &Path) {
    use std::io::Write;
    let mut file = fs::File::create(dir.join("fsync-probe")).unwrap();
    let samples: Vec<Duration> = (0..500)
        .map(|_| {
            file.write_all(&[7u8; 100]).unwrap();
            let start = Instant::now();
            file.sync_data().unwrap();
            start.elapsed()
        })
        .collect();
    let (median, p99) = percentiles(samples);
    println!("raw fdatasync after a 100-byte append: median {median:?}, p99 {p99:?}");
}

/// `appenders` threads, each appending 100-byte records and waiting for each completion
/// before the next (as a client waits for PUBACK), for `duration`.
fn measure_closed_loop(dir: &Path, appenders: usize, fsync: bool, duration: Duration) {
    let cfg = LogConfig {
        fsync,
        ..LogConfig::default()
    };
    let (log, _, metrics) = open(dir, cfg);
    let latencies = std::sync::Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..appenders {
            let (log, latencies) = (&log, &latencies);
            s.spawn(move || {
                let mut mine = Vec::new();
                while start.elapsed() < duration {
                    let (tx, rx) = mpsc::sync_channel(1);
                    let sent = Instant::now();
                    log.append(
                        Bytes::from_static(&[b'x'; 100]),
                        Some(Box::new(move || {
                            let _ = tx.send(());
                        })),
                    );
                    rx.recv().unwrap();
                    mine.push(sent.elapsed());
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let latencies = latencies.into_inner().unwrap();
    let records = latencies.len() as f64;
    let fsyncs = metrics.log_fsyncs.get() as f64;
    let (median, p99) = percentiles(latencies);
    println!(
        "appenders {appenders:>3} fsync {fsync:>5}: {:>9.0} records/s {:>7.0} fsyncs/s \
         {:>6.1} records/fsync, ack latency median {median:?} p99 {p99:?}",
        records / elapsed,
        fsyncs / elapsed,
        if fsyncs > 0.0 { records / fsyncs } else { 0.0 },
    );
    log.close();
}

#[test]
#[ignore = "benchmark; run by hand with --release --nocapture"]
fn log_throughput() {
    let base =
        std::env::var_os("BOSUN_LOG_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    println!("benchmark directory: {}", dir.path().display());
    measure_raw_fsync(dir.path());
    for appenders in [1, 8, 64] {
        let sub = dir.path().join(format!("fsync-{appenders}"));
        measure_closed_loop(&sub, appenders, true, Duration::from_secs(5));
    }
    let sub = dir.path().join("nofsync-64");
    measure_closed_loop(&sub, 64, false, Duration::from_secs(3));
}
