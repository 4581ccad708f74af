//! Why a scenario could not be used or a run could not be observed.

use std::path::PathBuf;

/// Everything that can go wrong in the simulator library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file could not be read.
    #[error("scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The scenario text is not valid TOML for a scenario.
    #[error("scenario: {0}")]
    Parse(String),
    /// A scenario value is out of range or inconsistent.
    #[error("scenario: {0}")]
    Invalid(String),
    /// An agent's configuration was refused before it ran.
    #[error("device {device}: {source}")]
    Agent {
        /// The device id.
        device: String,
        /// The agent's error.
        source: agent::Error,
    },
    /// The hub the simulator runs itself could not be started.
    #[error("hub: {0}")]
    Hub(String),
    /// The hub's API did not answer as expected.
    #[error("hub API {target}: {detail}")]
    Api {
        /// The request target.
        target: String,
        /// What went wrong.
        detail: String,
    },
}
