//! Devices' symmetric keys: reading them (with a ready connection string) and
//! replacing one. Keys are secrets: they are returned to the caller (the API allows it
//! to admins only) and never logged.

use store::{StoreError, SymmetricKeys};

use super::{store_error, DeviceKeys, Hub, HubError, KeyName};
use crate::auth::AUTH_KIND_SAS;

impl Hub {
    /// A device's keys; `Invalid` if it does not authenticate with SAS tokens.
    pub async fn device_keys(&self, id: &str) -> Result<DeviceKeys, HubError> {
        let owned = id.to_string();
        let keys = self
            .blocking(move |s| {
                let device = s.device(&owned)?;
                if device.auth_kind != AUTH_KIND_SAS {
                    return Ok(Err(device.auth_kind));
                }
                s.keys(&owned).map(Ok)
            })
            .await
            .map_err(|e| store_error(id, e))?
            .map_err(|kind| no_keys(id, &kind))?;
        Ok(self.view(id, keys))
    }

    /// Replaces one of a device's keys with a new random one and returns both. Open
    /// connections stay up (their tokens stay valid until they expire, as in IoT Hub);
    /// a token signed with the old key is refused at its next connect.
    pub async fn regenerate_key(&self, id: &str, which: KeyName) -> Result<DeviceKeys, HubError> {
        let generate =
            || crate::auth::generate_key().map_err(|e| HubError::Unavailable(e.to_string()));
        let (fresh, spare) = (generate()?, generate()?);
        let owned = id.to_string();
        let keys = self
            .blocking(move |s| {
                let device = s.device(&owned)?;
                if device.auth_kind != AUTH_KIND_SAS {
                    return Ok(Err(device.auth_kind));
                }
                // A device created before keys existed has none: start from two new.
                let mut keys = match s.keys(&owned) {
                    Ok(keys) => keys,
                    Err(StoreError::NotFound) => SymmetricKeys {
                        primary: spare.clone(),
                        secondary: spare,
                    },
                    Err(e) => return Err(e),
                };
                match which {
                    KeyName::Primary => keys.primary = fresh,
                    KeyName::Secondary => keys.secondary = fresh,
                }
                s.set_keys(&owned, &keys)?;
                Ok(Ok(keys))
            })
            .await
            .map_err(|e| store_error(id, e))?
            .map_err(|kind| no_keys(id, &kind))?;
        tracing::info!(device = id, key = ?which, "device key regenerated");
        Ok(self.view(id, keys))
    }

    /// The API's view of a device's keys.
    fn view(&self, id: &str, keys: SymmetricKeys) -> DeviceKeys {
        let host = &self.inner.config.host_name;
        DeviceKeys {
            device_id: id.to_string(),
            connection_string: format!(
                "HostName={host};DeviceId={id};SharedAccessKey={}",
                keys.primary
            ),
            primary_key: keys.primary,
            secondary_key: keys.secondary,
        }
    }
}

/// The error for a device that has no keys because of its auth kind.
fn no_keys(id: &str, kind: &str) -> HubError {
    HubError::Invalid(format!(
        "device {id} has authKind {kind}: only sas devices have symmetric keys"
    ))
}
