//! Authorization of what a connected client sends: each PUBLISH topic (after its alias
//! was resolved) and each SUBSCRIBE filter is checked against the connection's
//! [`Grant`](crate::auth::Grant). The decision itself belongs to `crate::auth` and the
//! embedder's authorizer; this file owns the answers a denial gets on the wire, the
//! count and log, and closing a connection that keeps trying.
//!
//! A child of `inbound` because a refused QoS 1/2 PUBLISH still takes part in the
//! inbound acknowledgement bookkeeping.
//!
//! Answers, as MQTT allows them:
//! - PUBLISH QoS 0: dropped (there is no acknowledgement to carry a refusal).
//! - PUBLISH QoS 1/2 on MQTT 5: PUBACK/PUBREC 0x87 *Not authorized*.
//! - PUBLISH QoS 1/2 on MQTT 3.1.1, which has no negative acknowledgement:
//!   acknowledged as usual (PUBACK, or PUBREC then PUBCOMP) and dropped, so the client
//!   does not resend it forever.
//! - SUBSCRIBE: 0x87 for the filter in SUBACK (0x80 on 3.1.1).
//!
//! After [`MAX_DENIALS`](crate::auth::MAX_DENIALS) denials the connection is closed
//! with DISCONNECT 0x87.

use mqtt::{Ack, Packet, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe};

use crate::auth::Denied;
use crate::connection::transport::Transport;
use crate::connection::{Connection, End};
use crate::outbox::Outbound;

/// How a connection that reached the denial limit is closed.
fn too_many_denials() -> End {
    End::Close {
        code: ReasonCode::NOT_AUTHORIZED,
        will: true,
        reason: "too many requests denied",
    }
}

impl<T: Transport> Connection<T> {
    /// True when the PUBLISH may be routed. When it may not, the denial has been
    /// answered as the protocol allows (see the module documentation) and counted.
    pub(super) fn authorize_publish(&mut self, p: &Publish) -> Result<bool, End> {
        let Some(grant) = &mut self.grant else {
            return Ok(true);
        };
        if grant.may_publish(&p.topic) {
            return Ok(true);
        }
        self.shared.metrics.acl_denied_publish.inc();
        tracing::info!(client = %self.client_id, identity = %grant.identity().id, topic = %p.topic, "PUBLISH denied");
        let denied = grant.deny();
        let v5 = self.protocol == ProtocolVersion::V5;
        let code = if v5 {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::SUCCESS
        };
        match (p.qos, p.packet_id) {
            (QoS::AtMostOnce, _) | (_, None) => {}
            (QoS::AtLeastOnce, Some(id)) => {
                // Counted like a routed one: `on_sent` uncounts every PUBACK written.
                self.inbound.awaiting_puback += 1;
                let ack = Ack {
                    code,
                    ..Ack::success(id)
                };
                self.outbox
                    .push(Outbound::Packet(Box::new(Packet::PubAck(ack))));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                // On 3.1.1 the exchange goes on to PUBREL/PUBCOMP like an accepted one;
                // a v5 error PUBREC ends it [MQTT-4.3.3-4].
                if !v5 && !self.inbound.qos2.contains(&id) {
                    self.inbound.qos2.push(id);
                }
                let rec = Ack {
                    code,
                    ..Ack::success(id)
                };
                self.outbox
                    .push(Outbound::Packet(Box::new(Packet::PubRec(rec))));
            }
        }
        match denied {
            Denied::Continue => Ok(false),
            Denied::Close => Err(too_many_denials()),
        }
    }

    /// Indices of the SUBSCRIBE's filters the connection may not subscribe to (answered
    /// 0x87 by the router), after counting them; an error once the limit is reached.
    pub(super) fn authorize_subscribe(&mut self, s: &Subscribe) -> Result<Vec<usize>, End> {
        let Some(grant) = &mut self.grant else {
            return Ok(Vec::new());
        };
        let mut denied = Vec::new();
        for (i, sub) in s.subscriptions.iter().enumerate() {
            if grant.may_subscribe(&sub.filter) {
                continue;
            }
            self.shared.metrics.acl_denied_subscribe.inc();
            tracing::info!(client = %self.client_id, identity = %grant.identity().id, filter = %sub.filter, "SUBSCRIBE denied");
            denied.push(i);
            if grant.deny() == Denied::Close {
                return Err(too_many_denials());
            }
        }
        Ok(denied)
    }
}
