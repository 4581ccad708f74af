//! Packets from the client after CONNECT: the checks that belong to this connection
//! (topic aliases, receive maximum, QoS 2 duplicates, packet kinds a client may not
//! send), then a request to the router.

mod authz;

use mqtt::session::TopicAliasesIn;
use mqtt::{Ack, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode};

use super::transport::Transport;
use super::{Connection, End};
use crate::outbox::Outbound;
use crate::router::{Acker, Request};

/// Inbound protocol state of one connection.
pub(crate) struct InboundState {
    /// Highest topic alias the client may use.
    alias_max: u16,
    /// Created on the first alias, so clients that never use one pay nothing.
    aliases: Option<Box<TopicAliasesIn>>,
    /// QoS 2 publishes answered with PUBREC, awaiting PUBREL.
    qos2: Vec<PacketId>,
    /// QoS 1 publishes sent to the router whose PUBACK is not written yet.
    awaiting_puback: usize,
}

impl InboundState {
    /// Fresh state; `qos2` carries ids pending from an earlier connection of the session.
    pub(crate) fn new(alias_max: u16, qos2: Vec<PacketId>) -> InboundState {
        InboundState {
            alias_max,
            aliases: None,
            qos2,
            awaiting_puback: 0,
        }
    }

    /// Unacknowledged QoS 1/2 publishes from the client, against our Receive Maximum.
    fn in_flight(&self) -> usize {
        self.awaiting_puback + self.qos2.len()
    }

    /// Notes acknowledgements as they are written.
    pub(crate) fn on_sent(&mut self, packet: &Packet) {
        if let Packet::PubAck(_) = packet {
            self.awaiting_puback = self.awaiting_puback.saturating_sub(1);
        }
    }

    /// QoS 2 ids to hand back to the session when the connection ends.
    pub(crate) fn qos2_pending(&mut self) -> Vec<PacketId> {
        std::mem::take(&mut self.qos2)
    }
}

fn violation(code: ReasonCode, reason: &'static str) -> End {
    End::Close {
        code,
        will: true,
        reason,
    }
}

impl<T: Transport> Connection<T> {
    pub(super) async fn on_packet(&mut self, packet: Packet) -> Result<(), End> {
        match packet {
            Packet::Publish(p) => self.on_publish(p).await,
            Packet::PubAck(a) => {
                self.to_router(Request::PubAck {
                    session: self.session,
                    conn: self.conn,
                    packet_id: a.packet_id,
                })
                .await
            }
            Packet::PubRec(a) => {
                let r = Request::PubRec {
                    session: self.session,
                    conn: self.conn,
                    packet_id: a.packet_id,
                    code: a.code,
                };
                self.to_router(r).await
            }
            Packet::PubComp(a) => {
                self.to_router(Request::PubComp {
                    session: self.session,
                    conn: self.conn,
                    packet_id: a.packet_id,
                })
                .await
            }
            Packet::PubRel(a) => {
                self.on_pubrel(a.packet_id);
                Ok(())
            }
            Packet::Subscribe(s) => {
                // [MQTT-3.8.3-4]: No Local on a shared subscription is a protocol error.
                if s.subscriptions
                    .iter()
                    .any(|x| x.options.no_local && x.filter.starts_with("$share/"))
                {
                    return Err(violation(
                        ReasonCode::PROTOCOL_ERROR,
                        "no local on a shared subscription",
                    ));
                }
                let denied = self.authorize_subscribe(&s)?;
                self.to_router(Request::Subscribe {
                    session: self.session,
                    conn: self.conn,
                    subscribe: Box::new(s),
                    denied,
                })
                .await
            }
            Packet::Unsubscribe(u) => {
                self.to_router(Request::Unsubscribe {
                    session: self.session,
                    conn: self.conn,
                    unsubscribe: Box::new(u),
                })
                .await
            }
            Packet::PingReq => {
                self.outbox
                    .push(Outbound::Packet(Box::new(Packet::PingResp)));
                Ok(())
            }
            Packet::Disconnect(d) => Err(self.on_disconnect(d)),
            // No CONNECT is ever admitted with an Authentication Method, so any AUTH is
            // a protocol error [MQTT-4.12.0-1]; 0x8C is not a DISCONNECT reason code.
            Packet::Auth(_) => Err(violation(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH without an authentication method",
            )),
            Packet::Connect(_) => Err(violation(ReasonCode::PROTOCOL_ERROR, "second CONNECT")), // [MQTT-3.1.0-2]
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                Err(violation(
                    ReasonCode::PROTOCOL_ERROR,
                    "server-only packet from a client",
                ))
            }
        }
    }

    async fn on_publish(&mut self, mut p: Publish) -> Result<(), End> {
        let alias = p.properties.topic_alias;
        if self.protocol == ProtocolVersion::V5 && (alias.is_some() || p.topic.is_empty()) {
            let max = self.inbound.alias_max;
            let aliases = self
                .inbound
                .aliases
                .get_or_insert_with(|| Box::new(TopicAliasesIn::new(max)));
            match aliases.resolve(&p.topic, alias) {
                Ok(topic) => p.topic = topic.into(),
                Err(_) => {
                    return Err(violation(
                        ReasonCode::TOPIC_ALIAS_INVALID,
                        "bad topic alias",
                    ))
                }
            }
        }
        if p.qos > QoS::AtMostOnce
            && self.inbound.in_flight() >= usize::from(self.shared.config.receive_maximum)
        {
            return Err(violation(
                ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                "receive maximum exceeded",
            )); // [MQTT-3.3.4-7]
        }
        // On the real topic, alias resolved; a denial is answered there (authz.rs).
        if !self.authorize_publish(&p)? {
            return Ok(());
        }
        let ack = match (p.qos, p.packet_id) {
            (QoS::AtMostOnce, _) | (_, None) => None,
            (QoS::ExactlyOnce, Some(id)) if self.inbound.qos2.contains(&id) => {
                // A resend of a QoS 2 message we already have: answer, do not route again.
                self.outbox
                    .push(Outbound::Packet(Box::new(Packet::PubRec(Ack::success(id)))));
                return Ok(());
            }
            (qos, Some(id)) => {
                if qos == QoS::ExactlyOnce {
                    self.inbound.qos2.push(id);
                } else {
                    self.inbound.awaiting_puback += 1;
                }
                Some(Acker {
                    outbox: self.outbox.clone(),
                    packet_id: id,
                    qos,
                    latch: None,
                })
            }
        };
        self.to_router(Request::Publish {
            session: self.session,
            publish: Box::new(p),
            ack,
        })
        .await
    }

    fn on_pubrel(&mut self, id: PacketId) {
        let mut comp = Ack::success(id);
        if let Some(pos) = self.inbound.qos2.iter().position(|x| *x == id) {
            self.inbound.qos2.swap_remove(pos);
        } else if self.protocol == ProtocolVersion::V5 {
            comp.code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        }
        self.outbox
            .push(Outbound::Packet(Box::new(Packet::PubComp(comp))));
    }

    fn on_disconnect(&mut self, d: mqtt::Disconnect) -> End {
        let expiry = d.properties.session_expiry_interval;
        if self.connect_expiry_zero && expiry.is_some_and(|e| e > 0) {
            // [MQTT-3.14.2-2]: a session that was to end cannot be made to persist here.
            return violation(
                ReasonCode::PROTOCOL_ERROR,
                "session expiry raised at DISCONNECT",
            );
        }
        End::ClientDisconnect {
            will: d.code == ReasonCode::DISCONNECT_WITH_WILL,
            expiry,
        }
    }

    async fn to_router(&self, request: Request) -> Result<(), End> {
        self.shared
            .router
            .send(request)
            .await
            .map_err(|_| End::Close {
                code: ReasonCode::SERVER_SHUTTING_DOWN,
                will: false,
                reason: "router stopped",
            })
    }
}
