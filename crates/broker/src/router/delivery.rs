//! Getting a message to one session: the in-flight window, the bounded queue behind it,
//! and the acknowledgements that move both along.

use mqtt::{Ack, Packet, PacketId, ProtocolVersion, QoS, ReasonCode};

use super::session::{Delivery, Inflight};
use super::{ConnId, Router, SessionId};
use crate::config::OverflowPolicy;
use crate::outbox::{Outbound, Outgoing};
use crate::persist::Record;

impl Router {
    /// Sends `delivery` now if the session is connected and has room, else queues it.
    pub(super) fn deliver(&mut self, session_id: SessionId, delivery: Delivery) {
        self.deliveries_in_batch += 1;
        if delivery.message.is_expired() {
            self.metrics.dropped_expired.inc();
            self.forget(session_id, &delivery);
            return;
        }
        let max_inflight = self.config.max_inflight;
        let max_outbound = self.config.max_outbound_bytes;
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        if delivery.qos == QoS::AtMostOnce {
            // QoS 0 is never queued: sent if the connection keeps up, shed otherwise.
            match &session.conn {
                Some(conn) if conn.outbox.bytes() < max_outbound => {
                    let out = outgoing(&delivery, None, false);
                    if fits(conn, &out) {
                        self.metrics.messages_out[0].inc();
                        self.metrics.bytes_out.add(out.message.payload.len() as u64);
                        conn.outbox.push(Outbound::Publish(out));
                    } else {
                        self.metrics.dropped_too_large.inc();
                    }
                }
                Some(_) => self.metrics.dropped_qos0_slow_consumer.inc(),
                None => {}
            }
            return;
        }
        if session.conn.is_some()
            && session.queue.is_empty()
            && session.inflight.len() < session.window(max_inflight)
        {
            self.send_inflight(session_id, delivery);
        } else {
            self.enqueue(session_id, delivery);
        }
    }

    /// Assigns a packet id and sends; the caller checked the window.
    fn send_inflight(&mut self, session_id: SessionId, delivery: Delivery) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let Some(conn) = session.conn.clone() else {
            return;
        };
        let Some(packet_id) = session.allocate_packet_id() else {
            session.queue.push_front(delivery);
            return;
        };
        let out = outgoing(&delivery, Some(packet_id), false);
        if !fits(&conn, &out) {
            // [MQTT-3.1.2-25]: never send a packet larger than the client accepts.
            self.metrics.dropped_too_large.inc();
            self.forget(session_id, &delivery);
            return;
        }
        self.metrics.messages_out[delivery.qos as usize].inc();
        self.metrics.bytes_out.add(out.message.payload.len() as u64);
        session.inflight.insert(
            packet_id,
            Inflight {
                delivery,
                released: false,
            },
        );
        conn.outbox.push(Outbound::Publish(out));
    }

    /// Appends to the session queue, applying the overflow policy.
    fn enqueue(&mut self, session_id: SessionId, delivery: Delivery) {
        let (max_count, max_bytes) = (
            self.config.max_queued_messages,
            self.config.max_queued_bytes,
        );
        let policy = self.config.overflow;
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let weight = delivery.message.weight();
        let mut dropped = Vec::new();
        while !session.queue.is_empty()
            && (session.queue.len() >= max_count || session.queued_bytes + weight > max_bytes)
        {
            if policy == OverflowPolicy::DropNewest {
                self.metrics.dropped_queue_full.inc();
                self.forget(session_id, &delivery);
                return;
            }
            if let Some(old) = session.queue.pop_front() {
                session.queued_bytes -= old.message.weight();
                self.metrics.queued_messages.add(-1);
                dropped.push(old);
            }
        }
        session.queued_bytes += weight;
        session.queue.push_back(delivery);
        self.metrics.queued_messages.add(1);
        for old in dropped {
            self.metrics.dropped_queue_full.inc();
            self.forget(session_id, &old);
        }
    }

    /// Moves queued messages into the window while there is room.
    pub(super) fn pump(&mut self, session_id: SessionId) {
        let max_inflight = self.config.max_inflight;
        loop {
            let Some(session) = self.sessions.get_mut(&session_id) else {
                return;
            };
            if session.conn.is_none() || session.inflight.len() >= session.window(max_inflight) {
                return;
            }
            let Some(delivery) = session.queue.pop_front() else {
                return;
            };
            session.queued_bytes -= delivery.message.weight();
            self.metrics.queued_messages.add(-1);
            if delivery.message.is_expired() {
                self.metrics.dropped_expired.inc();
                self.forget(session_id, &delivery);
                continue;
            }
            self.send_inflight(session_id, delivery);
        }
    }

    /// Logs that a persistent session no longer needs a durable message.
    pub(super) fn forget(&mut self, session_id: SessionId, delivery: &Delivery) {
        let (Some(id), Some(session)) = (delivery.message.log_id, self.sessions.get(&session_id))
        else {
            return;
        };
        if session.persistent() {
            let record = Record::Ack {
                client_id: session.client_id.to_string(),
                id,
            };
            self.append(record, None);
        }
    }

    pub(super) fn on_puback(&mut self, session_id: SessionId, conn: ConnId, packet_id: PacketId) {
        let Some(session) = self.attached(session_id, conn) else {
            return;
        };
        match session.inflight.get(&packet_id) {
            Some(f) if f.delivery.qos == QoS::AtLeastOnce => {}
            _ => return, // unknown id: nothing to do [MQTT-4.3.2]
        }
        if let Some(done) = session.inflight.remove(&packet_id) {
            self.forget(session_id, &done.delivery);
            self.emit_delivered(&done.delivery);
        }
        self.pump(session_id);
    }

    pub(super) fn on_pubrec(
        &mut self,
        session_id: SessionId,
        conn: ConnId,
        packet_id: PacketId,
        code: ReasonCode,
    ) {
        let Some(session) = self.attached(session_id, conn) else {
            return;
        };
        let Some(conn) = session.conn.clone() else {
            return;
        };
        let known = matches!(session.inflight.get(&packet_id), Some(f) if f.delivery.qos == QoS::ExactlyOnce);
        if code.is_error() {
            // The client refused the message: the flow ends here [MQTT-4.3.3].
            if let Some(done) = session.inflight.remove(&packet_id) {
                self.forget(session_id, &done.delivery);
            }
            self.pump(session_id);
            return;
        }
        let mut rel = Ack::success(packet_id);
        if let Some(f) = session.inflight.get_mut(&packet_id).filter(|_| known) {
            f.released = true;
        } else if conn.protocol == ProtocolVersion::V5 {
            rel.code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        }
        conn.outbox
            .push(Outbound::Packet(Box::new(Packet::PubRel(rel))));
    }

    pub(super) fn on_pubcomp(&mut self, session_id: SessionId, conn: ConnId, packet_id: PacketId) {
        let Some(session) = self.attached(session_id, conn) else {
            return;
        };
        if !matches!(session.inflight.get(&packet_id), Some(f) if f.released) {
            return;
        }
        if let Some(done) = session.inflight.remove(&packet_id) {
            self.forget(session_id, &done.delivery);
            self.emit_delivered(&done.delivery);
        }
        self.pump(session_id);
    }

    /// On resume: everything unacknowledged goes again, DUP set, same packet ids
    /// [MQTT-4.4.0-1], then the queue.
    pub(super) fn resend_inflight(&mut self, session_id: SessionId) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let Some(conn) = session.conn.clone() else {
            return;
        };
        for (packet_id, f) in &session.inflight {
            if f.released {
                conn.outbox
                    .push(Outbound::Packet(Box::new(Packet::PubRel(Ack::success(
                        *packet_id,
                    )))));
                continue;
            }
            let out = outgoing(&f.delivery, Some(*packet_id), true);
            conn.outbox.push(Outbound::Publish(out));
        }
        self.pump(session_id);
    }
}

/// The outbox item for one delivery.
fn outgoing(d: &Delivery, packet_id: Option<PacketId>, dup: bool) -> Outgoing {
    Outgoing {
        message: d.message.clone(),
        qos: d.qos,
        retain: d.retain,
        dup,
        packet_id,
        sub_ids: d.sub_ids.clone(),
    }
}

/// Whether the delivery fits the client's Maximum Packet Size [MQTT-3.1.2-25].
fn fits(conn: &super::ConnHandle, out: &Outgoing) -> bool {
    if conn.max_packet_size == u32::MAX {
        return true;
    }
    let properties = out.message.properties_for(&out.sub_ids);
    let view = out.view(&out.message.topic, &properties);
    mqtt::publish_len(&view, conn.protocol) <= conn.max_packet_size as usize
}
