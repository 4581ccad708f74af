//! How an agent is configured: the CLI's flags, as a plain struct, validated once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::buffer::Limits;
use crate::identity::Identity;
use crate::settings::{MAX_INTERVAL, MIN_INTERVAL};
use crate::stats::Stats;
use crate::Error;

/// Keep-alive asked for in CONNECT, seconds.
pub const KEEP_ALIVE_S: u16 = 60;
/// Fastest time acceleration accepted.
pub const MAX_SPEED: f64 = 10_000.0;

/// Everything an agent needs to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Device id (the registration id when provisioning).
    pub device_id: String,
    /// The hub's MQTT address, `host:port`.
    pub hub: String,
    /// CA file to trust: TLS when set, plain TCP otherwise.
    pub ca: Option<PathBuf>,
    /// Host name for SAS tokens; the host part of `hub` when `None`.
    pub host_name: Option<String>,
    /// How the device authenticates.
    pub identity: Identity,
    /// `--source` text (see [`crate::source::parse_source`]).
    pub source: String,
    /// Feature interval until the twin says otherwise.
    pub interval: Duration,
    /// Directory of the offline buffer.
    pub buffer_dir: PathBuf,
    /// Bounds of the offline buffer.
    pub buffer_limits: Limits,
    /// Sync each buffered message to disk (default); see [`crate::OfflineBuffer::set_sync`].
    pub buffer_sync: bool,
    /// Time acceleration: device time runs this many times faster than real time
    /// (intervals, captures and fault growth all scale), for simulations.
    pub speed: f64,
    /// Firmware version reported in the twin.
    pub firmware: String,
    /// Keep-alive, seconds.
    pub keep_alive: u16,
    /// Counters the agent updates as it runs; clone the `Arc` before `run` to read them.
    pub stats: Arc<Stats>,
    /// Local address to connect from (`None`: the system's choice); the fleet
    /// simulator spreads devices over 127.0.0.x so one hub port can serve more of them.
    pub source_address: Option<std::net::IpAddr>,
    /// Over-the-air updates (pinned key, slots, health deadline); `None`: off.
    pub ota: Option<crate::ota::OtaOptions>,
}

impl Options {
    /// Options with defaults: anonymous, synthetic healthy motor, 60 s interval, buffer
    /// in `bosun-agent/{id}`, real time.
    pub fn new(device_id: &str, hub: &str) -> Options {
        Options {
            device_id: device_id.to_owned(),
            hub: hub.to_owned(),
            ca: None,
            host_name: None,
            identity: Identity::Anonymous,
            source: "synthetic".into(),
            interval: crate::settings::DEFAULT_INTERVAL,
            buffer_dir: PathBuf::from("bosun-agent").join(device_id),
            buffer_limits: Limits::default(),
            buffer_sync: true,
            speed: 1.0,
            firmware: env!("CARGO_PKG_VERSION").to_owned(),
            keep_alive: KEEP_ALIVE_S,
            stats: Arc::default(),
            source_address: None,
            ota: None,
        }
    }

    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> Result<(), Error> {
        let id_ok = !self.device_id.is_empty()
            && self.device_id.len() <= 128
            && !self.device_id.contains(['/', '+', '#', '\0']);
        if !id_ok {
            return Err(Error::Config(format!(
                "device id {:?} must be 1–128 characters without / + #",
                self.device_id
            )));
        }
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&self.interval) {
            return Err(Error::Config(
                "interval must be between 1 s and 24 h".into(),
            ));
        }
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= MAX_SPEED) {
            return Err(Error::Config(format!("speed must be in (0, {MAX_SPEED}]")));
        }
        if self.hub.is_empty() {
            return Err(Error::Config("--hub is empty".into()));
        }
        Ok(())
    }
}
