//! The offline buffer: feature messages on disk until the hub acknowledges them.
//!
//! Every feature message goes through here, connected or not: it is written first, sent
//! from here in key order, and deleted only when its PUBACK arrives. So a message
//! survives a lost connection, a hub restart and an agent restart alike, and the order
//! on the wire is the order of production.
//!
//! Layout: one file per message in the buffer directory, named by a 20-digit key that
//! only grows (`00000000000000000042.rec`), holding a record
//! `"BQ01" | length u32 LE | CRC-32 u32 LE | payload`. A file is written as `.tmp`,
//! synced (unless [`OfflineBuffer::set_sync`] turned that off), then renamed, so a
//! crash leaves a whole record or a stray `.tmp` (removed at open). One file per
//! message keeps deletion in acknowledgement order trivial; at one message a minute
//! the file count is no concern, and the bound below caps it.
//!
//! Bounds: at most [`Limits::max_messages`] records and [`Limits::max_bytes`] payload
//! bytes. A push that would exceed either evicts the oldest records first and counts
//! them in [`OfflineBuffer::evicted`] (also kept in the `evicted` file, so the count
//! survives restarts). A record whose CRC does not match is dropped when read and
//! counted in [`OfflineBuffer::corrupt`].

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

/// Record magic and version.
const MAGIC: &[u8; 4] = b"BQ01";
/// Magic, length and CRC.
const HEADER_LEN: usize = 12;
/// File holding the eviction counter.
const EVICTED_FILE: &str = "evicted";
/// Record file suffix.
const SUFFIX: &str = ".rec";
/// Largest payload accepted in one record (feature messages are ≤ 535 bytes).
pub const MAX_RECORD: usize = 1 << 20;

/// How much the buffer may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most records (default 100,000: ten weeks at one a minute).
    pub max_messages: usize,
    /// Most payload bytes (default 64 MiB).
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_messages: 100_000,
            max_bytes: 64 << 20,
        }
    }
}

/// The queue on disk, with its index in memory.
#[derive(Debug)]
pub struct OfflineBuffer {
    dir: PathBuf,
    limits: Limits,
    /// Keys and payload lengths, oldest first.
    index: VecDeque<(u64, usize)>,
    /// Sum of the payload lengths in `index`.
    bytes: u64,
    /// Key of the next push.
    next_key: u64,
    /// Records evicted to respect the limits, ever.
    evicted: u64,
    /// Records dropped because they failed their CRC, since open.
    corrupt: u64,
    /// Sync each record to disk before it counts as written.
    sync: bool,
}

impl OfflineBuffer {
    /// Opens (creating if needed) the buffer in `dir` and indexes its records.
    pub fn open(dir: &Path, limits: Limits) -> Result<OfflineBuffer, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::buffer(dir, e))?;
        let mut keys = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::buffer(dir, e))? {
            let entry = entry.map_err(|e| Error::buffer(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            } else if let Some(key) = name.strip_suffix(SUFFIX).and_then(|k| k.parse().ok()) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                let payload = usize::try_from(len).unwrap_or(0).saturating_sub(HEADER_LEN);
                keys.push((key, payload));
            }
        }
        keys.sort_unstable();
        let evicted = fs::read_to_string(dir.join(EVICTED_FILE))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let mut buffer = OfflineBuffer {
            dir: dir.to_owned(),
            limits,
            bytes: keys.iter().map(|&(_, len)| len as u64).sum(),
            next_key: keys.last().map_or(0, |&(key, _)| key + 1),
            index: keys.into(),
            evicted,
            corrupt: 0,
            sync: true,
        };
        buffer.evict_for(None)?;
        Ok(buffer)
    }

    fn path(&self, key: u64) -> PathBuf {
        self.dir.join(format!("{key:020}{SUFFIX}"))
    }

    /// Appends a record durably and returns its key; evicts the oldest records first if
    /// the limits require it.
    pub fn push(&mut self, payload: &[u8]) -> Result<u64, Error> {
        if payload.len() > MAX_RECORD {
            return Err(Error::Config(format!(
                "a buffered message may hold at most {MAX_RECORD} bytes"
            )));
        }
        self.evict_for(Some(payload.len()))?;
        let key = self.next_key;
        let path = self.path(key);
        let tmp = path.with_extension("tmp");
        write_record(&tmp, payload, self.sync).map_err(|e| Error::buffer(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::buffer(&path, e))?;
        self.next_key += 1;
        self.index.push_back((key, payload.len()));
        self.bytes += payload.len() as u64;
        Ok(key)
    }

    /// Removes oldest records until the limits hold with one more record of `incoming`
    /// bytes (or as they are, for `None`).
    fn evict_for(&mut self, incoming: Option<usize>) -> Result<(), Error> {
        let adding = usize::from(incoming.is_some());
        let incoming = incoming.unwrap_or(0) as u64;
        let mut evicted = 0;
        while let Some(&(key, _)) = self.index.front() {
            let count_ok = self.index.len() + adding <= self.limits.max_messages;
            let bytes_ok = self.bytes + incoming <= self.limits.max_bytes;
            if count_ok && bytes_ok {
                break;
            }
            self.remove(key)?;
            evicted += 1;
        }
        if evicted > 0 {
            self.evicted += evicted;
            tracing::warn!(
                evicted,
                total = self.evicted,
                "offline buffer full: oldest feature messages dropped"
            );
            let path = self.dir.join(EVICTED_FILE);
            fs::write(&path, self.evicted.to_string()).map_err(|e| Error::buffer(&path, e))?;
        }
        Ok(())
    }

    /// Keys in order, oldest first.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.index.iter().map(|&(key, _)| key)
    }

    /// The first key after `after` (or the oldest when `None`).
    pub fn next_after(&self, after: Option<u64>) -> Option<u64> {
        match after {
            None => self.index.front().map(|&(key, _)| key),
            Some(after) => {
                let at = self.index.partition_point(|&(key, _)| key <= after);
                self.index.get(at).map(|&(key, _)| key)
            }
        }
    }

    /// Reads one record; `None` when it is gone or corrupt (a corrupt record is removed
    /// and counted).
    pub fn read(&mut self, key: u64) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(key);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.forget(key);
                return Ok(None);
            }
            Err(e) => return Err(Error::buffer(&path, e)),
        };
        match parse_record(&bytes) {
            Some(payload) => Ok(Some(payload.to_vec())),
            None => {
                let path = path.display();
                tracing::warn!(%path, "offline buffer record failed its check; dropped");
                self.corrupt += 1;
                self.remove(key)?;
                Ok(None)
            }
        }
    }

    /// Deletes a record (after its PUBACK); unknown keys are ignored.
    pub fn remove(&mut self, key: u64) -> Result<(), Error> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::buffer(&path, e)),
        }
        self.forget(key);
        Ok(())
    }

    fn forget(&mut self, key: u64) {
        if let Ok(at) = self.index.binary_search_by_key(&key, |&(k, _)| k) {
            if let Some((_, len)) = self.index.remove(at) {
                self.bytes = self.bytes.saturating_sub(len as u64);
            }
        }
    }

    /// Whether each record is synced to disk before `push` returns (default `true`).
    /// Without it a record survives an agent crash or a hub outage but not a power cut
    /// of the device; simulators running thousands of agents on one host turn it off.
    pub fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Payload bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Key the next push gets. Keys grow within a run and continue after the newest
    /// record on disk; an emptied buffer starts again at 0 after a restart.
    pub fn next_key(&self) -> u64 {
        self.next_key
    }

    /// Records evicted to respect the limits, over the buffer's life.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Records dropped since open because their CRC did not match.
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }
}

/// Writes a record file, synced if `sync`.
fn write_record(path: &Path, payload: &[u8], sync: bool) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    let mut file = File::create(path)?;
    file.write_all(&bytes)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

/// The payload of a whole, intact record.
fn parse_record(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..HEADER_LEN)?;
    if header.get(..4)? != MAGIC {
        return None;
    }
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(header.get(at..at + 4)?.try_into().ok()?))
    };
    let len = usize::try_from(word(4)?).ok()?;
    let payload = bytes.get(HEADER_LEN..)?;
    (payload.len() == len && crc32fast::hash(payload) == word(8)?).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn open(dir: &Path, max_messages: usize, max_bytes: u64) -> OfflineBuffer {
        OfflineBuffer::open(
            dir,
            Limits {
                max_messages,
                max_bytes,
            },
        )
        .expect("open")
    }

    #[test]
    fn survives_reopen_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut buffer = open(dir.path(), 10, 1 << 20);
        for i in 0..5u8 {
            buffer.push(&[i; 3]).expect("push");
        }
        buffer.remove(0).expect("remove");
        drop(buffer);
        let mut buffer = open(dir.path(), 10, 1 << 20);
        assert_eq!(buffer.keys().collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(buffer.read(3).expect("read"), Some(vec![3; 3]));
        assert_eq!(buffer.next_key(), 5);
        assert_eq!(buffer.next_after(Some(2)), Some(3));
        assert_eq!(buffer.next_after(Some(4)), None);
        assert_eq!(buffer.bytes(), 12);
    }

    #[test]
    fn evicts_oldest_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut buffer = open(dir.path(), 3, 1 << 20);
        for i in 0..5u8 {
            buffer.push(&[i]).expect("push");
        }
        assert_eq!(buffer.keys().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(buffer.evicted(), 2);
        let mut by_bytes = open(&dir.path().join("b"), 100, 10);
        for _ in 0..4 {
            by_bytes.push(&[0; 4]).expect("push");
        }
        assert_eq!(by_bytes.len(), 2);
        assert_eq!(by_bytes.evicted(), 2);
        drop(buffer);
        assert_eq!(
            open(dir.path(), 3, 1 << 20).evicted(),
            2,
            "counter persists"
        );
    }

    #[test]
    fn corrupt_and_torn_records_are_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut buffer = open(dir.path(), 10, 1 << 20);
        buffer.push(b"good").expect("push");
        buffer.push(b"flip").expect("push");
        let path = buffer.path(1);
        let mut bytes = fs::read(&path).expect("read");
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        fs::write(&path, bytes).expect("write");
        fs::write(dir.path().join("00000000000000000009.tmp"), b"torn").expect("tmp");
        let mut buffer = open(dir.path(), 10, 1 << 20);
        assert_eq!(buffer.read(1).expect("read"), None);
        assert_eq!(buffer.corrupt(), 1);
        assert_eq!(buffer.keys().collect::<Vec<_>>(), [0]);
        assert!(!dir.path().join("00000000000000000009.tmp").exists());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_record(&bytes);
        }
    }
}
