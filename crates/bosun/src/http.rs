//! The HTTP side of `bosun serve`: `/metrics` for Prometheus and `/healthz` for probes.
//!
//! This module owns the listeners and the axum router. It reads broker and pipeline
//! metrics but never touches their state. The REST API (crate `api`) is merged in beside them.
//!
//! The same routes are served twice: over plain HTTP, and over HTTPS
//! ([`HttpServer::start_tls`]) with the certificate of the MQTT TLS listener, so devices
//! fetch firmware images from a hub they already authenticate by its CA (`tls`: the
//! listener and the certificate, re-read when its files change).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use broker::metrics::Metrics;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod tls;

pub(crate) use tls::TlsIdentity;

/// Content type of the Prometheus text exposition format we render.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// How long shutdown waits for open HTTP connections (e.g. a keep-alive scraper) to
/// finish before cutting them; shutdown must not hang on a client.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running HTTP server.
pub(crate) struct HttpServer {
    /// Bound address (the real port when 0 was asked for).
    local_addr: SocketAddr,
    /// Fired to start a graceful shutdown.
    stop: oneshot::Sender<()>,
    /// The serving task, awaited at shutdown.
    task: JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Binds `addr` and starts serving in the background; `api` (the REST API's routes)
    /// is served beside `/metrics` and `/healthz`.
    pub(crate) async fn start(
        addr: SocketAddr,
        metrics: Arc<Metrics>,
        api: Option<Router>,
        pipeline: Option<pipeline::Pipeline>,
    ) -> Result<HttpServer> {
        let (listener, local_addr) = bind(addr).await?;
        Ok(HttpServer::spawn(
            listener,
            local_addr,
            routes(metrics, api, pipeline),
        ))
    }

    /// As [`HttpServer::start`], over TLS with `tls` (the MQTT TLS listener's
    /// certificate): the HTTPS API devices download firmware from.
    pub(crate) async fn start_tls(
        addr: SocketAddr,
        tls: TlsIdentity,
        metrics: Arc<Metrics>,
        api: Option<Router>,
        pipeline: Option<pipeline::Pipeline>,
    ) -> Result<HttpServer> {
        let (listener, local_addr) = bind(addr).await?;
        let listener = tls::TlsListener::start(listener, local_addr, tls);
        Ok(HttpServer::spawn(
            listener,
            local_addr,
            routes(metrics, api, pipeline),
        ))
    }

    /// Serves `routes` on `listener` until [`HttpServer::shutdown`].
    fn spawn<L>(listener: L, local_addr: SocketAddr, routes: Router) -> HttpServer
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, routes).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { server.await });
        HttpServer {
            local_addr,
            stop,
            task,
        }
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits (at most [`DRAIN_TIMEOUT`]) for in-flight requests.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(());
        let abort = self.task.abort_handle();
        match tokio::time::timeout(DRAIN_TIMEOUT, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "http server task failed"),
            Err(_) => {
                tracing::warn!("http connections still open after {DRAIN_TIMEOUT:?}; closing them");
                abort.abort();
            }
        }
    }
}

/// Binds `addr`, naming it in the error.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local_addr = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok((listener, local_addr))
}

/// The routes, with the API beside `/metrics` and `/healthz`.
fn routes(
    metrics: Arc<Metrics>,
    api: Option<Router>,
    pipeline: Option<pipeline::Pipeline>,
) -> Router {
    let routes = router(Sources { metrics, pipeline });
    match api {
        Some(api) => routes.merge(api),
        None => routes,
    }
}

/// Where `/metrics` reads from: the broker, and the data pipeline when it runs.
#[derive(Clone)]
struct Sources {
    metrics: Arc<Metrics>,
    pipeline: Option<pipeline::Pipeline>,
}

/// The routes.
fn router(sources: Sources) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .with_state(sources)
}

/// `GET /metrics`: Prometheus text format.
async fn render_metrics(State(sources): State<Sources>) -> impl IntoResponse {
    let mut text = sources.metrics.render();
    if let Some(pipeline) = &sources.pipeline {
        text.push_str(&pipeline.render_metrics());
    }
    ([(CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text)
}

/// `GET /healthz`: the process is up and serving HTTP.
async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("receive");
        response
    }

    #[tokio::test]
    async fn serves_metrics_health_and_404() {
        let server = HttpServer::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Arc::default(),
            None,
            None,
        )
        .await
        .expect("bind");
        let metrics = get(server.local_addr(), "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"));
        assert!(metrics.contains("bosun_mqtt_connections"));
        let health = get(server.local_addr(), "/healthz").await;
        assert!(
            health.starts_with("HTTP/1.1 200") && health.ends_with("ok"),
            "{health}"
        );
        assert!(get(server.local_addr(), "/nope")
            .await
            .starts_with("HTTP/1.1 404"));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn port_in_use_names_the_address() {
        let first = HttpServer::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Arc::default(),
            None,
            None,
        )
        .await
        .expect("bind");
        let err = HttpServer::start(first.local_addr(), Arc::default(), None, None)
            .await
            .err()
            .expect("in use");
        assert!(format!("{err:#}").contains(&first.local_addr().to_string()));
        first.shutdown().await;
    }
}
