//! Sans-IO MQTT 3.1.1 and 5.0 for bosun.
//!
//! This crate knows the wire format and the protocol rules, and nothing about sockets,
//! runtimes or storage, so the broker, the device SDK and the simulator all drive the
//! same code and it can be tested with plain byte buffers.
//!
//! Layout:
//! - [`packet`]: one type per control packet and the [`Packet`] enum over them.
//! - [`property`]: MQTT 5 properties, one struct for every packet kind.
//! - [`reason`]: reason codes, with their MQTT 3.1.1 equivalents.
//! - [`decode`]: bytes to packets, with a cheap completeness check before any allocation.
//! - [`encode`]: packets to bytes, for a given protocol version.
//! - [`topic`]: topic names and filters: validation, matching, shared subscriptions.
//! - [`session`]: protocol state that outlives one packet (packet identifiers, topic aliases,
//!   in-flight windows, keep-alive deadlines).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod codec;
pub mod decode;
pub mod encode;
pub mod packet;
pub mod property;
pub mod reason;
pub mod session;
pub mod topic;

pub use decode::{decode, DecodeError};
pub use encode::{encode, encode_publish, encoded_len, publish_len, EncodeError};
pub use packet::*;
pub use property::Properties;
pub use reason::ReasonCode;
