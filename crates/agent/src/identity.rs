//! Who the agent is to the hub: the MQTT user name and password for each way a device
//! can prove itself.
//!
//! - [`Identity::Anonymous`]: user name = device id, no password. A `bosun serve --dev`
//!   hub admits it from loopback (and registers the device on first use).
//! - [`Identity::DeviceKey`]: an Azure SAS token signed with the device's symmetric key,
//!   user name `{hub host}/{device id}/?api-version=2021-04-12`, password
//!   `SharedAccessSignature sr={host}%2Fdevices%2F{id}&sig=…&se=…`.
//! - [`Identity::GroupKey`]: the device first registers through the DPS protocol with
//!   the key derived from the enrollment group's key (HMAC-SHA256(group key,
//!   registration id), `dps.rs`), then connects as with a device key.
//! - [`Identity::Certificate`]: a client certificate (CN = device id) presented in the
//!   TLS handshake, no password; with an id scope the device registers through DPS
//!   with the same certificate first (an X.509 enrollment).
//!
//! Signing and derivation are the hub's own functions (`hub::auth`), so the two sides
//! cannot drift. Tokens live [`TOKEN_TTL`]; the runtime signs a new one at every
//! connect, and the hub closes a connection whose token expired, which then reconnects.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::Error;

/// Lifetime of a SAS token (the Azure SDKs' default).
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// API version in the device user name.
const DEVICE_API_VERSION: &str = "2021-04-12";
/// API version in the provisioning user name.
const DPS_API_VERSION: &str = "2019-03-31";

/// How the device authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Identity {
    /// No credentials (development hubs on loopback).
    Anonymous,
    /// The device's own symmetric key (base64).
    DeviceKey(String),
    /// An enrollment group's key (base64) and the DPS id scope: provision first.
    GroupKey {
        /// The group key.
        group_key: String,
        /// The hub's id scope.
        id_scope: String,
    },
    /// A client certificate and its private key (PEM files); provision first through
    /// DPS when `id_scope` is set.
    Certificate {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
        /// The hub's id scope, to register first.
        id_scope: Option<String>,
    },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are secrets; show only the kind.
        match self {
            Identity::Anonymous => f.write_str("Anonymous"),
            Identity::DeviceKey(_) => f.write_str("DeviceKey(…)"),
            Identity::Certificate { cert, id_scope, .. } => f
                .debug_struct("Certificate")
                .field("cert", cert)
                .field("id_scope", id_scope)
                .finish_non_exhaustive(),
            Identity::GroupKey { id_scope, .. } => {
                write!(f, "GroupKey {{ id_scope: {id_scope:?}, … }}")
            }
        }
    }
}

/// MQTT user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password (a SAS token), if any.
    pub password: Option<Bytes>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Seconds since the epoch, `TOKEN_TTL` from now.
pub fn expiry_from_now() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + TOKEN_TTL).as_secs()
}

/// Credentials of a device connecting as itself: with `key`, a SAS token; without, the
/// device id as user name and no password (anonymous, or a client certificate).
pub fn device_credentials(
    host: &str,
    device_id: &str,
    key: Option<&str>,
    expiry: u64,
) -> Result<Credentials, Error> {
    let Some(key) = key else {
        return Ok(Credentials {
            username: device_id.to_owned(),
            password: None,
        });
    };
    let key = decode_key(key)?;
    let token = hub::auth::sign(&format!("{host}/devices/{device_id}"), expiry, &key);
    Ok(Credentials {
        username: format!("{host}/{device_id}/?api-version={DEVICE_API_VERSION}"),
        password: Some(Bytes::from(token)),
    })
}

/// Credentials of a provisioning client (DPS): the user name names the registration;
/// with a symmetric key (`device_key`) the password is a token for
/// `{id scope}/registrations/{registration id}` with `skn=registration`, with a client
/// certificate (`None`) there is no password.
pub fn registration_credentials(
    id_scope: &str,
    registration_id: &str,
    device_key: Option<&str>,
    expiry: u64,
) -> Result<Credentials, Error> {
    let resource = format!("{id_scope}/registrations/{registration_id}");
    let password = match device_key {
        Some(device_key) => {
            let key = decode_key(device_key)?;
            let token = hub::auth::sign(&resource, expiry, &key);
            Some(Bytes::from(format!("{token}&skn=registration")))
        }
        None => None,
    };
    Ok(Credentials {
        username: format!(
            "{resource}/api-version={DPS_API_VERSION}&ClientVersion=bosun-agent%2F{}",
            env!("CARGO_PKG_VERSION")
        ),
        password,
    })
}

/// The device key a group enrollment gives `registration_id`.
pub fn derive_device_key(group_key: &str, registration_id: &str) -> Result<String, Error> {
    hub::auth::derive_device_key(group_key, registration_id)
        .map_err(|e| Error::Config(format!("group key: {e}")))
}

fn decode_key(key: &str) -> Result<Vec<u8>, Error> {
    hub::base64::decode(key.trim()).map_err(|_| Error::Config("the key is not base64".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub::auth::SasToken;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn device_token_verifies_with_the_hub() {
        let c = device_credentials("hub.local", "dev-1", Some(KEY), 2_000_000_000).expect("creds");
        assert_eq!(c.username, "hub.local/dev-1/?api-version=2021-04-12");
        assert!(hub::auth::username_names(&c.username, "dev-1"));
        let password = String::from_utf8(c.password.expect("password").to_vec()).expect("utf8");
        let token = SasToken::parse(&password).expect("token");
        assert_eq!(token.device_id().ok().as_deref(), Some("dev-1"));
        assert!(token.verify(&hub::base64::decode(KEY).expect("key")));
        assert_eq!(token.expiry(), 2_000_000_000);
    }

    #[test]
    fn registration_token_names_the_registration() {
        let derived = derive_device_key(KEY, "dev-9").expect("derive");
        let c = registration_credentials("0ne00000001", "dev-9", Some(&derived), 2_000_000_000)
            .expect("creds");
        let user = hub::auth::parse_registration_user(&c.username).expect("user");
        assert_eq!(
            (user.id_scope, user.registration_id),
            ("0ne00000001", "dev-9")
        );
        let password = String::from_utf8(c.password.expect("password").to_vec()).expect("utf8");
        let token = SasToken::parse(&password).expect("token");
        assert_eq!(token.key_name(), Some("registration"));
        assert!(token.verify(&hub::base64::decode(&derived).expect("key")));
    }

    #[test]
    fn anonymous_and_bad_keys() {
        let c = device_credentials("h", "dev-1", None, 0).expect("creds");
        assert_eq!((c.username.as_str(), c.password), ("dev-1", None));
        assert!(device_credentials("h", "dev-1", Some("not base64!"), 0).is_err());
        assert!(format!("{:?}", Identity::DeviceKey(KEY.into()))
            .find(KEY)
            .is_none());
    }
}
