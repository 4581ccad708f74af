//! bosun's MQTT broker: the tokio edge around the sans-IO `mqtt` crate.
//!
//! Layout:
//! - [`config`]: every knob of the broker, with defaults a fleet can start on.
//! - `listener`: accepts TCP connections under a connection limit and spawns one task each.
//! - `connection`: one task per client: bytes to packets (via `mqtt`), keep-alive,
//!   the inbound half of the protocol, and the bounded outbound queue to the socket.
//! - `router`: one task owning all routing state: sessions, subscriptions, retained
//!   messages, QoS delivery state and the durable log; connections talk to it by message.
//! - `trie`: the subscription tree, with wildcards and shared subscriptions.
//! - [`log`]: the durable record log with group commit; `persist` defines its records.
//! - [`metrics`]: counters and histograms in the Prometheus text format.
#![forbid(unsafe_code)]

pub mod config;
pub mod log;
pub mod metrics;
pub mod server;

pub use config::Config;
pub use server::{Broker, StartError};
