//! Accepts TCP connections and spawns one task each, under a connection limit.
//!
//! The limit is a semaphore whose permit moves into the connection task, so a
//! connection over the limit waits in the kernel's backlog instead of costing memory
//! here; accept errors (such as running out of descriptors) back off exponentially
//! instead of spinning.
//!
//! The MQTT and MQTT-over-TLS listeners are two instances of this loop sharing the
//! semaphore and the stop signal. A TLS listener only picks the task to spawn: the TLS
//! handshake runs in that task, so a slow client never delays the next accept.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::connection::{self, Shared};
use crate::tls::TlsState;

/// Longest pause after repeated accept errors.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts until `stop` flips to true; with `tls`, each connection starts with a TLS
/// handshake using the certificate current at that moment.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    tls: Option<Arc<TlsState>>,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                // MQTT packets are small and latency matters more than segment count.
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                // Two spawn sites, so a plain connection's task is sized for TCP only.
                match &tls {
                    None => {
                        tokio::spawn(async move {
                            connection::serve(stream, peer, shared).await;
                            drop(permit);
                        });
                    }
                    Some(tls) => {
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            connection::serve_tls(stream, peer, shared, tls).await;
                            drop(permit);
                        });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}
