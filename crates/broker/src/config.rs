//! Broker configuration: every limit has a name, a default and a reason.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the durable log lives.
    pub data_dir: PathBuf,
    /// MQTT over TCP listener address; port 0 picks a free port.
    pub mqtt_addr: SocketAddr,
    /// Admit anonymous clients connecting from loopback.
    pub dev: bool,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("bosun-data"),
            mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 1883)),
            dev: false,
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
        }
    }
}
