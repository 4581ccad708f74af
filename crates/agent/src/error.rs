//! Why the agent stopped or a step failed. One enum for the crate: callers (the CLI)
//! print it; the runtime decides per variant whether to retry (network) or stop
//! (configuration).

use std::path::PathBuf;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line or configuration value is unusable.
    #[error("bad configuration: {0}")]
    Config(String),
    /// Reading or writing the offline buffer failed.
    #[error("offline buffer {path}: {source}")]
    Buffer {
        /// The file or directory involved.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A vibration source could not produce samples.
    #[error("vibration source: {0}")]
    Source(String),
    /// The feature pipeline refused a window.
    #[error("features: {0}")]
    Features(#[from] device::Error),
    /// The TLS setup (CA file, server name) is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// The connection to the hub failed or broke; retried with backoff.
    #[error("connection: {0}")]
    Connection(String),
    /// The hub refused the CONNECT (bad credentials, unknown device…).
    #[error(
        "hub refused the connection: reason code {code:#04x} ({})",
        or_none(reason)
    )]
    Refused {
        /// MQTT 5 reason code of the CONNACK.
        code: u8,
        /// Reason string, when the hub sent one.
        reason: Option<String>,
    },
    /// Provisioning did not assign the device.
    #[error("provisioning: {0}")]
    Provisioning(String),
}

/// A reason string for messages.
fn or_none(reason: &Option<String>) -> &str {
    reason.as_deref().unwrap_or("no reason given")
}

impl Error {
    /// A [`Error::Buffer`] for `path`.
    pub(crate) fn buffer(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Buffer {
            path: path.into(),
            source,
        }
    }
}
