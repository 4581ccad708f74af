//! Anomaly events: what the models decided, kept as one JSON line per event in
//! `anomalies.jsonl`, so operators can list them and captures can point at them.
//!
//! Every event is appended with an fsync before any action it triggers runs: the
//! record of why the pipeline raised an alarm must exist if the alarm does. The file
//! is read back at start (bounded to the newest [`KEEP_IN_MEMORY`]).

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::files::append_line;

/// Events kept in memory for the API; older ones stay in the file.
const KEEP_IN_MEMORY: usize = 10_000;

/// One decision of a device's anomaly model worth recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyEvent {
    /// Unique id (`a{time}-{n}`).
    pub id: String,
    /// The device.
    pub device_id: String,
    /// When the scored message arrived (ms since the Unix epoch).
    pub time_ms: i64,
    /// `entered` or `exited`.
    pub transition: String,
    /// The anomaly score of that message.
    pub score: f64,
    /// The features that drove the score, most important first.
    pub explanation: Value,
}

/// The event file and its newest entries.
pub(crate) struct AnomalyLog {
    path: PathBuf,
    recent: Mutex<VecDeque<AnomalyEvent>>,
}

impl AnomalyLog {
    /// Opens `path`, reading back what is there; a torn last line (crash while
    /// appending) is skipped.
    pub(crate) fn open(path: &Path) -> io::Result<AnomalyLog> {
        let mut recent = VecDeque::new();
        match fs::read(path) {
            Ok(bytes) => {
                cut_torn_tail(path, &bytes)?;
                for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    if let Ok(event) = serde_json::from_slice::<AnomalyEvent>(line) {
                        if recent.len() == KEEP_IN_MEMORY {
                            recent.pop_front();
                        }
                        recent.push_back(event);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(AnomalyLog {
            path: path.to_path_buf(),
            recent: Mutex::new(recent),
        })
    }

    /// Appends durably.
    pub(crate) fn append(&self, event: &AnomalyEvent) -> io::Result<()> {
        let line = serde_json::to_vec(event).map_err(io::Error::other)?;
        append_line(&self.path, &line)?;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == KEEP_IN_MEMORY {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        Ok(())
    }

    /// The newest events, newest first, optionally of one device.
    pub(crate) fn recent(&self, device: Option<&str>, limit: usize) -> Vec<AnomalyEvent> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .rev()
            .filter(|e| device.is_none_or(|d| d == e.device_id))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The device's newest `entered` event, which a capture arriving now answers.
    pub(crate) fn latest_entered(&self, device: &str) -> Option<AnomalyEvent> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .rev()
            .find(|e| e.device_id == device && e.transition == "entered")
            .cloned()
    }
}

/// Drops a last line that a crash left without its newline, so the next append starts
/// a line of its own instead of extending the broken one.
fn cut_torn_tail(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let file = fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, device: &str, transition: &str) -> AnomalyEvent {
        AnomalyEvent {
            id: id.into(),
            device_id: device.into(),
            time_ms: 5,
            transition: transition.into(),
            score: 9.5,
            explanation: serde_json::json!([{"feature": "x.rms", "z": 9.5}]),
        }
    }

    #[test]
    fn events_survive_reopening_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("anomalies.jsonl");
        let log = AnomalyLog::open(&path).expect("open");
        log.append(&event("a1", "m1", "entered")).expect("append");
        log.append(&event("a2", "m1", "exited")).expect("append");
        log.append(&event("a3", "m2", "entered")).expect("append");
        let mut bytes = fs::read(&path).expect("read");
        bytes.extend_from_slice(b"{\"id\":\"a4\",\"devi");
        fs::write(&path, bytes).expect("write");
        let log = AnomalyLog::open(&path).expect("reopen");
        log.append(&event("a5", "m2", "exited"))
            .expect("append after the tear");
        let log = AnomalyLog::open(&path).expect("reopen");
        let ids: Vec<_> = log.recent(None, 10).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a5", "a3", "a2", "a1"]);
        assert_eq!(
            log.latest_entered("m1").map(|e| e.id).as_deref(),
            Some("a1")
        );
        assert_eq!(log.recent(Some("m2"), 10).len(), 2);
    }
}
