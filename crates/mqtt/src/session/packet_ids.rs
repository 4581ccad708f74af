//! Allocation of outbound packet identifiers.
//!
//! A sender must give every new QoS 1/2 PUBLISH, SUBSCRIBE and UNSUBSCRIBE a non-zero
//! identifier that is not in use by another of its flows on the session
//! [MQTT-2.2.1-3] [MQTT-2.2.1-4]; this module is the one place that remembers which
//! identifiers are taken.

use alloc::collections::BTreeSet;

use crate::PacketId;

/// Number of distinct packet identifiers (1..=65535).
const ID_COUNT: usize = u16::MAX as usize;

/// The packet identifiers a session has in flight, and which one to hand out next.
///
/// Identifiers are handed out in increasing order, wrapping from 65535 to 1, so a
/// recently released identifier is not reused at once: a late acknowledgement of an old
/// flow is less likely to be mistaken for one of a new flow.
///
/// The set is a `BTreeSet` rather than a 65536-bit bitset: a bitset costs 8 KiB for
/// every session, idle ones included, while the number of identifiers in flight is
/// bounded by the peer's Receive Maximum and is usually a handful. Operations cost
/// O(log n) in the in-flight count; `allocate` is amortized O(1) beyond that, because
/// identifiers are handed out in order and the scan only skips identifiers still in use
/// since the counter last passed them, 65535 allocations ago.
#[derive(Clone, Debug, Default)]
pub struct PacketIds {
    in_use: BTreeSet<PacketId>,
    /// The identifier handed out last; 0 before the first one.
    last: PacketId,
}

impl PacketIds {
    /// An allocator with no identifier in use; the first one handed out is 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next free identifier after the last one handed out, or `None` when all
    /// 65535 are in use (the caller must wait for an acknowledgement).
    pub fn allocate(&mut self) -> Option<PacketId> {
        if self.in_use.len() >= ID_COUNT {
            return None;
        }
        let start = next_id(self.last);
        let id = self
            .first_free_from(start)
            .or_else(|| self.first_free_from(1))?;
        self.in_use.insert(id);
        self.last = id;
        Some(id)
    }

    /// Marks an identifier as in use without allocating it, for flows restored from a
    /// persisted session. Returns `false` if it was already in use or is 0.
    pub fn reserve(&mut self, id: PacketId) -> bool {
        id != 0 && self.in_use.insert(id)
    }

    /// Frees an identifier once its flow is complete (PUBACK, PUBCOMP, SUBACK,
    /// UNSUBACK). Returns `false` if it was not in use: the peer acknowledged something
    /// that was never sent, which the caller may treat as a protocol error.
    pub fn release(&mut self, id: PacketId) -> bool {
        self.in_use.remove(&id)
    }

    /// Whether `id` belongs to a flow in progress.
    pub fn in_use(&self, id: PacketId) -> bool {
        self.in_use.contains(&id)
    }

    /// Number of identifiers in use.
    pub fn len(&self) -> usize {
        self.in_use.len()
    }

    /// Whether no flow is in progress.
    pub fn is_empty(&self) -> bool {
        self.in_use.is_empty()
    }

    /// The lowest free identifier in `start..=65535`, if any.
    fn first_free_from(&self, start: PacketId) -> Option<PacketId> {
        let mut candidate = start;
        for &used in self.in_use.range(start..) {
            if used != candidate {
                return Some(candidate);
            }
            candidate = candidate.checked_add(1)?;
        }
        Some(candidate)
    }
}

/// The identifier after `id`, wrapping from 65535 to 1 (0 is never valid).
fn next_id(id: PacketId) -> PacketId {
    id.checked_add(1).unwrap_or(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_increasing_ids_and_does_not_reuse_at_once() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate(), Some(1));
        assert_eq!(ids.allocate(), Some(2));
        assert!(ids.release(1));
        assert!(!ids.release(1));
        assert_eq!(ids.allocate(), Some(3));
        assert!(ids.in_use(2) && ids.in_use(3) && !ids.in_use(1));
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn wraps_to_one_and_skips_ids_in_use() {
        let mut ids = PacketIds::new();
        assert!(ids.reserve(1));
        assert!(ids.reserve(2));
        assert!(ids.reserve(4));
        ids.last = u16::MAX - 1;
        assert_eq!(ids.allocate(), Some(u16::MAX));
        assert_eq!(ids.allocate(), Some(3));
        assert_eq!(ids.allocate(), Some(5));
    }

    #[test]
    fn skips_a_run_at_the_top_of_the_range() {
        let mut ids = PacketIds::new();
        for id in 65000..=u16::MAX {
            assert!(ids.reserve(id));
        }
        ids.last = 64999;
        assert_eq!(ids.allocate(), Some(1));
    }

    #[test]
    fn zero_is_never_used() {
        let mut ids = PacketIds::new();
        assert!(!ids.reserve(0));
        assert!(!ids.in_use(0));
        assert!(!ids.release(0));
        assert!(ids.is_empty());
    }

    #[test]
    fn exhaustion_and_recovery() {
        let mut ids = PacketIds::new();
        for expected in 1..=u16::MAX {
            assert_eq!(ids.allocate(), Some(expected));
        }
        assert_eq!(ids.len(), ID_COUNT);
        assert_eq!(ids.allocate(), None);
        assert!(ids.release(777));
        assert_eq!(ids.allocate(), Some(777));
        assert_eq!(ids.allocate(), None);
        assert!(ids.release(9));
        assert!(ids.release(8));
        assert_eq!(ids.allocate(), Some(8));
        assert_eq!(ids.allocate(), Some(9));
    }
}
