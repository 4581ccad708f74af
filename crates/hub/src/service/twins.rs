//! Twins: the service's reads and patches (with ETags), the devices' GET and reported
//! patches, queries, and keeping each device's desired properties in sync.

use serde_json::{json, Map, Value};
use store::{StoreError, StoredTwin};

use super::{etag, now_ms, plain_publish, store_error, Hub, HubError, Page, Receipt, TwinView};
use crate::topics;
use crate::twin::{diff, Twin};

/// Times a patch without `If-Match` is retried when another writer got in first.
const MAX_RETRIES: usize = 32;
/// Twins read from the store per batch while answering a query.
const SCAN_BATCH: usize = 500;

impl Hub {
    /// The service view of a device's twin, with its ETag.
    pub async fn twin(&self, id: &str) -> Result<TwinView, HubError> {
        let stored = self.load_twin(id).await?;
        let twin = parse_twin(&stored)?;
        Ok(view(&twin, stored.version))
    }

    /// Applies a service patch (`tags`, `properties.desired`) as a JSON merge patch.
    /// With `if_match` (other than `*`) the patch applies only to that version.
    pub async fn patch_twin(
        &self,
        id: &str,
        patch: Value,
        if_match: Option<String>,
    ) -> Result<TwinView, HubError> {
        let if_match = if_match.filter(|m| m.trim() != "*");
        let limits = self.inner.config.twin_limits.clone();
        for _ in 0..MAX_RETRIES {
            let stored = self.load_twin(id).await?;
            if let Some(expected) = &if_match {
                if expected.trim() != etag(stored.version) {
                    return Err(HubError::PreconditionFailed {
                        current: etag(stored.version),
                    });
                }
            }
            let mut twin = parse_twin(&stored)?;
            let desired = twin
                .patch_service(&patch, now_ms(), &limits)
                .map_err(|e| HubError::Invalid(e.to_string()))?;
            let json = twin.to_json();
            let owned = id.to_string();
            let expected = stored.version;
            match self
                .blocking(move |s| s.save_twin(&owned, &json, expected))
                .await
            {
                Ok(version) => {
                    self.announce(
                        "twinChanged",
                        id,
                        json!({"desiredVersion": desired, "patch": patch}),
                    );
                    if desired.is_some() {
                        self.sync_desired(id).await;
                    }
                    return Ok(view(&twin, version));
                }
                Err(StoreError::Conflict { found, .. }) if if_match.is_some() => {
                    return Err(HubError::PreconditionFailed {
                        current: etag(found),
                    })
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(id, e)),
            }
        }
        Err(HubError::Unavailable(format!(
            "twin of {id} changed {MAX_RETRIES} times while patching; try again"
        )))
    }

    /// Runs a twin query; `after` continues a previous page.
    pub async fn query(
        &self,
        sql: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<Value>, HubError> {
        let query = crate::query::parse_from(sql, "devices")
            .map_err(|e| HubError::Invalid(e.to_string()))?;
        let limit = limit.clamp(1, 1000);
        self.blocking(move |s| run_query(s, &query, after, limit))
            .await
            .map_err(|e| store_error("", e))
    }

    /// `$iothub/twin/GET`: the device's desired and reported sections.
    pub(super) async fn device_twin_get(&self, device: &str, rid: &str) {
        let (status, body) = match self.load_twin(device).await.and_then(|t| parse_twin(&t)) {
            Ok(twin) => {
                // The answer carries the whole desired document: from now on the device
                // needs only what changes after this version.
                let (json, version) = (twin.desired().to_string(), twin.desired_version());
                self.desired_delivered(device.to_string(), json, version)
                    .await;
                (200, twin.device_view())
            }
            Err(e) => error_answer(&e),
        };
        let topic = topics::twin_response(status, rid, None);
        self.answer(device, topic, &body).await;
    }

    /// `$iothub/twin/PATCH/properties/reported`: merge, bump the version, answer 204.
    pub(super) async fn device_reported_patch(&self, device: &str, rid: &str, payload: &[u8]) {
        let outcome = match serde_json::from_slice::<Value>(payload) {
            Ok(patch) => self.patch_reported(device, &patch).await,
            Err(e) => Err(HubError::Invalid(format!(
                "reported patch is not JSON: {e}"
            ))),
        };
        match outcome {
            Ok(version) => {
                let topic = topics::twin_response(204, rid, Some(version));
                self.answer(device, topic, &Value::Null).await;
            }
            Err(e) => {
                tracing::info!(device, error = %e, "reported patch refused");
                let (status, body) = error_answer(&e);
                let topic = topics::twin_response(status, rid, None);
                self.answer(device, topic, &body).await;
            }
        }
    }

    /// Read, patch and compare-and-set in one trip to the store's thread: this is the
    /// hottest twin path (every device reports), and each hand-off to the blocking pool
    /// costs more than the SQLite work itself.
    async fn patch_reported(&self, device: &str, patch: &Value) -> Result<u64, HubError> {
        let limits = self.inner.config.twin_limits.clone();
        let (owned, shared_patch) = (device.to_string(), patch.clone());
        let outcome = self
            .blocking(move |s| Ok(patch_reported_in(s, &owned, &shared_patch, &limits)))
            .await
            .map_err(|e| store_error(device, e))?;
        let version = outcome?;
        let detail = json!({"reportedVersion": version, "patch": patch});
        self.announce("twinChanged", device, detail);
        Ok(version)
    }

    /// Sends the device what changed in its desired properties since the last version
    /// it acknowledged, as one merge patch carrying the latest `$version`. Runs after
    /// every desired change and whenever the device subscribes to desired updates, so a
    /// device that was offline gets what it missed, coalesced.
    pub(super) async fn sync_desired(&self, device: &str) {
        let _order = self.inner.desired_sync.lock().await;
        let owned = device.to_string();
        let loaded = self
            .blocking(move |s| Ok((s.twin(&owned)?, s.delivered_desired(&owned)?)))
            .await;
        let Ok((stored, delivered)) = loaded else {
            return;
        };
        let Ok(twin) = Twin::from_json(&stored.json) else {
            return;
        };
        let version = twin.desired_version();
        let (old, old_version) = match delivered {
            Some((json, v)) => (serde_json::from_str(&json).unwrap_or(Value::Null), v),
            None => (Value::Object(Map::new()), 0),
        };
        if old_version >= version {
            return;
        }
        let current = twin.desired();
        let mut patch = diff(&old, &current);
        if patch.as_object().is_some_and(Map::is_empty) {
            // Nothing the device does not have (a new device with no desired
            // properties): remember the version instead of sending an empty patch.
            drop(_order);
            self.desired_delivered(device.to_string(), current.to_string(), version)
                .await;
            return;
        }
        if let Value::Object(map) = &mut patch {
            map.insert("$version".into(), json!(version));
        }
        let receipt = self.next_id();
        let remember = Receipt::Desired {
            device: device.to_string(),
            json: current.to_string(),
            version,
        };
        self.volatile().receipts.insert(receipt, remember);
        let topic = topics::desired_patch(version);
        let publish = plain_publish(
            topic,
            patch.to_string().into_bytes(),
            mqtt::QoS::AtLeastOnce,
        );
        let sent = self
            .inner
            .broker
            .send_to(device, publish, Some(receipt))
            .await;
        if !matches!(sent, Ok(broker::service::SendOutcome::Accepted)) {
            self.volatile().receipts.remove(&receipt);
        }
    }

    /// The device acknowledged a desired patch: remember what it now has.
    pub(super) async fn desired_delivered(&self, device: String, json: String, version: u64) {
        let result = self
            .blocking(move |s| {
                let newer = s
                    .delivered_desired(&device)?
                    .is_some_and(|(_, v)| v >= version);
                if newer {
                    return Ok(());
                }
                s.set_delivered_desired(&device, &json, version)
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot record delivered desired properties");
        }
    }

    async fn load_twin(&self, id: &str) -> Result<StoredTwin, HubError> {
        let owned = id.to_string();
        self.blocking(move |s| s.twin(&owned))
            .await
            .map_err(|e| store_error(id, e))
    }

    /// Sends a twin answer (QoS 0, as IoT Hub does) to the device's own subscription.
    async fn answer(&self, device: &str, topic: String, body: &Value) {
        let payload = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let publish = plain_publish(topic, payload, mqtt::QoS::AtMostOnce);
        let _ = self.inner.broker.send_to(device, publish, None).await;
    }
}

fn parse_twin(stored: &StoredTwin) -> Result<Twin, HubError> {
    Twin::from_json(&stored.json).map_err(|e| {
        HubError::Unavailable(format!(
            "stored twin of {} is unreadable: {e}",
            stored.device_id
        ))
    })
}

fn view(twin: &Twin, version: u64) -> TwinView {
    TwinView {
        json: twin.service_view(version),
        etag: etag(version),
    }
}

/// Status and body a device gets when its twin request fails.
fn error_answer(e: &HubError) -> (u16, Value) {
    let status = match e {
        HubError::NotFound(_) => 404,
        HubError::Invalid(_) => 400,
        HubError::Unavailable(_) => 503,
        _ => 500,
    };
    (status, json!({"message": e.to_string()}))
}

/// The reported-patch transaction, on the store's thread: retried when another writer
/// got in between the read and the write.
fn patch_reported_in(
    s: &dyn store::Store,
    device: &str,
    patch: &Value,
    limits: &crate::twin::Limits,
) -> Result<u64, HubError> {
    for _ in 0..MAX_RETRIES {
        let stored = s.twin(device).map_err(|e| store_error(device, e))?;
        let mut twin = parse_twin(&stored)?;
        let version = twin
            .patch_reported(patch, now_ms(), limits)
            .map_err(|e| HubError::Invalid(e.to_string()))?;
        match s.save_twin(device, &twin.to_json(), stored.version) {
            Ok(_) => return Ok(version),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(device, e)),
        }
    }
    Err(HubError::Unavailable("twin is changing too fast".into()))
}

/// Scans twins after `after` until `limit` match (or, for COUNT, all of them).
fn run_query(
    s: &dyn store::Store,
    query: &crate::query::Query,
    mut after: Option<String>,
    limit: usize,
) -> Result<Page<Value>, StoreError> {
    let mut items = Vec::new();
    let mut count = 0u64;
    loop {
        let batch = s.scan_twins(after.as_deref(), SCAN_BATCH)?;
        let done = batch.len() < SCAN_BATCH;
        for stored in batch {
            after = Some(stored.device_id.clone());
            let Some(doc) = query_document(s, &stored) else {
                continue;
            };
            if !query.matches(&doc) {
                continue;
            }
            if query.is_count() {
                count += 1;
                continue;
            }
            items.push(query.project(&doc));
            if items.len() == limit {
                return Ok(Page {
                    items,
                    continuation: after,
                });
            }
        }
        if done {
            break;
        }
    }
    if query.is_count() {
        items.push(query.count_result(count));
    }
    Ok(Page {
        items,
        continuation: None,
    })
}

/// The document a query sees: the service twin plus registry status and connection.
fn query_document(s: &dyn store::Store, stored: &StoredTwin) -> Option<Value> {
    let twin = Twin::from_json(&stored.json).ok()?;
    let mut doc = twin.service_view(stored.version);
    let device = s.device(&stored.device_id).ok()?;
    let info = super::registry::info(device, None);
    if let Value::Object(map) = &mut doc {
        map.insert("status".into(), json!(info.status));
        map.insert("connectionState".into(), json!(info.connection_state));
        map.insert("group".into(), json!(info.group));
    }
    Some(doc)
}
