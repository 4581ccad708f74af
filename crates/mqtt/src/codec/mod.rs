//! Wire-format machinery shared by [`crate::decode`] and [`crate::encode`].
//!
//! The public entry points live in `decode.rs` and `encode.rs`; this private tree owns
//! the pieces behind them: primitives (variable byte integers, the bounds-checked
//! reader, the byte sink), the packet-type table, the MQTT 5 property and reason-code
//! rules, and one reader and one writer module per packet family.

pub(crate) mod kind;
pub(crate) mod property;
pub(crate) mod read;
pub(crate) mod reader;
pub(crate) mod reasons;
pub(crate) mod sink;
pub(crate) mod varint;
pub(crate) mod write;
