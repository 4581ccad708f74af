//! bosun fleet simulator: many device agents (`crates/agent`) in one process, driven
//! by a scenario, and a report built from what the hub's REST API says happened.
//!
//! Every simulated device is one `agent::run` task with its own id, identity, offline
//! buffer and MQTT (or MQTT/TLS) connection, so the hub cannot tell it from a real
//! device. The report deliberately asks the hub (registry, anomalies, series, captures)
//! rather than the agents, so a run checks the whole path end to end.
//!
//! Layout:
//! - [`scenario`]: the scenario file (TOML): devices, faults, timing, events.
//! - [`plan`]: a scenario resolved per device (id, fault onset, partitions).
//! - [`source`]: the synthetic motor each device reads, wrapped to count windows.
//! - [`fleet`]: spawning, staggering, partitioning and stopping the agents
//!   ([`Fleet`]); what each device published ([`Outcome`]).
//! - [`hub`]: the API questions the report asks ([`HubApi`] is the HTTP seam).
//! - [`report`]: the final numbers, their verdict and the Markdown table ([`Report`]).
//! - [`Error`]: why a scenario or a run failed.
#![forbid(unsafe_code)]

mod error;
pub mod fleet;
pub mod hub;
pub mod plan;
pub mod report;
pub mod scenario;
pub mod source;

pub use error::Error;
pub use fleet::{Fleet, FleetConfig, Outcome};
pub use hub::HubApi;
pub use plan::{DevicePlan, Plan};
pub use report::Report;
pub use scenario::Scenario;
