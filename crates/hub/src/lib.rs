//! bosun's control plane: the device model operators and applications work with.
//!
//! Pure logic first, IO at the edge:
//! - [`twin`]: twin documents (tags, desired, reported, versions, metadata), JSON merge
//!   patches and their limits.
//! - [`query`]: the SQL-like twin query language (parse, match, project); its own crate
//!   because telemetry rules speak it too.
//! - [`topics`]: the Azure IoT Hub device topics, parsed and formatted.
//! - [`base64`]: the RFC 4648 encoding, for keys, signatures and binary payloads.
//! - [`auth`]: device and service authentication for the broker (SAS tokens) and the
//!   per-device topic rules (ACL); provisioning clients (DPS registrations against
//!   enrollments) and their rules.
//! - [`service`]: the tokio task that joins the broker's events, the store and API
//!   callers; [`service::Hub`] is the handle the API and CLI use.
#![forbid(unsafe_code)]

pub mod auth;
pub use ::base64;
pub use ::query;
pub mod service;
pub mod topics;
pub mod twin;
