//! bosun fleet simulator: many device agents (`crates/agent`) in one process, driven
//! by a scenario, and a report built from what the hub's REST API says happened.
//!
//! Every simulated device is one `agent::run` task with its own id, identity, offline
//! buffer and MQTT (or MQTT/TLS) connection, so the hub cannot tell it from a real
//! device. The report deliberately asks the hub (registry, anomalies, series, captures)
//! rather than the agents, so a run checks the whole path end to end.
//!
//! Layout:
//! - [`addresses`]: which 127.0.0.x each device connects from.
//! - [`scenario`]: the scenario file (TOML): devices, faults, timing, events.
//! - [`plan`]: a scenario resolved per device (id, fault onset, partitions).
//! - [`source`]: the synthetic motor each device reads, wrapped to count windows.
//! - [`fleet`]: spawning, staggering, partitioning and stopping the agents
//!   ([`Fleet`]); what each device published ([`Outcome`]).
//! - [`firmware`]: OTA updates on every device, and the firmware counts of the report.
//! - [`hub`]: the API questions the report asks ([`HubApi`] is the HTTP seam).
//! - [`server`]: a hub the simulator starts, kills (-9) and restarts itself.
//! - [`restart`]: the `hub_restart` events and how long reconnecting took.
//! - [`progress`]: the progress line (plain, or redrawn with bars on a terminal).
//! - [`report`]: the final numbers, their verdict and the Markdown table ([`Report`]).
//! - [`Error`]: why a scenario or a run failed.
#![forbid(unsafe_code)]

pub mod addresses;
mod error;
pub mod firmware;
pub mod fleet;
pub mod hub;
pub mod plan;
pub mod progress;
pub mod report;
pub mod restart;
pub mod scenario;
pub mod server;
pub mod source;

pub use addresses::SourceAddresses;
pub use error::Error;
pub use firmware::{FirmwareConfig, FirmwareCounts};
pub use fleet::{Fleet, FleetConfig, Outcome};
pub use hub::HubApi;
pub use plan::{DevicePlan, Plan};
pub use report::Report;
pub use scenario::{RolloutEvent, Scenario};
