//! Provisioning clients attested by X.509: what the Azure SDKs'
//! `ProvisioningDeviceClient.create_from_x509_certificate` presents. Client id and
//! user name are as for a symmetric-key registration (`provisioning.rs`), there is no
//! password, and the TLS handshake verified a client certificate against a registered
//! device CA (chain, validity, key usage, revocation). The broker tells us the
//! certificate's subject CN, its serial and the name of the registered CA that signed
//! it (`Credentials::client_cert_*`).
//!
//! The enrollment is found as DPS finds it: the individual enrollment of the
//! registration id if there is one (groups are then not consulted), which must be an
//! X.509 enrollment and, if it names a CA or a serial, match them; otherwise the first
//! X.509 group (by name) whose CA signed the certificate. Either way the CN must be the
//! registration id, which becomes the device id.
//!
//! Refusals (after the id scope and user name checks of `provisioning.rs`):
//!
//! | situation | code (v5 / 3.1.1) | reason |
//! |---|---|---|
//! | certificate CN is not the registration id | 0x87 / 5 | `certificate CN does not match registration id` |
//! | no X.509 enrollment matches the certificate | 0x86 / 4 | `unknown registration` |
//! | enrollment disabled | 0x8A / 5 | `enrollment disabled` |
//!
//! The identity has no expiry of its own: the broker ends it with the certificate.

use broker::auth::{Credentials, Identity, Refusal};
use store::Enrollment;

use super::provisioning::{admit_registration, Candidates};
use super::{DeviceAuth, EnrollmentRef, ProvisioningAuth};

/// What the handshake proved about a client certificate, as enrollments match it.
#[derive(Debug, Clone, Copy)]
struct Presented<'a> {
    /// The registered CA that signed it, if it is one of them (not an intermediate
    /// the client sent).
    issuer: Option<&'a str>,
    /// Its serial, lower-case hex.
    serial: Option<&'a str>,
}

impl DeviceAuth {
    /// Authenticates a registration by its verified client certificate, subject `cn`.
    pub(super) async fn authenticate_certificate_registration(
        &self,
        c: &Credentials<'_>,
        cn: &str,
        provisioning: &ProvisioningAuth,
    ) -> Result<Identity, Refusal> {
        if cn != c.client_id {
            return Err(Refusal::not_authorized(
                "certificate CN does not match registration id",
            ));
        }
        let presented = Presented {
            issuer: c.client_cert_issuer,
            serial: c.client_cert_serial,
        };
        let candidates = self.candidates(c.client_id).await?;
        let enrollment = matching_x509_enrollment(candidates, presented)
            .ok_or(Refusal::bad_credentials("unknown registration"))?;
        if enrollment.disabled {
            return Err(Refusal::banned("enrollment disabled"));
        }
        let reference = EnrollmentRef {
            kind: enrollment.kind,
            name: enrollment.name,
            by_certificate: true,
        };
        admit_registration(provisioning, c.client_id, reference, None)
    }
}

/// The X.509 enrollment the certificate matches: the individual one if it exists (and
/// then only it), otherwise the first group whose CA signed the certificate.
fn matching_x509_enrollment(candidates: Candidates, cert: Presented<'_>) -> Option<Enrollment> {
    if let Some(individual) = candidates.individual {
        let x509 = individual.x509.as_ref()?;
        let ca_ok = x509.ca.as_deref().is_none_or(|ca| cert.issuer == Some(ca));
        let serial_ok = x509
            .serial
            .as_deref()
            .is_none_or(|serial| cert.serial == Some(serial));
        return (ca_ok && serial_ok).then_some(individual);
    }
    let issuer = cert.issuer?;
    candidates.groups.into_iter().find(|group| {
        group
            .x509
            .as_ref()
            .is_some_and(|x509| x509.ca.as_deref() == Some(issuer))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use broker::auth::{Authenticator, IdentityKind};
    use store::{EnrollmentKind, EnrollmentStore, SqliteStore, Store, X509Attestation};

    use super::*;
    use crate::auth::{DeviceAcl, Registrations, DEFAULT_ID_SCOPE};

    const USER: &str = "0ne00000001/registrations/{id}/api-version=2019-03-31&ClientVersion=x";

    fn enrollment(kind: EnrollmentKind, name: &str, x509: Option<X509Attestation>) -> Enrollment {
        Enrollment {
            kind,
            name: name.into(),
            key: if x509.is_some() {
                String::new()
            } else {
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()
            },
            x509,
            initial_twin: "{}".into(),
            device_group: None,
            disabled: false,
            created_ms: 0,
        }
    }

    fn by_ca(ca: &str) -> Option<X509Attestation> {
        Some(X509Attestation {
            ca: Some(ca.into()),
            serial: None,
        })
    }

    fn store() -> Arc<dyn Store> {
        let store = SqliteStore::open_in_memory().unwrap();
        let group = EnrollmentKind::Group;
        let one = EnrollmentKind::Individual;
        let put = |e: Enrollment| store.put_enrollment(&e).unwrap();
        // A key group first (by name), which a certificate never matches.
        put(enrollment(group, "a-keys", None));
        put(enrollment(group, "line-1", by_ca("bosun")));
        let mut off = enrollment(group, "off", by_ca("acme"));
        off.disabled = true;
        put(off);
        let pinned = X509Attestation {
            ca: None,
            serial: Some("4a0b".into()),
        };
        put(enrollment(one, "solo", Some(pinned)));
        put(enrollment(one, "keyed", None));
        Arc::new(store)
    }

    async fn register(
        auth: &DeviceAuth,
        id: &str,
        cn: &str,
        issuer: Option<&str>,
        serial: &str,
    ) -> Result<Identity, Refusal> {
        let user = USER.replace("{id}", id);
        let credentials = Credentials {
            client_id: id,
            username: Some(&user),
            password: None,
            peer: SocketAddr::from(([10, 0, 0, 1], 1)),
            tls: true,
            client_cert_cn: Some(cn),
            client_cert_serial: Some(serial),
            client_cert_issuer: issuer,
        };
        auth.authenticate(&credentials).await
    }

    #[tokio::test]
    async fn certificates_match_individual_and_ca_group_enrollments() {
        let registrations = Registrations::default();
        let auth = DeviceAuth::new(store(), DeviceAcl::default(), false).with_provisioning(
            crate::auth::ProvisioningAuth {
                id_scope: DEFAULT_ID_SCOPE.into(),
                registrations: registrations.clone(),
            },
        );
        let ok = register(&auth, "dev-9", "dev-9", Some("bosun"), "01")
            .await
            .unwrap();
        assert_eq!(ok.kind, IdentityKind::Provisioning);
        assert_eq!(ok.expires_at, None);
        let reference = |kind, name: &str| EnrollmentRef {
            kind,
            name: name.into(),
            by_certificate: true,
        };
        assert_eq!(
            registrations.get("dev-9"),
            Some(reference(EnrollmentKind::Group, "line-1"))
        );
        register(&auth, "solo", "solo", Some("anyone"), "4a0b")
            .await
            .unwrap();
        assert_eq!(
            registrations.get("solo"),
            Some(reference(EnrollmentKind::Individual, "solo"))
        );

        let unknown = Refusal::bad_credentials("unknown registration");
        let cases = [
            // CN is not the registration id.
            (
                "dev-9",
                "dev-8",
                Some("bosun"),
                "01",
                Refusal::not_authorized("certificate CN does not match registration id"),
            ),
            // No group for this CA, or the CA is not a registered one.
            ("dev-9", "dev-9", Some("other"), "01", unknown),
            ("dev-9", "dev-9", None, "01", unknown),
            // The individual enrollment is pinned to another certificate.
            ("solo", "solo", Some("bosun"), "4a0c", unknown),
            // An individual key enrollment hides the groups and has no certificate.
            ("keyed", "keyed", Some("bosun"), "01", unknown),
            (
                "dev-7",
                "dev-7",
                Some("acme"),
                "01",
                Refusal::banned("enrollment disabled"),
            ),
        ];
        for (id, cn, issuer, serial, refusal) in cases {
            let got = register(&auth, id, cn, issuer, serial).await;
            assert_eq!(got.err(), Some(refusal), "{id} {cn} {issuer:?} {serial}");
        }

        // An X.509 enrollment has an empty key: a token signed with it (or with a key
        // derived from it) matches nothing.
        let user = USER.replace("{id}", "solo");
        let resource = "0ne00000001/registrations/solo";
        for key in [
            Vec::new(),
            crate::base64::decode(&crate::auth::derive_device_key("", "dev-9").unwrap()).unwrap(),
        ] {
            for id in ["solo", "dev-9"] {
                let user = user.replace("solo", id);
                let token = crate::auth::sign(&resource.replace("solo", id), 4_000_000_000, &key);
                let credentials = Credentials {
                    client_id: id,
                    username: Some(&user),
                    password: Some(token.as_bytes()),
                    peer: SocketAddr::from(([10, 0, 0, 1], 1)),
                    tls: true,
                    client_cert_cn: None,
                    client_cert_serial: None,
                    client_cert_issuer: None,
                };
                assert_eq!(
                    auth.authenticate(&credentials).await.err(),
                    Some(Refusal::bad_credentials("unknown registration")),
                    "{id}"
                );
            }
        }
    }
}
