//! Authentication of provisioning clients: devices that connect to register through
//! the Device Provisioning Service protocol (DPS) before they have a device identity.
//!
//! What the Azure SDKs' `ProvisioningDeviceClient` presents (symmetric-key
//! attestation): client id = registration id, user name
//! `{id scope}/registrations/{registration id}/api-version=2019-03-31&ClientVersion=…`,
//! password a SAS token for `{id scope}/registrations/{registration id}` with
//! `skn=registration`, signed with the device key: the individual enrollment's key, or
//! for a group enrollment the key derived from the group key by [`derive_device_key`].
//!
//! The enrollment is found the way DPS finds it: an individual enrollment for the
//! registration id first, otherwise the group enrollment whose derived key verifies
//! the signature. An accepted client is an [`IdentityKind::Provisioning`] identity,
//! which may only publish under `$dps/registrations/` and subscribe under
//! `$dps/registrations/res/`. Which enrollment it matched is recorded in
//! [`Registrations`], where the hub's provisioning service reads it.
//!
//! Refusals (after the user name is recognised as a registration):
//!
//! | situation | code (v5 / 3.1.1) | reason |
//! |---|---|---|
//! | id scope is not the hub's | 0x86 / 4 | `unknown id scope` |
//! | registration id is not the client id | 0x86 / 4 | `user name does not match client id` |
//! | registration id not usable as a device id | 0x86 / 4 | `unknown registration` |
//! | password is not a SAS token | 0x86 / 4 | `malformed token` |
//! | no enrollment's key verifies the signature | 0x86 / 4 | `unknown registration` |
//! | token for another registration (`sr`) | 0x87 / 5 | `resource mismatch` |
//! | `se` has passed | 0x86 / 4 | `token expired` |
//! | enrollment disabled | 0x8A / 5 | `enrollment disabled` |
//!
//! A client that presents a verified client certificate and no password is attested
//! by X.509 instead (`x509_registration.rs`): it records the same [`EnrollmentRef`].
//! Enrollments of the other attestation never match (an X.509 enrollment has no key
//! a token could be checked against).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use broker::auth::{Credentials, Identity, IdentityKind, Refusal};
use ring::hmac;
use store::{Enrollment, EnrollmentKind, StoreError};

use super::{DeviceAuth, KeyError, SasToken};

/// The DPS id scope a hub answers to when none is configured.
pub const DEFAULT_ID_SCOPE: &str = "0ne00000001";

/// The topic prefix a provisioning client may publish under.
const PUBLISH_PREFIX: &str = "$dps/registrations/";
/// The topic filter under which a provisioning client may subscribe (answers).
const ANSWERS: &str = "$dps/registrations/res";

/// Most provisioning clients connected at once; more are refused until some leave.
pub const MAX_REGISTRATIONS: usize = 65_536;
/// A record older than this is dropped when the table is full (its disconnect was
/// lost), and the hub no longer serves it.
const REGISTRATION_TTL: Duration = Duration::from_secs(600);

/// The device key for `registration_id` in a group enrollment with `group_key`: the
/// base64 of HMAC-SHA256(key = base64-decoded group key, message = registration id),
/// the Azure convention (what `az iot dps enrollment-group compute-device-key` does).
pub fn derive_device_key(group_key: &str, registration_id: &str) -> Result<String, KeyError> {
    let key = crate::base64::decode(group_key).map_err(|_| KeyError::NotBase64)?;
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        registration_id.as_bytes(),
    );
    Ok(crate::base64::encode(tag.as_ref()))
}

/// A provisioning user name, split: `{id scope}/registrations/{registration id}/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationUser<'a> {
    /// The DPS id scope.
    pub id_scope: &'a str,
    /// The registration id.
    pub registration_id: &'a str,
}

/// Parses a user name as a provisioning client's, or `None` when it is not one (then
/// it is a device's or a service's). The query part after the registration id (api
/// version, client version) is not checked: SDK versions differ.
pub fn parse_registration_user(username: &str) -> Option<RegistrationUser<'_>> {
    let (id_scope, rest) = username.split_once('/')?;
    let rest = rest.strip_prefix("registrations/")?;
    let (registration_id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query_like = tail.is_empty() || tail.starts_with("api-version=") || tail.starts_with('?');
    (!id_scope.is_empty() && !registration_id.is_empty() && query_like).then_some(
        RegistrationUser {
            id_scope,
            registration_id,
        },
    )
}

/// Names an enrollment: what a registration was authenticated against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnrollmentRef {
    /// Individual or group.
    pub kind: EnrollmentKind,
    /// The registration id or the group name.
    pub name: String,
    /// The client proved itself with a certificate (an X.509 enrollment), not a key:
    /// the hub assigns only if the enrollment is still of that attestation.
    pub by_certificate: bool,
}

/// The provisioning clients connected now, by client id (= registration id), with the
/// enrollment each authenticated against. Written by [`DeviceAuth`] at CONNECT, read
/// and cleared by the hub (on publishes and disconnects). Cheap to clone.
#[derive(Clone, Default)]
pub struct Registrations {
    inner: Arc<Mutex<HashMap<String, (EnrollmentRef, Instant)>>>,
}

impl std::fmt::Debug for Registrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrations")
            .field("connected", &self.lock().len())
            .finish()
    }
}

impl Registrations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (EnrollmentRef, Instant)>> {
        // The map holds no invariant a panic elsewhere could break halfway.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an authenticated registration; `false` when the table is full.
    fn insert(&self, client_id: &str, enrollment: EnrollmentRef) -> bool {
        let mut map = self.lock();
        if map.len() >= MAX_REGISTRATIONS && !map.contains_key(client_id) {
            let now = Instant::now();
            map.retain(|_, (_, at)| now.duration_since(*at) < REGISTRATION_TTL);
            if map.len() >= MAX_REGISTRATIONS {
                return false;
            }
        }
        map.insert(client_id.to_string(), (enrollment, Instant::now()));
        true
    }

    /// The enrollment a connected provisioning client authenticated against.
    pub fn get(&self, client_id: &str) -> Option<EnrollmentRef> {
        self.lock().get(client_id).map(|(e, _)| e.clone())
    }

    /// Forgets a client (it disconnected, or authenticated as something else); whether
    /// it was a provisioning client.
    pub fn remove(&self, client_id: &str) -> bool {
        self.lock().remove(client_id).is_some()
    }
}

/// What provisioning authentication needs: the hub's id scope and where accepted
/// registrations are recorded.
#[derive(Debug, Clone)]
pub struct ProvisioningAuth {
    /// The id scope clients must name.
    pub id_scope: String,
    /// Accepted registrations, shared with the hub.
    pub registrations: Registrations,
}

/// May a provisioning client publish to `topic`?
pub fn may_publish_registration(topic: &str) -> bool {
    topic.starts_with(PUBLISH_PREFIX)
}

/// May a provisioning client subscribe to `filter` (valid, not shared)? Only filters
/// inside `$dps/registrations/res/`, where its answers arrive.
pub fn may_subscribe_registration(filter: &str) -> bool {
    mqtt::topic::validate_topic_filter(filter).is_ok()
        && (filter == ANSWERS
            || filter
                .strip_prefix(ANSWERS)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// The enrollments a registration id could match, read on the blocking pool.
pub(super) struct Candidates {
    /// The individual enrollment of that registration id.
    pub(super) individual: Option<Enrollment>,
    /// Every group, when there is no individual enrollment.
    pub(super) groups: Vec<Enrollment>,
}

/// Records an accepted registration and makes its identity.
pub(super) fn admit_registration(
    provisioning: &ProvisioningAuth,
    client_id: &str,
    reference: EnrollmentRef,
    expires_at: Option<SystemTime>,
) -> Result<Identity, Refusal> {
    if !provisioning.registrations.insert(client_id, reference) {
        return Err(Refusal {
            code: mqtt::ReasonCode::SERVER_BUSY,
            reason: "too many registrations",
        });
    }
    Ok(Identity {
        id: Arc::from(client_id),
        kind: IdentityKind::Provisioning,
        group: None,
        expires_at,
    })
}

impl DeviceAuth {
    /// Authenticates a provisioning client (see the module documentation).
    pub(super) async fn authenticate_registration(
        &self,
        c: &Credentials<'_>,
        user: RegistrationUser<'_>,
        provisioning: &ProvisioningAuth,
    ) -> Result<Identity, Refusal> {
        if user.id_scope != provisioning.id_scope {
            return Err(Refusal::bad_credentials("unknown id scope"));
        }
        if user.registration_id != c.client_id {
            return Err(Refusal::bad_credentials(
                "user name does not match client id",
            ));
        }
        if crate::service::validate_id(c.client_id).is_err() {
            return Err(Refusal::bad_credentials("unknown registration"));
        }
        if let (None, Some(cn)) = (c.password, c.client_cert_cn) {
            return self
                .authenticate_certificate_registration(c, cn, provisioning)
                .await;
        }
        let password = c.password.and_then(|p| std::str::from_utf8(p).ok());
        let token = password
            .and_then(|p| SasToken::parse(p).ok())
            .ok_or(Refusal::bad_credentials("malformed token"))?;
        let candidates = self.candidates(c.client_id).await?;
        let enrollment = matching_enrollment(candidates, c.client_id, &token)
            .ok_or(Refusal::bad_credentials("unknown registration"))?;
        let expected = format!("{}/registrations/{}", user.id_scope, c.client_id);
        if token.resource().ok().as_deref() != Some(expected.as_str()) {
            return Err(Refusal::not_authorized("resource mismatch"));
        }
        let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(token.expiry()));
        if expires_at.is_none_or(|at| at <= SystemTime::now()) {
            return Err(Refusal::bad_credentials("token expired"));
        }
        if enrollment.disabled {
            return Err(Refusal::banned("enrollment disabled"));
        }
        let reference = EnrollmentRef {
            kind: enrollment.kind,
            name: enrollment.name,
            by_certificate: false,
        };
        admit_registration(provisioning, c.client_id, reference, expires_at)
    }

    /// Reads the individual enrollment for `registration_id` and every group.
    pub(super) async fn candidates(&self, registration_id: &str) -> Result<Candidates, Refusal> {
        let store = self.store.clone();
        let id = registration_id.to_string();
        let unavailable = Refusal {
            code: mqtt::ReasonCode::SERVER_UNAVAILABLE,
            reason: "store unavailable",
        };
        let read = tokio::task::spawn_blocking(move || {
            let individual = match store.enrollment(EnrollmentKind::Individual, &id) {
                Ok(e) => Some(e),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e),
            };
            let groups = if individual.is_some() {
                Vec::new()
            } else {
                store.enrollments(Some(EnrollmentKind::Group))?
            };
            Ok(Candidates { individual, groups })
        })
        .await;
        match read {
            Ok(Ok(candidates)) => Ok(candidates),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot look up enrollments");
                Err(unavailable)
            }
            Err(_) => Err(unavailable),
        }
    }
}

/// The enrollment whose key signed `token`: the individual one if it exists (a group
/// is then not consulted, as in DPS), otherwise the first group whose derived key
/// verifies. X.509 enrollments have no key and never match here (their empty key
/// would otherwise be one anybody can sign with).
fn matching_enrollment(
    candidates: Candidates,
    registration_id: &str,
    token: &SasToken<'_>,
) -> Option<Enrollment> {
    let verifies = |key: &str| {
        crate::base64::decode(key)
            .ok()
            .is_some_and(|k| token.verify(&k))
    };
    if let Some(individual) = candidates.individual {
        let keyed = individual.x509.is_none();
        return (keyed && verifies(&individual.key)).then_some(individual);
    }
    candidates.groups.into_iter().find(|group| {
        group.x509.is_none()
            && derive_device_key(&group.key, registration_id).is_ok_and(|key| verifies(&key))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::DeviceAcl;
    use broker::auth::Authenticator;
    use std::net::SocketAddr;
    use store::{EnrollmentStore, SqliteStore, Store};

    const GROUP_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    /// Computed independently with Python's `hmac` and `base64` for `GROUP_KEY` and
    /// registration id `sensor-042`.
    const DERIVED: &str = "YWGfx6psUG2GN+2JfRsJbaVugWxYb8ZAofr1S3X3L6w=";
    /// The password the Python SDK makes for `sensor-042` in scope `0ne00000001` with
    /// `DERIVED` and expiry 2000000000 (computed with Python's hmac and urllib).
    const SDK_PASSWORD: &str = "SharedAccessSignature sr=0ne00000001%2Fregistrations%2Fsensor-042&sig=LJvK92PhIyNWrN18eWLMrKC9qTN8Z64nuCwNOZBlD1Y%3D&se=2000000000&skn=registration";
    const SDK_USER: &str = "0ne00000001/registrations/sensor-042/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-devicesdk%2F2.14.0";

    #[test]
    fn group_keys_derive_device_keys_the_azure_way() {
        assert_eq!(derive_device_key(GROUP_KEY, "sensor-042").unwrap(), DERIVED);
        assert_eq!(
            derive_device_key("not base64!", "x"),
            Err(KeyError::NotBase64)
        );
    }

    #[test]
    fn registration_user_names_as_the_sdk_sends_them() {
        assert_eq!(
            parse_registration_user(SDK_USER),
            Some(RegistrationUser {
                id_scope: "0ne00000001",
                registration_id: "sensor-042",
            })
        );
        for user in [
            "hub/d1/?api-version=2021-04-12",
            "d1",
            "/registrations/x/api-version=1",
            "scope/registrations//api-version=1",
            "scope/registrations/x/other",
        ] {
            assert_eq!(parse_registration_user(user), None, "{user}");
        }
    }

    #[test]
    fn provisioning_clients_reach_only_their_registration_topics() {
        assert!(may_publish_registration(
            "$dps/registrations/PUT/iotdps-register/?$rid=1"
        ));
        assert!(!may_publish_registration("devices/x/messages/events/"));
        assert!(!may_publish_registration("$iothub/twin/GET/?$rid=1"));
        for filter in [
            "$dps/registrations/res/#",
            "$dps/registrations/res",
            "$dps/registrations/res/+/x",
        ] {
            assert!(may_subscribe_registration(filter), "{filter}");
        }
        for filter in [
            "#",
            "$dps/#",
            "$dps/registrations/#",
            "$dps/registrations/resx",
            "$iothub/twin/res/#",
        ] {
            assert!(!may_subscribe_registration(filter), "{filter}");
        }
    }

    fn store(disabled: bool) -> Arc<dyn Store> {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .put_enrollment(&Enrollment {
                kind: EnrollmentKind::Group,
                name: "line-1".into(),
                key: GROUP_KEY.into(),
                x509: None,
                initial_twin: "{}".into(),
                device_group: None,
                disabled,
                created_ms: 0,
            })
            .unwrap();
        Arc::new(store)
    }

    async fn connect(auth: &DeviceAuth, client: &str, password: &str) -> Result<Identity, Refusal> {
        let credentials = Credentials {
            client_id: client,
            username: Some(SDK_USER),
            password: Some(password.as_bytes()),
            peer: SocketAddr::from(([10, 0, 0, 1], 1)),
            tls: true,
            client_cert_cn: None,
            client_cert_serial: None,
            client_cert_issuer: None,
        };
        auth.authenticate(&credentials).await
    }

    fn auth(store: Arc<dyn Store>, registrations: &Registrations) -> DeviceAuth {
        DeviceAuth::new(store, DeviceAcl::default(), false).with_provisioning(ProvisioningAuth {
            id_scope: DEFAULT_ID_SCOPE.into(),
            registrations: registrations.clone(),
        })
    }

    #[tokio::test]
    async fn the_sdk_password_is_accepted_for_a_group_enrollment() {
        let registrations = Registrations::default();
        let auth = auth(store(false), &registrations);
        let identity = connect(&auth, "sensor-042", SDK_PASSWORD).await.unwrap();
        assert_eq!(identity.kind, IdentityKind::Provisioning);
        assert_eq!(&*identity.id, "sensor-042");
        assert_eq!(
            registrations.get("sensor-042"),
            Some(EnrollmentRef {
                kind: EnrollmentKind::Group,
                name: "line-1".into(),
                by_certificate: false,
            })
        );
        assert!(broker::auth::Authorizer::may_publish(
            &auth,
            &identity,
            "$dps/registrations/PUT/iotdps-register/?$rid=1"
        ));
        assert!(!broker::auth::Authorizer::may_publish(
            &auth,
            &identity,
            "devices/sensor-042/messages/events/"
        ));
        // Another client id, a wrong key, a disabled group.
        assert_eq!(
            connect(&auth, "sensor-043", SDK_PASSWORD).await.err(),
            Some(Refusal::bad_credentials(
                "user name does not match client id"
            ))
        );
        let forged = SDK_PASSWORD.replace("LJvK", "LJvL");
        assert_eq!(
            connect(&auth, "sensor-042", &forged).await.err(),
            Some(Refusal::bad_credentials("unknown registration"))
        );
        let off = self::auth(store(true), &registrations);
        assert_eq!(
            connect(&off, "sensor-042", SDK_PASSWORD).await.err(),
            Some(Refusal::banned("enrollment disabled"))
        );
    }
}
