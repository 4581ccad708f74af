//! Devices: create, read, update, delete, list, and the API's view of one.

use serde_json::{json, Value};
use store::{ConnectionState, Device, DeviceFilter, DeviceStatus, StoreError};

use super::{
    now_ms, store_error, DeviceInfo, DeviceQuery, DeviceUpdate, Hub, HubError, NewDevice, Page,
};
use crate::twin::{rfc3339, Twin};

/// Longest device id (Azure's limit, so ids move between the two unchanged).
const MAX_ID_LEN: usize = 128;

/// Checks a device id: 1–128 characters from Azure's set, which excludes `/`, `+`
/// and `#`, so an id can never change the shape of a topic it is put in.
pub(crate) fn validate_id(id: &str) -> Result<(), HubError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-.%_*?!(),:=@$'".contains(c);
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(HubError::Invalid(format!(
            "device id must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    match id.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(HubError::Invalid(format!(
            "device id contains {c:?}; allowed are letters, digits and -.%_*?!(),:=@$'"
        ))),
        None => Ok(()),
    }
}

impl Hub {
    /// Registers a device with its initial twin.
    pub async fn create_device(&self, new: NewDevice) -> Result<DeviceInfo, HubError> {
        validate_id(&new.id)?;
        let now = now_ms();
        let twin = Twin::new(
            &new.id,
            new.tags.as_ref(),
            new.desired.as_ref(),
            now,
            &self.inner.config.twin_limits,
        )
        .map_err(|e| HubError::Invalid(e.to_string()))?;
        let auth_kind = new
            .auth_kind
            .unwrap_or_else(|| crate::auth::AUTH_KIND_NONE.into());
        let keys = new_keys(&auth_kind, new.symmetric_key)?;
        let device = Device {
            id: new.id.clone(),
            status: new.status.unwrap_or(DeviceStatus::Enabled),
            auth_kind,
            group: new.group,
            created_ms: now,
            last_activity_ms: None,
            connection: ConnectionState::Disconnected,
            connection_reason: None,
            connection_changed_ms: None,
        };
        let json = twin.to_json();
        let stored = device.clone();
        self.blocking(move |s| {
            s.create_device(&stored)?;
            s.save_twin(&stored.id, &json, 0)?;
            match keys {
                Some(keys) => s.set_keys(&stored.id, &keys),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| store_error(&new.id, e))?;
        self.inner.known.insert(&new.id);
        self.announce("deviceCreated", &new.id, json!({}));
        Ok(info(device, Some(&twin)))
    }

    /// One device.
    pub async fn device(&self, id: &str) -> Result<DeviceInfo, HubError> {
        let owned = id.to_string();
        let (device, twin) = self
            .blocking(move |s| Ok((s.device(&owned)?, s.twin(&owned).ok())))
            .await
            .map_err(|e| store_error(id, e))?;
        let twin = twin.and_then(|t| Twin::from_json(&t.json).ok());
        Ok(info(device, twin.as_ref()))
    }

    /// Changes status or group; disabling a device also closes its connection.
    pub async fn update_device(
        &self,
        id: &str,
        update: DeviceUpdate,
    ) -> Result<DeviceInfo, HubError> {
        let owned = id.to_string();
        let device = self
            .blocking(move |s| {
                let mut device = s.device(&owned)?;
                if let Some(status) = update.status {
                    device.status = status;
                }
                if let Some(group) = update.group {
                    device.group = group;
                }
                s.update_device(&device)?;
                Ok(device)
            })
            .await
            .map_err(|e| store_error(id, e))?;
        if device.status == DeviceStatus::Disabled {
            let _ = self
                .inner
                .broker
                .disconnect(id, mqtt::ReasonCode::NOT_AUTHORIZED)
                .await;
        }
        self.device(id).await
    }

    /// Removes a device, its twin, queue and feedback, and closes its connection.
    pub async fn delete_device(&self, id: &str) -> Result<(), HubError> {
        let owned = id.to_string();
        self.blocking(move |s| s.delete_device(&owned))
            .await
            .map_err(|e| store_error(id, e))?;
        self.inner.known.remove(id);
        let _ = self
            .inner
            .broker
            .disconnect(id, mqtt::ReasonCode::NOT_AUTHORIZED)
            .await;
        self.announce("deviceDeleted", id, json!({}));
        Ok(())
    }

    /// Devices matching `query`, in id order, `limit` per page.
    pub async fn list_devices(
        &self,
        query: DeviceQuery,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<DeviceInfo>, HubError> {
        let limit = limit.clamp(1, 1000);
        let filter = DeviceFilter {
            status: query.status,
            connection: query.connection,
            group: query.group,
        };
        let tag = query.tag;
        let page = self
            .blocking(move |s| list_page(s, &filter, tag.as_ref(), after, limit))
            .await
            .map_err(|e| store_error("", e))?;
        Ok(page)
    }

    /// Auto-registers `id` in development mode; true if the device exists afterwards.
    pub(super) async fn ensure_registered(&self, id: &str) -> bool {
        let owned = id.to_string();
        match self.blocking(move |s| s.device(&owned)).await {
            Ok(_) => true,
            Err(StoreError::NotFound) if self.inner.config.auto_register => {
                let new = NewDevice {
                    id: id.to_string(),
                    ..NewDevice::default()
                };
                match self.create_device(new).await {
                    Ok(_) => {
                        // Its connect was not recorded (it was no device yet), and the
                        // device is connected: it is subscribing right now.
                        self.presence(id, ConnectionState::Connected, "connected")
                            .await;
                        true
                    }
                    Err(HubError::AlreadyExists(_)) => true,
                    Err(e) => {
                        tracing::warn!(device = id, error = %e, "cannot auto-register device");
                        false
                    }
                }
            }
            Err(_) => false,
        }
    }
}

/// The keys a new device starts with: for auth kind `sas`, the given primary key (or a
/// generated one) and a generated secondary; none for other kinds, which must not be
/// given a key (it would never be used, and silently so).
fn new_keys(
    auth_kind: &str,
    primary: Option<String>,
) -> Result<Option<store::SymmetricKeys>, HubError> {
    if auth_kind != crate::auth::AUTH_KIND_SAS {
        return match primary {
            Some(_) => Err(HubError::Invalid(format!(
                "symmetricKey needs authKind sas, not {auth_kind}"
            ))),
            None => Ok(None),
        };
    }
    let generate = || crate::auth::generate_key().map_err(|e| HubError::Unavailable(e.to_string()));
    let primary = match primary {
        Some(key) => {
            crate::auth::check_key(&key).map_err(|e| HubError::Invalid(e.to_string()))?;
            key
        }
        None => generate()?,
    };
    Ok(Some(store::SymmetricKeys {
        primary,
        secondary: generate()?,
    }))
}

/// Fills one page, reading store pages until `limit` devices pass the tag filter.
fn list_page(
    s: &dyn store::Store,
    filter: &DeviceFilter,
    tag: Option<&(String, String)>,
    mut after: Option<String>,
    limit: usize,
) -> Result<Page<DeviceInfo>, StoreError> {
    let mut items = Vec::new();
    loop {
        let page = s.list_devices(filter, after.as_deref(), limit)?;
        for device in page.items {
            after = Some(device.id.clone());
            let twin = s.twin(&device.id).ok();
            let twin = twin.and_then(|t| Twin::from_json(&t.json).ok());
            if tag.is_none_or(|(k, v)| tag_matches(twin.as_ref(), k, v)) {
                items.push(info(device, twin.as_ref()));
                if items.len() == limit {
                    return Ok(Page {
                        items,
                        continuation: after,
                    });
                }
            }
        }
        if page.continuation.is_none() {
            return Ok(Page {
                items,
                continuation: None,
            });
        }
    }
}

/// Whether the twin's tag `key` (dotted path) equals `value` as a string.
fn tag_matches(twin: Option<&Twin>, key: &str, value: &str) -> bool {
    let Some(twin) = twin else { return false };
    let mut node = twin.tags();
    for part in key.split('.') {
        match node.get(part) {
            Some(next) => node = next,
            None => return false,
        }
    }
    match node {
        Value::String(s) => s == value,
        // Numbers and booleans match their JSON spelling (`--tag floor:3`).
        other => serde_json::from_str::<Value>(value).is_ok_and(|v| v == *other),
    }
}

/// The API's view of a device.
pub(super) fn info(device: Device, twin: Option<&Twin>) -> DeviceInfo {
    let reported = twin.map(Twin::reported).unwrap_or(Value::Null);
    let firmware_version = reported
        .pointer("/firmware/version")
        .or_else(|| reported.get("firmwareVersion"))
        .and_then(Value::as_str)
        .map(str::to_string);
    DeviceInfo {
        device_id: device.id,
        status: match device.status {
            DeviceStatus::Enabled => "enabled",
            DeviceStatus::Disabled => "disabled",
        },
        auth_kind: device.auth_kind,
        group: device.group,
        connection_state: match device.connection {
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
        },
        connection_reason: device.connection_reason,
        connection_state_updated_time: device.connection_changed_ms.map(rfc3339),
        last_activity_time: device.last_activity_ms.map(rfc3339),
        created_time: rfc3339(device.created_ms),
        firmware_version,
        tags: twin.map_or_else(|| Value::Object(Default::default()), |t| t.tags().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_id;

    #[test]
    fn ids_that_could_bend_a_topic_are_refused() {
        for bad in ["", "a/b", "a+b", "a#", "é", &"x".repeat(129), "a b"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["dev-1", "pump.7", "a:b@c", &"x".repeat(128)] {
            assert!(validate_id(good).is_ok(), "{good:?} refused");
        }
    }
}
