//! Device authentication and authorization for the broker: the hub's implementation of
//! [`broker::auth::Authenticator`] and [`broker::auth::Authorizer`].
//!
//! - `sas`: Azure IoT Hub SAS tokens (parse, verify, sign).
//! - `acl`: the topics a device may publish and subscribe to.
//! - `keys`: generating and checking symmetric device keys.
//! - `x509`: devices that authenticate with a verified client certificate.
//! - `provisioning`: DPS registration clients (enrollments, derived keys, their ACL).
//! - `x509_registration`: DPS registration clients that present a certificate.
//! - here: [`DeviceAuth`], which looks a connecting device up in the store (on the
//!   blocking pool: SQLite) and checks what it presented.
//!
//! What a device presents, as the Azure SDKs send it: client id = device id, user name
//! `{hub host}/{device id}/?api-version=…` (or just the device id), password a SAS token
//! for `{host}/devices/{device id}` signed with the device's primary or secondary key.
//!
//! Refusals, in the order checked (the first that applies):
//!
//! | situation | code (v5 / 3.1.1) | reason (log, metric) |
//! |---|---|---|
//! | no user name | 0x87 / 5 | `no credentials` |
//! | user name names another device | 0x86 / 4 | `user name does not match client id` |
//! | no such device (or not a valid id) | 0x86 / 4 | `unknown device` |
//! | device's auth kind is not `sas` | 0x86 / 4 | `device does not use SAS` |
//! | password is not a SAS token | 0x86 / 4 | `malformed token` |
//! | signature matches neither key | 0x86 / 4 | `bad signature` |
//! | token for another device (`sr`) | 0x87 / 5 | `resource mismatch` |
//! | `se` has passed | 0x86 / 4 | `token expired` |
//! | device disabled | 0x8A / 5 | `device disabled` |
//!
//! A client with a verified certificate (`Credentials::client_cert_cn`) is checked by
//! `x509.rs` first (its own table there); a device of another kind that also sent a
//! user name continues here.
//!
//! "Unknown device" and "bad signature" get the same code so the answer does not tell
//! which device ids exist; only a caller holding a valid signature learns more (that
//! its device is disabled, or that its token names another device).
//!
//! Development mode (`lenient_loopback`): from a loopback address, an unknown device or
//! one with auth kind `none` is admitted whatever it presents (the quick start's SDK
//! sample has no real key, and `--dev` registers devices on first use). It is still a
//! device: the ACL applies. A device with keys must present a valid token even then.

mod acl;
mod keys;
mod provisioning;
mod sas;
mod x509;
mod x509_registration;

pub use acl::{AclError, DeviceAcl, DEVICE_PUBLISH, DEVICE_SUBSCRIBE};
pub use keys::{check_key, generate_key, KeyError};
pub use provisioning::{
    derive_device_key, may_publish_registration, may_subscribe_registration,
    parse_registration_user, EnrollmentRef, ProvisioningAuth, RegistrationUser, Registrations,
    DEFAULT_ID_SCOPE, MAX_REGISTRATIONS,
};
pub use sas::{percent_decode, percent_encode, sign, SasError, SasToken, MAX_TOKEN_LEN};
pub use x509::AUTH_KIND_X509;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker::auth::{
    default_decision, AuthFuture, Authenticator, Authorizer, Credentials, Identity, IdentityKind,
    Refusal,
};
use store::{DeviceStatus, Store, StoreError, SymmetricKeys};

/// The auth kind of devices that authenticate with SAS tokens.
pub const AUTH_KIND_SAS: &str = "sas";
/// The auth kind of devices with no credentials (development hubs).
pub const AUTH_KIND_NONE: &str = "none";

/// Device authentication over the store, and the device ACL.
pub struct DeviceAuth {
    store: Arc<dyn Store>,
    acl: DeviceAcl,
    lenient_loopback: bool,
    /// Provisioning (DPS) clients are accepted only when configured.
    provisioning: Option<ProvisioningAuth>,
}

impl std::fmt::Debug for DeviceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuth")
            .field("acl", &self.acl)
            .field("lenient_loopback", &self.lenient_loopback)
            .finish_non_exhaustive()
    }
}

/// What the store knows about a connecting device.
struct Lookup {
    device: Result<store::Device, StoreError>,
    keys: Option<SymmetricKeys>,
}

impl DeviceAuth {
    /// Authenticates devices registered in `store` and confines them with `acl`.
    /// `lenient_loopback` is development mode (see the module documentation).
    pub fn new(store: Arc<dyn Store>, acl: DeviceAcl, lenient_loopback: bool) -> DeviceAuth {
        DeviceAuth {
            store,
            acl,
            lenient_loopback,
            provisioning: None,
        }
    }

    /// Also accepts provisioning clients (DPS registrations, see `provisioning.rs`).
    pub fn with_provisioning(mut self, provisioning: ProvisioningAuth) -> DeviceAuth {
        self.provisioning = Some(provisioning);
        self
    }

    /// Whether a device with this id is registered: a service must not connect under a
    /// device's client id (it would take over the device's session and be treated as
    /// the device by the hub). A store failure answers `true` (fail closed).
    pub async fn is_device(&self, id: &str) -> bool {
        if id.is_empty() {
            return false;
        }
        let store = self.store.clone();
        let id = id.to_string();
        match tokio::task::spawn_blocking(move || store.device(&id)).await {
            Ok(Err(StoreError::NotFound)) => false,
            Ok(_) | Err(_) => true,
        }
    }

    /// Reads the device and its keys on the blocking pool.
    async fn lookup(&self, id: &str) -> Result<Lookup, Refusal> {
        let store = self.store.clone();
        let id = id.to_string();
        let looked_up = tokio::task::spawn_blocking(move || {
            let device = store.device(&id);
            let keys = match &device {
                Ok(d) if d.auth_kind == AUTH_KIND_SAS => store.keys(&id).ok(),
                _ => None,
            };
            Lookup { device, keys }
        })
        .await;
        match looked_up {
            Ok(Lookup {
                device: Err(StoreError::Backend(e)),
                ..
            }) => {
                tracing::warn!(error = %e, "cannot look up a connecting device");
                Err(Refusal {
                    code: mqtt::ReasonCode::SERVER_UNAVAILABLE,
                    reason: "store unavailable",
                })
            }
            Ok(lookup) => Ok(lookup),
            Err(_) => Err(Refusal {
                code: mqtt::ReasonCode::SERVER_UNAVAILABLE,
                reason: "store unavailable",
            }),
        }
    }

    async fn authenticate_device(&self, c: &Credentials<'_>) -> Result<Identity, Refusal> {
        // A verified client certificate: X.509 devices (x509.rs).
        if let Some(cn) = c.client_cert_cn {
            if let Some(answer) = self.authenticate_certificate(c, cn).await {
                return answer;
            }
        }
        let Some(username) = c.username else {
            return Err(Refusal::not_authorized("no credentials"));
        };
        if !username_names(username, c.client_id) {
            return Err(Refusal::bad_credentials(
                "user name does not match client id",
            ));
        }
        let lenient = self.lenient_loopback && is_loopback(c.peer);
        if crate::service::validate_id(c.client_id).is_err() {
            return Err(Refusal::bad_credentials("unknown device"));
        }
        let Lookup { device, keys } = self.lookup(c.client_id).await?;
        let device = match device {
            Ok(device) => device,
            Err(_) if lenient => return Ok(device_identity(c.client_id, None, None)),
            Err(_) => return Err(Refusal::bad_credentials("unknown device")),
        };
        if device.auth_kind != AUTH_KIND_SAS {
            if !(lenient && device.auth_kind == AUTH_KIND_NONE) {
                return Err(Refusal::bad_credentials("device does not use SAS"));
            }
            if device.status == DeviceStatus::Disabled {
                return Err(Refusal::banned("device disabled"));
            }
            return Ok(device_identity(c.client_id, device.group.as_deref(), None));
        }
        let password = c.password.and_then(|p| std::str::from_utf8(p).ok());
        let token = password
            .and_then(|p| SasToken::parse(p).ok())
            .ok_or(Refusal::bad_credentials("malformed token"))?;
        let verified = keys.is_some_and(|k| {
            [&k.primary, &k.secondary]
                .iter()
                .filter_map(|key| crate::base64::decode(key).ok())
                .any(|key| token.verify(&key))
        });
        if !verified {
            return Err(Refusal::bad_credentials("bad signature"));
        }
        if token.device_id().ok().as_deref() != Some(c.client_id) {
            return Err(Refusal::not_authorized("resource mismatch"));
        }
        let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(token.expiry()));
        if expires_at.is_none_or(|at| at <= SystemTime::now()) {
            return Err(Refusal::bad_credentials("token expired"));
        }
        if device.status == DeviceStatus::Disabled {
            return Err(Refusal::banned("device disabled"));
        }
        Ok(device_identity(
            c.client_id,
            device.group.as_deref(),
            expires_at,
        ))
    }
}

/// A device identity.
fn device_identity(id: &str, group: Option<&str>, expires_at: Option<SystemTime>) -> Identity {
    Identity {
        id: Arc::from(id),
        kind: IdentityKind::Device,
        group: group.map(Arc::from),
        expires_at,
    }
}

fn is_loopback(peer: SocketAddr) -> bool {
    peer.ip().is_loopback()
}

/// Whether a user name names the connecting device: the device id itself, or the Azure
/// SDKs' `{host}/{device id}/?api-version=…` (with or without the query part; the host
/// is not checked, a hub has several names).
pub fn username_names(username: &str, client_id: &str) -> bool {
    if client_id.is_empty() {
        return false;
    }
    if username == client_id {
        return true;
    }
    let Some((host, rest)) = username.split_once('/') else {
        return false;
    };
    let (device, tail) = rest.split_once('/').unwrap_or((rest, ""));
    !host.is_empty() && device == client_id && (tail.is_empty() || tail.starts_with('?'))
}

impl Authenticator for DeviceAuth {
    fn authenticate<'a>(&'a self, credentials: &'a Credentials<'a>) -> AuthFuture<'a> {
        let Some(provisioning) = &self.provisioning else {
            return Box::pin(self.authenticate_device(credentials));
        };
        if let Some(user) = credentials.username.and_then(parse_registration_user) {
            return Box::pin(self.authenticate_registration(credentials, user, provisioning));
        }
        Box::pin(async move {
            let identity = self.authenticate_device(credentials).await?;
            // The device takes the client id over: a registration that used it before
            // is over.
            provisioning.registrations.remove(credentials.client_id);
            Ok(identity)
        })
    }
}

impl Authorizer for DeviceAuth {
    fn may_publish(&self, identity: &Identity, topic: &str) -> bool {
        match identity.kind {
            IdentityKind::Device => {
                self.acl
                    .may_publish(&identity.id, identity.group.as_deref(), topic)
            }
            IdentityKind::Provisioning => may_publish_registration(topic),
            _ => default_decision(identity, true),
        }
    }

    fn may_subscribe(&self, identity: &Identity, filter: &str) -> bool {
        match identity.kind {
            IdentityKind::Device => {
                self.acl
                    .may_subscribe(&identity.id, identity.group.as_deref(), filter)
            }
            IdentityKind::Provisioning => may_subscribe_registration(filter),
            _ => default_decision(identity, false),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use store::{ConnectionState, CredentialStore, Device, Registry, SqliteStore};

    const KEY_1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const KEY_2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    const OTHER: &str = "b3RoZXIga2V5IG9mIHRoaXJ0eS10d28gYnl0ZXMhISE=";

    /// A store holding `devices`; `sas` ones get known keys. Shared with `x509`'s tests.
    pub(super) fn store_with(devices: &[(&str, &str, DeviceStatus)]) -> Arc<dyn Store> {
        let store = SqliteStore::open_in_memory().unwrap();
        for (id, kind, status) in devices {
            store
                .create_device(&Device {
                    id: (*id).into(),
                    status: *status,
                    auth_kind: (*kind).into(),
                    group: Some("g".into()),
                    created_ms: 0,
                    last_activity_ms: None,
                    connection: ConnectionState::Disconnected,
                    connection_reason: None,
                    connection_changed_ms: None,
                })
                .unwrap();
            if *kind == AUTH_KIND_SAS {
                let keys = SymmetricKeys {
                    primary: KEY_1.into(),
                    secondary: KEY_2.into(),
                };
                store.set_keys(id, &keys).unwrap();
            }
        }
        Arc::new(store)
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(device: &str, key: &str, expiry: u64) -> String {
        sign(
            &format!("hub.example/devices/{device}"),
            expiry,
            &crate::base64::decode(key).unwrap(),
        )
    }

    async fn connect(
        auth: &DeviceAuth,
        client: &str,
        username: Option<&str>,
        password: Option<&str>,
        peer: [u8; 4],
    ) -> Result<Identity, Refusal> {
        let credentials = Credentials {
            client_id: client,
            username,
            password: password.map(str::as_bytes),
            peer: SocketAddr::from((peer, 1)),
            tls: true,
            client_cert_cn: None,
            client_cert_serial: None,
            client_cert_issuer: None,
        };
        auth.authenticate(&credentials).await
    }

    const REMOTE: [u8; 4] = [10, 0, 0, 1];
    const LOCAL: [u8; 4] = [127, 0, 0, 1];

    #[tokio::test]
    async fn the_refusal_matrix() {
        let store = store_with(&[
            ("d1", "sas", DeviceStatus::Enabled),
            ("d2", "sas", DeviceStatus::Enabled),
            ("off", "sas", DeviceStatus::Disabled),
            ("plain", "none", DeviceStatus::Enabled),
        ]);
        let auth = DeviceAuth::new(store, DeviceAcl::default(), false);
        let later = now() + 3600;
        let user = "hub.example/d1/?api-version=2021-04-12";
        let good = token("d1", KEY_1, later);
        let ok = connect(&auth, "d1", Some(user), Some(&good), REMOTE)
            .await
            .unwrap();
        assert_eq!(&*ok.id, "d1");
        assert_eq!(ok.kind, IdentityKind::Device);
        assert_eq!(ok.group.as_deref(), Some("g"));
        assert_eq!(ok.expires_at, Some(UNIX_EPOCH + Duration::from_secs(later)));
        // The secondary key works too, and so does a plain user name.
        let second = token("d1", KEY_2, later);
        assert!(connect(&auth, "d1", Some("d1"), Some(&second), REMOTE)
            .await
            .is_ok());

        let cases: Vec<(&str, Option<&str>, Option<String>, Refusal)> = vec![
            (
                "d1",
                None,
                Some(good.clone()),
                Refusal::not_authorized("no credentials"),
            ),
            (
                "d1",
                Some("hub.example/d2/?api-version=1"),
                Some(good.clone()),
                Refusal::bad_credentials("user name does not match client id"),
            ),
            (
                "ghost",
                Some("ghost"),
                Some(token("ghost", KEY_1, later)),
                Refusal::bad_credentials("unknown device"),
            ),
            (
                "a/b",
                Some("a/b"),
                Some(good.clone()),
                Refusal::bad_credentials("unknown device"),
            ),
            (
                "plain",
                Some("plain"),
                Some(token("plain", KEY_1, later)),
                Refusal::bad_credentials("device does not use SAS"),
            ),
            (
                "d1",
                Some(user),
                None,
                Refusal::bad_credentials("malformed token"),
            ),
            (
                "d1",
                Some(user),
                Some("hunter2".into()),
                Refusal::bad_credentials("malformed token"),
            ),
            (
                "d1",
                Some(user),
                Some(token("d1", OTHER, later)),
                Refusal::bad_credentials("bad signature"),
            ),
            (
                "d1",
                Some(user),
                Some(token("d2", KEY_2, later)),
                Refusal::not_authorized("resource mismatch"),
            ),
            (
                "d1",
                Some(user),
                Some(token("d1", KEY_1, now() - 1)),
                Refusal::bad_credentials("token expired"),
            ),
            (
                "off",
                Some("off"),
                Some(token("off", KEY_1, later)),
                Refusal::banned("device disabled"),
            ),
            // A disabled device with a bad key learns nothing more than a stranger.
            (
                "off",
                Some("off"),
                Some(token("off", OTHER, later)),
                Refusal::bad_credentials("bad signature"),
            ),
        ];
        for (client, username, password, refusal) in cases {
            let got = connect(&auth, client, username, password.as_deref(), REMOTE).await;
            assert_eq!(got.err(), Some(refusal), "{client} {username:?}");
        }
    }

    #[tokio::test]
    async fn development_mode_admits_keyless_devices_from_loopback_only() {
        let store = store_with(&[
            ("d1", "sas", DeviceStatus::Enabled),
            ("plain", "none", DeviceStatus::Enabled),
            ("off", "none", DeviceStatus::Disabled),
        ]);
        let auth = DeviceAuth::new(store, DeviceAcl::default(), true);
        let junk = Some("SharedAccessSignature sr=x&sig=y&se=1");
        for id in ["plain", "new-device"] {
            let ok = connect(&auth, id, Some(id), junk, LOCAL).await.unwrap();
            assert_eq!(ok.kind, IdentityKind::Device, "{id}");
            assert_eq!(ok.expires_at, None);
            assert!(
                connect(&auth, id, Some(id), junk, REMOTE).await.is_err(),
                "{id}"
            );
        }
        assert_eq!(
            connect(&auth, "off", Some("off"), junk, LOCAL).await.err(),
            Some(Refusal::banned("device disabled"))
        );
        // A device with keys must sign, even in development mode.
        assert_eq!(
            connect(&auth, "d1", Some("d1"), junk, LOCAL).await.err(),
            Some(Refusal::bad_credentials("malformed token"))
        );
    }

    #[test]
    fn user_names_as_the_sdks_send_them() {
        for (user, ok) in [
            ("d1", true),
            ("hub/d1/?api-version=2021-04-12&DeviceClientType=py", true),
            ("hub/d1", true),
            ("hub/d1/", true),
            ("hub/d2/?api-version=1", false),
            ("/d1/?api-version=1", false),
            ("hub/d1/x", false),
            ("d1x", false),
            ("", false),
        ] {
            assert_eq!(username_names(user, "d1"), ok, "{user}");
        }
        assert!(!username_names("", ""));
    }

    #[test]
    fn the_authorizer_applies_the_acl_to_devices_only() {
        let auth = DeviceAuth::new(store_with(&[]), DeviceAcl::default(), false);
        let device = device_identity("A", None, None);
        assert!(auth.may_publish(&device, "devices/A/messages/events/"));
        assert!(!auth.may_publish(&device, "devices/B/messages/events/"));
        assert!(!auth.may_subscribe(&device, "#"));
        let reader = Identity::new("s", IdentityKind::Service { may_publish: false });
        assert!(auth.may_subscribe(&reader, "#"));
        assert!(!auth.may_publish(&reader, "x"));
    }
}
