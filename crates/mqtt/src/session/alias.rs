//! Topic aliases: the two per-connection tables that let MQTT 5 peers replace a
//! repeated topic name with a two-byte number [MQTT-3.3.2.3.4].
//!
//! Each direction has its own table and neither survives the network connection
//! [MQTT-3.3.2-7]: create both when a connection opens and drop them when it closes.

use alloc::{boxed::Box, collections::BTreeMap, vec::Vec};

use thiserror::Error;

use crate::ReasonCode;

/// Why an inbound PUBLISH's topic could not be resolved; the connection must be closed
/// with [`AliasError::reason_code`].
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum AliasError {
    /// Alias 0 or above the Topic Alias Maximum we announced [MQTT-3.3.2-8]
    /// [MQTT-3.3.2-9] [MQTT-3.3.2-11].
    #[error("topic alias {alias} is outside 1..={max}")]
    Invalid {
        /// The alias received.
        alias: u16,
        /// The Topic Alias Maximum in force.
        max: u16,
    },
    /// An empty topic name with an alias that was never given a topic on this
    /// connection.
    #[error("topic alias {alias} has no topic on this connection")]
    Unknown {
        /// The alias received.
        alias: u16,
    },
    /// An empty topic name without an alias: there is no topic at all.
    #[error("empty topic name without a topic alias")]
    MissingTopic,
}

impl AliasError {
    /// The DISCONNECT reason: 0x94 for an out-of-range alias, 0x82 otherwise.
    pub fn reason_code(self) -> ReasonCode {
        match self {
            AliasError::Invalid { .. } => ReasonCode::TOPIC_ALIAS_INVALID,
            AliasError::Unknown { .. } | AliasError::MissingTopic => ReasonCode::PROTOCOL_ERROR,
        }
    }
}

/// The aliases the peer has defined for PUBLISH packets it sends us.
///
/// Memory is bounded by the Topic Alias Maximum we announced, which is why it should be
/// kept modest.
#[derive(Clone, Debug, Default)]
pub struct TopicAliasesIn {
    max: u16,
    topics: BTreeMap<u16, Box<str>>,
}

impl TopicAliasesIn {
    /// A table accepting aliases `1..=max`, where `max` is the Topic Alias Maximum we
    /// sent in CONNECT or CONNACK; 0 refuses every alias.
    pub fn new(max: u16) -> Self {
        TopicAliasesIn {
            max,
            topics: BTreeMap::new(),
        }
    }

    /// The topic a received PUBLISH is about, given its topic name and Topic Alias
    /// property.
    ///
    /// A non-empty topic with an alias (re)defines the alias; an empty topic with an
    /// alias uses it. The result borrows either `topic` or the table.
    pub fn resolve<'a>(
        &'a mut self,
        topic: &'a str,
        alias: Option<u16>,
    ) -> Result<&'a str, AliasError> {
        let Some(alias) = alias else {
            return if topic.is_empty() {
                Err(AliasError::MissingTopic)
            } else {
                Ok(topic)
            };
        };
        if alias == 0 || alias > self.max {
            return Err(AliasError::Invalid {
                alias,
                max: self.max,
            });
        }
        if topic.is_empty() {
            return self
                .topics
                .get(&alias)
                .map(|t| &**t)
                .ok_or(AliasError::Unknown { alias });
        }
        if self
            .topics
            .get(&alias)
            .is_none_or(|known| **known != *topic)
        {
            self.topics.insert(alias, topic.into());
        }
        Ok(topic)
    }

    /// Number of aliases defined so far.
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    /// Whether the peer has defined no alias yet.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }
}

/// How to send the topic of one outbound PUBLISH, as decided by [`TopicAliasesOut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasUse {
    /// Send the topic name and no alias.
    None,
    /// Send the topic name and this Topic Alias, which (re)defines it at the peer.
    New(u16),
    /// Send an empty topic name and this Topic Alias, which the peer already knows.
    Existing(u16),
}

/// The aliases we have defined at the peer for PUBLISH packets we send.
///
/// When all `max` aliases are taken, a new topic takes over the least recently used
/// alias. Recency is refreshed on every use, not only on assignment, so topics that
/// are published often keep their alias while one-off topics cycle through the
/// stale ones; stopping at `max` instead would pin the aliases to whichever topics came
/// first, which for a wildcard subscriber is an accident of timing.
///
/// Decisions must be applied to packets in the order they are written to the
/// connection, since the peer updates its table in that order.
#[derive(Clone, Debug, Default)]
pub struct TopicAliasesOut {
    max: u16,
    /// Topic to alias, for lookup on send.
    by_topic: BTreeMap<Box<str>, u16>,
    /// Alias `a` is `slots[a - 1]`.
    slots: Vec<OutSlot>,
    /// Last use to alias; the first entry is the eviction candidate.
    recency: BTreeMap<u64, u16>,
    /// Use counter: a clock-free notion of "recently".
    uses: u64,
}

#[derive(Clone, Debug)]
struct OutSlot {
    topic: Box<str>,
    last_use: u64,
}

impl TopicAliasesOut {
    /// A table for a peer that accepts aliases `1..=max` (its Topic Alias Maximum from
    /// CONNECT or CONNACK, absent = 0); 0 disables aliases, as does MQTT 3.1.1.
    pub fn new(max: u16) -> Self {
        TopicAliasesOut {
            max,
            ..Self::default()
        }
    }

    /// Decides how to send `topic` and records the decision; never returns an alias
    /// above `max` [MQTT-3.3.2-9] [MQTT-3.3.2-11] nor 0 [MQTT-3.3.2-8].
    pub fn assign(&mut self, topic: &str) -> AliasUse {
        if self.max == 0 || topic.is_empty() {
            return AliasUse::None;
        }
        if let Some(&alias) = self.by_topic.get(topic) {
            self.touch(alias);
            return AliasUse::Existing(alias);
        }
        match self.take_slot(topic) {
            Some(alias) => {
                self.by_topic.insert(topic.into(), alias);
                self.touch(alias);
                AliasUse::New(alias)
            }
            None => AliasUse::None,
        }
    }

    /// Number of aliases defined at the peer (at most `max`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no alias has been defined yet.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A fresh alias while some are unused, else the least recently used one, now
    /// bound to `topic`.
    fn take_slot(&mut self, topic: &str) -> Option<u16> {
        if self.slots.len() < usize::from(self.max) {
            self.slots.push(OutSlot {
                topic: topic.into(),
                last_use: 0,
            });
            return u16::try_from(self.slots.len()).ok();
        }
        let (_, alias) = self.recency.pop_first()?;
        let slot = self.slots.get_mut(usize::from(alias) - 1)?;
        let old = core::mem::replace(&mut slot.topic, topic.into());
        self.by_topic.remove(&old);
        Some(alias)
    }

    /// Marks `alias` as the most recently used.
    fn touch(&mut self, alias: u16) {
        let Some(slot) = self.slots.get_mut(usize::from(alias) - 1) else {
            return;
        };
        self.recency.remove(&slot.last_use);
        self.uses += 1;
        slot.last_use = self.uses;
        self.recency.insert(self.uses, alias);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn inbound_defines_and_uses_aliases() {
        let mut t = TopicAliasesIn::new(2);
        assert_eq!(t.resolve("a/b", None), Ok("a/b"));
        assert_eq!(t.resolve("a/b", Some(1)), Ok("a/b"));
        assert_eq!(t.resolve("", Some(1)), Ok("a/b"));
        assert_eq!(t.resolve("c", Some(1)), Ok("c"));
        assert_eq!(t.resolve("", Some(1)), Ok("c"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn inbound_errors() {
        let mut t = TopicAliasesIn::new(2);
        assert_eq!(
            t.resolve("a", Some(0)),
            Err(AliasError::Invalid { alias: 0, max: 2 })
        );
        assert_eq!(
            t.resolve("a", Some(3)),
            Err(AliasError::Invalid { alias: 3, max: 2 })
        );
        assert_eq!(
            t.resolve("", Some(2)),
            Err(AliasError::Unknown { alias: 2 })
        );
        assert_eq!(t.resolve("", None), Err(AliasError::MissingTopic));
        assert_eq!(
            AliasError::Invalid { alias: 0, max: 2 }.reason_code(),
            ReasonCode::TOPIC_ALIAS_INVALID
        );
        assert_eq!(
            AliasError::Unknown { alias: 2 }.reason_code(),
            ReasonCode::PROTOCOL_ERROR
        );
        assert_eq!(
            AliasError::MissingTopic.reason_code(),
            ReasonCode::PROTOCOL_ERROR
        );
        let mut disabled = TopicAliasesIn::new(0);
        assert_eq!(
            disabled.resolve("a", Some(1)),
            Err(AliasError::Invalid { alias: 1, max: 0 })
        );
        assert!(disabled.is_empty());
    }

    #[test]
    fn outbound_assigns_then_reuses() {
        let mut t = TopicAliasesOut::new(2);
        assert_eq!(t.assign("a"), AliasUse::New(1));
        assert_eq!(t.assign("a"), AliasUse::Existing(1));
        assert_eq!(t.assign("b"), AliasUse::New(2));
        assert_eq!(t.assign("b"), AliasUse::Existing(2));
        assert_eq!(t.assign(""), AliasUse::None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn outbound_evicts_least_recently_used() {
        let mut t = TopicAliasesOut::new(2);
        assert_eq!(t.assign("a"), AliasUse::New(1));
        assert_eq!(t.assign("b"), AliasUse::New(2));
        assert_eq!(t.assign("a"), AliasUse::Existing(1));
        assert_eq!(t.assign("c"), AliasUse::New(2));
        assert_eq!(t.assign("b"), AliasUse::New(1));
        assert_eq!(t.assign("c"), AliasUse::Existing(2));
        assert_eq!(t.assign("a"), AliasUse::New(1));
        assert_eq!(t.len(), 2);
        assert_eq!(t.by_topic.len(), 2);
        assert_eq!(t.recency.len(), 2);
    }

    #[test]
    fn outbound_disabled() {
        let mut t = TopicAliasesOut::new(0);
        assert_eq!(t.assign("a"), AliasUse::None);
        assert_eq!(t.assign("a"), AliasUse::None);
        assert!(t.is_empty());
    }

    #[test]
    fn outbound_memory_stays_bounded_under_churn() {
        let mut t = TopicAliasesOut::new(3);
        for i in 0..1000 {
            let topic = alloc::format!("t/{}", i % 17);
            match t.assign(&topic) {
                AliasUse::New(a) | AliasUse::Existing(a) => assert!((1..=3).contains(&a)),
                AliasUse::None => panic!("aliases are enabled"),
            }
        }
        assert_eq!(
            (t.slots.len(), t.by_topic.len(), t.recency.len()),
            (3, 3, 3)
        );
    }

    #[test]
    fn both_sides_agree() {
        let mut out = TopicAliasesOut::new(4);
        let mut inbound = TopicAliasesIn::new(4);
        for i in 0..500u32 {
            let topic = alloc::format!("d/{}", (i * 7) % 11);
            let (sent, alias) = match out.assign(&topic) {
                AliasUse::None => (topic.as_str(), None),
                AliasUse::New(a) => (topic.as_str(), Some(a)),
                AliasUse::Existing(a) => ("", Some(a)),
            };
            assert_eq!(inbound.resolve(sent, alias).unwrap(), topic);
        }
    }
}
