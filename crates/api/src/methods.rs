//! `POST /api/devices/{id}/methods/{name}`: direct methods.
//!
//! The answer is `200` whenever the device answered, with the device's own status in the
//! body (as Azure IoT Hub does): the HTTP status says whether the call reached the
//! device, the body what the device made of it. Not connected is `404`, no answer `504`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hub::service::MethodCall;
use serde::Deserialize;
use serde_json::Value;

use crate::extract::{JsonBody, PathParams};
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane};

/// Response timeout when none is given, as in Azure.
const DEFAULT_RESPONSE_TIMEOUT_S: u64 = 30;
/// Upper bound of both timeouts: a request holds a connection and a hub slot this long.
const MAX_TIMEOUT_S: u64 = 300;

/// Body of the call; every member is optional.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InvokeBody {
    #[serde(default)]
    payload: Value,
    response_timeout_in_seconds: Option<u64>,
    connect_timeout_in_seconds: Option<u64>,
}

impl InvokeBody {
    /// The hub's call, with timeouts checked against their ranges.
    fn into_call(self, name: String) -> Result<MethodCall, Problem> {
        let response = self
            .response_timeout_in_seconds
            .unwrap_or(DEFAULT_RESPONSE_TIMEOUT_S);
        if !(1..=MAX_TIMEOUT_S).contains(&response) {
            return Err(Problem::bad_request(format!(
                "responseTimeoutInSeconds must be from 1 to {MAX_TIMEOUT_S}, not {response}"
            )));
        }
        let connect = self.connect_timeout_in_seconds.unwrap_or(0);
        if connect > MAX_TIMEOUT_S {
            return Err(Problem::bad_request(format!(
                "connectTimeoutInSeconds must be from 0 to {MAX_TIMEOUT_S}, not {connect}"
            )));
        }
        if name.is_empty() {
            return Err(Problem::bad_request("the method name is empty"));
        }
        Ok(MethodCall {
            name,
            payload: self.payload,
            response_timeout: Duration::from_secs(response),
            connect_timeout: Duration::from_secs(connect),
        })
    }
}

/// `POST /api/devices/{id}/methods/{name}`.
pub(crate) async fn invoke<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams((id, name)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<InvokeBody>,
) -> Result<Response, Problem> {
    let call = body.into_call(name)?;
    let answer = state.hub.invoke_method(&id, call).await?;
    reply::json(StatusCode::OK, &answer)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Client;

    async fn with_devices() -> Client {
        let c = Client::new();
        for id in ["d1", "sleepy"] {
            c.call("POST", "/api/devices", Some(&json!({"deviceId": id})))
                .await;
        }
        c
    }

    #[tokio::test]
    async fn defaults_and_answers() {
        let c = with_devices().await;
        let r = c
            .send_raw(
                "POST",
                "/api/devices/d1/methods/reboot",
                Some(&c.operator),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json, json!({"status": 200, "payload": {"echo": null}}));
        let call = c.hub.state().last_call.clone().expect("called");
        assert_eq!(call.name, "reboot");
        assert_eq!(call.response_timeout, Duration::from_secs(30));
        assert_eq!(call.connect_timeout, Duration::ZERO);

        let body = json!({"payload": {"delay": 5}, "responseTimeoutInSeconds": 300, "connectTimeoutInSeconds": 10});
        let r = c
            .call("POST", "/api/devices/d1/methods/set%20mode", Some(&body))
            .await;
        assert_eq!(r.json["payload"]["echo"]["delay"], 5);
        let call = c.hub.state().last_call.clone().expect("called");
        assert_eq!(call.name, "set mode");
        assert_eq!(call.response_timeout, Duration::from_secs(300));
        assert_eq!(call.connect_timeout, Duration::from_secs(10));

        let failed = c.call("POST", "/api/devices/d1/methods/fail", None).await;
        assert_eq!(failed.status, 200, "the device's error is in the body");
        assert_eq!(failed.json["status"], 500);
    }

    #[tokio::test]
    async fn errors_map_to_statuses() {
        let c = with_devices().await;
        let cases = [
            (
                "/api/devices/nope/methods/m",
                json!({}),
                404,
                "device-not-found",
            ),
            (
                "/api/devices/sleepy/methods/m",
                json!({}),
                404,
                "device-not-connected",
            ),
            (
                "/api/devices/d1/methods/slow",
                json!({}),
                504,
                "device-timeout",
            ),
            (
                "/api/devices/d1/methods/m",
                json!({"responseTimeoutInSeconds": 0}),
                400,
                "invalid-request",
            ),
            (
                "/api/devices/d1/methods/m",
                json!({"responseTimeoutInSeconds": 301}),
                400,
                "invalid-request",
            ),
            (
                "/api/devices/d1/methods/m",
                json!({"connectTimeoutInSeconds": 301}),
                400,
                "invalid-request",
            ),
            (
                "/api/devices/d1/methods/m",
                json!({"responseTimeoutInSeconds": -1}),
                400,
                "invalid-body",
            ),
            (
                "/api/devices/d1/methods/m",
                json!({"methodName": "x"}),
                400,
                "invalid-body",
            ),
        ];
        for (path, body, status, kind) in cases {
            let r = c.call("POST", path, Some(&body)).await;
            assert_eq!(r.status, status, "{path} {body}: {}", r.text);
            assert_eq!(
                r.json["type"],
                format!("urn:bosun:problem:{kind}"),
                "{path} {body}"
            );
        }
    }
}
