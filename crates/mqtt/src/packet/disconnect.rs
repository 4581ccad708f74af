//! DISCONNECT: the orderly end of a connection; in v5 either side sends it, with a reason.

use crate::{Properties, ReasonCode};

/// An orderly disconnect, with the reason in v5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect {
    /// Why the connection ends; `NORMAL_DISCONNECTION` (0x00) on 3.1.1.
    pub code: ReasonCode,
    /// v5 properties (session expiry interval, reason string, server reference…).
    pub properties: Properties,
}
