//! `/api/devices/{id}/keys`: the symmetric keys of a device that authenticates with
//! SAS tokens, and replacing one of them.
//!
//! Both operations are admin-only (the operations table says so): a key lets its holder
//! act as the device. Keys appear only in these responses, never in
//! `GET /api/devices`, in events or in logs. What a key is and how it is made is the
//! hub's business; this file translates the `which` body and the answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hub::service::KeyName;
use serde::Deserialize;

use crate::extract::{JsonBody, PathParams};
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane};

/// `which` on the wire.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Which {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

/// Body of `POST /api/devices/{id}/keys/regenerate`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RegenerateBody {
    /// Which key to replace.
    which: Which,
}

/// `GET /api/devices/{id}/keys`.
pub(crate) async fn get<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    reply::json(StatusCode::OK, &state.hub.device_keys(&id).await?)
}

/// `POST /api/devices/{id}/keys/regenerate`.
pub(crate) async fn regenerate<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<RegenerateBody>,
) -> Result<Response, Problem> {
    let which = match body.which {
        Which::Primary => KeyName::Primary,
        Which::Secondary => KeyName::Secondary,
    };
    reply::json(StatusCode::OK, &state.hub.regenerate_key(&id, which).await?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::testing::Client;

    #[tokio::test]
    async fn admins_read_and_regenerate_keys() {
        let c = Client::new();
        let body = json!({"deviceId": "d1", "authKind": "sas", "symmetricKey": "c2VjcmV0LWtleS1mb3ItdGVzdHM="});
        assert_eq!(
            c.call("POST", "/api/devices", Some(&body)).await.status,
            201
        );
        let keys = c.call("GET", "/api/devices/d1/keys", None).await;
        assert_eq!(keys.status, 200, "{}", keys.text);
        assert_eq!(keys.json["primaryKey"], "c2VjcmV0LWtleS1mb3ItdGVzdHM=");
        assert!(keys.json["secondaryKey"].is_string());
        assert_eq!(
            keys.json["connectionString"],
            "HostName=127.0.0.1;DeviceId=d1;SharedAccessKey=c2VjcmV0LWtleS1mb3ItdGVzdHM="
        );
        // The device listing never carries keys.
        let listed = c.call("GET", "/api/devices", None).await;
        assert!(!listed.text.contains("c2VjcmV0"), "{}", listed.text);

        let fresh = c
            .call(
                "POST",
                "/api/devices/d1/keys/regenerate",
                Some(&json!({"which": "primary"})),
            )
            .await;
        assert_eq!(fresh.status, 200, "{}", fresh.text);
        assert_ne!(fresh.json["primaryKey"], keys.json["primaryKey"]);
        assert_eq!(fresh.json["secondaryKey"], keys.json["secondaryKey"]);

        for body in [
            json!({"which": "tertiary"}),
            json!({}),
            json!({"which": "primary", "x": 1}),
        ] {
            let r = c
                .call("POST", "/api/devices/d1/keys/regenerate", Some(&body))
                .await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
        }
    }

    #[tokio::test]
    async fn only_admins_see_keys() {
        let c = Client::new();
        c.call(
            "POST",
            "/api/devices",
            Some(&json!({"deviceId": "d1", "authKind": "sas"})),
        )
        .await;
        for token in [&c.operator, &c.reader] {
            let r = c
                .send_raw("GET", "/api/devices/d1/keys", Some(token), None)
                .await;
            assert_eq!(r.status, 403, "{}", r.text);
            let r = c
                .send_raw(
                    "POST",
                    "/api/devices/d1/keys/regenerate",
                    Some(token),
                    Some(&json!({"which": "secondary"})),
                )
                .await;
            assert_eq!(r.status, 403, "{}", r.text);
        }
    }

    #[tokio::test]
    async fn devices_without_keys_and_unknown_devices_are_problems() {
        let c = Client::new();
        c.call("POST", "/api/devices", Some(&json!({"deviceId": "plain"})))
            .await;
        let r = c.call("GET", "/api/devices/plain/keys", None).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = c.call("GET", "/api/devices/ghost/keys", None).await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = c
            .call(
                "POST",
                "/api/devices",
                Some(&json!({"deviceId": "x", "symmetricKey": "c2VjcmV0LWtleS1mb3ItdGVzdHM="})),
            )
            .await;
        assert_eq!(r.status, 400, "a key without authKind sas: {}", r.text);
    }
}
