//! bosun device agent: the program that runs on an embedded-Linux device (and, many
//! times over, in the fleet simulator) and speaks to a bosun hub as an Azure IoT Hub
//! device would.
//!
//! It provisions itself if asked (DPS over MQTT with a group-derived key), connects with
//! MQTT 5 over TCP or TLS with a Last Will and keep-alive, keeps its twin (reports
//! `mode`, firmware, interval, window; applies desired ones), publishes one CBOR feature
//! record per interval at QoS 1, streams raw captures in chunks on the `capture`
//! command, and keeps feature messages on disk while the hub is away.
//!
//! Sans-IO where behaviour lives; tokio only at the edge. Layout:
//! - [`core`]: the protocol behaviour — subscriptions, twin, commands, which feature
//!   goes out next and when it may leave the buffer ([`Core`]).
//! - [`settings`]: desired properties → [`Settings`]; the reported document.
//! - [`command`]: C2D command JSON → [`Command`].
//! - [`capture`]: a capture cut into chunks, resampled to the requested rate.
//! - [`features`]: a window from a source → `device::Features`.
//! - [`buffer`]: the on-disk offline queue ([`OfflineBuffer`]).
//! - [`backoff`]: reconnect delays with jitter.
//! - [`topics`]: the device's side of the IoT Hub topics.
//! - [`identity`]: SAS tokens, group-key derivation, user names.
//! - [`dps`]: the provisioning exchange (pure state machine plus its driver).
//! - [`source`]: the [`Source`] trait, CWRU replay, the synthetic motor.
//! - [`ota`](mod@ota): signed updates into A/B slots, health confirmation, rollback.
//! - [`link`]: one MQTT connection over TCP/TLS (tokio).
//! - [`run`](mod@run): the runtime loop that ties them together ([`run()`],
//!   [`run_blocking`]).
//! - [`options`]: the configuration ([`Options`]); [`stats`]: live counters
//!   ([`Stats`]); [`Error`].
#![forbid(unsafe_code)]

pub mod backoff;
pub mod buffer;
pub mod capture;
pub mod command;
pub mod core;
pub mod dps;
mod error;
pub mod features;
pub mod identity;
pub mod link;
pub mod options;
pub mod ota;
pub mod run;
pub mod settings;
pub mod source;
pub mod stats;
pub mod topics;

pub use buffer::{Limits, OfflineBuffer};
pub use command::{parse_command, CaptureRequest, Command};
pub use core::{Core, Effect};
pub use error::Error;
pub use identity::Identity;
pub use options::Options;
pub use run::{run, run_blocking};
pub use settings::{Mode, Settings};
pub use source::{parse_source, Source};
pub use stats::{Snapshot, Stats};
