//! The broker as a whole: recover from the data directory, listen, stop gracefully.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::connection::Shared;
use crate::log::Log;
use crate::metrics::Metrics;
use crate::router::{Recovered, Request, Router};
use crate::Config;

/// Capacity of the router's request channel: when it is full, connections stop reading
/// their sockets, which pushes back on publishers through TCP.
const ROUTER_QUEUE: usize = 4096;
/// How long shutdown waits for connections to flush their final DISCONNECT.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the broker could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Binding the listener failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The data directory or durable log could not be opened.
    #[error("cannot open the durable log")]
    Log(#[from] crate::log::LogError),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}")]
    DataDir {
        /// Directory asked for.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// A running broker.
pub struct Broker {
    local_addr: SocketAddr,
    metrics: Arc<Metrics>,
    router: mpsc::Sender<Request>,
    stop: watch::Sender<bool>,
    connections: Arc<Semaphore>,
    max_connections: u32,
}

impl Broker {
    /// Recovers state from `config.data_dir`, binds the listener and starts serving.
    pub async fn start(config: Config, metrics: Arc<Metrics>) -> Result<Broker, StartError> {
        let log_dir = config.data_dir.join("log");
        std::fs::create_dir_all(&log_dir).map_err(|source| StartError::DataDir {
            path: log_dir.clone(),
            source,
        })?;
        let mut recovered = Recovered::default();
        let started = std::time::Instant::now();
        let log = Log::open(&log_dir, config.log.clone(), metrics.clone(), |record| {
            recovered.apply(record)
        })?;
        let (sessions, pending, retained) = recovered.summary();
        tracing::info!(
            sessions,
            pending,
            retained,
            ms = started.elapsed().as_millis() as u64,
            "recovered state from the durable log"
        );

        let listener = tokio::net::TcpListener::bind(config.mqtt_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.mqtt_addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.mqtt_addr,
            source,
        })?;

        let config = Arc::new(config);
        let (router_tx, router_rx) = mpsc::channel(ROUTER_QUEUE);
        let router = Router::new(config.clone(), metrics.clone(), log, recovered);
        tokio::spawn(router.run(router_rx));

        let max_connections = u32::try_from(config.max_connections)
            .unwrap_or(u32::MAX >> 4)
            .min(Semaphore::MAX_PERMITS as u32);
        let connections = Arc::new(Semaphore::new(max_connections as usize));
        let shared = Arc::new(Shared {
            config,
            metrics: metrics.clone(),
            router: router_tx.clone(),
            next_conn: AtomicU64::new(1),
        });
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(crate::listener::run(
            listener,
            shared,
            connections.clone(),
            stop_rx,
        ));
        Ok(Broker {
            local_addr,
            metrics,
            router: router_tx,
            stop,
            connections,
            max_connections,
        })
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
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let (done, flushed) = oneshot::channel();
        if self.router.send(Request::Shutdown { done }).await.is_ok() {
            let _ = flushed.await;
        }
        // Every connection task holds a permit until it has written its last bytes.
        let drained = tokio::time::timeout(
            DRAIN_TIMEOUT,
            self.connections.acquire_many(self.max_connections),
        )
        .await;
        if drained.is_err() {
            tracing::warn!("some connections did not close within the shutdown deadline");
        }
        tracing::info!("broker stopped");
    }
}
