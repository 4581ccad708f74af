//! Protocol state that lives longer than one packet, shared by the broker, the device
//! SDK and the simulator.
//!
//! Everything here is sans-IO: no sockets, no timers, no clock reads. Callers feed in
//! the packets they saw and the current time (a [`core::time::Duration`] since any
//! epoch they like) and get back decisions, which keeps the rules testable with plain
//! values and identical on both ends of a connection.
//!
//! Spec ids follow MQTT 5.0 numbering; the rules that also exist in 3.1.1 apply to
//! both versions.
//!
//! - [`PacketIds`]: outbound packet identifiers in use [MQTT-2.2.1-3].
//! - [`TopicAliasesIn`] / [`TopicAliasesOut`]: topic alias tables of one connection
//!   [MQTT-3.3.2.3.4].
//! - [`KeepAlive`]: when a silent peer is considered gone [MQTT-3.1.2-22].
//! - [`InflightWindow`]: flow control by Receive Maximum [MQTT-4.9.0-2].
//! - [`Qos2Inbound`]: exactly-once delivery on the receiving side [MQTT-4.3.3].

mod alias;
mod flow;
mod keep_alive;
mod packet_ids;

pub use alias::{AliasError, AliasUse, TopicAliasesIn, TopicAliasesOut};
pub use flow::{InflightWindow, Qos2Inbound, Qos2Publish, ReceiveMaximumExceeded};
pub use keep_alive::KeepAlive;
pub use packet_ids::PacketIds;
