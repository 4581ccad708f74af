//! `/api/devices/{id}/twin` and `/api/query`: twins and the twin query language.
//!
//! The ETag travels in the `ETag` header both ways (`If-Match` on a patch), so plain
//! HTTP clients get optimistic concurrency without reading the document. What a patch
//! means (merge rules, limits, versions) is the hub's; this file only checks that the
//! patch touches what an operator may write: tags and desired properties.

use axum::extract::State;
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hub::service::TwinView;
use serde::Deserialize;
use serde_json::Value;

use crate::devices::opaque;
use crate::extract::{JsonBody, PathParams};
use crate::operations::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::problem::Problem;
use crate::{continuation, reply, ApiState, ControlPlane};

/// `GET /api/devices/{id}/twin`.
pub(crate) async fn get<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    twin_response(state.hub.twin(&id).await?)
}

/// `PATCH /api/devices/{id}/twin`.
pub(crate) async fn patch<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    check_patch(&patch)?;
    let if_match = if_match(&headers)?;
    twin_response(state.hub.patch_twin(&id, patch, if_match).await?)
}

/// The twin as JSON with its ETag header.
fn twin_response(twin: TwinView) -> Result<Response, Problem> {
    reply::with_header(reply::json(StatusCode::OK, &twin.json)?, ETAG, &twin.etag)
}

/// `If-Match`: absent or `*` matches any version.
fn if_match(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Problem::bad_request("If-Match must be an ETag such as \"7\""))?
        .trim();
    if value.is_empty() {
        return Err(Problem::bad_request("If-Match is empty"));
    }
    Ok((value != "*").then(|| value.to_owned()))
}

/// A patch may hold `tags` and `properties.desired`, each an object (or `null` to clear).
fn check_patch(patch: &Value) -> Result<(), Problem> {
    let Value::Object(members) = patch else {
        return Err(Problem::bad_request(
            "a twin patch is a JSON object: {\"tags\": {...}, \"properties\": {\"desired\": {...}}}",
        ));
    };
    for (name, value) in members {
        match name.as_str() {
            "tags" => object_or_null("tags", value)?,
            "properties" => {
                let Value::Object(sections) = value else {
                    return Err(Problem::bad_request("properties must be an object"));
                };
                for (section, value) in sections {
                    match section.as_str() {
                        "desired" => object_or_null("properties.desired", value)?,
                        "reported" => {
                            return Err(Problem::bad_request(
                                "reported properties are written by the device, not the service",
                            ))
                        }
                        other => {
                            return Err(Problem::bad_request(format!(
                                "unknown twin section properties.{other}"
                            )))
                        }
                    }
                }
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "a twin patch may change tags and properties.desired, not {other}"
                )))
            }
        }
    }
    Ok(())
}

fn object_or_null(name: &str, value: &Value) -> Result<(), Problem> {
    if value.is_object() || value.is_null() {
        Ok(())
    } else {
        Err(Problem::bad_request(format!("{name} must be an object")))
    }
}

/// Body of `POST /api/query`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct QueryBody {
    query: String,
    continuation: Option<String>,
    limit: Option<usize>,
}

/// `POST /api/query`.
pub(crate) async fn query<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    JsonBody(body): JsonBody<QueryBody>,
) -> Result<Response, Problem> {
    let limit = match body.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(Problem::bad_request(format!(
                "limit must be from 1 to {MAX_LIMIT}, not {n}"
            )))
        }
    };
    if body.query.trim().is_empty() {
        return Err(Problem::bad_request("query is empty"));
    }
    let after = body
        .continuation
        .as_deref()
        .map(continuation::decode)
        .transpose()?;
    let page = state.hub.query(&body.query, after, limit).await?;
    reply::json(StatusCode::OK, &opaque(page))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{request, Client};

    async fn with_device() -> Client {
        let c = Client::new();
        let r = c
            .call(
                "POST",
                "/api/devices",
                Some(&json!({"deviceId": "d1", "desired": {"mode": "idle"}})),
            )
            .await;
        assert_eq!(r.status, 201);
        c
    }

    #[tokio::test]
    async fn get_and_patch_with_etags() {
        let c = with_device().await;
        let twin = c
            .send_raw("GET", "/api/devices/d1/twin", Some(&c.reader), None)
            .await;
        assert_eq!(twin.status, 200);
        assert_eq!(twin.header("etag"), Some("\"1\""));
        assert_eq!(twin.json["properties"]["desired"]["mode"], "idle");

        let patch = json!({"properties": {"desired": {"mode": "alarm"}}, "tags": {"site": "b"}});
        let stale = c
            .send(request(
                "PATCH",
                "/api/devices/d1/twin",
                Some(&c.operator),
                &[("if-match", "\"0\"")],
                Some(&patch),
            ))
            .await;
        assert_eq!(stale.status, 412);
        assert_eq!(stale.json["currentEtag"], "\"1\"");
        assert_eq!(stale.header("etag"), Some("\"1\""));

        let ok = c
            .send(request(
                "PATCH",
                "/api/devices/d1/twin",
                Some(&c.operator),
                &[("if-match", "\"1\"")],
                Some(&patch),
            ))
            .await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert_eq!(ok.header("etag"), Some("\"2\""));
        assert_eq!(ok.json["properties"]["desired"]["mode"], "alarm");

        let any = c
            .send(request(
                "PATCH",
                "/api/devices/d1/twin",
                Some(&c.operator),
                &[("if-match", "*")],
                Some(&patch),
            ))
            .await;
        assert_eq!(any.header("etag"), Some("\"3\""));
        let none = c.call("PATCH", "/api/devices/d1/twin", Some(&patch)).await;
        assert_eq!(none.header("etag"), Some("\"4\""));

        let missing = c.call("GET", "/api/devices/nope/twin", None).await;
        assert_eq!(missing.status, 404);
    }

    #[tokio::test]
    async fn patches_may_only_touch_tags_and_desired() {
        let c = with_device().await;
        for patch in [
            json!([1]),
            json!({"properties": {"reported": {"x": 1}}}),
            json!({"properties": {"other": {}}}),
            json!({"properties": 1}),
            json!({"tags": "x"}),
            json!({"deviceId": "other"}),
        ] {
            let r = c.call("PATCH", "/api/devices/d1/twin", Some(&patch)).await;
            assert_eq!(r.status, 400, "{patch}: {}", r.text);
        }
        let r = c
            .call(
                "PATCH",
                "/api/devices/d1/twin",
                Some(&json!({"tags": null})),
            )
            .await;
        assert_eq!(r.status, 200);
    }

    #[tokio::test]
    async fn queries_page_with_opaque_tokens() {
        let c = with_device().await;
        c.call("POST", "/api/devices", Some(&json!({"deviceId": "d2"})))
            .await;
        let first = c
            .send_raw(
                "POST",
                "/api/query",
                Some(&c.reader),
                Some(&json!({"query": "SELECT * FROM devices", "limit": 1})),
            )
            .await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_eq!(first.json["items"].as_array().map(Vec::len), Some(1));
        let token = first.json["continuation"].as_str().expect("more");
        let second = c
            .call(
                "POST",
                "/api/query",
                Some(&json!({"query": "SELECT * FROM devices", "continuation": token})),
            )
            .await;
        assert_eq!(second.json["items"][0]["deviceId"], "d2");
        assert_eq!(
            c.hub.state().last_query,
            Some((
                "SELECT * FROM devices".into(),
                Some("d1".into()),
                DEFAULT_LIMIT
            ))
        );

        let bad = c
            .call("POST", "/api/query", Some(&json!({"query": "SELECT BAD"})))
            .await;
        assert_eq!(bad.status, 400);
        assert!(bad.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("BAD")));
        for body in [
            json!({"query": " "}),
            json!({"query": "x", "limit": 0}),
            json!({}),
        ] {
            assert_eq!(
                c.call("POST", "/api/query", Some(&body)).await.status,
                400,
                "{body}"
            );
        }
    }
}
