//! One anomaly model per device, and their persistence.
//!
//! The models live in memory and are written to `models.json` (atomically) when they
//! changed, every few seconds and at shutdown; at start they are read back, so a
//! restart neither forgets a baseline nor warms up again. What a crash loses is the
//! last few seconds of learning, never the alarm record: state changes are in the
//! anomaly log, written before any action runs.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use analytics::anomaly::{Assessment, Model, ModelConfig};

use crate::files::write_atomically;

/// Devices' models.
pub(crate) struct Models {
    config: ModelConfig,
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    models: HashMap<String, Model>,
    dirty: bool,
}

impl Models {
    /// Reads the saved models at `path` (none yet is fine; an unreadable file is logged
    /// and set aside as `models.json.bad`, and the models start over).
    pub(crate) fn open(path: &Path, config: ModelConfig) -> Models {
        let models = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<HashMap<String, Model>>(&bytes) {
                Ok(models) => models,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "unreadable anomaly models; starting over");
                    let _ = std::fs::rename(path, path.with_extension("json.bad"));
                    HashMap::new()
                }
            },
            Err(_) => HashMap::new(),
        };
        Models {
            config,
            path: path.to_path_buf(),
            state: Mutex::new(State {
                models,
                dirty: false,
            }),
        }
    }

    /// Scores one message's features with the device's model.
    pub(crate) fn observe(&self, device: &str, features: &[(String, f64)]) -> Assessment {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.dirty = true;
        let config = &self.config;
        state
            .models
            .entry(device.to_string())
            .or_insert_with(|| Model::new(config.clone()))
            .observe(features)
    }

    /// Writes the models if they changed since the last save.
    pub(crate) fn save(&self) -> io::Result<()> {
        let json = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            serde_json::to_vec(&state.models).map_err(io::Error::other)?
        };
        write_atomically(&self.path, &json)
    }

    /// Forgets a device's model (it learns again from its next messages).
    pub(crate) fn reset(&self, device: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.dirty = true;
        state.models.remove(device).is_some()
    }
}
