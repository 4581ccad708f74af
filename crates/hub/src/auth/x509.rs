//! Devices that authenticate with an X.509 certificate (`authKind` `x509`).
//!
//! The TLS handshake already did the cryptography: the broker's client verifier
//! checked the chain to a registered device CA, the validity period, the key usage and
//! revocation, and hands the leaf's subject CN over as `Credentials::client_cert_cn`.
//! What is left is identity: the CN must be the client id (= device id), and the device
//! must exist, use `x509` and be enabled. A password, if any, is ignored.
//!
//! Refusals, in order (after a certificate was verified):
//!
//! | situation | code (v5 / 3.1.1) | reason |
//! |---|---|---|
//! | user name names another device | 0x86 / 4 | `user name does not match client id` |
//! | unknown device, or not a valid id | 0x86 / 4 | `unknown device` |
//! | certificate CN is not the client id | 0x87 / 5 | `certificate CN does not match client id` |
//! | device's auth kind is not `x509` (and no user name to try a token with) | 0x86 / 4 | `device does not use X.509` |
//! | device disabled | 0x8A / 5 | `device disabled` |
//!
//! A device of another kind that presents a certificate *and* a user name goes on to
//! token authentication as if it had no certificate.

use broker::auth::{Credentials, Identity, Refusal};
use store::{DeviceStatus, StoreError};

use super::{device_identity, username_names, DeviceAuth, Lookup};

/// The auth kind of devices that authenticate with a client certificate.
pub const AUTH_KIND_X509: &str = "x509";

impl DeviceAuth {
    /// Authenticates a client that presented a verified certificate with subject CN
    /// `cn`; `None` when it is not an X.509 device and should try a token instead.
    pub(super) async fn authenticate_certificate(
        &self,
        c: &Credentials<'_>,
        cn: &str,
    ) -> Option<Result<Identity, Refusal>> {
        if c.username
            .is_some_and(|user| !username_names(user, c.client_id))
        {
            return Some(Err(Refusal::bad_credentials(
                "user name does not match client id",
            )));
        }
        if crate::service::validate_id(c.client_id).is_err() {
            return Some(Err(Refusal::bad_credentials("unknown device")));
        }
        let device = match self.lookup(c.client_id).await {
            Err(refusal) => return Some(Err(refusal)),
            Ok(Lookup { device, .. }) => device,
        };
        let device = match device {
            Ok(device) => device,
            // Maybe a development-mode device registered on first use: the token path
            // decides.
            Err(StoreError::NotFound) if c.username.is_some() => return None,
            Err(_) => return Some(Err(Refusal::bad_credentials("unknown device"))),
        };
        if device.auth_kind != AUTH_KIND_X509 {
            if c.username.is_some() {
                return None;
            }
            if cn != c.client_id {
                return Some(Err(Refusal::not_authorized(
                    "certificate CN does not match client id",
                )));
            }
            return Some(Err(Refusal::bad_credentials("device does not use X.509")));
        }
        if cn != c.client_id {
            return Some(Err(Refusal::not_authorized(
                "certificate CN does not match client id",
            )));
        }
        if device.status == DeviceStatus::Disabled {
            return Some(Err(Refusal::banned("device disabled")));
        }
        Some(Ok(device_identity(
            c.client_id,
            device.group.as_deref(),
            None,
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::SocketAddr;

    use broker::auth::{Authenticator, IdentityKind};

    use super::*;
    use crate::auth::DeviceAcl;

    use crate::auth::tests::store_with;

    async fn connect(
        auth: &DeviceAuth,
        client: &str,
        username: Option<&str>,
        cn: Option<&str>,
    ) -> Result<Identity, Refusal> {
        let credentials = Credentials {
            client_id: client,
            username,
            password: Some(b"ignored"),
            peer: SocketAddr::from(([10, 0, 0, 1], 1)),
            tls: true,
            client_cert_cn: cn,
            client_cert_serial: None,
            client_cert_issuer: None,
        };
        auth.authenticate(&credentials).await
    }

    #[tokio::test]
    async fn certificate_devices_are_admitted_by_cn_only() {
        let store = store_with(&[
            ("dev-a", "x509", DeviceStatus::Enabled),
            ("dev-b", "x509", DeviceStatus::Enabled),
            ("off", "x509", DeviceStatus::Disabled),
            ("tok", "sas", DeviceStatus::Enabled),
        ]);
        let auth = DeviceAuth::new(store, DeviceAcl::default(), false);
        let ok = connect(&auth, "dev-a", None, Some("dev-a")).await.unwrap();
        assert_eq!(&*ok.id, "dev-a");
        assert_eq!(ok.kind, IdentityKind::Device);
        assert_eq!(ok.group.as_deref(), Some("g"));
        // An Azure SDK sends a user name naming the device: fine.
        assert!(connect(
            &auth,
            "dev-a",
            Some("hub/dev-a/?api-version=1"),
            Some("dev-a")
        )
        .await
        .is_ok());

        let cases = [
            (
                "dev-b",
                None,
                Some("dev-a"),
                Refusal::not_authorized("certificate CN does not match client id"),
            ),
            (
                "dev-a",
                Some("dev-b"),
                Some("dev-a"),
                Refusal::bad_credentials("user name does not match client id"),
            ),
            (
                "ghost",
                None,
                Some("ghost"),
                Refusal::bad_credentials("unknown device"),
            ),
            ("off", None, Some("off"), Refusal::banned("device disabled")),
            (
                "tok",
                None,
                Some("tok"),
                Refusal::bad_credentials("device does not use X.509"),
            ),
            // No certificate: an x509 device has nothing else to authenticate with.
            (
                "dev-a",
                None,
                None,
                Refusal::not_authorized("no credentials"),
            ),
            (
                "dev-a",
                Some("dev-a"),
                None,
                Refusal::bad_credentials("device does not use SAS"),
            ),
        ];
        for (client, username, cn, refusal) in cases {
            let got = connect(&auth, client, username, cn).await;
            assert_eq!(got.err(), Some(refusal), "{client} {username:?} {cn:?}");
        }
    }
}
