//! The router's side of the in-process service link (see [`crate::service`]): events
//! out, targeted sends and administrative requests in.

use std::sync::Arc;

use mqtt::{Publish, QoS, Subscribe};

use super::session::Delivery;
use super::{Acker, Router, SessionId};
use crate::message::Message;
use crate::outbox::Outbound;
use crate::service::ServiceRequest;
use crate::service::{DisconnectCause, Interest, SendOutcome, ServiceEvent, ServicePublish};

impl Router {
    /// Hands an event to the service without ever waiting for it; counted when dropped.
    pub(super) fn emit(&self, event: ServiceEvent) {
        let Some(tap) = &self.service else {
            return;
        };
        if let Err(e) = tap.events.try_send(event) {
            self.metrics.service_events_dropped.inc();
            // A held publish the service never saw was not taken: say so to its
            // publisher rather than acknowledging it.
            if let ServiceEvent::Publish(p) = e.into_inner() {
                if let Some(hold) = &p.hold {
                    hold.refuse(mqtt::ReasonCode::QUOTA_EXCEEDED);
                }
            }
        }
    }

    /// Offers a client publish to the service; true when the service consumed it (it
    /// is then acknowledged here and routed nowhere).
    pub(super) fn offer_to_service(
        &mut self,
        session: SessionId,
        publish: &mut Publish,
        ack: &mut Option<Acker>,
    ) -> bool {
        let Some(tap) = &self.service else {
            return false;
        };
        let interest = tap.spec.classify(&publish.topic);
        if interest == Interest::None {
            return false;
        }
        let Some(client_id) = self.sessions.get(&session).map(|s| s.client_id.clone()) else {
            return false;
        };
        let consume = interest == Interest::Consume;
        let properties = if publish.properties.is_empty() {
            None
        } else if consume {
            Some(Box::new(std::mem::take(&mut publish.properties)))
        } else {
            Some(Box::new(publish.properties.clone()))
        };
        let topic: Arc<str> = Arc::from(publish.topic.as_str());
        let hold = if consume || !tap.spec.hold_taps {
            None
        } else {
            ack.take().map(|a| {
                let (hold, routed) = crate::service::Hold::split(a);
                *ack = Some(routed);
                hold
            })
        };
        self.emit(ServiceEvent::Publish(Box::new(ServicePublish {
            client_id,
            topic,
            payload: publish.payload.clone(),
            qos: publish.qos,
            properties,
            hold,
        })));
        if consume {
            if let Some(a) = ack.take() {
                super::publish::acknowledge(a);
            }
        }
        consume
    }

    /// Tells the service a client connected.
    pub(super) fn emit_connected(&self, session: SessionId, session_present: bool) {
        if self.service.is_none() {
            return;
        }
        if let Some(s) = self.sessions.get(&session) {
            self.emit(ServiceEvent::Connected {
                client_id: s.client_id.clone(),
                session_present,
            });
        }
    }

    /// Tells the service a client's connection ended.
    pub(super) fn emit_disconnected(&self, client_id: Arc<str>, cause: DisconnectCause) {
        if self.service.is_some() {
            self.emit(ServiceEvent::Disconnected { client_id, cause });
        }
    }

    /// Tells the service which filters a client now holds.
    pub(super) fn emit_subscribed(
        &self,
        session: SessionId,
        subscribe: &Subscribe,
        granted: &[bool],
    ) {
        if self.service.is_none() {
            return;
        }
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        let filters = subscribe
            .subscriptions
            .iter()
            .zip(granted)
            .filter(|(_, ok)| **ok)
            .map(|(sub, _)| sub.filter.clone())
            .collect();
        self.emit(ServiceEvent::Subscribed {
            client_id: s.client_id.clone(),
            filters,
        });
    }

    /// Reports a receipt once the client acknowledged the message carrying it.
    pub(super) fn emit_delivered(&self, delivery: &Delivery) {
        if let Some(receipt) = delivery.message.receipt {
            self.emit(ServiceEvent::Delivered { receipt });
        }
    }

    pub(super) fn on_service(&mut self, request: ServiceRequest) {
        match request {
            ServiceRequest::SendTo {
                client_id,
                message,
                receipt,
                reply,
            } => {
                let outcome = self.send_to(&client_id, message, receipt);
                let _ = reply.send(outcome);
            }
            ServiceRequest::Publish { message } => self.route(message, None),
            ServiceRequest::Disconnect { client_id, code } => {
                let conn = self
                    .ids
                    .get(&client_id)
                    .and_then(|id| self.sessions.get(id))
                    .and_then(|s| s.conn.as_ref());
                if let Some(conn) = conn {
                    conn.outbox
                        .push(Outbound::Disconnect(code, "closed by the control plane"));
                }
            }
        }
    }

    /// Delivers to one connected client through its own (non-shared) subscriptions that
    /// match the topic, at the highest QoS they grant, capped by the message's.
    fn send_to(
        &mut self,
        client_id: &str,
        mut message: Message,
        receipt: Option<u64>,
    ) -> SendOutcome {
        let Some(&session_id) = self.ids.get(client_id) else {
            return SendOutcome::NotConnected;
        };
        let Some(session) = self.sessions.get(&session_id) else {
            return SendOutcome::NotConnected;
        };
        if session.conn.is_none() {
            return SendOutcome::NotConnected;
        }
        let granted = session
            .subscriptions
            .iter()
            .filter(|(filter, _)| !filter.starts_with("$share/"))
            .filter(|(filter, _)| mqtt::topic::matches(filter, &message.topic))
            .map(|(_, options)| options.qos)
            .max();
        let Some(granted) = granted else {
            return SendOutcome::NotSubscribed;
        };
        message.receipt = receipt;
        let qos = granted.min(message.qos);
        let delivery = Delivery {
            qos,
            retain: false,
            sub_ids: Vec::new(),
            shared: None,
            message: Arc::new(message),
        };
        if qos == QoS::AtMostOnce {
            self.emit_delivered(&delivery);
        }
        self.deliver(session_id, delivery);
        SendOutcome::Accepted
    }
}
