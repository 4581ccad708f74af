//! The link between the broker and an in-process service (the control plane).
//!
//! Device-facing protocols such as Azure IoT Hub's put request/response traffic on
//! topics that are per connection rather than shared: every device subscribes to
//! `$iothub/twin/res/#` and must see only its own answers, and what it publishes on
//! `$iothub/…` is a request to the hub, not a message for other subscribers. So the
//! broker lets one service:
//! - *consume* publishes whose topic matches a filter (they go to the service, tagged
//!   with the publisher's client id, and to no subscriber),
//! - *tap* publishes (they are routed as usual and a copy goes to the service),
//! - send a message to one client only, through that client's own subscriptions,
//!   optionally with a receipt reported when the client acknowledges it,
//! - publish like any client, and close a client's connection,
//! - hear about connects, disconnects (with their cause) and subscriptions.
//!
//! Events go through a bounded channel that the router never waits on: if the service
//! falls that far behind, events are dropped and counted
//! (`bosun_service_events_dropped_total`) rather than stalling every client; a dropped
//! held publish is refused to its publisher ([`Hold::refuse`]), never acknowledged.

use std::sync::Arc;

use bytes::Bytes;
use mqtt::{Properties, Publish, QoS, ReasonCode};
use tokio::sync::{mpsc, oneshot};

use crate::message::Message;
use crate::router::Request;

/// Events buffered towards the service before new ones are dropped.
pub const EVENT_QUEUE: usize = 65_536;

/// Which publishes the service wants; filters use MQTT wildcards.
#[derive(Debug, Clone, Default)]
pub struct ServiceSpec {
    /// Publishes matching these go only to the service (e.g. `$iothub/#`).
    pub consume: Vec<String>,
    /// Publishes matching these are routed and also copied to the service (e.g.
    /// `devices/+/messages/events/#`).
    pub tap: Vec<String>,
    /// Acknowledge a tapped QoS 1/2 publish only once the service has let go of its
    /// copy ([`Hold`]) as well as when it is durable here: for a service that stores
    /// what it taps, PUBACK then means "stored there too".
    pub hold_taps: bool,
}

impl ServiceSpec {
    /// Whether a topic is consumed, tapped, or neither.
    pub(crate) fn classify(&self, topic: &str) -> Interest {
        let hit = |filters: &[String]| filters.iter().any(|f| mqtt::topic::matches(f, topic));
        if hit(&self.consume) {
            Interest::Consume
        } else if hit(&self.tap) {
            Interest::Tap
        } else {
            Interest::None
        }
    }
}

/// What the service wants of one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Not at all.
    None,
    /// A copy, after normal routing.
    Tap,
    /// Everything: it is not routed.
    Consume,
}

/// Why a connection ended, as the connection saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectCause {
    /// The client sent DISCONNECT; `will` for v5 reason 0x04.
    Client {
        /// The client asked for its will to be published.
        will: bool,
    },
    /// The socket closed or failed without a DISCONNECT.
    NetworkLost,
    /// The broker closed it with this reason (keep-alive timeout 0x8D, takeover 0x8E,
    /// shutdown 0x8B, a protocol error, or the service's own request).
    Closed(ReasonCode),
}

impl DisconnectCause {
    /// Short human-readable cause, for presence records and logs.
    pub fn describe(&self) -> &'static str {
        match self {
            DisconnectCause::Client { will: false } => "client disconnected",
            DisconnectCause::Client { will: true } => "client disconnected with will",
            DisconnectCause::NetworkLost => "network lost",
            DisconnectCause::Closed(code) => match *code {
                ReasonCode::KEEP_ALIVE_TIMEOUT => "keep-alive timeout",
                ReasonCode::SESSION_TAKEN_OVER => "session taken over",
                ReasonCode::SERVER_SHUTTING_DOWN => "server shutting down",
                ReasonCode::NOT_AUTHORIZED => "not authorized",
                ReasonCode::ADMINISTRATIVE_ACTION => "administrative action",
                _ => "protocol error",
            },
        }
    }
}

/// A publish handed to the service.
#[derive(Debug, Clone)]
pub struct ServicePublish {
    /// Client id of the publisher (the authenticated identity).
    pub client_id: Arc<str>,
    /// Topic as published (aliases resolved).
    pub topic: Arc<str>,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// Properties as published (content type, user properties, …).
    pub properties: Option<Box<Properties>>,
    /// For a held tap ([`ServiceSpec::hold_taps`]) of a QoS 1/2 publish: the publisher's
    /// acknowledgement waits until every clone of this is dropped.
    pub hold: Option<Hold>,
}

/// The service's share of a tapped publish's acknowledgement.
///
/// The publisher gets PUBACK (PUBREC) when the broker has made the message durable
/// *and* the last clone of its `Hold` is gone: the service keeps it until it has done
/// what it must (the data pipeline: until the message's points are on disk), then
/// drops it. Dropping is the only way to let go, so no path — an error, a skipped
/// message, a full event queue, shutdown — can leave a publisher waiting forever.
/// A service that could not do its part calls [`Hold::refuse`] first, and so does the
/// broker when the event queue is full: the publisher then hears that the message was
/// not taken (an error reason code on MQTT 5; its connection closed, unacknowledged, on
/// 3.1.1, which has no negative PUBACK) and sends it again, instead of believing it
/// stored.
#[derive(Debug, Clone)]
pub struct Hold {
    /// Shared by the clones; its drop is the arrival.
    _token: Arc<HoldToken>,
}

/// Arrives at the latch when the last [`Hold`] clone is dropped.
#[derive(Debug)]
struct HoldToken(Arc<Latch>);

impl Drop for HoldToken {
    fn drop(&mut self) {
        self.0.arrive();
    }
}

impl Hold {
    /// Makes the acknowledgement a refusal with `code` (an error code, ≥ 0x80; the
    /// first refusal wins), sent when the last clone is dropped as usual.
    pub fn refuse(&self, code: ReasonCode) {
        self._token.0.refuse(code);
    }

    /// Splits a publisher's acknowledgement in two: the service's `Hold` and an
    /// [`Acker`] for the router's own durability path; the acknowledgement is sent
    /// when both have arrived.
    pub(crate) fn split(ack: crate::router::Acker) -> (Hold, crate::router::Acker) {
        let routed = crate::router::Acker {
            outbox: ack.outbox.clone(),
            packet_id: ack.packet_id,
            qos: ack.qos,
            latch: None,
        };
        let latch = Arc::new(Latch {
            remaining: std::sync::atomic::AtomicU8::new(2),
            refusal: std::sync::atomic::AtomicU8::new(0),
            ack: std::sync::Mutex::new(Some(ack)),
        });
        let routed = crate::router::Acker {
            latch: Some(latch.clone()),
            ..routed
        };
        (
            Hold {
                _token: Arc::new(HoldToken(latch)),
            },
            routed,
        )
    }
}

/// A count of parties that must be done before a publisher is acknowledged.
#[derive(Debug)]
pub(crate) struct Latch {
    remaining: std::sync::atomic::AtomicU8,
    /// The reason code to refuse with; 0 while nobody refused.
    refusal: std::sync::atomic::AtomicU8,
    ack: std::sync::Mutex<Option<crate::router::Acker>>,
}

impl Latch {
    /// Records a refusal unless an earlier one was recorded.
    fn refuse(&self, code: ReasonCode) {
        let code = if code.is_error() {
            code
        } else {
            ReasonCode::UNSPECIFIED_ERROR
        };
        let _ = self.refusal.compare_exchange(
            0,
            code.0,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        );
    }

    /// One party is done; the last one sends the acknowledgement.
    pub(crate) fn arrive(&self) {
        if self
            .remaining
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            let ack = self
                .ack
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let refusal = self.refusal.load(std::sync::atomic::Ordering::Acquire);
            match (ack, refusal) {
                (Some(ack), 0) => crate::router::publish::acknowledge(ack),
                (Some(ack), code) => crate::router::publish::refuse(ack, ReasonCode(code)),
                (None, _) => {}
            }
        }
    }
}

/// What the broker reports to the service.
#[derive(Debug, Clone)]
pub enum ServiceEvent {
    /// A client connected (or reconnected, `session_present`).
    Connected {
        /// Its client id.
        client_id: Arc<str>,
        /// An existing session was resumed.
        session_present: bool,
    },
    /// A client's connection ended.
    Disconnected {
        /// Its client id.
        client_id: Arc<str>,
        /// Why.
        cause: DisconnectCause,
    },
    /// A client subscribed to these filters (granted ones only).
    Subscribed {
        /// Its client id.
        client_id: Arc<str>,
        /// Topic filters granted.
        filters: Vec<String>,
    },
    /// A consumed or tapped publish; boxed so that every event queued towards the
    /// service (a connect storm queues two per client) stays small.
    Publish(Box<ServicePublish>),
    /// The client acknowledged a message sent with this receipt (PUBACK, or PUBCOMP
    /// for QoS 2; for QoS 0, as soon as it was written to the outbox).
    Delivered {
        /// The receipt given to [`ServiceHandle::send_to`].
        receipt: u64,
    },
}

/// Outcome of sending to one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Handed to the client's session (sent, or queued behind its in-flight window).
    Accepted,
    /// No session with that client id is connected.
    NotConnected,
    /// The client is connected but has no subscription matching the topic.
    NotSubscribed,
}

/// What the service sends into the router.
#[derive(Debug)]
pub(crate) enum ServiceRequest {
    /// Deliver to one client through its own matching subscriptions.
    SendTo {
        client_id: Arc<str>,
        message: Message,
        receipt: Option<u64>,
        reply: oneshot::Sender<SendOutcome>,
    },
    /// Route like a client publish.
    Publish { message: Message },
    /// Close the client's connection with this reason code.
    Disconnect {
        client_id: Arc<str>,
        code: ReasonCode,
    },
}

/// The service's handle on the broker; cheap to clone.
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    router: mpsc::Sender<Request>,
}

/// The broker is gone (stopped or stopping).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the broker has stopped")]
pub struct BrokerStopped;

impl ServiceHandle {
    pub(crate) fn new(router: mpsc::Sender<Request>) -> ServiceHandle {
        ServiceHandle { router }
    }

    /// Delivers `publish` to one client if it is connected and subscribed to the
    /// topic, at the lower of the publish's and the subscription's QoS. With a
    /// `receipt`, a [`ServiceEvent::Delivered`] follows the client's acknowledgement.
    pub async fn send_to(
        &self,
        client_id: &str,
        publish: Publish,
        receipt: Option<u64>,
    ) -> Result<SendOutcome, BrokerStopped> {
        let (reply, outcome) = oneshot::channel();
        let request = ServiceRequest::SendTo {
            client_id: Arc::from(client_id),
            message: Message::from_publish(publish, None),
            receipt,
            reply,
        };
        self.request(request).await?;
        outcome.await.map_err(|_| BrokerStopped)
    }

    /// Publishes like a client would (to every matching subscriber, retained if set).
    pub async fn publish(&self, publish: Publish) -> Result<(), BrokerStopped> {
        let message = Message::from_publish(publish, None);
        self.request(ServiceRequest::Publish { message }).await
    }

    /// Closes a client's connection (v5 clients get DISCONNECT with `code`).
    pub async fn disconnect(&self, client_id: &str, code: ReasonCode) -> Result<(), BrokerStopped> {
        let request = ServiceRequest::Disconnect {
            client_id: Arc::from(client_id),
            code,
        };
        self.request(request).await
    }

    async fn request(&self, request: ServiceRequest) -> Result<(), BrokerStopped> {
        self.router
            .send(Request::Service(Box::new(request)))
            .await
            .map_err(|_| BrokerStopped)
    }
}

/// The router's side: where events go and which publishes are wanted.
pub(crate) struct ServiceTap {
    pub(crate) spec: ServiceSpec,
    pub(crate) events: mpsc::Sender<ServiceEvent>,
}

/// Creates the channel pair for [`crate::Broker::start_with_service`].
pub(crate) fn channel(spec: ServiceSpec) -> (ServiceTap, mpsc::Receiver<ServiceEvent>) {
    let (events, rx) = mpsc::channel(EVENT_QUEUE);
    (ServiceTap { spec, events }, rx)
}
