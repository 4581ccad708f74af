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
use crate::service::{ServiceEvent, ServiceHandle, ServiceSpec, ServiceTap};
use crate::tls::{TlsError, TlsState};
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
    /// The TLS certificate could not be loaded or generated (the error names the file).
    #[error("cannot set up MQTT over TLS")]
    Tls(#[from] TlsError),
}

/// A running broker.
pub struct Broker {
    local_addr: SocketAddr,
    /// The TLS listener's address and certificate state, when TLS is on.
    tls: Option<(SocketAddr, Arc<TlsState>)>,
    metrics: Arc<Metrics>,
    router: mpsc::Sender<Request>,
    stop: watch::Sender<bool>,
    connections: Arc<Semaphore>,
    max_connections: u32,
}

impl Broker {
    /// Recovers state from `config.data_dir`, binds the listener and starts serving.
    pub async fn start(config: Config, metrics: Arc<Metrics>) -> Result<Broker, StartError> {
        Broker::start_inner(config, metrics, None).await
    }

    /// Starts like [`Broker::start`] with an in-process service attached (the control
    /// plane): it receives the events and publishes `spec` asks for and acts through
    /// the returned handle. See [`crate::service`].
    pub async fn start_with_service(
        config: Config,
        metrics: Arc<Metrics>,
        spec: ServiceSpec,
    ) -> Result<(Broker, ServiceHandle, mpsc::Receiver<ServiceEvent>), StartError> {
        let (tap, events) = crate::service::channel(spec);
        let broker = Broker::start_inner(config, metrics, Some(tap)).await?;
        let handle = ServiceHandle::new(broker.router.clone());
        Ok((broker, handle, events))
    }

    async fn start_inner(
        config: Config,
        metrics: Arc<Metrics>,
        service: Option<ServiceTap>,
    ) -> Result<Broker, StartError> {
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

        // Certificates before any socket: a bad file fails the start with nothing bound.
        let tls_state = match &config.tls {
            Some(tls) => Some(Arc::new(TlsState::open(tls, &config.data_dir)?)),
            None => None,
        };
        let (listener, local_addr) = bind(config.mqtt_addr).await?;
        let tls_listener = match (&config.tls, tls_state) {
            (Some(tls), Some(state)) => {
                let (listener, addr) = bind(tls.addr).await?;
                Some((listener, addr, state))
            }
            _ => None,
        };

        let config = Arc::new(config);
        let (router_tx, router_rx) = mpsc::channel(ROUTER_QUEUE);
        let router = Router::new(config.clone(), metrics.clone(), log, recovered, service);
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
        let tls = tls_listener.map(|(listener, addr, state)| {
            tokio::spawn(crate::listener::run(
                listener,
                shared.clone(),
                connections.clone(),
                stop_rx.clone(),
                Some(state.clone()),
            ));
            tokio::spawn(state.clone().watch(stop_rx.clone(), router_tx.clone()));
            (addr, state)
        });
        tokio::spawn(crate::listener::run(
            listener,
            shared,
            connections.clone(),
            stop_rx,
            None,
        ));
        Ok(Broker {
            local_addr,
            tls,
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

    /// The address the MQTT-over-TLS listener is bound to; `None` when TLS is off.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(addr, _)| *addr)
    }

    /// Loads the TLS certificate again (for the local CA: reissues it if it no longer
    /// fits) and uses it for every new handshake; open connections keep theirs. The
    /// broker also does this by itself within seconds of the files changing; this is
    /// for callers that know better (a signal, an API call). On error the previous
    /// certificate stays in use.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        match &self.tls {
            Some((_, state)) => {
                state.reload()?;
                state.close_revoked(&self.router);
                Ok(())
            }
            None => Err(TlsError::NotEnabled),
        }
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

/// Binds a listener, returning it with its actual address (port 0 resolved).
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let error = |source| StartError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(error)?;
    let local = listener.local_addr().map_err(error)?;
    Ok((listener, local))
}
