//! `/api/devices/{id}/messages` and `/api/feedback`: cloud-to-device messages.
//!
//! Payloads are bytes; JSON carries them as text (`payload`) or, when they are not
//! UTF-8, as base64 (`payloadBase64`), in both directions. Store records have raw
//! millisecond times; they are shown as RFC 3339 like every other time in the API.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hub::service::{C2dMessage, C2dOutcome, C2dSend, Feedback};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::operations::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::problem::Problem;
use crate::{base64, continuation, reply, ApiState, ControlPlane};
use hub::twin::rfc3339;

/// Longest time to live accepted here (a year): keeps expiry arithmetic far from
/// overflow; the hub may apply a tighter limit of its own.
const MAX_TTL_S: u64 = 365 * 24 * 3600;

/// Body of `POST /api/devices/{id}/messages`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SendBody {
    payload: Option<String>,
    payload_base64: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
    ttl_seconds: Option<u64>,
}

impl SendBody {
    /// The hub's message, with payload and properties decoded and checked.
    fn into_message(self) -> Result<C2dSend, Problem> {
        let payload = match (self.payload, self.payload_base64) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(encoded)) => base64::decode(&encoded)
                .map_err(|e| Problem::bad_request(format!("payloadBase64: {e}")))?,
            (Some(_), Some(_)) => {
                return Err(Problem::bad_request(
                    "give payload or payloadBase64, not both",
                ))
            }
            (None, None) => {
                return Err(Problem::bad_request(
                    "payload (text) or payloadBase64 (binary) is required",
                ))
            }
        };
        let properties = self
            .properties
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(s) => Ok((name, s)),
                _ => Err(Problem::bad_request(format!(
                    "properties.{name} must be a string"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ttl = match self.ttl_seconds {
            None => None,
            Some(s) if (1..=MAX_TTL_S).contains(&s) => Some(Duration::from_secs(s)),
            Some(s) => {
                return Err(Problem::bad_request(format!(
                    "ttlSeconds must be from 1 to {MAX_TTL_S}, not {s}"
                )))
            }
        };
        Ok(C2dSend {
            payload,
            properties,
            ttl,
        })
    }
}

/// `POST /api/devices/{id}/messages`: accepted for delivery, hence `202`.
pub(crate) async fn send<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<SendBody>,
) -> Result<Response, Problem> {
    let message = body.into_message()?;
    let message_id = state.hub.send_c2d(&id, message).await?;
    reply::json(StatusCode::ACCEPTED, &json!({ "messageId": message_id }))
}

/// `GET /api/devices/{id}/messages`.
pub(crate) async fn queue<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let items: Vec<Value> = state
        .hub
        .c2d_queue(&id)
        .await?
        .iter()
        .map(message_json)
        .collect();
    reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// `DELETE /api/devices/{id}/messages`.
pub(crate) async fn purge<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let purged = state.hub.purge_c2d(&id).await?;
    reply::json(StatusCode::OK, &json!({ "purged": purged }))
}

/// `GET /api/feedback`. `after` (a sequence number) and `continuation` (the opaque
/// form handed out with the previous page) say where to start; not both.
pub(crate) async fn feedback<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    params: QueryParams,
) -> Result<Response, Problem> {
    let limit = params
        .number("limit", 1, MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT);
    let after = match (
        params.number("after", 0, i64::MAX)?,
        params.get("continuation"),
    ) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request("give after or continuation, not both"))
        }
        (Some(after), None) => after,
        (None, Some(token)) => continuation::decode(token)?.parse().map_err(|_| {
            Problem::bad_request("the continuation token is not one this API handed out")
        })?,
        (None, None) => 0,
    };
    let device = params.get("deviceId").map(str::to_owned);
    // One more than asked tells whether another page exists.
    let mut records = state.hub.feedback(device, after, limit + 1).await?;
    let more = records.len() > limit;
    records.truncate(limit);
    let mut body = json!({ "items": records.iter().map(feedback_json).collect::<Vec<_>>() });
    if more {
        if let Some(last) = records.last() {
            body["continuation"] = json!(continuation::encode(&last.seq.to_string()));
        }
    }
    reply::json(StatusCode::OK, &body)
}

/// A queued message as JSON.
fn message_json(message: &C2dMessage) -> Value {
    let properties: Map<String, Value> = message
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut out = json!({
        "messageId": message.id,
        "deviceId": message.device_id,
        "properties": properties,
        "enqueuedTime": rfc3339(message.enqueued_ms),
        "expiryTime": rfc3339(message.expires_ms),
    });
    match std::str::from_utf8(&message.payload) {
        Ok(text) => out["payload"] = json!(text),
        Err(_) => out["payloadBase64"] = json!(base64::encode(&message.payload)),
    }
    out
}

/// A feedback record as JSON.
fn feedback_json(record: &Feedback) -> Value {
    let outcome = match record.outcome {
        C2dOutcome::Delivered => "delivered",
        C2dOutcome::Expired => "expired",
        C2dOutcome::Purged => "purged",
    };
    json!({
        "seq": record.seq,
        "messageId": record.message_id,
        "deviceId": record.device_id,
        "outcome": outcome,
        "time": rfc3339(record.at_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::QUEUE_LIMIT;
    use crate::testing::Client;

    async fn with_device() -> Client {
        let c = Client::new();
        c.call("POST", "/api/devices", Some(&json!({"deviceId": "d1"})))
            .await;
        c
    }

    #[tokio::test]
    async fn send_list_purge_and_feedback() {
        let c = with_device().await;
        let sent = c
            .send_raw(
                "POST",
                "/api/devices/d1/messages",
                Some(&c.operator),
                Some(
                    &json!({"payload": "capture", "properties": {"rate": "10k"}, "ttlSeconds": 60}),
                ),
            )
            .await;
        assert_eq!(sent.status, 202, "{}", sent.text);
        assert_eq!(sent.json["messageId"], "m1");
        let last = c.hub.state().last_send.clone().expect("sent");
        assert_eq!(last.payload, b"capture");
        assert_eq!(last.properties, [("rate".to_owned(), "10k".to_owned())]);
        assert_eq!(last.ttl, Some(Duration::from_secs(60)));

        let binary = c
            .call(
                "POST",
                "/api/devices/d1/messages",
                Some(&json!({"payloadBase64": "/wA="})),
            )
            .await;
        assert_eq!(binary.status, 202);
        assert_eq!(
            c.hub.state().last_send.as_ref().map(|m| m.payload.clone()),
            Some(vec![0xff, 0])
        );

        let queue = c
            .send_raw("GET", "/api/devices/d1/messages", Some(&c.reader), None)
            .await;
        assert_eq!(queue.status, 200);
        let items = queue.json["items"].as_array().expect("items");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["payload"], "capture");
        assert_eq!(items[0]["properties"]["rate"], "10k");
        assert_eq!(items[0]["enqueuedTime"], "2025-01-01T00:00:00.000Z");
        assert_eq!(items[0]["expiryTime"], "2025-01-01T00:01:00.000Z");
        assert_eq!(items[1]["payloadBase64"], "/wA=");
        assert!(items[1].get("payload").is_none());

        let purged = c
            .send_raw(
                "DELETE",
                "/api/devices/d1/messages",
                Some(&c.operator),
                None,
            )
            .await;
        assert_eq!(purged.json, json!({"purged": 2}));

        let page = c
            .call("GET", "/api/feedback?deviceId=d1&limit=1", None)
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.json["items"][0]["outcome"], "purged");
        assert_eq!(page.json["items"][0]["seq"], 1);
        let token = page.json["continuation"].as_str().expect("more");
        let next = c
            .call(
                "GET",
                &format!("/api/feedback?deviceId=d1&limit=1&continuation={token}"),
                None,
            )
            .await;
        assert_eq!(next.json["items"][0]["seq"], 2);
        assert!(next.json.get("continuation").is_none(), "{}", next.text);
        assert_eq!(
            c.hub.state().last_feedback,
            Some((Some("d1".into()), 1, 2)),
            "asks one more than the limit"
        );
        let after = c.call("GET", "/api/feedback?after=2", None).await;
        assert_eq!(after.json["items"], json!([]));
        let both = c
            .call(
                "GET",
                &format!("/api/feedback?after=1&continuation={token}"),
                None,
            )
            .await;
        assert_eq!(both.status, 400);
    }

    #[tokio::test]
    async fn bad_messages_and_full_queues() {
        let c = with_device().await;
        for body in [
            json!({}),
            json!({"payload": "a", "payloadBase64": "YQ=="}),
            json!({"payloadBase64": "not base64!"}),
            json!({"payload": "a", "properties": {"n": 1}}),
            json!({"payload": "a", "ttlSeconds": 0}),
            json!({"payload": 5}),
            json!({"payload": "a", "ttl": 5}),
        ] {
            let r = c
                .call("POST", "/api/devices/d1/messages", Some(&body))
                .await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
        }
        let missing = c
            .call(
                "POST",
                "/api/devices/nope/messages",
                Some(&json!({"payload": "x"})),
            )
            .await;
        assert_eq!(missing.status, 404);
        for _ in 0..QUEUE_LIMIT {
            let r = c
                .call(
                    "POST",
                    "/api/devices/d1/messages",
                    Some(&json!({"payload": ""})),
                )
                .await;
            assert_eq!(r.status, 202);
        }
        let full = c
            .call(
                "POST",
                "/api/devices/d1/messages",
                Some(&json!({"payload": "x"})),
            )
            .await;
        assert_eq!(full.status, 429);
        assert_eq!(full.json["type"], "urn:bosun:problem:queue-full");
    }
}
