//! bosun's MQTT broker: the tokio edge around the sans-IO `mqtt` crate.
//!
//! Layout, in the order a message travels:
//! - `listener`: accepts TCP connections under a connection limit, one task each
//!   (MQTT and MQTT over TLS share the limit).
//! - `tls`: the TLS certificate: the operator's files or a local CA, hot reload;
//!   [`device_ca`]: the device CAs client certificates are verified against, revocation.
//! - [`auth`]: the authentication and authorization hooks (who a client is, what it
//!   may publish and subscribe to) an embedder plugs in.
//! - `connection`: one task per client: CONNECT checks, bytes to packets (via `mqtt`),
//!   keep-alive, the inbound half of the protocol, writing the outbox to the socket.
//! - `router`: one task owning all routing state: sessions, subscriptions, retained
//!   messages, QoS delivery state and the durable log; connections talk to it by message.
//! - [`trie`]: the subscription tree, with wildcards and shared subscriptions.
//! - [`log`]: the durable record log with group commit; [`persist`] defines its records.
//! - `outbox`: the per-connection queue the router (and the log) fill.
//! - `retained`, `message`: retained store and the shared message type.
//! - [`metrics`]: counters and histograms in the Prometheus text format.
//! - [`config`]: every knob, with defaults a fleet can start on.
//! - [`server`]: start and graceful shutdown of the whole.
//! - [`service`]: how an in-process service (the control plane) hooks into routing.
//! - [`websocket`]: MQTT over WebSocket on the same listeners (upgrade, frames).
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
mod connection;
mod listener;
pub mod log;
mod message;
pub mod metrics;
mod outbox;
pub mod persist;
mod retained;
mod router;
pub mod server;
pub mod service;
mod small_map;
mod tls;
pub mod trie;
pub mod websocket;

pub use config::Config;
pub use server::{Broker, StartError};
pub use tls::device_ca;
pub use tls::TlsError;
