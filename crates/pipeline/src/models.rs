//! One anomaly model per device — or per group of identical machines, each device
//! keeping its own alarm — and their persistence.
//!
//! The models live in memory and are written (atomically) when they changed, every few
//! seconds and at shutdown: devices' models to `models.json`, groups' to
//! `group-models.json` and the alarms of devices in groups to `group-alarms.json`. At
//! start they are read back, so a restart neither forgets a baseline nor warms up
//! again. What a crash loses is the last few seconds of learning, never the alarm
//! record: state changes are in the anomaly log, written before any action runs.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use analytics::anomaly::{Alarm, Assessment, Model, ModelConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::files::write_atomically;

/// Devices' and groups' models.
pub(crate) struct Models {
    config: ModelConfig,
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By device id.
    models: HashMap<String, Model>,
    /// By group name (the group tag's value).
    groups: HashMap<String, Model>,
    /// Alarms of devices scored by a group's model, by device id.
    alarms: HashMap<String, Alarm>,
    dirty: bool,
}

const DEVICES_FILE: &str = "models.json";
const GROUPS_FILE: &str = "group-models.json";
const ALARMS_FILE: &str = "group-alarms.json";

impl Models {
    /// Reads the saved models in `dir` (none yet is fine; an unreadable file is logged
    /// and set aside as `*.json.bad`, and those models start over).
    pub(crate) fn open(dir: &Path, config: ModelConfig) -> Models {
        let state = State {
            models: load(&dir.join(DEVICES_FILE)),
            groups: load(&dir.join(GROUPS_FILE)),
            alarms: load(&dir.join(ALARMS_FILE)),
            dirty: false,
        };
        Models {
            config,
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
        }
    }

    /// Scores one message's features with the device's model, or with its group's
    /// (and the device's own alarm) when `group` is given.
    pub(crate) fn observe(
        &self,
        device: &str,
        group: Option<&str>,
        features: &[(String, f64)],
    ) -> Assessment {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State {
            models,
            groups,
            alarms,
            dirty,
        } = &mut *state;
        *dirty = true;
        let fresh = || Model::new(self.config.clone());
        match group {
            None => models
                .entry(device.to_string())
                .or_insert_with(fresh)
                .observe(features),
            Some(group) => {
                let model = groups.entry(group.to_string()).or_insert_with(fresh);
                let alarm = alarms.entry(device.to_string()).or_default();
                model.observe_for(alarm, features)
            }
        }
    }

    /// Writes the models if they changed since the last save.
    pub(crate) fn save(&self) -> io::Result<()> {
        let files = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            [
                (DEVICES_FILE, to_json(&state.models)?),
                (GROUPS_FILE, to_json(&state.groups)?),
                (ALARMS_FILE, to_json(&state.alarms)?),
            ]
        };
        for (name, json) in files {
            write_atomically(&self.dir.join(name), &json)?;
        }
        Ok(())
    }

    /// Forgets a device's model, or its alarm in its group (it learns, or is judged,
    /// afresh from its next messages).
    pub(crate) fn reset(&self, device: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.dirty = true;
        let model = state.models.remove(device).is_some();
        state.alarms.remove(device).is_some() || model
    }
}

/// A saved map, or an empty one when there is none or it cannot be read.
fn load<T: DeserializeOwned>(path: &Path) -> HashMap<String, T> {
    let Ok(bytes) = std::fs::read(path) else {
        return HashMap::new();
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        tracing::warn!(file = %path.display(), error = %e, "unreadable anomaly models; starting over");
        let _ = std::fs::rename(path, path.with_extension("json.bad"));
        HashMap::new()
    })
}

fn to_json<T: Serialize>(map: &HashMap<String, T>) -> io::Result<Vec<u8>> {
    serde_json::to_vec(map).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(level: f64) -> Vec<(String, f64)> {
        vec![
            ("x.rms".to_owned(), level),
            ("x.peak".to_owned(), 3.0 * level),
        ]
    }

    /// Group models and devices' alarms survive a save and a reopen, apart from each
    /// other and from per-device models.
    #[test]
    fn group_models_and_alarms_are_saved_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let config = ModelConfig {
            warmup: 4,
            ..ModelConfig::default()
        };
        let models = Models::open(dir.path(), config.clone());
        for i in 0..4 {
            let level = 1.0 + 0.01 * f64::from(i);
            models.observe(
                if i % 2 == 0 { "m1" } else { "m2" },
                Some("line-a"),
                &message(level),
            );
        }
        models.observe("solo", None, &message(1.0));
        // A third machine of the group is scored at once.
        assert_eq!(
            models.observe("m3", Some("line-a"), &message(1.0)).scored,
            2
        );
        for _ in 0..2 {
            models.observe("m1", Some("line-a"), &message(50.0));
        }
        models.save().expect("save");
        let reopened = Models::open(dir.path(), config);
        let state = reopened.state.lock().expect("lock");
        assert_eq!(state.groups.len(), 1);
        assert_eq!(state.alarms.len(), 3);
        assert_eq!(
            state.alarms["m1"].state(),
            analytics::anomaly::State::Anomalous
        );
        assert_eq!(
            state.alarms["m3"].state(),
            analytics::anomaly::State::Normal
        );
        assert_eq!(state.models.len(), 1);
    }
}
