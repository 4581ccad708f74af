//! The hub's rollouts, persisted: one JSON file per rollout under
//! `DATA_DIR/firmware/rollouts/`, rewritten (temporary file, fsync, rename), so a
//! restarted hub carries on where it stopped.
//!
//! When: at once after any change that leads to actions (a device notified or told to
//! roll back, an event) or changes the status or phase, so whatever the hub did
//! outside is on disk first and a restarted hub never offers a device the update
//! twice. Changes from device reports alone (progress, results) only mark the rollout
//! dirty, and [`Rollouts::flush`] (the driver calls it every second) writes them: a
//! 1,000-device rollout gets several reports per device, and one fsynced file per
//! report made the hub's disk the bottleneck. Reports lost in a crash come back: the
//! agent sends its latest report again at every connect.
//!
//! Owns naming, persistence and the recent-events log; what a rollout does is the
//! engine's ([`Rollout`]). Blocking file I/O; callers on an async runtime keep the
//! calls short (one small file per change) or use `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::{Action, Rollout, RolloutEvent, Status};

/// Most events kept per rollout (oldest dropped first).
pub const MAX_EVENTS: usize = 100;
/// Longest rollout name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Why the registry refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A name that is empty, too long or has characters other than `A-Z a-z 0-9 . _ -`.
    #[error("rollout names are 1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ -")]
    Name,
    /// A rollout with this name exists.
    #[error("rollout {0} exists")]
    Exists(String),
    /// No rollout with this name.
    #[error("no rollout {0}")]
    NotFound(String),
}

/// A rollout with what it rolls out, to whom, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRecord {
    /// Its name (also its file's).
    pub name: String,
    /// The firmware id (image SHA-256).
    pub firmware: String,
    /// The target device group.
    pub group: String,
    /// When it was created, ms since the epoch.
    pub created_ms: u64,
    /// The engine's state.
    pub rollout: Rollout,
    /// Recent events, oldest first: (ms since the epoch, event).
    pub events: Vec<(u64, RolloutEvent)>,
}

/// The persisted rollouts; cheap to clone (clones share the state).
#[derive(Clone)]
pub struct Rollouts {
    /// Their directory.
    dir: Arc<PathBuf>,
    /// Every rollout by name; the lock also serializes the file writes.
    all: Arc<Mutex<BTreeMap<String, RolloutRecord>>>,
    /// Rollouts changed since their file was last written (under `all`'s lock).
    dirty: Arc<Mutex<BTreeSet<String>>>,
}

/// Wraps an I/O error with its file.
fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `name` may name a rollout (and a file).
fn good_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Rollouts {
    /// Opens (creating if needed) the registry in `dir` and loads every rollout.
    pub fn open(dir: &Path) -> Result<Rollouts, RegistryError> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let mut all = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(io_at(dir))? {
            let path = entry.map_err(io_at(dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(io_at(&path))?;
            let record: RolloutRecord = serde_json::from_slice(&bytes)
                .map_err(|e| io_at(&path)(io::Error::new(io::ErrorKind::InvalidData, e)))?;
            all.insert(record.name.clone(), record);
        }
        Ok(Rollouts {
            dir: Arc::new(dir.to_owned()),
            all: Arc::new(Mutex::new(all)),
            dirty: Arc::default(),
        })
    }

    /// The map; a poisoned lock still holds whole records (each is replaced whole).
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, RolloutRecord>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes one record's file.
    fn save(&self, record: &RolloutRecord) -> Result<(), RegistryError> {
        let path = self.dir.join(format!("{}.json", record.name));
        let tmp = self.dir.join(format!(".{}.tmp", record.name));
        let json = serde_json::to_vec(record).unwrap_or_default();
        let mut file = fs::File::create(&tmp).map_err(io_at(&tmp))?;
        file.write_all(&json).map_err(io_at(&tmp))?;
        file.sync_all().map_err(io_at(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_at(&path))
    }

    /// Adds a new rollout.
    pub fn create(&self, record: RolloutRecord) -> Result<(), RegistryError> {
        if !good_name(&record.name) {
            return Err(RegistryError::Name);
        }
        let mut all = self.lock();
        if all.contains_key(&record.name) {
            return Err(RegistryError::Exists(record.name));
        }
        self.save(&record)?;
        all.insert(record.name.clone(), record);
        Ok(())
    }

    /// One rollout.
    pub fn get(&self, name: &str) -> Result<RolloutRecord, RegistryError> {
        self.lock()
            .get(name)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(name.to_owned()))
    }

    /// Every rollout, by name.
    pub fn list(&self) -> Vec<RolloutRecord> {
        self.lock().values().cloned().collect()
    }

    /// Names of the rollouts that are running (the ones events and ticks concern).
    pub fn running(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter(|r| r.rollout.status == Status::Running)
            .map(|r| r.name.clone())
            .collect()
    }

    /// Names of the rollouts that did not complete (running, paused, cancelled): the
    /// ones whose devices may still be owed a desired patch after a restart.
    pub fn unfinished(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter(|r| r.rollout.status != Status::Completed)
            .map(|r| r.name.clone())
            .collect()
    }

    /// The running rollouts that include `device`: (name, firmware id). Cheap (no
    /// copies of device tables), for the per-event path.
    pub fn running_for(&self, device: &str) -> Vec<(String, String)> {
        self.lock()
            .values()
            .filter(|r| r.rollout.status == Status::Running)
            .filter(|r| r.rollout.devices.contains_key(device))
            .map(|r| (r.name.clone(), r.firmware.clone()))
            .collect()
    }

    /// A rollout's firmware id and target group.
    pub fn target(&self, name: &str) -> Result<(String, String), RegistryError> {
        self.lock()
            .get(name)
            .map(|r| (r.firmware.clone(), r.group.clone()))
            .ok_or_else(|| RegistryError::NotFound(name.to_owned()))
    }

    /// Changes a rollout through `f` and logs the events among the actions. Saves it
    /// at once when there are actions or its status or phase changed, else marks it
    /// dirty if anything changed (see the module doc). Returns the actions for the
    /// caller to carry out.
    pub fn update(
        &self,
        name: &str,
        now_ms: u64,
        f: impl FnOnce(&mut Rollout) -> Vec<Action>,
    ) -> Result<Vec<Action>, RegistryError> {
        let mut all = self.lock();
        let record = all
            .get_mut(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
        let before = record.rollout.clone();
        let actions = f(&mut record.rollout);
        for action in &actions {
            if let Action::Event(event) = action {
                record.events.push((now_ms, event.clone()));
            }
        }
        let excess = record.events.len().saturating_sub(MAX_EVENTS);
        record.events.drain(..excess);
        let urgent = !actions.is_empty()
            || record.rollout.status != before.status
            || record.rollout.phase != before.phase;
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        if urgent {
            self.save(record)?;
            dirty.remove(name);
        } else if record.rollout != before {
            dirty.insert(name.to_owned());
        }
        Ok(actions)
    }

    /// Writes every rollout changed since its last write (report-only changes).
    pub fn flush(&self) -> Result<(), RegistryError> {
        let all = self.lock();
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(name) = dirty.pop_first() {
            if let Some(record) = all.get(&name) {
                if let Err(e) = self.save(record) {
                    dirty.insert(name);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::tests::spec;

    fn record(name: &str) -> RolloutRecord {
        let members = (0..10).map(|i| format!("d{i}"));
        RolloutRecord {
            name: name.to_owned(),
            firmware: "ab".repeat(32),
            group: "plant-7".into(),
            created_ms: 1,
            rollout: Rollout::new(spec(&[0.5, 1.0]), 1, members).expect("spec"),
            events: Vec::new(),
        }
    }

    #[test]
    fn persists_changes_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rollouts = Rollouts::open(dir.path()).expect("open");
        rollouts.create(record("spring")).expect("create");
        assert!(matches!(
            rollouts.create(record("spring")),
            Err(RegistryError::Exists(_))
        ));
        for bad in ["", "../x", ".hidden", "a b"] {
            assert!(matches!(
                rollouts.create(record(bad)),
                Err(RegistryError::Name)
            ));
        }
        let actions = rollouts
            .update("spring", 5, |r| {
                let mut a = r.tick(5);
                a.extend(r.pause());
                a
            })
            .expect("update");
        assert_eq!(actions.len(), 6, "{actions:?}"); // 5 notifications + paused
        assert_eq!(rollouts.running(), Vec::<String>::new());

        let reopened = Rollouts::open(dir.path()).expect("reopen");
        let back = reopened.get("spring").expect("get");
        assert_eq!(back, rollouts.get("spring").expect("get"));
        assert_eq!(back.events, vec![(5, RolloutEvent::Paused)]);

        // A report alone is written by the next flush, not at once.
        let notified = back
            .rollout
            .devices
            .iter()
            .find(|(_, d)| d.state.in_progress());
        let device = notified
            .map(|(id, _)| id.clone())
            .expect("a notified device");
        let report = |r: &mut Rollout| r.report(&device, super::super::Report::Installing, 6);
        assert_eq!(
            rollouts.update("spring", 6, report).expect("report"),
            vec![]
        );
        let on_disk = |dir: &Path| {
            Rollouts::open(dir)
                .expect("open")
                .get("spring")
                .expect("get")
        };
        assert_eq!(on_disk(dir.path()), back, "not yet written");
        rollouts.flush().expect("flush");
        assert_eq!(on_disk(dir.path()), rollouts.get("spring").expect("get"));
        assert_ne!(on_disk(dir.path()), back);
        assert!(matches!(
            reopened.update("nope", 0, |_| Vec::new()),
            Err(RegistryError::NotFound(_))
        ));
    }
}
