//! Routing one published message: match subscriptions, pick shared-group members, make
//! the message durable when anyone durable needs it, update the retained store, fan out.

use std::sync::Arc;

use mqtt::{Ack, Packet, Publish, QoS};

use super::session::Delivery;
use super::{Acker, Router, SessionId, SubOptions};
use crate::message::Message;
use crate::outbox::Outbound;
use crate::persist::{Record, StoredMessage, Target};
use crate::trie::Match;

/// Shared groups whose round-robin position is remembered; past this many the
/// positions are reset.
const MAX_SHARED_CURSORS: usize = 65_536;

/// Members of one shared subscription group, as matched: (group id, members).
type SharedMatch = (Arc<str>, Vec<(SessionId, SubOptions)>);

/// One session's share of a message, merged over all its matching subscriptions.
struct Route {
    session: SessionId,
    qos: QoS,
    retain_as_published: bool,
    sub_ids: Vec<u32>,
    shared: Option<Arc<str>>,
}

impl Router {
    pub(super) fn on_publish(
        &mut self,
        session: SessionId,
        mut publish: Publish,
        mut ack: Option<Acker>,
    ) {
        let qos = publish.qos as usize;
        self.metrics.messages_in[qos].inc();
        self.metrics.bytes_in.add(publish.payload.len() as u64);
        if self.offer_to_service(session, &mut publish, &mut ack) {
            return;
        }
        let message = Message::from_publish(publish, Some(session));
        self.route(message, ack);
    }

    /// Routes a message (from a client or a will) and acknowledges it once durable.
    pub(super) fn route(&mut self, mut message: Message, ack: Option<Acker>) {
        let routes = self.match_routes(&message);
        let durable_targets = self.durable_targets(&message, &routes);
        let needs_log =
            message.retain || (message.qos > QoS::AtMostOnce && !durable_targets.is_empty());
        if needs_log {
            let id = self.next_message_id;
            self.next_message_id += 1;
            message.log_id = Some(id);
            let record = Record::Message(Box::new(stored(&message, id, durable_targets)));
            self.append(record, ack.map(|a| Box::new(move || acknowledge(a)) as _));
        } else if let Some(a) = ack {
            acknowledge(a);
        }
        let message = Arc::new(message);
        if message.retain {
            self.retained.set(message.clone());
            self.metrics
                .retained_messages
                .set(self.retained.len() as i64);
        }
        for route in routes {
            let delivery = Delivery {
                qos: route.qos,
                retain: route.retain_as_published && message.retain,
                sub_ids: route.sub_ids,
                shared: route.shared,
                message: message.clone(),
            };
            self.deliver(route.session, delivery);
        }
    }

    /// Every session the message goes to, one entry per session.
    fn match_routes(&mut self, message: &Message) -> Vec<Route> {
        let mut direct: Vec<(SessionId, SubOptions)> = Vec::new();
        let mut shared: Vec<SharedMatch> = Vec::new();
        self.tree.for_each_match(&message.topic, |m| match m {
            Match::Direct { key, value, .. } => {
                if !(value.no_local && message.publisher == Some(*key)) {
                    direct.push((*key, *value));
                }
            }
            Match::Shared { id, members, .. } => shared.push((Arc::from(id), members.to_vec())),
        });
        let mut routes = merge_direct(direct, message.qos);
        for (group, members) in shared {
            if let Some((session, options)) = self.pick_member(&group, &members, None) {
                routes.push(Route {
                    session,
                    qos: options.qos.min(message.qos),
                    retain_as_published: options.retain_as_published,
                    sub_ids: options.sub_id.into_iter().collect(),
                    shared: Some(group),
                });
            }
        }
        routes
    }

    /// Round-robin over a shared group, preferring connected members; `except` skips a
    /// member that is going away.
    pub(super) fn pick_member(
        &mut self,
        group: &Arc<str>,
        members: &[(SessionId, SubOptions)],
        except: Option<SessionId>,
    ) -> Option<(SessionId, SubOptions)> {
        let candidates: Vec<&(SessionId, SubOptions)> =
            members.iter().filter(|(s, _)| Some(*s) != except).collect();
        if candidates.is_empty() {
            return None;
        }
        // Positions are fairness hints, so the map is bounded by forgetting them all
        // rather than tracking when groups disappear (share names are client-chosen).
        if self.shared_cursor.len() >= MAX_SHARED_CURSORS {
            self.shared_cursor.clear();
        }
        let cursor = self.shared_cursor.entry(group.clone()).or_insert(0);
        let start = *cursor;
        *cursor = cursor.wrapping_add(1);
        let online = |s: &SessionId| self.sessions.get(s).is_some_and(|s| s.conn.is_some());
        let n = candidates.len();
        (0..n)
            .map(|i| candidates[(start + i) % n])
            .find(|(s, _)| online(s))
            .or(Some(candidates[start % n]))
            .copied()
    }

    /// The persistent sessions that get the message at QoS 1/2: they make it durable.
    fn durable_targets(&self, message: &Message, routes: &[Route]) -> Vec<Target> {
        routes
            .iter()
            .filter(|r| r.qos > QoS::AtMostOnce)
            .filter_map(|r| {
                let session = self.sessions.get(&r.session)?;
                session.persistent().then(|| Target {
                    client_id: session.client_id.to_string(),
                    qos: r.qos as u8,
                    retain: r.retain_as_published && message.retain,
                    sub_ids: r.sub_ids.clone(),
                })
            })
            .collect()
    }
}

/// Sorts direct matches by session and merges overlapping subscriptions into one
/// delivery at the highest QoS with every subscription identifier [MQTT-3.3.4-2/3].
fn merge_direct(mut direct: Vec<(SessionId, SubOptions)>, published: QoS) -> Vec<Route> {
    if direct.len() > 1 {
        direct.sort_unstable_by_key(|(s, _)| *s);
    }
    let mut routes: Vec<Route> = Vec::with_capacity(direct.len());
    for (session, options) in direct {
        let qos = options.qos.min(published);
        match routes.last_mut() {
            Some(last) if last.session == session => {
                last.qos = last.qos.max(qos);
                last.retain_as_published |= options.retain_as_published;
                last.sub_ids.extend(options.sub_id);
            }
            _ => routes.push(Route {
                session,
                qos,
                retain_as_published: options.retain_as_published,
                sub_ids: options.sub_id.into_iter().collect(),
                shared: None,
            }),
        }
    }
    routes
}

/// Sends PUBACK / PUBREC to the publisher; runs once the message is durable (and, for
/// a held tap, once the service is done with it too).
pub(crate) fn acknowledge(a: Acker) {
    if let Some(latch) = a.latch {
        return latch.arrive();
    }
    let ack = Ack::success(a.packet_id);
    let packet = if a.qos == QoS::ExactlyOnce {
        Packet::PubRec(ack)
    } else {
        Packet::PubAck(ack)
    };
    a.outbox.push(Outbound::Packet(Box::new(packet)));
}

/// Answers a publish that was not taken with an error `code`: PUBACK (PUBREC) with
/// that reason on MQTT 5; on 3.1.1 the connection turns it into a close (see
/// `Connection::flush_outbox`), since an old PUBACK cannot say "no".
pub(crate) fn refuse(a: Acker, code: mqtt::ReasonCode) {
    let ack = Ack {
        code,
        ..Ack::success(a.packet_id)
    };
    let packet = if a.qos == QoS::ExactlyOnce {
        Packet::PubRec(ack)
    } else {
        Packet::PubAck(ack)
    };
    a.outbox.push(Outbound::Packet(Box::new(packet)));
}

/// The log's copy of a message.
pub(super) fn stored(message: &Message, id: u64, targets: Vec<Target>) -> StoredMessage {
    let p = message.properties();
    StoredMessage {
        id,
        topic: message.topic.to_string(),
        payload: message.payload.clone(),
        qos: message.qos as u8,
        retain: message.retain,
        expiry_unix: message.expiry_unix().unwrap_or(0),
        payload_format: p.payload_format_indicator,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
        targets,
    }
}
