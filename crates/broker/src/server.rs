//! The broker as a whole: start it, learn its address, stop it gracefully.
//! (Stub: the listener and router land next.)

use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;

use crate::metrics::Metrics;
use crate::Config;

/// Why the broker could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The data directory or durable log could not be opened.
    #[error("cannot open the durable log: {0}")]
    Log(#[from] crate::log::LogError),
}

/// A running broker.
pub struct Broker {
    local_addr: SocketAddr,
    metrics: Arc<Metrics>,
}

impl Broker {
    /// Recovers state from `config.data_dir`, binds the listener and starts serving.
    pub async fn start(config: Config, metrics: Arc<Metrics>) -> Result<Broker, StartError> {
        let listener = tokio::net::TcpListener::bind(config.mqtt_addr)
            .await
            .map_err(|source| StartError::Bind { addr: config.mqtt_addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.mqtt_addr, source })?;
        Ok(Broker { local_addr, metrics })
    }

    /// The address the MQTT listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Shared metrics, for the `/metrics` endpoint.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Stops accepting, sends DISCONNECT 0x8B (server shutting down) to v5 clients,
    /// flushes the durable log and returns when everything is on disk.
    pub async fn shutdown(self) {}
}
