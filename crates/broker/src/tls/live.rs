//! TLS connections that presented a client certificate, by serial number, so that a
//! revocation (`bosun ca revoke`) also ends the connections already using it, not only
//! the next handshakes.
//!
//! One entry per live TLS connection with a verified certificate, added after the
//! handshake and removed when the connection task ends (a guard), so the map is bounded
//! by the connection limit. The entry holds the certificate's CN: an X.509 device's
//! client id (the hub insists on CN = client id), which is how the router finds the
//! connection to close.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mqtt::ReasonCode;
use tokio::sync::mpsc;

use crate::router::Request;
use crate::service::ServiceRequest;

/// Live certificate connections: entry id → (serial, CN).
#[derive(Debug, Default)]
pub(crate) struct CertConnections {
    next: AtomicU64,
    live: Mutex<HashMap<u64, (String, Arc<str>)>>,
}

/// Removes its entry when the connection ends.
#[derive(Debug)]
pub(crate) struct Tracked {
    registry: Arc<CertConnections>,
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.registry
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl CertConnections {
    /// Records a connection with a certificate of `serial` (hex) and subject `cn`.
    pub(crate) fn track(self: &Arc<Self>, serial: String, cn: Arc<str>) -> Tracked {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (serial, cn));
        Tracked {
            registry: self.clone(),
            id,
        }
    }

    /// The client ids of live connections whose certificate serial is in `revoked`.
    pub(crate) fn using(&self, revoked: &HashSet<String>) -> Vec<Arc<str>> {
        if revoked.is_empty() {
            return Vec::new();
        }
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<Arc<str>> = live
            .values()
            .filter(|(serial, _)| revoked.contains(serial))
            .map(|(_, cn)| cn.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Asks the router to close every live connection whose certificate is revoked
    /// (DISCONNECT 0x87 on v5). Never waits: a full router queue leaves the rest to the
    /// next reload, and is logged.
    pub(crate) fn close_revoked(&self, revoked: &HashSet<String>, router: &mpsc::Sender<Request>) {
        for client_id in self.using(revoked) {
            tracing::info!(client = %client_id, "closing a connection whose client certificate was revoked");
            let request = ServiceRequest::Disconnect {
                client_id,
                code: ReasonCode::NOT_AUTHORIZED,
            };
            if router
                .try_send(Request::Service(Box::new(request)))
                .is_err()
            {
                tracing::warn!("router busy: a connection with a revoked certificate stays open until the next reload");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_as_long_as_their_guard() {
        let registry = Arc::new(CertConnections::default());
        let a = registry.track("0a".into(), Arc::from("dev-a"));
        let b = registry.track("0b".into(), Arc::from("dev-b"));
        let revoked: HashSet<String> = ["0a".to_string()].into();
        assert_eq!(registry.using(&revoked), vec![Arc::<str>::from("dev-a")]);
        drop(a);
        assert!(registry.using(&revoked).is_empty());
        drop(b);
        assert!(registry
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty());
    }
}
