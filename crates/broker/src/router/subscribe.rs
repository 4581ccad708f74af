//! SUBSCRIBE and UNSUBSCRIBE: the trie, the session's own list, the log, and the
//! retained messages a new subscription receives.

use std::sync::Arc;

use mqtt::topic::{parse_shared, validate_topic_filter};
use mqtt::{
    Packet, Properties, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    Subscription, UnsubAck, Unsubscribe,
};

use super::session::Delivery;
use super::{ConnId, Router, SessionId, SubOptions};
use crate::outbox::Outbound;
use crate::persist::Record;

impl Router {
    pub(super) fn on_subscribe(
        &mut self,
        session_id: SessionId,
        conn: ConnId,
        subscribe: Subscribe,
        denied: &[usize],
    ) {
        let Some(outbox) = self.outbox_of(session_id, conn) else {
            return;
        };
        let sub_id = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied();
        let mut codes = Vec::with_capacity(subscribe.subscriptions.len());
        let mut retained = Vec::new();
        for (i, s) in subscribe.subscriptions.iter().enumerate() {
            let code = if denied.contains(&i) {
                ReasonCode::NOT_AUTHORIZED // 0x80 for 3.1.1 clients, by the encoder
            } else {
                self.subscribe_one(session_id, s, sub_id, &mut retained)
            };
            codes.push(code);
        }
        let mut properties = Properties::default();
        if codes.iter().any(|c| c.is_error()) && self.problem_info(session_id) {
            properties.reason_string = Some(if denied.is_empty() {
                "a topic filter is not valid; see the per-filter codes".into()
            } else {
                "not authorized for a topic filter; see the per-filter codes".into()
            });
        }
        let codes_granted: Vec<bool> = codes.iter().map(|c| !c.is_error()).collect();
        let suback = SubAck {
            packet_id: subscribe.packet_id,
            codes,
            properties,
        };
        // The service hears first: the task woken last runs next on this worker, and
        // that should be the connection writing the SUBACK the client is waiting for.
        // The service cannot act before the SUBACK is queued: it reaches the session
        // through this router, which is busy until this call returns.
        self.emit_subscribed(session_id, &subscribe, &codes_granted);
        outbox.push(Outbound::Packet(Box::new(Packet::SubAck(suback))));
        // Retained messages follow the SUBACK [MQTT-3.8.4-3].
        for delivery in retained {
            self.deliver(session_id, delivery);
        }
    }

    /// Adds one subscription; returns the granted QoS or the failure code.
    fn subscribe_one(
        &mut self,
        session_id: SessionId,
        s: &Subscription,
        sub_id: Option<u32>,
        retained: &mut Vec<Delivery>,
    ) -> ReasonCode {
        let shared = match parse_shared(&s.filter) {
            Ok(shared) => shared.is_some(),
            Err(_) => return ReasonCode::TOPIC_FILTER_INVALID,
        };
        if !shared && validate_topic_filter(&s.filter).is_err() {
            return ReasonCode::TOPIC_FILTER_INVALID;
        }
        let options = SubOptions {
            qos: s.options.qos,
            no_local: s.options.no_local,
            retain_as_published: s.options.retain_as_published,
            sub_id,
        };
        let existed = match self.tree.subscribe(&s.filter, session_id, options) {
            Ok(old) => old.is_some(),
            Err(_) => return ReasonCode::TOPIC_FILTER_INVALID,
        };
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return ReasonCode::UNSPECIFIED_ERROR;
        };
        session.set_subscription(&s.filter, options);
        if session.persistent() {
            let record = Record::Subscribe {
                client_id: session.client_id.to_string(),
                filter: s.filter.clone(),
                options: options_byte(&s.options),
                sub_id: sub_id.unwrap_or(0),
            };
            // Not waited for: any message routed to this subscription is logged after
            // this record, so its fsync covers the subscription too.
            self.append(record, None);
        }
        let send_retained = match s.options.retain_handling {
            RetainHandling::OnSubscribe => true,
            RetainHandling::OnNewSubscribe => !existed,
            RetainHandling::Never => false,
        };
        // Shared subscriptions never receive retained messages [MQTT-4.8.2-?].
        if send_retained && !shared {
            for message in self.retained.matching(&s.filter) {
                retained.push(Delivery {
                    qos: options.qos.min(message.qos),
                    retain: true,
                    sub_ids: sub_id.into_iter().collect(),
                    shared: None,
                    message,
                });
            }
        }
        ReasonCode(options.qos as u8)
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        session_id: SessionId,
        conn: ConnId,
        unsubscribe: Unsubscribe,
    ) {
        let Some(outbox) = self.outbox_of(session_id, conn) else {
            return;
        };
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            codes.push(self.unsubscribe_one(session_id, filter));
        }
        let v5 = self
            .sessions
            .get(&session_id)
            .and_then(|s| s.conn.as_ref())
            .map(|c| c.protocol)
            == Some(ProtocolVersion::V5);
        if !v5 {
            codes.clear();
        }
        let unsuback = UnsubAck {
            packet_id: unsubscribe.packet_id,
            codes,
            properties: Default::default(),
        };
        outbox.push(Outbound::Packet(Box::new(Packet::UnsubAck(unsuback))));
    }

    pub(super) fn unsubscribe_one(&mut self, session_id: SessionId, filter: &str) -> ReasonCode {
        let removed = self.tree.unsubscribe(filter, &session_id).is_some();
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return ReasonCode::UNSPECIFIED_ERROR;
        };
        session.remove_subscription(filter);
        if !removed {
            return ReasonCode::NO_SUBSCRIPTION_EXISTED;
        }
        if session.persistent() {
            let record = Record::Unsubscribe {
                client_id: session.client_id.to_string(),
                filter: filter.to_string(),
            };
            self.append(record, None);
        }
        ReasonCode::SUCCESS
    }

    /// Whether the session's client asked for reason strings on acknowledgements.
    fn problem_info(&self, session_id: SessionId) -> bool {
        let conn = self.sessions.get(&session_id).and_then(|s| s.conn.as_ref());
        conn.is_some_and(|c| c.problem_info)
    }

    /// The outbox of the session's connection, if `conn` is still that connection.
    fn outbox_of(
        &mut self,
        session_id: SessionId,
        conn: ConnId,
    ) -> Option<Arc<crate::outbox::Outbox>> {
        let session = self.attached(session_id, conn)?;
        session.conn.as_ref().map(|c| c.outbox.clone())
    }
}

/// Subscription options in their v5 wire layout, for the log.
pub(super) fn options_byte(o: &mqtt::SubscriptionOptions) -> u8 {
    let rh = match o.retain_handling {
        RetainHandling::OnSubscribe => 0,
        RetainHandling::OnNewSubscribe => 1,
        RetainHandling::Never => 2,
    };
    (o.qos as u8) | (u8::from(o.no_local) << 2) | (u8::from(o.retain_as_published) << 3) | (rh << 4)
}

/// Reads [`options_byte`] back.
pub(super) fn options_from_byte(b: u8, sub_id: u32) -> SubOptions {
    SubOptions {
        qos: QoS::from_bits(b & 3).unwrap_or(QoS::AtMostOnce),
        no_local: b & 4 != 0,
        retain_as_published: b & 8 != 0,
        sub_id: (sub_id != 0).then_some(sub_id),
    }
}
