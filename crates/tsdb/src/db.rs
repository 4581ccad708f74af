//! The store itself: opening (segments, then WAL replay), appending with group commit,
//! and sealing heads into segments.
//!
//! Concurrency: `gate` is held shared by every `append` from WAL enqueue until its
//! points are in the heads, and exclusively by sealing while it rotates the WAL and
//! freezes the heads — so every point in a retired WAL file is in the frozen set.
//! `state` (series, heads, segment list) is one mutex held only for short in-memory
//! work; `maint` serialises sealing, expiry and compaction, which are the only writers
//! of the segment list. Lock order: maint → gate → state → WAL state.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::codec::{put_bytes, put_varint, Reader};
use crate::error::Error;
use crate::model::{Point, SeriesKey, Stats};
use crate::options::{ms, Options};
use crate::segment::{self, Segment};
use crate::wal::{self, lock, Wal};
use crate::{MAX_BATCH_POINTS, MAX_NAME_LEN};

/// Points of a series, unsorted (late points are simply appended).
pub(crate) type Points = Vec<(i64, f64)>;

/// A known series and its unsealed points.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) device: String,
    pub(crate) field: String,
    pub(crate) head: Points,
    /// Whether the current WAL file already defines this series.
    in_wal: bool,
}

/// Everything in memory that queries read.
#[derive(Debug, Default)]
pub(crate) struct State {
    index: HashMap<String, HashMap<String, u32>>,
    pub(crate) series: Vec<Series>,
    pub(crate) head_points: u64,
    /// Heads being written to a segment: still visible to queries until it is installed.
    pub(crate) frozen: Option<Arc<HashMap<u32, Points>>>,
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) next_segment: u64,
}

impl State {
    /// The id of a series, registering it if new.
    pub(crate) fn id(&mut self, device: &str, field: &str) -> u32 {
        if let Some(&id) = self.index.get(device).and_then(|f| f.get(field)) {
            return id;
        }
        let id = self.series.len() as u32;
        self.series.push(Series {
            device: device.to_owned(),
            field: field.to_owned(),
            head: Vec::new(),
            in_wal: false,
        });
        self.index
            .entry(device.to_owned())
            .or_default()
            .insert(field.to_owned(), id);
        id
    }

    /// Ids of the points' series where known. Messages put many fields of one device
    /// next to each other, so the device's map is looked up once per run of them.
    fn lookup(&self, points: &[Point<'_>]) -> Vec<Option<u32>> {
        let mut device = None;
        let mut fields = None;
        points
            .iter()
            .map(|p| {
                if device != Some(p.device) {
                    device = Some(p.device);
                    fields = self.index.get(p.device);
                }
                fields.and_then(|f| f.get(p.field)).copied()
            })
            .collect()
    }

    /// The id of a series if known.
    pub(crate) fn find(&self, device: &str, field: &str) -> Option<u32> {
        self.index.get(device)?.get(field).copied()
    }

    /// A series' device and field.
    pub(crate) fn names(&self, id: u32) -> (String, String) {
        self.series
            .get(id as usize)
            .map(|s| (s.device.clone(), s.field.clone()))
            .unwrap_or_default()
    }
}

/// Mutable state of the maintenance path.
#[derive(Debug, Default)]
pub(crate) struct Maint {
    pub(crate) last_seal_ms: Option<i64>,
}

/// An open store. `Send + Sync`: share it behind an `Arc` between threads.
pub struct Tsdb {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    gate: RwLock<()>,
    pub(crate) state: Mutex<State>,
    wal: Wal,
    pub(crate) maint: Mutex<Maint>,
    appends: AtomicU64,
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Tsdb {
    /// Opens (or creates) the store in `dir`: loads segment indexes, replays the WAL
    /// (truncating a torn tail) and starts a fresh WAL file.
    pub fn open(dir: &Path, options: Options) -> Result<Tsdb, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
        let mut state = State::default();
        let wal_upto = load_segments(dir, &mut state)?;
        let mut next_wal = wal_upto;
        let mut older_bytes = 0;
        for (seq, path) in wal::list(dir)? {
            if seq < wal_upto {
                std::fs::remove_file(&path).map_err(Error::io("cannot delete", &path))?;
                continue;
            }
            let mut ids = HashMap::new();
            for payload in wal::read_file(&path)? {
                replay(&payload, &mut state, &mut ids).ok_or_else(|| Error::Corrupt {
                    path: path.clone(),
                    why: "WAL record with a valid checksum does not parse",
                })?;
            }
            older_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            next_wal = next_wal.max(seq + 1);
        }
        let wal = Wal::create(dir, next_wal, older_bytes)?;
        Ok(Tsdb {
            dir: dir.to_owned(),
            options,
            gate: RwLock::new(()),
            state: Mutex::new(state),
            wal,
            maint: Mutex::new(Maint::default()),
            appends: AtomicU64::new(0),
        })
    }

    /// Appends points durably: returns once they are in the fsynced WAL. Concurrent
    /// callers share fsyncs. Points may be in any order and arrive late. The batch is
    /// all or nothing: a non-finite value or bad name refuses all of it.
    pub fn append(&self, points: &[Point<'_>]) -> Result<(), Error> {
        if points.is_empty() {
            return Ok(());
        }
        validate(points)?;
        let gate = self
            .gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (ticket, ids) = self.enqueue(points)?;
        self.wal.commit(ticket)?;
        {
            let mut st = lock(&self.state);
            for (p, &id) in points.iter().zip(&ids) {
                if let Some(s) = st.series.get_mut(id as usize) {
                    s.head.push((p.ts_ms, p.value));
                }
            }
            st.head_points += points.len() as u64;
        }
        drop(gate);
        self.appends.fetch_add(1, Ordering::Relaxed);
        if self.wal.current_bytes() >= self.options.seal_wal_bytes.saturating_mul(2) {
            if let Ok(mut maint) = self.maint.try_lock() {
                // The points are durable already: a failed seal must not make the caller
                // think otherwise (and retry into duplicates). `tick` will try again.
                if let Err(e) = self.seal(&mut maint, None) {
                    tracing::warn!(error = %e, "sealing from append failed");
                }
            }
        }
        Ok(())
    }

    /// Resolves ids and frames the WAL record under the state lock, so a series is
    /// always defined in the file before (or in the same record as) its first use.
    fn enqueue(&self, points: &[Point<'_>]) -> Result<(u64, Vec<u32>), Error> {
        let mut st = lock(&self.state);
        let known = st.lookup(points);
        let mut defs = Vec::new();
        let mut ids = Vec::with_capacity(points.len());
        for (p, known) in points.iter().zip(known) {
            let id = known.unwrap_or_else(|| st.id(p.device, p.field));
            if let Some(s) = st.series.get_mut(id as usize) {
                if !s.in_wal {
                    s.in_wal = true;
                    defs.push(id);
                }
            }
            ids.push(id);
        }
        let mut payload = Vec::with_capacity(points.len() * 20 + defs.len() * 32);
        put_varint(&mut payload, defs.len() as u64);
        for &id in &defs {
            let (device, field) = st.names(id);
            put_varint(&mut payload, u64::from(id));
            put_bytes(&mut payload, device.as_bytes());
            put_bytes(&mut payload, field.as_bytes());
        }
        put_varint(&mut payload, points.len() as u64);
        for (p, &id) in points.iter().zip(&ids) {
            put_varint(&mut payload, u64::from(id));
            payload.extend_from_slice(&p.ts_ms.to_le_bytes());
            payload.extend_from_slice(&p.value.to_bits().to_le_bytes());
        }
        let ticket = self.wal.enqueue(&payload)?;
        Ok((ticket, ids))
    }

    /// Every series known, sorted.
    pub fn series(&self) -> Vec<SeriesKey> {
        let st = lock(&self.state);
        let mut out: Vec<SeriesKey> = st
            .series
            .iter()
            .map(|s| SeriesKey {
                device: s.device.clone(),
                field: s.field.clone(),
            })
            .collect();
        out.sort();
        out
    }

    /// Counters for `/metrics` and benchmarks.
    pub fn stats(&self) -> Stats {
        let st = lock(&self.state);
        let sealed: u64 = st
            .segments
            .iter()
            .flat_map(|s| s.blocks.iter())
            .filter(|b| b.kind == segment::Kind::Raw)
            .map(|b| b.count)
            .sum();
        let frozen: u64 = st
            .frozen
            .iter()
            .flat_map(|f| f.values())
            .map(|p| p.len() as u64)
            .sum();
        let rollup_bytes: u64 = st
            .segments
            .iter()
            .flat_map(|s| s.blocks.iter())
            .filter(|b| b.kind != segment::Kind::Raw)
            .map(|b| b.len as u64)
            .sum();
        let wal_bytes = self.wal.bytes();
        Stats {
            points: sealed + frozen + st.head_points,
            series: st.series.len() as u64,
            bytes_on_disk: st.segments.iter().map(|s| s.size).sum::<u64>() + wal_bytes,
            wal_bytes,
            rollup_bytes,
            segments: st.segments.len() as u64,
            head_points: st.head_points,
            appends: self.appends.load(Ordering::Relaxed),
            wal_syncs: self.wal.syncs(),
        }
    }

    /// Seals every unsealed point into a segment now and deletes the WAL files this
    /// covers (for shutdown, backups and benchmarks; `tick` does it on a schedule).
    pub fn flush(&self) -> Result<(), Error> {
        let mut maint = lock(&self.maint);
        self.seal(&mut maint, None)
    }

    /// Freezes the heads, writes them as a segment and retires the WAL files they came
    /// from. On failure the frozen points go back to the heads (their WAL files are kept).
    pub(crate) fn seal(&self, maint: &mut Maint, now_ms: Option<i64>) -> Result<(), Error> {
        if let Some(now) = now_ms {
            maint.last_seal_ms = Some(now);
        }
        let Some((frozen, wal_upto, seq, names)) = self.freeze()? else {
            return Ok(());
        };
        let blocks = crate::maintain::build_blocks(&frozen, ms(self.options.partition));
        let name = |id: u32| names.get(&id).cloned().unwrap_or_default();
        match Segment::write(&self.dir, seq, wal_upto, &[], &blocks, &name) {
            Ok(seg) => {
                let mut st = lock(&self.state);
                st.segments.push(Arc::new(seg));
                st.frozen = None;
            }
            Err(e) => {
                self.thaw();
                return Err(e);
            }
        }
        self.wal.remove_before(wal_upto)
    }

    /// Rotates the WAL and moves every head into the frozen set, with appends excluded.
    #[allow(clippy::type_complexity)]
    fn freeze(
        &self,
    ) -> Result<
        Option<(
            Arc<HashMap<u32, Points>>,
            u64,
            u64,
            HashMap<u32, (String, String)>,
        )>,
        Error,
    > {
        let _gate = self
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut st = lock(&self.state);
        if st.head_points == 0 {
            return Ok(None);
        }
        let wal_upto = self.wal.rotate()?;
        let mut frozen = HashMap::new();
        let mut names = HashMap::new();
        for (id, s) in st.series.iter_mut().enumerate() {
            s.in_wal = false;
            if !s.head.is_empty() {
                frozen.insert(id as u32, std::mem::take(&mut s.head));
                names.insert(id as u32, (s.device.clone(), s.field.clone()));
            }
        }
        st.head_points = 0;
        let frozen = Arc::new(frozen);
        st.frozen = Some(Arc::clone(&frozen));
        let seq = st.next_segment;
        st.next_segment += 1;
        Ok(Some((frozen, wal_upto, seq, names)))
    }

    /// Puts frozen points back into the heads after a failed seal.
    fn thaw(&self) {
        let _gate = self
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut st = lock(&self.state);
        let Some(frozen) = st.frozen.take() else {
            return;
        };
        for (&id, points) in frozen.iter() {
            if let Some(s) = st.series.get_mut(id as usize) {
                s.head.extend_from_slice(points);
            }
            st.head_points += points.len() as u64;
        }
    }

    /// Bytes of the current WAL file.
    pub(crate) fn wal_current_bytes(&self) -> u64 {
        self.wal.current_bytes()
    }
}

/// Refuses batches that are too large, names out of bounds and non-finite values.
fn validate(points: &[Point<'_>]) -> Result<(), Error> {
    if points.len() > MAX_BATCH_POINTS {
        return Err(Error::BatchTooLarge(points.len()));
    }
    for p in points {
        for name in [p.device, p.field] {
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(Error::InvalidName(name.to_owned()));
            }
        }
        if !p.value.is_finite() {
            return Err(Error::NonFinite {
                device: p.device.to_owned(),
                field: p.field.to_owned(),
                ts_ms: p.ts_ms,
            });
        }
    }
    Ok(())
}

/// Opens every segment, drops superseded ones and leftovers, and returns the WAL number
/// below which everything is in segments.
fn load_segments(dir: &Path, state: &mut State) -> Result<u64, Error> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io("cannot list", dir))? {
        let entry = entry.map_err(Error::io("cannot list", dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            std::fs::remove_file(&path).map_err(Error::io("cannot delete", &path))?;
        } else if let Some(seq) = segment::parse_name(&name) {
            found.push((seq, path));
        }
    }
    found.sort();
    let mut segments = Vec::new();
    for (seq, path) in found {
        segments.push(Segment::open(path, seq, &mut |d, f| state.id(d, f))?);
    }
    let superseded: HashSet<u64> = segments.iter().flat_map(|s| s.supersedes.clone()).collect();
    let mut wal_upto = 0;
    for seg in segments {
        state.next_segment = state.next_segment.max(seg.seq + 1);
        wal_upto = wal_upto.max(seg.wal_upto);
        if superseded.contains(&seg.seq) {
            std::fs::remove_file(seg.path()).map_err(Error::io("cannot delete", seg.path()))?;
        } else {
            state.segments.push(Arc::new(seg));
        }
    }
    Ok(wal_upto)
}

/// Applies one WAL record to the heads; `None` if it does not parse. Ids in a file are
/// those of the process that wrote it, so `ids` maps them (per file) through the names.
fn replay(payload: &[u8], state: &mut State, ids: &mut HashMap<u64, u32>) -> Option<()> {
    let mut r = Reader::new(payload);
    let defs = r.len()?;
    for _ in 0..defs {
        let wal_id = r.varint()?;
        let device = r.str()?;
        let field = r.str()?;
        ids.insert(wal_id, state.id(device, field));
    }
    let n = r.len()?;
    for _ in 0..n {
        let wal_id = r.varint()?;
        let ts = r.i64()?;
        let value = f64::from_bits(r.u64()?);
        let id = *ids.get(&wal_id)?;
        state.series.get_mut(id as usize)?.head.push((ts, value));
        state.head_points += 1;
    }
    r.is_empty().then_some(())
}
