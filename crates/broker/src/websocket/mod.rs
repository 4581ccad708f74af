//! MQTT over WebSocket (RFC 6455, MQTT 5.0 §6), for browsers and for networks that only
//! let HTTP(S) out.
//!
//! Served on the broker's own listeners rather than a separate port: a connection whose
//! first bytes are `GET ` is an HTTP upgrade request (an MQTT CONNECT starts with byte
//! 0x10), so the plain listener speaks `ws://…/mqtt` and the TLS listener
//! `wss://…/mqtt` with the same certificate and the same client-certificate checks as
//! MQTT over TLS. After the upgrade, the WebSocket is just another byte stream under the
//! MQTT connection ([`WebSocket`] is a [`Transport`](crate::connection) like TCP).
//!
//! Layout: `handshake` (the HTTP upgrade, pure), `frame` (the frame codec, pure),
//! `stream` (the byte stream over a transport). The pure parts are public for the fuzz
//! targets (`fuzz/fuzz_targets/websocket.rs`).

mod frame;
mod handshake;
mod stream;

pub use frame::{Decoder, Frame, FrameError};
pub use handshake::{upgrade, Answer, PATHS};
pub(crate) use stream::WebSocket;
