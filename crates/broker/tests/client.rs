//! A minimal MQTT test client over the `mqtt` codec, for driving the broker in-process.
#![allow(dead_code, clippy::unwrap_used, missing_docs, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt::{
    Ack, Connect, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe, Subscription,
    SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    pub stream: TcpStream,
    pub version: ProtocolVersion,
    buf: BytesMut,
    next_id: u16,
}

pub fn connect_packet(version: ProtocolVersion, id: &str, clean: bool) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive: 60,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

impl Client {
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        Client {
            stream,
            version,
            buf: BytesMut::new(),
            next_id: 0,
        }
    }

    pub async fn connect(
        addr: SocketAddr,
        version: ProtocolVersion,
        id: &str,
        clean: bool,
    ) -> (Client, mqtt::ConnAck) {
        Self::connect_with(addr, connect_packet(version, id, clean)).await
    }

    pub async fn connect_with(addr: SocketAddr, connect: Connect) -> (Client, mqtt::ConnAck) {
        let mut c = Client::open(addr, connect.protocol).await;
        c.send(&Packet::Connect(Box::new(connect))).await;
        match c.recv().await {
            Some(Packet::ConnAck(ack)) => (c, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        mqtt::encode(packet, self.version, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Next packet, or `None` when the broker closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(TIMEOUT, self.recv_inner())
            .await
            .expect("no packet within the deadline")
    }

    /// Next packet within `d`, or `Err(())` on timeout.
    pub async fn recv_within(&mut self, d: Duration) -> Result<Option<Packet>, ()> {
        tokio::time::timeout(d, self.recv_inner())
            .await
            .map_err(|_| ())
    }

    async fn recv_inner(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = mqtt::decode(&mut self.buf, Some(self.version), usize::MAX).unwrap() {
                return Some(p);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    pub fn id(&mut self) -> u16 {
        self.next_id += 1;
        self.next_id
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<mqtt::ReasonCode> {
        let options = SubscriptionOptions {
            qos,
            ..Default::default()
        };
        self.subscribe_with(filter, options, Properties::default())
            .await
    }

    pub async fn subscribe_with(
        &mut self,
        filter: &str,
        options: SubscriptionOptions,
        properties: Properties,
    ) -> Vec<mqtt::ReasonCode> {
        let packet_id = self.id();
        let s = Subscribe {
            packet_id,
            subscriptions: vec![Subscription {
                filter: filter.into(),
                options,
            }],
            properties,
        };
        self.send(&Packet::Subscribe(s)).await;
        match self.recv().await {
            Some(Packet::SubAck(a)) if a.packet_id == packet_id => a.codes,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub fn publish_packet(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Publish {
        let packet_id = (qos > QoS::AtMostOnce).then(|| self.id());
        Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            packet_id,
            properties: Properties::default(),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// Publishes and completes the QoS flow.
    pub async fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        let p = self.publish_packet(topic, payload, qos, retain);
        self.publish_done(p).await;
    }

    pub async fn publish_done(&mut self, p: Publish) {
        let (qos, id) = (p.qos, p.packet_id);
        self.send(&Packet::Publish(p)).await;
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => match self.recv().await {
                Some(Packet::PubAck(a)) if Some(a.packet_id) == id => {}
                other => panic!("expected PUBACK, got {other:?}"),
            },
            QoS::ExactlyOnce => {
                match self.recv().await {
                    Some(Packet::PubRec(a)) if Some(a.packet_id) == id => {}
                    other => panic!("expected PUBREC, got {other:?}"),
                }
                self.send(&Packet::PubRel(Ack::success(id.unwrap()))).await;
                match self.recv().await {
                    Some(Packet::PubComp(a)) if Some(a.packet_id) == id => {}
                    other => panic!("expected PUBCOMP, got {other:?}"),
                }
            }
        }
    }

    /// Receives a PUBLISH and acknowledges it (QoS 1: PUBACK; QoS 2: full flow).
    pub async fn expect_publish(&mut self) -> Publish {
        let p = match self.recv().await {
            Some(Packet::Publish(p)) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        };
        self.ack(&p).await;
        p
    }

    pub async fn ack(&mut self, p: &Publish) {
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.send(&Packet::PubAck(Ack::success(id))).await,
            (QoS::ExactlyOnce, Some(id)) => {
                self.send(&Packet::PubRec(Ack::success(id))).await;
                match self.recv().await {
                    Some(Packet::PubRel(a)) if a.packet_id == id => {}
                    other => panic!("expected PUBREL, got {other:?}"),
                }
                self.send(&Packet::PubComp(Ack::success(id))).await;
            }
            _ => {}
        }
    }

    pub async fn disconnect(mut self) {
        let d = mqtt::Disconnect {
            code: mqtt::ReasonCode::SUCCESS,
            properties: Properties::default(),
        };
        self.send(&Packet::Disconnect(d)).await;
        let _ = self.stream.shutdown().await;
    }
}
