//! Who a client is and what it may do: the hooks the broker calls at CONNECT (an
//! [`Authenticator`]) and for every PUBLISH topic and SUBSCRIBE filter (an
//! [`Authorizer`]).
//!
//! The broker knows MQTT, not devices: what a password means (a SAS token, an API token,
//! later a certificate) and which topics belong to whom is the embedder's business (the
//! hub's, in `bosun serve`). This module owns the contract and the mechanics around it:
//! - the types a decision is made from and returns ([`Credentials`], [`Identity`],
//!   [`Refusal`]);
//! - the per-connection state ([`Grant`]) that checks each request against the
//!   authorizer, counts denials and ends a connection that keeps trying;
//! - the built-in policy by [`IdentityKind`] used when no authorizer is configured.
//!
//! Authentication is asynchronous (an implementation may look a device up in a
//! database on a blocking thread) and runs once per connection, inside the connection's
//! own task, so a slow lookup never stalls other clients. Authorization is synchronous
//! and called on the hot path: implementations must be cheap and must not block.
//!
//! Anonymous development clients (`--dev`, loopback, no credentials) get no [`Grant`]
//! at all, so they pay nothing per message.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use mqtt::ReasonCode;

/// Denied requests (PUBLISH topics and SUBSCRIBE filters) one connection may make
/// before it is closed with DISCONNECT 0x87: enough for a client that probes once or
/// misconfigures a topic, too few to scan a namespace.
pub const MAX_DENIALS: u8 = 10;

/// How long an [`Authenticator`] may take: as long as a client gets to send CONNECT,
/// so a stuck lookup cannot hold connections (and their permits) forever.
pub const AUTHENTICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a client presented in CONNECT, with what the broker knows about the transport.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The client identifier as sent (may be empty: the broker assigns one later).
    pub client_id: &'a str,
    /// User Name, if present.
    pub username: Option<&'a str>,
    /// Password bytes, if present.
    pub password: Option<&'a [u8]>,
    /// The peer's address (for loopback rules and logs).
    pub peer: SocketAddr,
    /// The connection arrived over TLS: a bearer secret was not sent in clear text.
    pub tls: bool,
    /// The subject common name of the client certificate the TLS handshake verified
    /// against a registered device CA (chain, validity, key usage, revocation); `None`
    /// without one (plain MQTT, or TLS without a client certificate).
    pub client_cert_cn: Option<&'a str>,
    /// That certificate's serial number, lower-case hex without leading zero bytes (as
    /// `bosun ca issue-device` prints it), for enrollments pinned to one certificate.
    pub client_cert_serial: Option<&'a str>,
    /// The name of the registered device CA that signed that certificate (`bosun` for
    /// the built-in one, else the name given to `bosun ca import`); `None` when the
    /// certificate was signed by an intermediate the client sent along.
    pub client_cert_issuer: Option<&'a str>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password, not even its length.
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .field("client_cert_cn", &self.client_cert_cn)
            .field("client_cert_serial", &self.client_cert_serial)
            .field("client_cert_issuer", &self.client_cert_issuer)
            .finish()
    }
}

impl Credentials<'_> {
    /// Whether the client presented any credentials (a user name, a password or a
    /// verified client certificate).
    pub fn presented(&self) -> bool {
        self.username.is_some() || self.password.is_some() || self.client_cert_cn.is_some()
    }
}

/// What kind of principal an identity is; the built-in policy decides by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    /// A device: confined to its own topics by the authorizer (denied everything when
    /// none is configured).
    Device,
    /// A back-end application (consuming telemetry or events).
    Service {
        /// It may publish; without, it may only subscribe.
        may_publish: bool,
    },
    /// A device being provisioned (a DPS registration client): confined to its
    /// registration topics by the authorizer (denied everything when none is
    /// configured).
    Provisioning,
    /// Nobody in particular (development mode): unrestricted.
    Anonymous,
}

/// An authenticated principal, fixed for the connection's lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The device id or service name.
    pub id: Arc<str>,
    /// What kind of principal it is.
    pub kind: IdentityKind,
    /// The device's group, for authorization rules that name one (`fleet/{group}/…`);
    /// read at connect, so a group change applies from the next connection.
    pub group: Option<Arc<str>>,
    /// When the credentials stop being valid (a SAS token's expiry): the connection
    /// is closed then, with DISCONNECT 0x87 "token expired".
    pub expires_at: Option<SystemTime>,
}

impl Identity {
    /// An identity with no group and no expiry.
    pub fn new(id: impl Into<Arc<str>>, kind: IdentityKind) -> Identity {
        Identity {
            id: id.into(),
            kind,
            group: None,
            expires_at: None,
        }
    }
}

/// Why a client is refused at CONNECT: the reason code it is told, and a short reason
/// that is logged and counted (`bosun_auth_refusals_total{reason}`), never sent.
///
/// `reason` is `&'static str` on purpose: it is a metric label, so its set of values
/// must be fixed by the code, never by what a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// CONNACK reason code (3.1.1 clients get the matching return code: 0x86 → 4,
    /// 0x87 and 0x8A → 5).
    pub code: ReasonCode,
    /// What was wrong, for the log and the metric label (lower case, no secrets).
    pub reason: &'static str,
}

impl Refusal {
    /// 0x86 *Bad User Name or Password*: unknown principal, wrong or expired secret.
    /// Deliberately the same answer for "no such device" and "wrong key", so the
    /// answer does not reveal which device ids exist.
    pub const fn bad_credentials(reason: &'static str) -> Refusal {
        Refusal {
            code: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            reason,
        }
    }

    /// 0x87 *Not authorized*: the credentials are fine but do not allow this
    /// connection (a token for another device, no credentials where they are needed).
    pub const fn not_authorized(reason: &'static str) -> Refusal {
        Refusal {
            code: ReasonCode::NOT_AUTHORIZED,
            reason,
        }
    }

    /// 0x8A *Banned*: the principal exists and is disabled by an operator.
    pub const fn banned(reason: &'static str) -> Refusal {
        Refusal {
            code: ReasonCode::BANNED,
            reason,
        }
    }
}

/// The future an [`Authenticator`] returns; boxed so the trait stays object-safe.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Identity, Refusal>> + Send + 'a>>;

/// Decides who a connecting client is. Called once per CONNECT that presents
/// credentials (or, outside development mode, for every CONNECT), inside that
/// connection's task; an answer that takes longer than [`AUTHENTICATION_TIMEOUT`]
/// refuses the client (0x88 *Server unavailable*).
pub trait Authenticator: Send + Sync {
    /// Accepts the client as an [`Identity`] or refuses it.
    fn authenticate<'a>(&'a self, credentials: &'a Credentials<'a>) -> AuthFuture<'a>;
}

/// Decides what an identity may do. Called for every PUBLISH (after topic aliases are
/// resolved, so `topic` is the real topic), for the Last Will at CONNECT, and for every
/// SUBSCRIBE filter (shared subscriptions with their inner filter, `$share/{group}/`
/// removed). Must be cheap and must not block: it runs on the publish path.
pub trait Authorizer: Send + Sync {
    /// May `identity` publish to `topic` (a valid topic name)?
    fn may_publish(&self, identity: &Identity, topic: &str) -> bool;
    /// May `identity` subscribe to `filter` (a valid, non-shared topic filter)? Say yes
    /// only when every topic the filter can match is one the identity may read.
    fn may_subscribe(&self, identity: &Identity, filter: &str) -> bool;
}

/// The built-in policy by kind, used when no [`Authorizer`] is configured and
/// available to authorizers for the kinds they do not specialise: anonymous clients
/// may do anything, services may subscribe to anything and publish if allowed,
/// devices may do nothing (fail closed: a device needs rules that name its topics).
pub fn default_decision(identity: &Identity, publish: bool) -> bool {
    match identity.kind {
        IdentityKind::Anonymous => true,
        IdentityKind::Service { may_publish } => !publish || may_publish,
        IdentityKind::Device | IdentityKind::Provisioning => false,
    }
}

/// One connection's authorization state: who it is, the policy, and how many
/// requests were denied so far. Boxed in the connection (absent for anonymous
/// development clients), so an unrestricted idle connection pays one pointer.
#[derive(Clone)]
pub(crate) struct Grant {
    identity: Identity,
    authorizer: Option<Arc<dyn Authorizer>>,
    denials: u8,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("identity", &self.identity)
            .field("authorizer", &self.authorizer.is_some())
            .field("denials", &self.denials)
            .finish()
    }
}

/// What a denial did to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// Answer the request with a failure and go on.
    Continue,
    /// That was one denial too many: close the connection.
    Close,
}

impl Grant {
    /// The state for a freshly authenticated connection.
    pub(crate) fn new(identity: Identity, authorizer: Option<Arc<dyn Authorizer>>) -> Grant {
        Grant {
            identity,
            authorizer,
            denials: 0,
        }
    }

    /// A device authenticated over a client certificate lives no longer than it:
    /// the certificate's expiry becomes the identity's, unless it has an earlier one.
    fn expire_with_certificate(&mut self, expiry: SystemTime) {
        if self.identity.kind == IdentityKind::Device {
            let at = self.identity.expires_at.map_or(expiry, |at| at.min(expiry));
            self.identity.expires_at = Some(at);
        }
    }

    /// The identity this connection authenticated as.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// May this connection publish to `topic` (aliases already resolved)?
    pub(crate) fn may_publish(&self, topic: &str) -> bool {
        match &self.authorizer {
            Some(a) => a.may_publish(&self.identity, topic),
            None => default_decision(&self.identity, true),
        }
    }

    /// May this connection subscribe to `filter`? A shared subscription is judged by
    /// its inner filter. A filter that does not parse is let through: the router
    /// refuses it as invalid (0x8F), which is the more useful answer and grants nothing.
    pub(crate) fn may_subscribe(&self, filter: &str) -> bool {
        let inner = match mqtt::topic::parse_shared(filter) {
            Ok(Some(shared)) => shared.filter,
            Ok(None) => filter,
            Err(_) => return true,
        };
        match &self.authorizer {
            Some(a) => a.may_subscribe(&self.identity, inner),
            None => default_decision(&self.identity, false),
        }
    }

    /// Counts a denial; [`Denied::Close`] once [`MAX_DENIALS`] is reached.
    pub(crate) fn deny(&mut self) -> Denied {
        self.denials = self.denials.saturating_add(1);
        if self.denials >= MAX_DENIALS {
            Denied::Close
        } else {
            Denied::Continue
        }
    }
}

/// What the transport tells authentication about a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transport<'a> {
    /// Over TLS.
    pub(crate) tls: bool,
    /// The verified client certificate's subject CN.
    pub(crate) client_cert_cn: Option<&'a str>,
    /// When that certificate expires: a device identity without an expiry of its own
    /// gets this one, so the connection ends with the certificate (like a SAS token's).
    pub(crate) client_cert_expiry: Option<SystemTime>,
    /// Its serial (hex).
    pub(crate) client_cert_serial: Option<&'a str>,
    /// The registered CA that signed it.
    pub(crate) client_cert_issuer: Option<&'a str>,
}

/// Decides who a connecting client is, at CONNECT (after the packet's own checks):
/// `Ok(None)` for an unrestricted anonymous development client, `Ok(Some(grant))` for
/// an authenticated identity, or the refusal to answer with (already logged at info
/// with peer and client id, and counted by reason).
///
/// The rules:
/// - `dev`, a loopback peer and no credentials: anonymous and unrestricted, as before
///   authentication existed. With `dev` and no authenticator, credentials are ignored.
/// - Otherwise the authenticator decides; without one, the client is refused (0x87).
/// - An identity whose credentials expired already is refused (0x86).
/// - The Last Will must be a topic the identity may publish to (0x87 otherwise), or
///   a device could publish as another one by disconnecting.
pub(crate) async fn admit(
    connect: &mqtt::Connect,
    peer: SocketAddr,
    transport: Transport<'_>,
    config: &crate::Config,
    metrics: &crate::metrics::Metrics,
) -> Result<Option<Box<Grant>>, Refusal> {
    let credentials = Credentials {
        client_id: &connect.client_id,
        username: connect.username.as_deref(),
        password: connect.password.as_deref(),
        peer,
        tls: transport.tls,
        client_cert_cn: transport.client_cert_cn,
        client_cert_serial: transport.client_cert_serial,
        client_cert_issuer: transport.client_cert_issuer,
    };
    let mut result = decide(&credentials, connect.will.as_ref(), config).await;
    if let (Ok(Some(grant)), Some(expiry)) = (&mut result, transport.client_cert_expiry) {
        grant.expire_with_certificate(expiry);
    }
    if let Err(refusal) = &result {
        metrics.auth_refusals.inc(refusal.reason);
        tracing::info!(
            %peer,
            client = %connect.client_id,
            code = refusal.code.0,
            reason = refusal.reason,
            "authentication refused"
        );
    }
    result
}

async fn decide(
    credentials: &Credentials<'_>,
    will: Option<&mqtt::Will>,
    config: &crate::Config,
) -> Result<Option<Box<Grant>>, Refusal> {
    let dev_peer = config.dev && credentials.peer.ip().is_loopback();
    let authenticator = match &config.authenticator {
        _ if dev_peer && !credentials.presented() => return Ok(None),
        None if dev_peer => return Ok(None),
        None if credentials.presented() => {
            return Err(Refusal::not_authorized("no authenticator configured"))
        }
        None => return Err(Refusal::not_authorized("no credentials")),
        Some(a) => a,
    };
    // The deadline only around the authenticator: anonymous development clients,
    // answered above, arm no timer.
    let identity = match tokio::time::timeout(
        AUTHENTICATION_TIMEOUT,
        authenticator.authenticate(credentials),
    )
    .await
    {
        Ok(answer) => answer?,
        Err(_) => {
            return Err(Refusal {
                code: ReasonCode::SERVER_UNAVAILABLE,
                reason: "authentication timed out",
            })
        }
    };
    if identity
        .expires_at
        .is_some_and(|at| at <= SystemTime::now())
    {
        return Err(Refusal::bad_credentials("token expired"));
    }
    let grant = Grant::new(identity, config.authorizer.clone());
    if will.is_some_and(|w| !grant.may_publish(&w.topic)) {
        return Err(Refusal::not_authorized("will topic not authorized"));
    }
    Ok(Some(Box::new(grant)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allows publishing and subscribing only under `own/{id}/`.
    struct OwnPrefix;

    impl Authorizer for OwnPrefix {
        fn may_publish(&self, identity: &Identity, topic: &str) -> bool {
            topic.starts_with(&format!("own/{}/", identity.id))
        }
        fn may_subscribe(&self, identity: &Identity, filter: &str) -> bool {
            filter.starts_with(&format!("own/{}/", identity.id))
        }
    }

    #[test]
    fn a_certificate_device_expires_with_its_certificate() {
        let soon = SystemTime::now() + std::time::Duration::from_secs(60);
        let later = soon + std::time::Duration::from_secs(60);
        let mut device = Grant::new(Identity::new("d", IdentityKind::Device), None);
        device.expire_with_certificate(later);
        assert_eq!(device.identity().expires_at, Some(later));
        // A token that ends sooner keeps its own expiry.
        let mut token = Grant::new(
            Identity {
                expires_at: Some(soon),
                ..Identity::new("d", IdentityKind::Device)
            },
            None,
        );
        token.expire_with_certificate(later);
        assert_eq!(token.identity().expires_at, Some(soon));
        // Services are not devices: no expiry from a certificate.
        let mut service = Grant::new(
            Identity::new("s", IdentityKind::Service { may_publish: true }),
            None,
        );
        service.expire_with_certificate(soon);
        assert_eq!(service.identity().expires_at, None);
    }

    #[test]
    fn the_default_policy_follows_the_kind() {
        let anon = Identity::new("a", IdentityKind::Anonymous);
        let reader = Identity::new("r", IdentityKind::Service { may_publish: false });
        let writer = Identity::new("w", IdentityKind::Service { may_publish: true });
        let device = Identity::new("d", IdentityKind::Device);
        assert!(default_decision(&anon, true) && default_decision(&anon, false));
        assert!(!default_decision(&reader, true) && default_decision(&reader, false));
        assert!(default_decision(&writer, true) && default_decision(&writer, false));
        assert!(!default_decision(&device, true) && !default_decision(&device, false));
    }

    #[test]
    fn shared_subscriptions_are_judged_by_their_inner_filter() {
        let grant = Grant::new(
            Identity::new("a", IdentityKind::Device),
            Some(Arc::new(OwnPrefix)),
        );
        assert!(grant.may_subscribe("own/a/x"));
        assert!(grant.may_subscribe("$share/g/own/a/x"));
        assert!(!grant.may_subscribe("$share/g/own/b/x"));
        assert!(!grant.may_subscribe("$share/own/a/x/own/b/x"));
        assert!(!grant.may_subscribe("own/b/x"));
        // Invalid filters go on to the router, which refuses them as invalid.
        assert!(grant.may_subscribe("$share/g"));
    }

    #[test]
    fn the_tenth_denial_closes() {
        let mut grant = Grant::new(Identity::new("d", IdentityKind::Device), None);
        for _ in 1..MAX_DENIALS {
            assert_eq!(grant.deny(), Denied::Continue);
        }
        assert_eq!(grant.deny(), Denied::Close);
    }

    /// Never answers, like a lookup stuck on a dead database.
    struct Stuck;

    impl Authenticator for Stuck {
        fn authenticate<'a>(&'a self, _: &'a Credentials<'a>) -> AuthFuture<'a> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_authenticator_refuses_at_the_deadline() {
        let config = crate::Config {
            authenticator: Some(Arc::new(Stuck)),
            ..crate::Config::default()
        };
        let connect = mqtt::Connect {
            protocol: mqtt::ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: "c".into(),
            will: None,
            username: Some("u".into()),
            password: None,
            properties: mqtt::Properties::default(),
        };
        let metrics = crate::metrics::Metrics::default();
        let peer = SocketAddr::from(([10, 0, 0, 1], 1));
        let started = tokio::time::Instant::now();
        let transport = Transport {
            tls: false,
            client_cert_cn: None,
            client_cert_serial: None,
            client_cert_issuer: None,
            client_cert_expiry: None,
        };
        let refused = admit(&connect, peer, transport, &config, &metrics).await;
        assert_eq!(
            refused.err().map(|r| r.code),
            Some(ReasonCode::SERVER_UNAVAILABLE)
        );
        assert_eq!(started.elapsed(), AUTHENTICATION_TIMEOUT);
        assert_eq!(metrics.auth_refusals.get("authentication timed out"), 1);
    }

    #[test]
    fn debug_output_hides_the_password() {
        let credentials = Credentials {
            client_id: "c",
            username: Some("u"),
            password: Some(b"hunter2"),
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            tls: false,
            client_cert_cn: None,
            client_cert_serial: None,
            client_cert_issuer: None,
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
