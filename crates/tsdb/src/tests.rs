//! Store-level tests through the public API: queries against a naive reference,
//! retention and rollups, reopening, torn WAL tails, group commit and input refusal.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use crate::{Agg, Error, Options, Point, Query, Retention, RetentionRule, Tsdb};

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn open(dir: &Path) -> Tsdb {
    match Tsdb::open(dir, Options::default()) {
        Ok(db) => db,
        Err(e) => panic!("open failed: {e}"),
    }
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

fn append(db: &Tsdb, device: &str, field: &str, points: &[(i64, f64)]) {
    let batch: Vec<Point<'_>> = points
        .iter()
        .map(|&(ts_ms, value)| Point {
            device,
            field,
            ts_ms,
            value,
        })
        .collect();
    if let Err(e) = db.append(&batch) {
        panic!("append failed: {e}");
    }
}

fn query(
    db: &Tsdb,
    field: &str,
    from: i64,
    to: i64,
    step: Option<i64>,
    agg: Agg,
) -> Vec<(String, Vec<(i64, f64)>)> {
    let q = Query {
        field: field.to_owned(),
        devices: None,
        from_ms: from,
        to_ms: to,
        step_ms: step,
        agg,
    };
    match db.query(&q) {
        Ok(r) => r
            .into_iter()
            .map(|s| {
                (
                    s.device,
                    s.buckets.iter().map(|b| (b.ts_ms, b.value)).collect(),
                )
            })
            .collect(),
        Err(e) => panic!("query failed: {e}"),
    }
}

/// The reference: every point, aggregated the obvious way.
fn naive(
    points: &[(i64, f64)],
    from: i64,
    to: i64,
    step: Option<i64>,
    agg: Agg,
) -> Vec<(i64, f64)> {
    let mut buckets: std::collections::BTreeMap<i64, Vec<(i64, f64)>> = Default::default();
    for &(ts, v) in points.iter().filter(|p| p.0 >= from && p.0 < to) {
        let b = step.map_or(from, |s| ts.div_euclid(s) * s);
        buckets.entry(b).or_default().push((ts, v));
    }
    buckets
        .into_iter()
        .map(|(b, pts)| {
            let vals: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let value = match agg {
                Agg::Mean => vals.iter().sum::<f64>() / vals.len() as f64,
                Agg::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
                Agg::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                Agg::Count => vals.len() as f64,
                Agg::Last => pts.iter().rev().max_by_key(|p| p.0).map_or(0.0, |p| p.1),
                Agg::P99 => {
                    let mut s = vals.clone();
                    s.sort_by(f64::total_cmp);
                    s[((s.len() as f64 * 0.99).ceil() as usize).max(1) - 1]
                }
            };
            (b, value)
        })
        .collect()
}

fn close(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() <= 1e-9 * (1.0 + y.1.abs()))
}

fn aggs() -> impl Strategy<Value = Agg> {
    prop_oneof![
        Just(Agg::Mean),
        Just(Agg::Min),
        Just(Agg::Max),
        Just(Agg::Count),
        Just(Agg::Last),
        Just(Agg::P99)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Points spread over heads and several sealed segments (late points included) give
    /// the same aggregates as the naive reference.
    #[test]
    fn queries_match_the_reference(
        raw in proptest::collection::vec((0i64..4 * HOUR, -1000i32..1000), 1..200),
        seal_at in proptest::collection::vec(0usize..200, 0..3),
        agg in aggs(),
        step in prop_oneof![Just(None), Just(Some(MIN)), Just(Some(7_000)), Just(Some(HOUR))],
        from in 0i64..2 * HOUR,
        len in 1i64..4 * HOUR,
    ) {
        let dir = tempdir();
        let db = open(dir.path());
        // Distinct timestamps so `last` has one answer.
        let mut seen = std::collections::HashSet::new();
        let points: Vec<(i64, f64)> = raw
            .iter()
            .filter(|p| seen.insert(p.0))
            .map(|&(ts, v)| (T0 + ts, f64::from(v) / 8.0))
            .collect();
        for (i, p) in points.iter().enumerate() {
            append(&db, "d1", "f", &[*p]);
            if seal_at.contains(&i) {
                prop_assert!(db.flush().is_ok());
            }
        }
        let (from, to) = (T0 + from, T0 + from + len);
        let got = query(&db, "f", from, to, step, agg);
        let want = naive(&points, from, to, step, agg);
        let got = got.into_iter().next().map(|(_, b)| b).unwrap_or_default();
        prop_assert!(close(&got, &want), "got {:?}\nwant {:?}", got, want);
    }
}

#[test]
fn reopen_keeps_sealed_and_unsealed_points() {
    let dir = tempdir();
    {
        let db = open(dir.path());
        append(&db, "a", "rms", &[(T0, 1.0), (T0 + 1000, 2.0)]);
        assert!(db.flush().is_ok());
        append(&db, "a", "rms", &[(T0 + 2000, 3.0)]);
        append(&db, "b", "rms", &[(T0 + 500, 10.0)]);
    }
    let db = open(dir.path());
    let got = query(&db, "rms", T0, T0 + HOUR, None, Agg::Count);
    assert_eq!(
        got,
        vec![
            ("a".to_owned(), vec![(T0, 3.0)]),
            ("b".to_owned(), vec![(T0, 1.0)])
        ]
    );
    assert_eq!(db.series().len(), 2);
    assert_eq!(db.stats().points, 4);
    // Reopening again after another seal must not double anything.
    assert!(db.flush().is_ok());
    drop(db);
    let db = open(dir.path());
    assert_eq!(db.stats().points, 4);
    let got = query(&db, "rms", T0, T0 + HOUR, None, Agg::Count);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, vec![(T0, 3.0)]);
}

#[test]
fn compaction_merges_segments_without_changing_answers() {
    let dir = tempdir();
    let db = open(dir.path());
    for round in 0..4 {
        let pts: Vec<(i64, f64)> = (0..50)
            .map(|i| (T0 + (i * 4 + round) * 1000, f64::from(i as i32)))
            .collect();
        append(&db, "a", "f", &pts);
        assert!(db.flush().is_ok());
    }
    let before = query(&db, "f", T0, T0 + HOUR, Some(MIN), Agg::Mean);
    assert_eq!(db.stats().segments, 4);
    assert!(db.compact().is_ok());
    assert_eq!(db.stats().segments, 1);
    assert_eq!(db.stats().points, 200);
    assert!(close(
        &query(&db, "f", T0, T0 + HOUR, Some(MIN), Agg::Mean)[0].1,
        &before[0].1
    ));
    drop(db);
    let db = open(dir.path());
    assert_eq!(db.stats().segments, 1);
    assert_eq!(db.stats().points, 200);
}

#[test]
fn expired_raw_data_is_answered_from_rollups() {
    // Aligned to the 2-hour partitions, so the first two hours are one chunk.
    const T0: i64 = 1_699_999_200_000;
    let dir = tempdir();
    let options = Options {
        rules: vec![RetentionRule {
            field_prefix: "short_".to_owned(),
            retention: Retention {
                raw: Duration::from_secs(3600),
                rollup_1m: Duration::from_secs(6 * 3600),
                rollup_1h: Duration::from_secs(48 * 3600),
            },
        }],
        ..Options::default()
    };
    let db = match Tsdb::open(dir.path(), options) {
        Ok(db) => db,
        Err(e) => panic!("{e}"),
    };
    // 4 hours of one point per 10 s, in the short class and the default class.
    let pts: Vec<(i64, f64)> = (0..1440)
        .map(|i| (T0 + i * 10_000, (i % 7) as f64))
        .collect();
    append(&db, "a", "short_rms", &pts);
    append(&db, "a", "long_rms", &pts);
    assert!(db.flush().is_ok());
    let want_hourly = query(&db, "short_rms", T0, T0 + 4 * HOUR, Some(HOUR), Agg::Mean);
    let want_minutely = query(&db, "short_rms", T0, T0 + 4 * HOUR, Some(MIN), Agg::Max);
    // Raw data of the first partition (the first 2 h) expires for short_*.
    let now = T0 + 3 * HOUR + 1;
    assert!(db.tick(now).is_ok());
    let raw_left = db.stats().points;
    assert_eq!(raw_left, 1440 + 720);
    // p99 needs raw points: the expired part is gone.
    let p99 = query(&db, "short_rms", T0, T0 + 4 * HOUR, Some(HOUR), Agg::P99);
    assert_eq!(p99[0].1.len(), 2);
    // Mean and max are still answered, from rollups, identically.
    assert!(close(
        &query(&db, "short_rms", T0, T0 + 4 * HOUR, Some(HOUR), Agg::Mean)[0].1,
        &want_hourly[0].1
    ));
    assert!(close(
        &query(&db, "short_rms", T0, T0 + 4 * HOUR, Some(MIN), Agg::Max)[0].1,
        &want_minutely[0].1
    ));
    // Once the 1-minute rollups expire too, hourly buckets come from 1-hour rollups.
    assert!(db.tick(T0 + 11 * HOUR).is_ok());
    assert!(close(
        &query(&db, "short_rms", T0, T0 + 4 * HOUR, Some(HOUR), Agg::Mean)[0].1,
        &want_hourly[0].1
    ));
    assert!(query(&db, "short_rms", T0, T0 + 4 * HOUR, Some(MIN), Agg::Max).is_empty());
    // And after everything expires, nothing is left.
    assert!(db.tick(T0 + 60 * HOUR).is_ok());
    assert!(query(&db, "short_rms", T0, T0 + 4 * HOUR, Some(HOUR), Agg::Mean).is_empty());
    assert_eq!(
        query(&db, "long_rms", T0, T0 + 4 * HOUR, None, Agg::Count)[0].1,
        vec![(T0, 1440.0)]
    );
    drop(db);
    let db = open(dir.path());
    assert_eq!(
        query(&db, "long_rms", T0, T0 + 4 * HOUR, None, Agg::Count)[0].1,
        vec![(T0, 1440.0)]
    );
}

#[test]
fn tick_seals_on_schedule() {
    let dir = tempdir();
    let db = open(dir.path());
    append(&db, "a", "f", &[(T0, 1.0)]);
    assert!(db.tick(T0).is_ok());
    assert_eq!(db.stats().head_points, 1);
    assert!(db.tick(T0 + 11 * MIN).is_ok());
    assert_eq!(db.stats().head_points, 0);
    assert_eq!(db.stats().segments, 1);
}

#[test]
fn non_finite_values_and_bad_names_are_refused() {
    let dir = tempdir();
    let db = open(dir.path());
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let batch = [
            Point {
                device: "a",
                field: "f",
                ts_ms: T0,
                value: 1.0,
            },
            Point {
                device: "a",
                field: "f",
                ts_ms: T0 + 1,
                value,
            },
        ];
        assert!(matches!(db.append(&batch), Err(Error::NonFinite { .. })));
    }
    let long = "x".repeat(crate::MAX_NAME_LEN + 1);
    for (device, field) in [("", "f"), ("a", ""), (long.as_str(), "f")] {
        let batch = [Point {
            device,
            field,
            ts_ms: T0,
            value: 1.0,
        }];
        assert!(matches!(db.append(&batch), Err(Error::InvalidName(_))));
    }
    assert_eq!(db.stats().points, 0);
    assert!(db.series().is_empty());
}

#[test]
fn aggregation_names_parse() {
    for agg in [
        Agg::Mean,
        Agg::Min,
        Agg::Max,
        Agg::Count,
        Agg::Last,
        Agg::P99,
    ] {
        assert_eq!(agg.as_str().parse::<Agg>(), Ok(agg));
    }
    let err = "median"
        .parse::<Agg>()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("median") && err.contains("p99"), "{err}");
}

#[test]
fn invalid_queries_are_refused() {
    let dir = tempdir();
    let db = open(dir.path());
    let mut q = Query {
        field: "f".into(),
        devices: None,
        from_ms: 10,
        to_ms: 10,
        step_ms: None,
        agg: Agg::Mean,
    };
    assert!(matches!(db.query(&q), Err(Error::InvalidQuery(_))));
    q.to_ms = i64::MAX;
    q.from_ms = i64::MIN;
    q.step_ms = Some(1);
    assert!(matches!(db.query(&q), Err(Error::InvalidQuery(_))));
    q.step_ms = Some(0);
    assert!(matches!(db.query(&q), Err(Error::InvalidQuery(_))));
    q.step_ms = Some(i64::MAX);
    assert_eq!(db.query(&q).ok(), Some(vec![]));
}

#[test]
fn device_filter_and_extreme_timestamps() {
    let dir = tempdir();
    let db = open(dir.path());
    append(&db, "a", "f", &[(i64::MIN, 1.0), (i64::MAX, 2.0), (0, 3.0)]);
    append(&db, "b", "f", &[(0, 5.0)]);
    assert!(db.flush().is_ok());
    let q = Query {
        field: "f".into(),
        devices: Some(vec!["b".into(), "missing".into()]),
        from_ms: i64::MIN,
        to_ms: i64::MAX,
        step_ms: None,
        agg: Agg::Count,
    };
    let got = db.query(&q).unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].device, "b");
    let all = query(&db, "f", i64::MIN, i64::MAX, None, Agg::Count);
    assert_eq!(
        all[0].1,
        vec![(i64::MIN, 2.0)],
        "i64::MAX is outside [MIN, MAX)"
    );
    let last = query(&db, "f", i64::MIN, i64::MIN + HOUR, Some(HOUR), Agg::Last);
    assert_eq!(last[0].1, vec![(i64::MIN, 1.0)]);
}

#[test]
fn torn_wal_tail_is_truncated() {
    let dir = tempdir();
    {
        let db = open(dir.path());
        append(&db, "a", "f", &[(T0, 1.0)]);
        append(&db, "a", "f", &[(T0 + 1000, 2.0)]);
    }
    let wal = std::fs::read_dir(dir.path())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
    let Some(wal) = wal else {
        panic!("no WAL file")
    };
    let bytes = std::fs::read(&wal).unwrap_or_default();
    // Garble the last byte: the second record fails its checksum.
    let mut garbled = bytes.clone();
    if let Some(last) = garbled.last_mut() {
        *last ^= 0xff;
    }
    assert!(std::fs::write(&wal, &garbled).is_ok());
    {
        let db = open(dir.path());
        assert_eq!(db.stats().points, 1);
    }
    // Now cut the remaining record in half: nothing survives, but opening works.
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0 && len < bytes.len() as u64);
    let half = &bytes[..(len / 2) as usize];
    assert!(std::fs::write(&wal, half).is_ok());
    let db = open(dir.path());
    assert_eq!(db.stats().points, 0);
    append(&db, "a", "f", &[(T0, 1.0)]);
    drop(db);
    assert_eq!(open(dir.path()).stats().points, 1);
}

#[test]
fn concurrent_appenders_share_fsyncs() {
    let dir = tempdir();
    let db = Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let device = format!("d{t}");
                for i in 0..50 {
                    append(&db, &device, "f", &[(T0 + i * 1000, 1.0)]);
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok());
    }
    let stats = db.stats();
    assert_eq!(stats.points, 400);
    assert_eq!(stats.appends, 400);
    assert!(
        stats.wal_syncs < stats.appends,
        "no fsync was shared: {stats:?}"
    );
    drop(db);
    assert_eq!(open(dir.path()).stats().points, 400);
}

#[test]
fn the_store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tsdb>();
}

#[test]
fn late_points_are_accepted_after_sealing() {
    let dir = tempdir();
    let db = open(dir.path());
    append(&db, "a", "f", &[(T0 + 5000, 5.0), (T0 + 6000, 6.0)]);
    assert!(db.flush().is_ok());
    // Late and out of order, inside the sealed chunk's range and before it.
    append(&db, "a", "f", &[(T0 + 5500, 5.5), (T0, 0.0)]);
    let got = query(&db, "f", T0, T0 + MIN, None, Agg::Count);
    assert_eq!(got[0].1, vec![(T0, 4.0)]);
    assert!(db.flush().is_ok());
    assert!(db.compact().is_ok());
    let last = query(&db, "f", T0, T0 + MIN, Some(MIN), Agg::Last);
    assert_eq!(last[0].1, vec![(T0 - T0 % MIN, 6.0)]);
    assert_eq!(
        query(&db, "f", T0, T0 + MIN, None, Agg::Min)[0].1,
        vec![(T0, 0.0)]
    );
}

#[test]
fn tick_merges_small_segments() {
    let dir = tempdir();
    let options = Options {
        max_segments: 4,
        ..Options::default()
    };
    let db = match Tsdb::open(dir.path(), options) {
        Ok(db) => db,
        Err(e) => panic!("{e}"),
    };
    for i in 0..6 {
        append(&db, "a", "f", &[(T0 + i * 1000, i as f64)]);
        assert!(db.flush().is_ok());
    }
    assert_eq!(db.stats().segments, 6);
    assert!(db.tick(T0 + 6000).is_ok());
    assert_eq!(db.stats().segments, 3, "the 4 smallest merged, 2 kept");
    assert_eq!(
        query(&db, "f", T0, T0 + MIN, None, Agg::Count)[0].1,
        vec![(T0, 6.0)]
    );
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, i64, i16)>),
    Flush,
    Compact,
    Tick(i64),
    Reopen,
}

fn ops() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec((0u8..3, 0i64..3 * HOUR, any::<i16>()), 1..20).prop_map(Op::Append),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => (0i64..4 * HOUR).prop_map(Op::Tick),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Any sequence of appends, seals, compactions, ticks (within retention) and
    /// reopenings keeps exactly the points appended.
    #[test]
    fn operations_keep_every_point(ops in proptest::collection::vec(ops(), 1..25)) {
        let dir = tempdir();
        let mut db = Some(open(dir.path()));
        let mut model: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 3];
        for op in ops {
            let Some(store) = db.as_ref() else { break };
            match op {
                Op::Append(points) => {
                    for (d, ts, v) in points {
                        let device = format!("d{d}");
                        append(store, &device, "f", &[(T0 + ts, f64::from(v))]);
                        model[usize::from(d)].push((T0 + ts, f64::from(v)));
                    }
                }
                Op::Flush => prop_assert!(store.flush().is_ok()),
                Op::Compact => prop_assert!(store.compact().is_ok()),
                Op::Tick(at) => prop_assert!(store.tick(T0 + at).is_ok()),
                Op::Reopen => {
                    drop(db.take());
                    db = Some(open(dir.path()));
                }
            }
        }
        let Some(store) = db.as_ref() else { return Ok(()) };
        let got = query(store, "f", T0, T0 + 3 * HOUR, Some(MIN), Agg::Mean);
        for (d, points) in model.iter().enumerate() {
            let want = naive(points, T0, T0 + 3 * HOUR, Some(MIN), Agg::Mean);
            let have = got.iter().find(|(dev, _)| *dev == format!("d{d}")).map(|(_, b)| b.clone()).unwrap_or_default();
            prop_assert!(close(&have, &want), "device {}: got {:?} want {:?}", d, have, want);
        }
        let total: usize = model.iter().map(Vec::len).sum();
        prop_assert_eq!(store.stats().points, total as u64);
    }
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    out.sort();
    out
}

#[test]
fn a_damaged_segment_is_reported_not_misread() {
    let dir = tempdir();
    {
        let db = open(dir.path());
        append(&db, "a", "f", &[(T0, 1.0), (T0 + 1000, 2.0)]);
        assert!(db.flush().is_ok());
    }
    let seg = segment_files(dir.path()).pop().unwrap_or_default();
    let mut bytes = std::fs::read(&seg).unwrap_or_default();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    assert!(std::fs::write(&seg, &bytes).is_ok());
    assert!(matches!(
        Tsdb::open(dir.path(), Options::default()),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn a_crash_before_deleting_merged_segments_does_not_double_points() {
    let dir = tempdir();
    let db = open(dir.path());
    for i in 0..3 {
        append(&db, "a", "f", &[(T0 + i * 1000, 1.0)]);
        assert!(db.flush().is_ok());
    }
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = segment_files(dir.path())
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect();
    assert!(db.compact().is_ok());
    drop(db);
    // Put the merged-away files back, as if the process died before deleting them.
    for (path, bytes) in &before {
        assert!(std::fs::write(path, bytes).is_ok());
    }
    assert_eq!(segment_files(dir.path()).len(), 4);
    let db = open(dir.path());
    assert_eq!(db.stats().points, 3);
    assert_eq!(db.stats().segments, 1);
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "superseded files are deleted on open"
    );
}
