//! Logging: installs the `tracing` subscriber that writes to stderr.
//!
//! Stdout is reserved for machine-read output (the `listening …` lines of `bosun serve`,
//! `bosun config show`), so every log line goes to stderr. This module decides the
//! format and the filter; what gets logged is up to each crate.

use std::io::IsTerminal;

use anyhow::{anyhow, Result};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Picks the log filter: the `--log-level` flag, else `RUST_LOG` (the Rust convention a
/// developer reaches for), else the configured `serve.log_level`.
pub(crate) fn filter_directive(
    flag: Option<&str>,
    rust_log: Option<&str>,
    configured: &str,
) -> String {
    let rust_log = rust_log.map(str::trim).filter(|s| !s.is_empty());
    flag.or(rust_log).unwrap_or(configured).to_owned()
}

/// Installs the global subscriber. Fails on an invalid filter, naming it.
pub(crate) fn init(format: LogFormat, directive: &str) -> Result<()> {
    // The parse error repeats its cause in its own message: keep it out of the chain.
    let filter = EnvFilter::try_new(directive)
        .map_err(|e| anyhow!("invalid log level {directive:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow!("cannot install the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_rust_log_beats_config() {
        assert_eq!(
            filter_directive(Some("debug"), Some("warn"), "info"),
            "debug"
        );
        assert_eq!(filter_directive(None, Some("warn"), "info"), "warn");
        assert_eq!(filter_directive(None, Some("  "), "info"), "info");
        assert_eq!(filter_directive(None, None, "info"), "info");
    }

    #[test]
    fn invalid_filter_is_named() {
        let err = init(LogFormat::Text, "info,broker=loud").expect_err("invalid");
        assert!(format!("{err:#}").contains("info,broker=loud"));
    }
}
