//! `bosun-bench tsdb`: bosun's embedded time-series store against InfluxDB 1.6 on the
//! same generated vibration-feature data — ingest rate, bytes per point on disk after
//! both have flushed and compacted, and range-aggregate query latency.
//!
//! Layout: `data` (the workload), `influx` (the InfluxDB process), `http` (a tiny HTTP
//! client, and a line-protocol server in front of bosun's store for an HTTP-to-HTTP
//! comparison), and here the run loop and the Markdown report.

mod data;
mod http;
mod influx;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tsdb::{Agg, Options, Query, Tsdb};

use crate::progress;
use data::{Dataset, Precision, MEASUREMENT, START_MS};
use influx::{usage, Influx};

/// Options of `bosun-bench tsdb`.
#[derive(Debug, clap::Args)]
pub(crate) struct TsdbArgs {
    /// The InfluxDB 1.x server binary.
    #[arg(long, default_value = "/usr/bin/influxd")]
    influxd: PathBuf,
    /// Simulated devices.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Feature fields per device message.
    #[arg(long, default_value_t = 20)]
    fields: usize,
    /// Seconds of data (one message per device per second).
    #[arg(long, default_value_t = 1800)]
    seconds: i64,
    /// Points per write batch.
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    /// Concurrent writers to measure ingest with (comma-separated); each splits the
    /// batches round-robin.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    writers: Vec<usize>,
    /// Ingest repetitions per store; the report shows medians.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Repetitions of each query; the report shows the median latency.
    #[arg(long, default_value_t = 20)]
    queries: usize,
    /// Significant digits of the rounded data set; 0 skips it.
    #[arg(long, default_value_t = 4)]
    digits: u32,
    /// Also run the full-precision data set.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    full: bool,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks-tsdb.md")]
    out: PathBuf,
}

/// Medians of one store on one data set.
#[derive(Debug, Default, Clone)]
struct Numbers {
    /// Points per second of each repetition, per number of writers.
    ingest: Vec<(usize, Vec<f64>)>,
    /// Bytes on disk per point after flush and compaction.
    bytes_per_point: f64,
    /// What `bytes_per_point` measured.
    bytes_note: String,
    /// Median latency (ms): 1 h, step 1 min, one device and field.
    q_one: f64,
    /// Median latency (ms): the same over all devices.
    q_all: f64,
    /// Points counted by a whole-range count over one series (sanity check).
    count: f64,
}

/// Runs the benchmark and writes the report.
pub(crate) fn run(args: TsdbArgs) -> Result<()> {
    if !args.influxd.exists() {
        bail!(
            "{} does not exist. {}",
            args.influxd.display(),
            influx::INSTALL_HINT
        );
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut variants = Vec::new();
    if args.digits > 0 {
        variants.push(Precision::Digits(args.digits));
    }
    if args.full {
        variants.push(Precision::Full);
    }
    let fsync_before = probe_fsync()?;
    progress(&format!("tsdb: fsync latency before: {fsync_before}"));
    let mut sections = Vec::new();
    for precision in variants {
        progress(&format!("tsdb: generating {} data", precision.label()));
        let data = data::generate(
            args.devices,
            args.fields,
            args.seconds,
            args.batch,
            precision,
        );
        let influx = run_influx(&args, &data)?;
        let bosun = run_bosun(&args, &data)?;
        let bosun_http = run_bosun_http(&args, &data)?;
        sections.push((precision, data.points(), influx, bosun, bosun_http));
    }
    let fsync_after = probe_fsync()?;
    progress(&format!("tsdb: fsync latency after: {fsync_after}"));
    let mut markdown = render(&args, &command, &sections);
    let _ = writeln!(
        markdown,
        "\nDisk flush latency measured by the benchmark (median of 30 writes of 90 KB, about one \
         5,000-point WAL record, each followed by `fdatasync`; appending / overwriting a \
         preallocated file): before the run {fsync_before}; after the run {fsync_after}."
    );
    print!("{markdown}");
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    progress(&format!("report written to {}", args.out.display()));
    Ok(())
}

/// The range both stores are queried over: the first hour (or all data if shorter).
fn query_range(data: &Dataset) -> (i64, i64) {
    (START_MS, START_MS + data.seconds.min(3600) * 1000)
}

/// Median latency of a 90 KB write + `fdatasync`, appending and in place, as text.
fn probe_fsync() -> Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt;
    let path = std::env::temp_dir().join(format!("bosun-bench-fsync-{}", std::process::id()));
    let buf = vec![7u8; 90_000];
    let mut file = std::fs::File::create(&path).context("cannot create the fsync probe")?;
    let mut append = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        file.write_all(&buf).context("probe write")?;
        file.sync_data().context("probe fsync")?;
        append.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    file.sync_all().context("probe fsync")?;
    let mut in_place = Vec::new();
    for i in 0..30u64 {
        let t = Instant::now();
        file.write_all_at(&buf, i * 90_000).context("probe write")?;
        file.sync_data().context("probe fsync")?;
        in_place.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(format!(
        "{:.2} ms / {:.2} ms",
        median(append),
        median(in_place)
    ))
}

/// The device the single-device queries use (one in the middle).
fn probe_device(data: &Dataset) -> &str {
    data.devices
        .get(data.devices.len() / 2)
        .map_or("", String::as_str)
}

/// Median of samples (0 when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Points per second of writing every batch with `writers` threads (batch `i` goes to
/// writer `i % writers`).
fn ingest_rate<T: Sync>(
    writers: usize,
    items: &[T],
    points: usize,
    write: impl Fn(&T) -> Result<()> + Sync,
) -> Result<f64> {
    let writers = writers.max(1);
    let t = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let write = &write;
                scope.spawn(move || -> Result<()> {
                    for item in items.iter().skip(w).step_by(writers) {
                        write(item)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| anyhow::anyhow!("writer panicked"))?)
    })?;
    Ok(points as f64 / t.elapsed().as_secs_f64())
}

/// Median wall time of `n` calls, in ms.
fn latency(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(samples))
}

fn run_influx(args: &TsdbArgs, data: &Dataset) -> Result<Numbers> {
    let server = Influx::start(&args.influxd, "tsdb")?;
    let result = influx_body(args, data, &server);
    if result.is_ok() {
        server.stop();
    } else {
        progress(&format!(
            "influxd kept for inspection in {}",
            server.dir.display()
        ));
    }
    result
}

fn influx_body(args: &TsdbArgs, data: &Dataset, server: &Influx) -> Result<Numbers> {
    let mut out = Numbers::default();
    let mut rep = 0;
    for &writers in &args.writers {
        let mut rates = Vec::new();
        for _ in 0..args.repeat.max(1) {
            let db = format!("bench{rep}");
            rep += 1;
            server.query("", &format!("CREATE DATABASE {db}"))?;
            let rate = ingest_rate(writers, &data.lines, data.points(), |lines| {
                server.write(&db, lines)
            })?;
            progress(&format!(
                "tsdb: influxdb ingest, {writers} writer(s): {rate:.0} points/s"
            ));
            rates.push(rate);
        }
        out.ingest.push((writers, rates));
    }
    let (bytes, note) = influx_settled_bytes(&server.dir, "bench0")?;
    out.bytes_per_point = bytes as f64 / data.points() as f64;
    out.bytes_note = note;
    let (from, to) = query_range(data);
    let probe = probe_device(data);
    let one = format!(
        "SELECT mean(\"f07\") FROM \"{MEASUREMENT}\" WHERE \"device\"='{probe}' AND time >= {from}ms AND time < {to}ms GROUP BY time(1m)"
    );
    let all = format!(
        "SELECT mean(\"f07\") FROM \"{MEASUREMENT}\" WHERE time >= {from}ms AND time < {to}ms GROUP BY time(1m), \"device\""
    );
    out.q_one = latency(args.queries, || server.query("bench0", &one).map(drop))?;
    out.q_all = latency(args.queries, || server.query("bench0", &all).map(drop))?;
    let count = server.query(
        "bench0",
        &format!("SELECT count(\"f07\") FROM \"{MEASUREMENT}\" WHERE \"device\"='{probe}'"),
    )?;
    out.count = serde_json::from_str::<serde_json::Value>(&count)
        .ok()
        .and_then(|v| {
            v.pointer("/results/0/series/0/values/0/1")
                .and_then(serde_json::Value::as_f64)
        })
        .unwrap_or(-1.0);
    Ok(out)
}

/// Waits until InfluxDB has snapshotted its cache and compacted (WAL emptied, size
/// stable for 5 s; at most 180 s), then returns the bytes of the database's TSM files
/// plus its WAL. The series file (`_series`, preallocated and memory-mapped) is reported
/// apart in the note, apparent and allocated size, since it does not grow with points.
fn influx_settled_bytes(dir: &Path, db: &str) -> Result<(u64, String)> {
    let data = dir.join("data").join(db);
    let wal = dir.join("wal").join(db);
    let series = data.join("_series");
    let measure = || {
        let (all, _) = usage(&data);
        let (series, _) = usage(&series);
        (all - series, usage(&wal).0)
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = (0, 0);
    let mut stable_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = measure();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        let settled = last.1 == 0 && stable_since.elapsed() >= Duration::from_secs(5);
        if settled || Instant::now() > deadline {
            let (series_apparent, series_allocated) = usage(&series);
            let note = format!(
                "TSM files under data/{db} plus wal/{db}, after the cache snapshot and full compaction{}: {} B TSM + {} B WAL \
                 (not counted: the series file data/{db}/_series, {series_apparent} B apparent / {series_allocated} B allocated)",
                if settled { "" } else { " (NOT settled after 180 s)" },
                last.0,
                last.1
            );
            progress(&format!("tsdb: influxdb on disk: {note}"));
            return Ok((last.0 + last.1, note));
        }
    }
}

/// A fresh store in a temporary directory.
fn fresh_store(tag: &str) -> Result<(Tsdb, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("bosun-bench-tsdb-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Tsdb::open(&dir, Options::default())
        .with_context(|| format!("cannot open {}", dir.display()))?;
    Ok((db, dir))
}

fn run_bosun(args: &TsdbArgs, data: &Dataset) -> Result<Numbers> {
    let mut out = Numbers::default();
    let mut kept = None;
    let batches: Vec<_> = data.batches.iter().map(|b| data.points_of(b)).collect();
    let mut rep = 0;
    for &writers in &args.writers {
        let mut rates = Vec::new();
        for _ in 0..args.repeat.max(1) {
            let (db, dir) = fresh_store(&format!("inproc{rep}"))?;
            rep += 1;
            let rate = ingest_rate(writers, &batches, data.points(), |b| {
                db.append(b).context("append failed")
            })?;
            progress(&format!(
                "tsdb: bosun ingest, {writers} writer(s): {rate:.0} points/s"
            ));
            rates.push(rate);
            // Keep the first single-writer store (in order) for size and queries.
            if kept.is_none() && writers == 1 {
                kept = Some((db, dir));
            } else {
                drop(db);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        out.ingest.push((writers, rates));
    }
    let Some((db, dir)) = kept else {
        bail!("--writers must include 1 (the size and query measurements use that store)")
    };
    let t = Instant::now();
    db.flush().context("flush failed")?;
    db.compact().context("compaction failed")?;
    let sealing = t.elapsed().as_secs_f64();
    let stats = db.stats();
    let on_disk = usage(&dir).0;
    out.bytes_per_point = on_disk as f64 / data.points() as f64;
    out.bytes_note = format!(
        "all files of the store directory after flush + compact ({} segment(s), {} B WAL; of the total, {} B are 1-min/1-h rollups \
         = {:.3} B/point that InfluxDB does not store; sealing took {sealing:.1} s)",
        stats.segments,
        stats.wal_bytes,
        stats.rollup_bytes,
        stats.rollup_bytes as f64 / data.points() as f64
    );
    progress(&format!(
        "tsdb: bosun on disk: {on_disk} B; {}",
        out.bytes_note
    ));
    let (from, to) = query_range(data);
    let query = |devices: Option<Vec<String>>, step: Option<i64>, agg: Agg| Query {
        field: "f07".to_owned(),
        devices,
        from_ms: from,
        to_ms: to,
        step_ms: step,
        agg,
    };
    let probe = probe_device(data).to_owned();
    let one = query(Some(vec![probe.clone()]), Some(60_000), Agg::Mean);
    let all = query(None, Some(60_000), Agg::Mean);
    out.q_one = latency(args.queries, || {
        db.query(&one).map(drop).context("query failed")
    })?;
    out.q_all = latency(args.queries, || {
        db.query(&all).map(drop).context("query failed")
    })?;
    let count = Query {
        from_ms: i64::MIN,
        to_ms: i64::MAX,
        ..query(Some(vec![probe]), None, Agg::Count)
    };
    out.count = db
        .query(&count)
        .context("query failed")?
        .first()
        .and_then(|r| r.buckets.first())
        .map_or(0.0, |b| b.value);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn run_bosun_http(args: &TsdbArgs, data: &Dataset) -> Result<Numbers> {
    let mut out = Numbers::default();
    let mut rep = 0;
    for &writers in &args.writers {
        let mut rates = Vec::new();
        for _ in 0..args.repeat.max(1) {
            let (db, dir) = fresh_store(&format!("http{rep}"))?;
            rep += 1;
            let db = Arc::new(db);
            let server = http::LineServer::start(Arc::clone(&db))?;
            let addr = server.addr;
            let rate = ingest_rate(writers, &data.lines, data.points(), |lines| {
                let (status, body) =
                    http::request(addr, "POST", "/write?precision=ms", lines.as_bytes())?;
                if status != 204 {
                    bail!("bosun line server answered {status}: {body}");
                }
                Ok(())
            })?;
            progress(&format!(
                "tsdb: bosun over HTTP ingest, {writers} writer(s): {rate:.0} points/s"
            ));
            rates.push(rate);
            server.stop();
            drop(db);
            let _ = std::fs::remove_dir_all(&dir);
        }
        out.ingest.push((writers, rates));
    }
    Ok(out)
}

fn machine() -> (String, String, String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let run = |exe: &str, args: &[&str]| {
        std::process::Command::new(exe)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned())
    };
    (
        cpu,
        run("influxd", &["version"]),
        run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    )
}

type Section = (Precision, usize, Numbers, Numbers, Numbers);

fn render(args: &TsdbArgs, command: &str, sections: &[Section]) -> String {
    let (cpu, influx_version, date) = machine();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = String::new();
    let _ = writeln!(md, "# bosun-tsdb vs InfluxDB 1.6\n");
    let _ = writeln!(
        md,
        "Generated by `bosun-bench tsdb` on {date}: {nproc} CPUs ({cpu}), {influx_version}.\n"
    );
    let _ = writeln!(md, "Command: `{command}`\n");
    let _ = writeln!(
        md,
        "Data: {} devices × {} fields × {} s (one message per device per second, 0–19 ms jitter), \
         written time-major in batches of {} points; {} ingest runs per store and writer count (median shown), \
         {} repetitions per query (median shown).\n",
        args.devices, args.fields, args.seconds, args.batch, args.repeat, args.queries
    );
    for (precision, points, influx, bosun, http) in sections {
        let _ = writeln!(md, "## {} ({points} points)\n", precision.label());
        let _ = writeln!(
            md,
            "| metric | InfluxDB | bosun in-process | bosun over HTTP | bosun/InfluxDB |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        let rate = |n: &Numbers, w: usize| {
            n.ingest
                .iter()
                .find(|(x, _)| *x == w)
                .map_or(0.0, |(_, r)| median(r.clone()))
        };
        let mut targets = Vec::new();
        for &w in &args.writers {
            let (ri, rb, rh) = (rate(influx, w), rate(bosun, w), rate(http, w));
            let _ = writeln!(
                md,
                "| ingest, {w} writer(s), points/s | {ri:.0} | {rb:.0} | {rh:.0} | {:.2}× (HTTP: {:.2}×) |",
                rb / ri,
                rh / ri
            );
            targets.push(format!(
                "{w} writer(s): {} in-process, {} over HTTP",
                yes(rb >= 2.0 * ri),
                yes(rh >= 2.0 * ri)
            ));
        }
        let _ = writeln!(
            md,
            "| bytes on disk per point | {:.3} | {:.3} | – | {:.2}× |",
            influx.bytes_per_point,
            bosun.bytes_per_point,
            bosun.bytes_per_point / influx.bytes_per_point
        );
        let _ = writeln!(
            md,
            "| query: mean, 1 min step, 1 h, one device (ms) | {:.2} | {:.2} | – | {:.2}× |",
            influx.q_one,
            bosun.q_one,
            bosun.q_one / influx.q_one
        );
        let _ = writeln!(
            md,
            "| query: same, all devices (ms) | {:.2} | {:.2} | – | {:.2}× |",
            influx.q_all,
            bosun.q_all,
            bosun.q_all / influx.q_all
        );
        let _ = writeln!(
            md,
            "| sanity: count of one series | {} | {} | – | |\n",
            influx.count, bosun.count
        );
        let runs = |n: &Numbers| {
            n.ingest
                .iter()
                .map(|(w, v)| {
                    format!(
                        "{w} writer(s): {}",
                        v.iter()
                            .map(|r| format!("{r:.0}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            md,
            "Ingest runs (points/s) — InfluxDB: {}. bosun in-process: {}. bosun over HTTP: {}.\n",
            runs(influx),
            runs(bosun),
            runs(http)
        );
        let _ = writeln!(
            md,
            "Bytes measured — InfluxDB: {}. bosun: {}.\n",
            influx.bytes_note, bosun.bytes_note
        );
        let size_ok = bosun.bytes_per_point <= 0.5 * influx.bytes_per_point;
        let _ = writeln!(
            md,
            "Targets: ingest ≥ 2× InfluxDB — {}; bytes/point ≤ 0.5× InfluxDB: {}.\n",
            targets.join("; "),
            yes(size_ok)
        );
    }
    md.push_str(NOTES);
    md
}

/// How to read the numbers; appended to every report.
const NOTES: &str = "## How to read this

- **Durability is the same on both sides**: a write returns after its data is fsynced
  (InfluxDB's default `wal-fsync-delay = 0s`; bosun's group-commit WAL). With one writer
  every batch waits for one disk flush, so the one-writer rate depends on the disk's
  flush latency, which on this shared VM varied between ≈0.5 ms and ≈3.5 ms during the
  day with other jobs' I/O (measured values are at the end of this report). At 3.5 ms a
  flush caps any store at ≈1.4 million points/s for 5,000-point batches and bosun's
  one-writer advantage shrinks to InfluxDB's parse cost (≈1.4–2.3× in such a run);
  with fast flushes InfluxDB is CPU-bound and bosun is far ahead. With several writers
  bosun's group commit shares one flush between all waiting appends.
- **In-process vs HTTP**: the main bosun column calls `Tsdb::append` directly. The
  *bosun over HTTP* column puts a minimal line-protocol HTTP server (one request per
  connection, a thread per connection, parsing into `Point`s) in front of the same store,
  driven by the same client code as InfluxDB, so that column is the like-for-like
  ingest comparison. Queries are in-process for bosun and HTTP + InfluxQL + JSON for
  InfluxDB, so query latencies only compare orders of magnitude.
- **Bytes**: bosun's figure is every file of its directory (segments with raw chunks
  **and** 1-minute/1-hour rollups, which InfluxDB does not keep, plus the WAL, empty
  after the flush). InfluxDB's is its TSM files plus WAL after the cache was
  snapshotted and fully compacted (its cold-cache and full-compaction delays were
  lowered to 2 s and 5 s for that; nothing else differs from its defaults); its
  per-database series file is listed apart.
- **Full precision**: noise in the low mantissa bits is incompressible for both stores
  (both use XOR coding there); bosun saves only on timestamps, so the 0.5× size target
  is reachable for sensor-precision values, not for full-precision noise.
- The machine is shared with other builds and tests; single runs vary by ±20 %
  (see the individual runs).
";

fn yes(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}
