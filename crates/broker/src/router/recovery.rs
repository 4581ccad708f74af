//! Rebuilding the router's state from the durable log at start, and writing that state
//! back as a compact snapshot when the log has grown.
//!
//! Replay folds records into [`Recovered`] (plain data, no `Arc`s, nothing live);
//! [`Router::install`] then turns it into sessions, queues and retained messages.
//! Sessions come back disconnected; their expiry clocks restart at recovery time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mqtt::{Properties, QoS};

use super::session::{Delivery, Session};
use super::subscribe::{options_byte, options_from_byte};
use super::{Router, Timer};
use crate::message::Message;
use crate::persist::{Record, StoredMessage, Target};

/// A persistent session as replay reconstructs it.
#[derive(Debug, Default)]
struct RecoveredSession {
    expiry: u32,
    /// Filter to (options byte, subscription id).
    subscriptions: BTreeMap<String, (u8, u32)>,
    /// Message id to how this session receives it; ordered, so queues keep log order.
    pending: BTreeMap<u64, Target>,
}

/// State folded from the log's records.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    sessions: BTreeMap<String, RecoveredSession>,
    messages: HashMap<u64, StoredMessage>,
    retained: HashMap<String, u64>,
    max_message_id: u64,
    /// Records that failed to decode (counted and logged, not fatal).
    pub(crate) bad_records: usize,
}

impl Recovered {
    /// Folds one record in.
    pub(crate) fn apply(&mut self, bytes: &[u8]) {
        let record = match Record::decode(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.bad_records += 1;
                tracing::warn!(error = %e, "skipping undecodable log record");
                return;
            }
        };
        match record {
            Record::Session { client_id, expiry } => {
                self.sessions.entry(client_id).or_default().expiry = expiry
            }
            Record::SessionEnd { client_id } => {
                self.sessions.remove(&client_id);
            }
            Record::Subscribe {
                client_id,
                filter,
                options,
                sub_id,
            } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.subscriptions.insert(filter, (options, sub_id));
                }
            }
            Record::Unsubscribe { client_id, filter } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.subscriptions.remove(&filter);
                }
            }
            Record::Message(m) => self.apply_message(*m),
            Record::Ack { client_id, id } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.pending.remove(&id);
                }
            }
        }
    }

    fn apply_message(&mut self, mut m: StoredMessage) {
        self.max_message_id = self.max_message_id.max(m.id);
        for target in std::mem::take(&mut m.targets) {
            if let Some(s) = self.sessions.get_mut(&target.client_id) {
                s.pending.insert(m.id, target);
            }
        }
        if m.retain {
            if m.payload.is_empty() {
                self.retained.remove(&m.topic);
            } else {
                self.retained.insert(m.topic.clone(), m.id);
            }
        }
        self.messages.entry(m.id).or_insert(m);
    }

    /// Number of sessions and retained messages recovered, for the start-up log line.
    pub(crate) fn summary(&self) -> (usize, usize, usize) {
        let pending = self.sessions.values().map(|s| s.pending.len()).sum();
        (self.sessions.len(), pending, self.retained.len())
    }
}

impl Router {
    /// Turns recovered data into live (disconnected) sessions and retained messages.
    pub(super) fn install(&mut self, mut recovered: Recovered) {
        self.next_message_id = recovered.max_message_id + 1;
        let (sessions, pending, retained) = recovered.summary();
        let subscriptions: usize = recovered
            .sessions
            .values()
            .map(|s| s.subscriptions.len())
            .sum();
        self.live_records = (sessions + pending + retained + subscriptions) as u64;
        let now = Instant::now();
        let mut live: HashMap<u64, Arc<Message>> = HashMap::new();
        let mut message =
            |id: u64, messages: &mut HashMap<u64, StoredMessage>| -> Option<Arc<Message>> {
                if let Some(m) = live.get(&id) {
                    return Some(m.clone());
                }
                let m = Arc::new(to_message(messages.get(&id)?, now));
                live.insert(id, m.clone());
                Some(m)
            };
        for (topic, id) in std::mem::take(&mut recovered.retained) {
            if let Some(m) = message(id, &mut recovered.messages) {
                debug_assert_eq!(&*m.topic, topic);
                self.retained.set(m);
            }
        }
        for (client_id, rs) in std::mem::take(&mut recovered.sessions) {
            let id = self.create_session(&client_id, rs.expiry);
            for (filter, (options, sub_id)) in rs.subscriptions {
                let options = options_from_byte(options, sub_id);
                if self.tree.subscribe(&filter, id, options).is_err() {
                    continue;
                }
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.set_subscription(&filter, options);
                }
            }
            for (mid, target) in rs.pending {
                let Some(m) = message(mid, &mut recovered.messages) else {
                    continue;
                };
                let delivery = Delivery {
                    qos: QoS::from_bits(target.qos).unwrap_or(QoS::AtLeastOnce),
                    retain: target.retain,
                    sub_ids: target.sub_ids,
                    shared: None,
                    message: m,
                };
                self.deliver(id, delivery);
            }
            let key = self.add_timer(
                now + std::time::Duration::from_secs(u64::from(rs.expiry)),
                Timer::Expire(id),
            );
            if let Some(s) = self.sessions.get_mut(&id) {
                s.timers.push(key);
            }
        }
        self.metrics
            .retained_messages
            .set(self.retained.len() as i64);
    }

    /// Rewrites the log as a snapshot of the live state once it has grown enough.
    pub(super) fn maybe_compact(&mut self) {
        // The writer applies a snapshot asynchronously; until it has, `size()` still
        // shows the old log and would trigger the same compaction again and again.
        if self.compaction_pending.load(Ordering::Acquire) {
            return;
        }
        let size = self
            .log
            .size()
            .max(self.log_size_after_compact + self.appended_since_compact);
        let appends = self.metrics.log_appends.get().max(1);
        let record_bytes = self.metrics.log_bytes.get() / appends;
        let live_bytes = self.live_records.saturating_mul(record_bytes.max(16));
        let threshold = self
            .config
            .log
            .compact_bytes
            .max(live_bytes.saturating_mul(2))
            .max(self.log_size_after_compact.saturating_mul(2));
        if size < threshold {
            return;
        }
        let snapshot = self.snapshot();
        let bytes: u64 = snapshot.iter().map(|r| r.len() as u64).sum();
        tracing::info!(
            log_bytes = size,
            snapshot_bytes = bytes,
            records = snapshot.len(),
            "compacting the durable log"
        );
        self.live_records = snapshot.len() as u64;
        self.log.compact(snapshot);
        self.log_size_after_compact = bytes.max(1);
        self.appended_since_compact = 0;
        self.compaction_pending.store(true, Ordering::Release);
        // Cleared when the barrier after the snapshot runs, or when it is dropped unrun
        // because the write failed, so a failed compaction can be retried.
        let guard = ClearOnDrop(self.compaction_pending.clone());
        self.log.barrier(Box::new(move || drop(guard)));
    }

    /// Records that rebuild every persistent session, its subscriptions and pending
    /// messages, and the retained messages.
    fn snapshot(&self) -> Vec<bytes::Bytes> {
        let mut out = Vec::new();
        let mut messages: BTreeMap<u64, (Arc<Message>, Vec<Target>)> = BTreeMap::new();
        for m in self.retained.all() {
            if let Some(id) = m.log_id {
                messages
                    .entry(id)
                    .or_insert_with(|| (m.clone(), Vec::new()));
            }
        }
        for session in self.sessions.values().filter(|s| s.persistent()) {
            let client_id = session.client_id.to_string();
            out.push(
                Record::Session {
                    client_id: client_id.clone(),
                    expiry: session.expiry,
                }
                .encode(),
            );
            for (filter, o) in &session.subscriptions {
                let wire = mqtt::SubscriptionOptions {
                    qos: o.qos,
                    no_local: o.no_local,
                    retain_as_published: o.retain_as_published,
                    retain_handling: Default::default(),
                };
                let record = Record::Subscribe {
                    client_id: client_id.clone(),
                    filter: filter.to_string(),
                    options: options_byte(&wire),
                    sub_id: o.sub_id.unwrap_or(0),
                };
                out.push(record.encode());
            }
            for d in pending_of(session) {
                let Some(id) = d.message.log_id else { continue };
                let target = Target {
                    client_id: client_id.clone(),
                    qos: d.qos as u8,
                    retain: d.retain,
                    sub_ids: d.sub_ids.clone(),
                };
                messages
                    .entry(id)
                    .or_insert_with(|| (d.message.clone(), Vec::new()))
                    .1
                    .push(target);
            }
        }
        for (id, (m, targets)) in messages {
            let mut stored = super::publish::stored(&m, id, targets);
            // Only the current retained message of its topic may set it on replay.
            stored.retain = self.retained.get(&m.topic).and_then(|r| r.log_id) == Some(id);
            out.push(Record::Message(Box::new(stored)).encode());
        }
        out
    }
}

/// Resets a flag when dropped, whether or not the closure holding it ever ran.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn pending_of(session: &Session) -> impl Iterator<Item = &Delivery> {
    session
        .inflight
        .values()
        .map(|f| &f.delivery)
        .chain(session.queue.iter())
}

fn to_message(m: &StoredMessage, now: Instant) -> Message {
    let properties = Properties {
        payload_format_indicator: m.payload_format,
        content_type: m.content_type.clone(),
        response_topic: m.response_topic.clone(),
        correlation_data: m.correlation_data.clone(),
        user_properties: m.user_properties.clone(),
        ..Properties::default()
    };
    Message {
        topic: Arc::from(m.topic.as_str()),
        payload: m.payload.clone(),
        qos: QoS::from_bits(m.qos).unwrap_or(QoS::AtLeastOnce),
        retain: m.retain,
        properties: (!properties.is_empty()).then(|| Box::new(properties)),
        publisher: None,
        expires_at: (m.expiry_unix != 0).then(|| Message::instant_from_unix(m.expiry_unix, now)),
        log_id: Some(m.id),
        receipt: None,
    }
}
