//! The capture journal: every accepted chunk of a capture still being assembled, on
//! disk before its publisher's PUBACK, so a capture interrupted by a crash or restart
//! completes when its remaining chunks arrive.
//!
//! One append-only file per open capture, `captures/open/{id}.part`, named by the id
//! the capture will be stored under (made here, never taken from the device). Each
//! record is self-contained — `len u32 | crc32 u32 | body` (little-endian), the body
//! the device, the device's capture id, the chunk header and the payload — so a file is
//! read back without any header, and a torn last record (a crash mid-write) fails its
//! length or checksum and is cut off at load. The ingest loop appends a batch's records
//! and syncs each file touched once, next to the batch's time-series write; a stored
//! capture's file is deleted after its `.json` exists, and a file whose capture is
//! already stored is deleted at load.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use telemetry::capture::ChunkHeader;

/// Longest record body accepted at load (the largest chunk MQTT carries, and then some).
const MAX_BODY: usize = 1 << 28;

/// One journaled chunk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// The id the capture is stored under (the file's name).
    pub(crate) id: String,
    /// The device that sent it.
    pub(crate) device: String,
    /// The chunk's header (`capture_id` is the device's name for the capture).
    pub(crate) header: ChunkHeader,
    /// The chunk's payload as received.
    pub(crate) payload: Vec<u8>,
}

/// The journal directory and which open capture has which id.
pub(crate) struct Journal {
    dir: PathBuf,
    /// (device, device's capture id) → stored id, for captures being assembled.
    ids: Mutex<HashMap<(String, String), String>>,
}

impl Journal {
    /// Opens (creating) `dir`.
    pub(crate) fn open(dir: &Path) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            ids: Mutex::new(HashMap::new()),
        })
    }

    fn ids(&self) -> MutexGuard<'_, HashMap<(String, String), String>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stored id of `device`'s capture `capture_id`, made by `fresh` the first time.
    pub(crate) fn id(
        &self,
        device: &str,
        capture_id: &str,
        fresh: impl FnOnce() -> String,
    ) -> String {
        self.ids()
            .entry((device.to_owned(), capture_id.to_owned()))
            .or_insert_with(fresh)
            .clone()
    }

    /// Forgets an open capture (it was stored); its id, if it had one.
    pub(crate) fn forget(&self, device: &str, capture_id: &str) -> Option<String> {
        self.ids()
            .remove(&(device.to_owned(), capture_id.to_owned()))
    }

    /// Appends `records` and syncs each file touched once (and the directory when a
    /// file was created). Blocking.
    pub(crate) fn append(&self, records: &[Record]) -> io::Result<()> {
        let mut by_file: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for r in records {
            encode(r, by_file.entry(r.id.as_str()).or_default());
        }
        let mut created = false;
        for (id, bytes) in by_file {
            let path = self.path(id);
            created |= !path.exists();
            let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(&bytes)?;
            file.sync_data()?;
        }
        if created {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Deletes capture `id`'s file (it is stored now).
    pub(crate) fn remove(&self, id: &str) {
        match fs::remove_file(self.path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(capture = id, error = %e, "cannot remove capture journal"),
        }
    }

    /// Every journaled record, file by file, cutting torn tails off their files; the
    /// ids are remembered as those of open captures.
    pub(crate) fn load(&self) -> io::Result<Vec<Record>> {
        let mut all = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "part") {
                continue;
            }
            let bytes = fs::read(&path)?;
            let (records, good) = decode_all(&bytes);
            if good < bytes.len() {
                tracing::warn!(file = %path.display(), "capture journal has a torn tail; cut off");
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(good as u64)?;
            }
            all.extend(records);
        }
        let mut ids = self.ids();
        for r in &all {
            ids.insert(
                (r.device.clone(), r.header.capture_id.clone()),
                r.id.clone(),
            );
        }
        Ok(all)
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }
}

/// Appends one record to `out`.
pub(crate) fn encode(r: &Record, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(r.payload.len() + 64);
    for text in [&r.id, &r.device, &r.header.capture_id] {
        let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(&text.as_bytes()[..usize::from(len).min(text.len())]);
    }
    for n in [r.header.seq, r.header.total, r.header.rate_hz] {
        body.extend_from_slice(&n.to_le_bytes());
    }
    body.push(r.header.axes);
    body.extend_from_slice(&r.payload);
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// The whole records at the start of `bytes`, and how many bytes they span.
pub(crate) fn decode_all(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some((record, used)) = bytes.get(at..).and_then(decode) {
        records.push(record);
        at += used;
    }
    (records, at)
}

/// One record at the start of `bytes` and its length; `None` if torn or corrupt.
fn decode(bytes: &[u8]) -> Option<(Record, usize)> {
    let len = usize::try_from(u32_at(bytes, 0)?).ok()?;
    let crc = u32_at(bytes, 4)?;
    if len > MAX_BODY {
        return None;
    }
    let body = bytes.get(8..8usize.checked_add(len)?)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let mut reader = Reader { bytes: body, at: 0 };
    let id = reader.text()?;
    let device = reader.text()?;
    let capture_id = reader.text()?;
    let header = ChunkHeader {
        capture_id,
        seq: reader.u32()?,
        total: reader.u32()?,
        rate_hz: reader.u32()?,
        axes: *reader.take(1)?.first()?,
    };
    let payload = reader.bytes.get(reader.at..)?.to_vec();
    let valid_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid_id.then_some((
        Record {
            id,
            device,
            header,
            payload,
        },
        8 + len,
    ))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A cursor over a record body.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        let at = self.at;
        let n = u32_at(self.bytes, at)?;
        self.at += 4;
        Some(n)
    }

    fn text(&mut self) -> Option<String> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(id: &str, seq: u32) -> Record {
        Record {
            id: id.into(),
            device: "motor-1".into(),
            header: ChunkHeader {
                capture_id: "7".into(),
                seq,
                total: 4,
                rate_hz: 10_000,
                axes: 3,
            },
            payload: (0..24).map(|i| i as u8 ^ seq as u8).collect(),
        }
    }

    #[test]
    fn records_survive_reopening_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        let a = [record("c1-0", 0), record("c1-0", 2), record("c2-1", 1)];
        journal.append(&a).expect("append");
        let file = dir.path().join("c1-0.part");
        let mut bytes = fs::read(&file).expect("read");
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        fs::write(&file, &bytes).expect("tear");
        let again = Journal::open(dir.path()).expect("reopen");
        let mut loaded = again.load().expect("load");
        loaded.sort_by_key(|r| (r.id.clone(), r.header.seq));
        assert_eq!(loaded, a);
        assert_eq!(fs::read(&file).expect("read").len(), bytes.len() - 6);
        assert_eq!(again.id("motor-1", "7", || "new".into()), "c2-1");
        assert_eq!(again.forget("motor-1", "7").as_deref(), Some("c2-1"));
        again.remove("c1-0");
        again.remove("c1-0");
        assert!(!file.exists());
    }

    proptest! {
        #[test]
        fn records_round_trip(seq in any::<u32>(), payload in prop::collection::vec(any::<u8>(), 0..64),
                              device in "[a-z0-9-]{0,40}") {
            let mut r = record("c5-3", seq);
            r.payload = payload;
            r.device = device;
            let mut bytes = Vec::new();
            encode(&r, &mut bytes);
            encode(&r, &mut bytes);
            let (records, used) = decode_all(&bytes);
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(records, vec![r.clone(), r]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let (_, used) = decode_all(&bytes);
            prop_assert!(used <= bytes.len());
        }
    }
}
