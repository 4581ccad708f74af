//! TLS connections that presented a client certificate, by serial number, so that a
//! revocation (`bosun ca revoke`) also ends the connections already using it, not only
//! the next handshakes.
//!
//! One entry per live TLS connection with a verified certificate, added after the
//! handshake and removed when the connection task ends (a guard), so the map is bounded
//! by the connection limit. The entry holds the certificate's serial and issuer Name
//! (an imported CRL lists serials of one CA, so both must match) and its CN: an X.509
//! device's client id (the hub insists on CN = client id), which is how the router
//! finds the connection to close.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mqtt::ReasonCode;
use tokio::sync::mpsc;

use crate::router::Request;
use crate::service::ServiceRequest;

/// Live certificate connections: entry id → the certificate.
#[derive(Debug, Default)]
pub(crate) struct CertConnections {
    next: AtomicU64,
    live: Mutex<HashMap<u64, LiveCert>>,
}

/// What a live connection's certificate is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveCert {
    /// Serial number, lower-case hex (`device_ca::serial_hex`).
    pub(crate) serial: String,
    /// The issuer Name, DER: what a CRL entry's CA is matched by.
    pub(crate) issuer: Box<[u8]>,
    /// Subject CN: the client id of an X.509 device.
    pub(crate) cn: Arc<str>,
}

/// What is revoked now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Revoked {
    /// `bosun ca revoke`: serials, whichever registered CA issued them.
    pub(crate) serials: HashSet<String>,
    /// Entries of imported CRLs: serial hex → the issuer Names (DER) of the CRLs that
    /// list it. A CRL covers one CA, so both must match.
    pub(crate) by_issuer: HashMap<String, HashSet<Vec<u8>>>,
}

impl Revoked {
    /// Whether `cert` is revoked.
    fn covers(&self, cert: &LiveCert) -> bool {
        self.serials.contains(&cert.serial)
            || self
                .by_issuer
                .get(&cert.serial)
                .is_some_and(|issuers| issuers.contains(&*cert.issuer))
    }

    fn is_empty(&self) -> bool {
        self.serials.is_empty() && self.by_issuer.is_empty()
    }
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
    /// Records a connection with certificate `cert`.
    pub(crate) fn track(self: &Arc<Self>, cert: LiveCert) -> Tracked {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, cert);
        Tracked {
            registry: self.clone(),
            id,
        }
    }

    /// The client ids of live connections whose certificate is in `revoked`.
    pub(crate) fn using(&self, revoked: &Revoked) -> Vec<Arc<str>> {
        if revoked.is_empty() {
            return Vec::new();
        }
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<Arc<str>> = live
            .values()
            .filter(|cert| revoked.covers(cert))
            .map(|cert| cert.cn.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Asks the router to close every live connection whose certificate is revoked
    /// (DISCONNECT 0x87 on v5). Never waits: a full router queue leaves the rest to the
    /// next reload, and is logged.
    pub(crate) fn close_revoked(&self, revoked: &Revoked, router: &mpsc::Sender<Request>) {
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

    fn cert(serial: &str, issuer: &[u8], cn: &str) -> LiveCert {
        LiveCert {
            serial: serial.into(),
            issuer: issuer.into(),
            cn: Arc::from(cn),
        }
    }

    #[test]
    fn entries_live_as_long_as_their_guard() {
        let registry = Arc::new(CertConnections::default());
        let a = registry.track(cert("0a", b"ca-1", "dev-a"));
        let b = registry.track(cert("0b", b"ca-1", "dev-b"));
        let revoked = Revoked {
            serials: ["0a".to_string()].into(),
            ..Revoked::default()
        };
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

    #[test]
    fn crl_entries_match_serial_and_issuer() {
        let registry = Arc::new(CertConnections::default());
        let _a = registry.track(cert("0a", b"ca-1", "dev-a"));
        let _b = registry.track(cert("0a", b"ca-2", "dev-b"));
        let _c = registry.track(cert("0c", b"ca-1", "dev-c"));
        let revoked = Revoked {
            by_issuer: [("0a".to_string(), [b"ca-2".to_vec()].into())].into(),
            ..Revoked::default()
        };
        // The same serial from another CA is another certificate.
        assert_eq!(registry.using(&revoked), vec![Arc::<str>::from("dev-b")]);
        assert!(registry.using(&Revoked::default()).is_empty());
    }
}
