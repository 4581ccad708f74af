//! Stored raw captures: the samples a device streamed after an anomaly, one pair of
//! files per capture under `captures/` (`{id}.f32` little-endian samples, `{id}.json`
//! what they are), so an engineer can fetch them from the API long after the event.
//!
//! Ids are made here (`c{time}-{n}`), never taken from the device, so a device cannot
//! choose a path. Gaps are kept as the device left them: `missing` lists the chunk
//! ranges that never arrived and the sample file holds only what did.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::files::write_atomically;

/// What a stored capture is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureInfo {
    /// The capture's id in bosun.
    pub id: String,
    /// The device that sent it.
    pub device_id: String,
    /// The device's own name for it (its `capture-id` property).
    pub device_capture_id: String,
    /// Samples per second.
    pub rate_hz: f64,
    /// Interleaved channels per sample instant (1–3); 1 for captures stored before
    /// captures had axes.
    #[serde(default = "one_axis")]
    pub axes: u8,
    /// Frames (sample instants) stored; the sample file holds `samples × axes` values.
    pub samples: usize,
    /// Chunks the device announced.
    pub chunks: u32,
    /// Chunk ranges `[start, end)` that never arrived.
    pub missing: Vec<[u32; 2]>,
    /// The anomaly event that asked for it, when there was one.
    pub anomaly_id: Option<String>,
    /// When it was stored (ms since the Unix epoch).
    pub stored_ms: i64,
}

fn one_axis() -> u8 {
    1
}

/// The capture directory.
pub(crate) struct CaptureStore {
    dir: PathBuf,
    next: AtomicU64,
}

impl CaptureStore {
    /// Opens (creating) `dir`.
    pub(crate) fn open(dir: &Path) -> io::Result<CaptureStore> {
        fs::create_dir_all(dir)?;
        Ok(CaptureStore {
            dir: dir.to_path_buf(),
            next: AtomicU64::new(0),
        })
    }

    /// A fresh capture id.
    pub(crate) fn new_id(&self, now_ms: i64) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("c{now_ms}-{n}")
    }

    /// Stores samples then description, so a listed capture always has its samples.
    pub(crate) fn save(&self, info: &CaptureInfo, samples: &[f32]) -> io::Result<()> {
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        write_atomically(&self.path(&info.id, "f32")?, &bytes)?;
        let json = serde_json::to_vec_pretty(info).map_err(io::Error::other)?;
        write_atomically(&self.path(&info.id, "json")?, &json)
    }

    /// One capture's description.
    pub(crate) fn info(&self, id: &str) -> io::Result<CaptureInfo> {
        let bytes = fs::read(self.path(id, "json")?)?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Whether capture `id` is stored.
    pub(crate) fn exists(&self, id: &str) -> bool {
        self.path(id, "json").is_ok_and(|p| p.exists())
    }

    /// One capture's samples as stored (little-endian f32).
    pub(crate) fn samples(&self, id: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(id, "f32")?)
    }

    /// Every capture, newest first, optionally of one device.
    pub(crate) fn list(&self, device: Option<&str>) -> io::Result<Vec<CaptureInfo>> {
        let mut all = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                match fs::read(&path).map(|b| serde_json::from_slice::<CaptureInfo>(&b)) {
                    Ok(Ok(info)) if device.is_none_or(|d| d == info.device_id) => all.push(info),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(file = %path.display(), error = %e, "unreadable capture")
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "unreadable capture")
                    }
                }
            }
        }
        all.sort_by(|a, b| b.stored_ms.cmp(&a.stored_ms).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    /// The file of capture `id`; refuses ids this store could not have made.
    fn path(&self, id: &str, ext: &str) -> io::Result<PathBuf> {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such capture"));
        }
        Ok(self.dir.join(format!("{id}.{ext}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_round_trip_and_hostile_ids_are_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CaptureStore::open(dir.path()).expect("open");
        let id = store.new_id(1_000);
        let info = CaptureInfo {
            id: id.clone(),
            device_id: "m1".into(),
            device_capture_id: "7".into(),
            rate_hz: 10_000.0,
            axes: 1,
            samples: 3,
            chunks: 4,
            missing: vec![[1, 2]],
            anomaly_id: Some("a1".into()),
            stored_ms: 1_000,
        };
        store.save(&info, &[0.5, -1.0, 2.0]).expect("save");
        assert_eq!(store.info(&id).expect("info"), info);
        assert!(store.exists(&id) && !store.exists("c1-9"));
        assert_eq!(store.samples(&id).expect("samples").len(), 12);
        assert_eq!(store.list(Some("m1")).expect("list"), vec![info]);
        assert!(store.list(Some("m2")).expect("list").is_empty());
        for bad in ["../x", "", "a/b", "x.json"] {
            assert!(store.info(bad).is_err());
        }
    }
}
