//! The credentials a simulated device computes: its key derived from an enrollment
//! group's key, the SAS tokens it sends as MQTT passwords, and the user names.
//!
//! Written here as a device SDK would (HMAC-SHA256 from `ring`, base64 and percent
//! encoding as the Azure SDKs do them), and checked in the tests against what the hub's
//! own functions produce and accept.

use anyhow::{Context, Result};
use ring::hmac;

/// API version in provisioning user names (what the Azure C and Python SDKs send).
pub(crate) const DPS_API_VERSION: &str = "2019-03-31";
/// API version in device user names.
pub(crate) const HUB_API_VERSION: &str = "2021-04-12";

/// A device's key in an enrollment group: base64(HMAC-SHA256(key = base64-decoded
/// group key, message = registration id)).
pub(crate) fn derive_device_key(group_key: &str, registration_id: &str) -> Result<String> {
    let key = hub::base64::decode(group_key)
        .ok()
        .context("the group key is not base64")?;
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        registration_id.as_bytes(),
    );
    Ok(hub::base64::encode(tag.as_ref()))
}

/// A SAS token for `resource` (not yet URL-encoded), valid until `expiry` (Unix
/// seconds), signed with the base64 `key`; `skn` is appended when given.
pub(crate) fn sas_token(
    resource: &str,
    expiry: u64,
    key: &str,
    key_name: Option<&str>,
) -> Result<String> {
    let key = hub::base64::decode(key)
        .ok()
        .context("the device key is not base64")?;
    let sr = hub::auth::percent_encode(resource);
    let message = format!("{sr}\n{expiry}");
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), message.as_bytes());
    let sig = hub::auth::percent_encode(&hub::base64::encode(tag.as_ref()));
    let mut token = format!("SharedAccessSignature sr={sr}&sig={sig}&se={expiry}");
    if let Some(name) = key_name {
        token.push_str("&skn=");
        token.push_str(name);
    }
    Ok(token)
}

/// User name and password of a provisioning client for `registration_id`.
pub(crate) fn provisioning_credentials(
    id_scope: &str,
    registration_id: &str,
    device_key: &str,
    expiry: u64,
) -> Result<(String, String)> {
    let user = format!("{id_scope}/registrations/{registration_id}/api-version={DPS_API_VERSION}");
    let resource = format!("{id_scope}/registrations/{registration_id}");
    let password = sas_token(&resource, expiry, device_key, Some("registration"))?;
    Ok((user, password))
}

/// User name and password of device `device_id` connecting to the hub `host`.
pub(crate) fn device_credentials(
    host: &str,
    device_id: &str,
    device_key: &str,
    expiry: u64,
) -> Result<(String, String)> {
    let user = format!("{host}/{device_id}/?api-version={HUB_API_VERSION}");
    let resource = format!("{host}/devices/{device_id}");
    let password = sas_token(&resource, expiry, device_key, None)?;
    Ok((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// base64 of the 32 bytes 0, 1, …, 31.
    const GROUP_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn derived_keys_match_the_hub() -> Result<()> {
        for id in ["dev-0", "bench-9999", "a.b_c"] {
            let ours = derive_device_key(GROUP_KEY, id)?;
            let hubs =
                hub::auth::derive_device_key(GROUP_KEY, id).map_err(|e| anyhow::anyhow!("{e}"))?;
            assert_eq!(ours, hubs);
        }
        assert!(derive_device_key("not base64!", "x").is_err());
        Ok(())
    }

    #[test]
    fn device_tokens_match_the_hub() -> Result<()> {
        let key = derive_device_key(GROUP_KEY, "dev-1")?;
        let (user, password) = device_credentials("hub.local", "dev-1", &key, 2_000_000_000)?;
        assert_eq!(user, "hub.local/dev-1/?api-version=2021-04-12");
        let raw = hub::base64::decode(&key).map_err(|_| anyhow::anyhow!("bad key"))?;
        assert_eq!(
            password,
            hub::auth::sign("hub.local/devices/dev-1", 2_000_000_000, &raw)
        );
        let token = hub::auth::SasToken::parse(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert!(token.verify(&raw));
        assert_eq!(token.device_id().ok().as_deref(), Some("dev-1"));
        Ok(())
    }

    #[test]
    fn provisioning_tokens_verify_and_name_the_registration() -> Result<()> {
        let key = derive_device_key(GROUP_KEY, "dev-2")?;
        let (user, password) =
            provisioning_credentials("0ne00000001", "dev-2", &key, 1_900_000_000)?;
        assert_eq!(
            user,
            "0ne00000001/registrations/dev-2/api-version=2019-03-31"
        );
        let parsed = hub::auth::parse_registration_user(&user).context("user not parsed")?;
        assert_eq!(parsed.registration_id, "dev-2");
        let token = hub::auth::SasToken::parse(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
        let raw = hub::base64::decode(&key).map_err(|_| anyhow::anyhow!("bad key"))?;
        assert!(token.verify(&raw));
        assert_eq!(token.key_name(), Some("registration"));
        assert_eq!(
            token.resource().ok().as_deref(),
            Some("0ne00000001/registrations/dev-2")
        );
        assert_eq!(token.expiry(), 1_900_000_000);
        Ok(())
    }
}
