//! Broker configuration: every limit has a name, a default and a reason.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Authenticator, Authorizer};

/// What happens when a session's queue of undelivered messages is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the oldest queued message to make room (fresh data matters more in telemetry).
    #[default]
    DropOldest,
    /// Refuse the new message; what is queued stays.
    DropNewest,
}

/// Broker settings.
#[derive(Clone)]
pub struct Config {
    /// Where the durable log lives.
    pub data_dir: PathBuf,
    /// MQTT over TCP listener address; port 0 picks a free port.
    pub mqtt_addr: SocketAddr,
    /// Admit anonymous clients connecting from loopback (those presenting no
    /// credentials; clients that present some go to the authenticator, if any).
    pub dev: bool,
    /// Decides who a connecting client is. `None`: only anonymous development clients
    /// are admitted (and only with `dev`).
    pub authenticator: Option<Arc<dyn Authenticator>>,
    /// Decides which topics an authenticated identity may publish and subscribe to.
    /// `None`: the built-in policy by identity kind ([`crate::auth::default_decision`]).
    pub authorizer: Option<Arc<dyn Authorizer>>,
    /// Connections beyond this are refused at accept time.
    pub max_connections: usize,
    /// Largest packet the broker accepts (and announces in CONNACK).
    pub max_packet_size: u32,
    /// QoS 1/2 messages a client may have unacknowledged towards the broker (v5 receive maximum).
    pub receive_maximum: u16,
    /// QoS 1/2 messages in flight from the broker to one client when the client sets no lower limit.
    pub max_inflight: u16,
    /// Topic aliases a client may use towards the broker.
    pub topic_alias_maximum: u16,
    /// Messages a session may hold queued (offline or beyond the in-flight window).
    pub max_queued_messages: usize,
    /// Payload bytes a session may hold queued.
    pub max_queued_bytes: usize,
    /// What to drop when a session queue is full.
    pub overflow: OverflowPolicy,
    /// Cap on the session expiry a client may ask for; also the expiry of 3.1.1 persistent sessions.
    pub max_session_expiry: Duration,
    /// Keep-alive imposed on clients that ask for none (0) or more than this.
    pub max_keep_alive: u16,
    /// Outbound bytes buffered per connection before QoS 0 messages to it are shed.
    pub max_outbound_bytes: usize,
    /// Durable log settings.
    pub log: crate::log::LogConfig,
    /// MQTT over TLS listener; `None` serves plain TCP only. Off by default here so an
    /// embedded or test broker binds one port; the `bosun` binary turns it on.
    pub tls: Option<TlsConfig>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: the hooks are trait objects; whether they are set is what matters.
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("mqtt_addr", &self.mqtt_addr)
            .field("dev", &self.dev)
            .field("authenticator", &self.authenticator.is_some())
            .field("authorizer", &self.authorizer.is_some())
            .field("max_connections", &self.max_connections)
            .field("max_packet_size", &self.max_packet_size)
            .field("receive_maximum", &self.receive_maximum)
            .field("max_inflight", &self.max_inflight)
            .field("topic_alias_maximum", &self.topic_alias_maximum)
            .field("max_queued_messages", &self.max_queued_messages)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("overflow", &self.overflow)
            .field("max_session_expiry", &self.max_session_expiry)
            .field("max_keep_alive", &self.max_keep_alive)
            .field("max_outbound_bytes", &self.max_outbound_bytes)
            .field("log", &self.log)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The MQTT-over-TLS listener. Without certificate files the broker acts as its own
/// local certificate authority (under `data_dir/tls/`), so TLS works on first start and
/// clients only need `ca.pem`; with files, operators bring their own PKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// Listener address; port 0 picks a free port.
    pub addr: SocketAddr,
    /// PEM certificate chain, leaf first. `None` (together with `key_file`) generates one.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching the leaf of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Extra DNS names or IP addresses the generated server certificate must carry,
    /// for clients that reach the broker by a name other than the listen address.
    pub subject_alt_names: Vec<String>,
}

impl TlsConfig {
    /// The IANA port for MQTT over TLS, on loopback: safe until an operator opens it up.
    pub fn default_addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8883))
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            addr: TlsConfig::default_addr(),
            cert_file: None,
            key_file: None,
            subject_alt_names: Vec::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("bosun-data"),
            mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 1883)),
            dev: false,
            authenticator: None,
            authorizer: None,
            max_connections: 100_000,
            max_packet_size: 1024 * 1024,
            receive_maximum: 1024,
            max_inflight: 64,
            topic_alias_maximum: 64,
            max_queued_messages: 10_000,
            max_queued_bytes: 16 * 1024 * 1024,
            overflow: OverflowPolicy::DropOldest,
            max_session_expiry: Duration::from_secs(7 * 24 * 3600),
            max_keep_alive: 3600,
            max_outbound_bytes: 1024 * 1024,
            log: crate::log::LogConfig::default(),
            tls: None,
        }
    }
}
