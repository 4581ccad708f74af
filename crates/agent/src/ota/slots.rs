//! The A/B slots on disk: `slot-a.bin`, `slot-b.bin` and `boot.json` in the agent's
//! slot directory. On a real device the slots are partitions and the record lives in
//! the bootloader's environment; here they are files, written the same careful way:
//! the record through a temporary file, fsync and rename (so a kill -9 leaves the old
//! or the new record, never half of one), slot bytes fsynced before the record that
//! makes them active.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::{BootRecord, Slot};

/// The record's file name.
pub const RECORD_FILE: &str = "boot.json";
/// Bytes that make a simulated image "crash on boot": it never confirms its health.
pub const CRASH_MARKER: &[u8] = b"BOSUN-SIM-CRASH-ON-BOOT";
/// Largest `boot.json` read (it holds two versions and a report).
const MAX_RECORD_LEN: u64 = 64 * 1024;

/// Why a slot or the record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// `boot.json` does not parse.
    #[error("{path}: not a boot record: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The slot directory.
#[derive(Debug, Clone)]
pub struct Slots {
    dir: PathBuf,
    /// fsync what is written (off for simulations, as the offline buffer's).
    sync: bool,
}

impl Slots {
    /// Slots in `dir` (created if missing), with every write synced.
    pub fn open(dir: &Path) -> Result<Slots, SlotError> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(Slots {
            dir: dir.to_owned(),
            sync: true,
        })
    }

    /// Turns fsync off (or on again): a simulator running many agents trades the
    /// crash safety of simulated slots for throughput.
    pub fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
    }

    /// Syncs a slot file written through `file` (unless syncing is off).
    pub fn sync_slot(&self, file: &File) -> std::io::Result<()> {
        if self.sync {
            file.sync_all()?;
        }
        Ok(())
    }

    /// A slot's image file.
    pub fn path(&self, slot: Slot) -> PathBuf {
        self.dir.join(slot.file_name())
    }

    /// The stored record, `None` on a device never updated.
    pub fn load(&self) -> Result<Option<BootRecord>, SlotError> {
        let path = self.dir.join(RECORD_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, e)),
        };
        let mut text = Vec::new();
        file.take(MAX_RECORD_LEN)
            .read_to_end(&mut text)
            .map_err(|e| io(&path, e))?;
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| SlotError::Corrupt {
                path,
                reason: e.to_string(),
            })
    }

    /// Writes the record atomically: temporary file, fsync, rename, fsync of the
    /// directory.
    pub fn save(&self, record: &BootRecord) -> Result<(), SlotError> {
        let path = self.dir.join(RECORD_FILE);
        let tmp = self.dir.join("boot.json.tmp");
        let text = serde_json::to_vec_pretty(record).map_err(|e| SlotError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        file.write_all(&text).map_err(|e| io(&tmp, e))?;
        self.sync_slot(&file).map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        if self.sync {
            sync_dir(&self.dir);
        }
        Ok(())
    }

    /// Opens `slot` for writing: appending after the bytes already there when
    /// `resume`, emptied otherwise. Returns the file and its length.
    pub fn open_for_write(&self, slot: Slot, resume: bool) -> Result<(File, u64), SlotError> {
        let path = self.path(slot);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .read(true)
            .truncate(!resume)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let len = file.seek(SeekFrom::End(0)).map_err(|e| io(&path, e))?;
        Ok((file, len))
    }

    /// Whether the image in `slot` is a simulated crash on boot.
    pub fn crashes_on_boot(&self, slot: Slot) -> bool {
        let Ok(mut file) = File::open(self.path(slot)) else {
            return false;
        };
        contains_marker(&mut file)
    }
}

/// Whether `reader` contains [`CRASH_MARKER`], read in blocks (images may be large).
fn contains_marker(reader: &mut impl Read) -> bool {
    let keep = CRASH_MARKER.len() - 1;
    let mut window: Vec<u8> = Vec::with_capacity(64 * 1024 + keep);
    let mut block = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut block) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        window.extend_from_slice(block.get(..n).unwrap_or_default());
        if window
            .windows(CRASH_MARKER.len())
            .any(|w| w == CRASH_MARKER)
        {
            return true;
        }
        let drop = window.len().saturating_sub(keep);
        window.drain(..drop);
    }
}

/// Makes a rename durable (best effort: not every platform can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn io(path: &Path, source: std::io::Error) -> SlotError {
    SlotError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota::Version;

    #[test]
    fn record_survives_and_slots_resume() {
        let dir = tempfile::tempdir().expect("dir");
        let slots = Slots::open(dir.path()).expect("open");
        assert!(slots.load().expect("load").is_none());
        let record = BootRecord::factory(Version::parse("1.0.0").expect("v"));
        slots.save(&record).expect("save");
        assert_eq!(slots.load().expect("load"), Some(record));
        let (mut f, len) = slots.open_for_write(Slot::B, false).expect("open");
        assert_eq!(len, 0);
        f.write_all(b"abc").expect("write");
        drop(f);
        let (_, len) = slots.open_for_write(Slot::B, true).expect("resume");
        assert_eq!(len, 3);
        let (_, len) = slots.open_for_write(Slot::B, false).expect("restart");
        assert_eq!(len, 0);
        fs::write(dir.path().join(RECORD_FILE), b"{nope").expect("corrupt");
        assert!(matches!(slots.load(), Err(SlotError::Corrupt { .. })));
    }

    #[test]
    fn finds_the_crash_marker_across_blocks() {
        let mut image = vec![0u8; 64 * 1024 - 5];
        assert!(!contains_marker(&mut image.as_slice()));
        image.extend_from_slice(CRASH_MARKER);
        image.extend_from_slice(&[1; 100]);
        assert!(contains_marker(&mut image.as_slice()));
    }
}
