//! The two ways a twin is shown: to its device (`$iothub/twin/GET`) and to the service API
//! (Azure's twin JSON). Both are built fresh from the twin; neither is stored.

use serde_json::{json, Value};

use super::Twin;

impl Twin {
    /// The document a device receives for `$iothub/twin/GET`:
    /// `{"desired": {..., "$version": n}, "reported": {..., "$version": m}}`
    /// (no tags, no metadata, as in Azure).
    pub fn device_view(&self) -> Value {
        json!({
            "desired": self.desired.view(false),
            "reported": self.reported.view(false),
        })
    }

    /// The service API's twin document. `etag_version` is the caller's version of the whole
    /// twin (it changes with tags too), shown as `version` and as the quoted `etag` that
    /// `If-Match` compares against.
    pub fn service_view(&self, etag_version: u64) -> Value {
        json!({
            "deviceId": self.device_id,
            "etag": format!("\"{etag_version}\""),
            "version": etag_version,
            "tags": self.tags,
            "properties": {
                "desired": self.desired.view(true),
                "reported": self.reported.view(true),
            },
        })
    }
}
