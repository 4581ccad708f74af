//! `/api/devices` and `/api/devices/{id}`: the device registry.
//!
//! Translates JSON and query strings into the hub's `NewDevice`, `DeviceUpdate` and
//! `DeviceQuery`, and the hub's answers back; validation of ids and limits beyond the
//! wire format is the hub's.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hub::service::{ConnectionState, DeviceQuery, DeviceStatus, DeviceUpdate, NewDevice, Page};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::extract::{encode_path_segment, JsonBody, PathParams, QueryParams};
use crate::problem::Problem;
use crate::{continuation, reply, ApiState, ControlPlane};

/// `status` as it appears on the wire.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StatusName {
    /// May connect.
    Enabled,
    /// Refused at connect.
    Disabled,
}

impl From<StatusName> for DeviceStatus {
    fn from(name: StatusName) -> DeviceStatus {
        match name {
            StatusName::Enabled => DeviceStatus::Enabled,
            StatusName::Disabled => DeviceStatus::Disabled,
        }
    }
}

/// Body of `POST /api/devices`. Unknown members are errors: a misspelt `staus` would
/// otherwise create an enabled device without a word.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateBody {
    device_id: String,
    auth_kind: Option<String>,
    group: Option<String>,
    tags: Option<Value>,
    desired: Option<Value>,
    status: Option<StatusName>,
    /// Primary key for authKind `sas` (generated when absent).
    symmetric_key: Option<Secret>,
}

/// A secret from a request body: read as a string, never printed (the body types
/// derive `Debug`).
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Body of `PATCH /api/devices/{id}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct UpdateBody {
    status: Option<StatusName>,
    /// Absent: unchanged; `null`: removed; a string: set.
    #[serde(default, deserialize_with = "present")]
    group: Option<Option<String>>,
}

/// Marks a member as present even when it is `null` (serde maps a missing member to
/// the `default`, `None`, and only calls this for present ones).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Checks that `value`, if given, is a JSON object.
fn object_or_absent(name: &str, value: Option<Value>) -> Result<Option<Value>, Problem> {
    match value {
        Some(v) if !v.is_object() => Err(Problem::bad_request(format!(
            "{name} must be a JSON object"
        ))),
        other => Ok(other),
    }
}

/// `POST /api/devices`.
pub(crate) async fn create<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, Problem> {
    let new = NewDevice {
        id: body.device_id,
        auth_kind: body.auth_kind,
        group: body.group,
        tags: object_or_absent("tags", body.tags)?,
        desired: object_or_absent("desired", body.desired)?,
        status: body.status.map(DeviceStatus::from),
        symmetric_key: body.symmetric_key.map(|Secret(key)| key),
    };
    let info = state.hub.create_device(new).await?;
    let location = format!("/api/devices/{}", encode_path_segment(&info.device_id));
    reply::with_header(
        reply::json(StatusCode::CREATED, &info)?,
        LOCATION,
        &location,
    )
}

/// `GET /api/devices`.
pub(crate) async fn list<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    params: QueryParams,
) -> Result<Response, Problem> {
    let query = DeviceQuery {
        status: params
            .get("status")
            .map(|s| {
                parse_word(
                    "status",
                    s,
                    &[
                        ("enabled", DeviceStatus::Enabled),
                        ("disabled", DeviceStatus::Disabled),
                    ],
                )
            })
            .transpose()?,
        connection: params
            .get("connectionState")
            .map(|s| {
                parse_word(
                    "connectionState",
                    s,
                    &[
                        ("connected", ConnectionState::Connected),
                        ("disconnected", ConnectionState::Disconnected),
                    ],
                )
            })
            .transpose()?,
        group: params.get("group").map(str::to_owned),
        tag: params.get("tag").map(parse_tag).transpose()?,
    };
    let (limit, after) = params.page()?;
    let page = state.hub.list_devices(query, after, limit).await?;
    reply::json(StatusCode::OK, &opaque(page))
}

/// `GET /api/devices/{id}`.
pub(crate) async fn get<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    reply::json(StatusCode::OK, &state.hub.device(&id).await?)
}

/// `PATCH /api/devices/{id}`.
pub(crate) async fn update<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Response, Problem> {
    let update = DeviceUpdate {
        status: body.status.map(DeviceStatus::from),
        group: body.group,
    };
    reply::json(StatusCode::OK, &state.hub.update_device(&id, update).await?)
}

/// `DELETE /api/devices/{id}`.
pub(crate) async fn delete<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    state.hub.delete_device(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One of a fixed set of words for a query parameter.
fn parse_word<T: Copy>(name: &str, value: &str, words: &[(&str, T)]) -> Result<T, Problem> {
    words
        .iter()
        .find(|(word, _)| *word == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let expected: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
            Problem::bad_request(format!(
                "query parameter {name} must be one of {}, not {value:?}",
                expected.join(", ")
            ))
        })
}

/// `tag=key:value`; the value may itself contain `:`.
fn parse_tag(raw: &str) -> Result<(String, String), Problem> {
    match raw.split_once(':') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(Problem::bad_request(format!(
            "query parameter tag must be key:value, not {raw:?}"
        ))),
    }
}

/// The hub's page with its cursor made opaque.
pub(crate) fn opaque<T>(page: Page<T>) -> Page<T> {
    Page {
        items: page.items,
        continuation: page.continuation.as_deref().map(continuation::encode),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Client;

    #[tokio::test]
    async fn create_get_update_delete() {
        let c = Client::new();
        let body =
            json!({"deviceId": "d 1", "group": "g", "tags": {"site": "a"}, "status": "disabled"});
        let created = c
            .send_raw("POST", "/api/devices", Some(&c.operator), Some(&body))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.json["deviceId"], "d 1");
        assert_eq!(created.json["status"], "disabled");
        assert_eq!(created.header("location"), Some("/api/devices/d%201"));
        assert_eq!(created.header("content-type"), Some("application/json"));

        let again = c.call("POST", "/api/devices", Some(&body)).await;
        assert_eq!(again.status, 409);
        assert_eq!(again.json["type"], "urn:bosun:problem:device-exists");

        let got = c.call("GET", "/api/devices/d%201", None).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.json["group"], "g");

        let patched = c
            .call(
                "PATCH",
                "/api/devices/d%201",
                Some(&json!({"status": "enabled", "group": null})),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        assert_eq!(patched.json["status"], "enabled");
        assert_eq!(patched.json["group"], Value::Null);

        let kept = c
            .call(
                "PATCH",
                "/api/devices/d%201",
                Some(&json!({"status": "disabled"})),
            )
            .await;
        assert_eq!(kept.json["group"], Value::Null);

        let deleted = c.call("DELETE", "/api/devices/d%201", None).await;
        assert_eq!(deleted.status, 204);
        assert!(deleted.text.is_empty());
        let gone = c.call("GET", "/api/devices/d%201", None).await;
        assert_eq!(gone.status, 404);
        assert_eq!(
            gone.header("content-type"),
            Some("application/problem+json")
        );
    }

    #[tokio::test]
    async fn group_absent_null_and_set_are_three_things() {
        let c = Client::new();
        c.call(
            "POST",
            "/api/devices",
            Some(&json!({"deviceId": "d", "group": "g"})),
        )
        .await;
        let set = c
            .call("PATCH", "/api/devices/d", Some(&json!({"group": "h"})))
            .await;
        assert_eq!(set.json["group"], "h");
        let untouched = c.call("PATCH", "/api/devices/d", Some(&json!({}))).await;
        assert_eq!(untouched.json["group"], "h");
        let removed = c
            .call("PATCH", "/api/devices/d", Some(&json!({"group": null})))
            .await;
        assert_eq!(removed.json["group"], Value::Null);
    }

    #[tokio::test]
    async fn bad_bodies_are_problems() {
        let c = Client::new();
        for (body, kind) in [
            (json!({"deviceId": "d", "staus": "enabled"}), "invalid-body"),
            (json!({"group": "g"}), "invalid-body"),
            (json!({"deviceId": "d", "status": "paused"}), "invalid-body"),
            (json!({"deviceId": "d", "tags": [1]}), "invalid-request"),
            (json!({"deviceId": ""}), "invalid-request"),
        ] {
            let r = c.call("POST", "/api/devices", Some(&body)).await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
            assert_eq!(
                r.json["type"],
                format!("urn:bosun:problem:{kind}"),
                "{body}"
            );
        }
        let syntax = c
            .send(crate::testing::request(
                "POST",
                "/api/devices",
                Some(&c.admin),
                &[("content-type", "application/json")],
                None,
            ))
            .await;
        // An empty body reads as `{}`: deviceId is missing.
        assert_eq!(syntax.status, 400);
        let mut request =
            crate::testing::request("POST", "/api/devices", Some(&c.admin), &[], None);
        *request.body_mut() = axum::body::Body::from("{\"deviceId\":");
        request.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/json"),
        );
        let broken = c.send(request).await;
        assert_eq!(broken.status, 400);
        assert_eq!(broken.json["type"], "urn:bosun:problem:invalid-json");
        let mut request =
            crate::testing::request("POST", "/api/devices", Some(&c.admin), &[], None);
        *request.body_mut() = axum::body::Body::from("deviceId=d");
        request.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(c.send(request).await.status, 415);
    }

    #[tokio::test]
    async fn listing_filters_pages_and_hides_the_cursor() {
        let c = Client::new();
        for (id, group) in [("a", "x"), ("b", "y"), ("c", "x"), ("d", "x")] {
            c.call(
                "POST",
                "/api/devices",
                Some(&json!({"deviceId": id, "group": group, "tags": {"site": "s:1"}})),
            )
            .await;
        }
        let first = c
            .send_raw(
                "GET",
                "/api/devices?group=x&limit=2&status=&tag=site:s:1&connectionState=disconnected",
                Some(&c.reader),
                None,
            )
            .await;
        assert_eq!(first.status, 200, "{}", first.text);
        let ids: Vec<&str> = first.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|d| d["deviceId"].as_str())
            .collect();
        assert_eq!(ids, ["a", "c"]);
        let token = first.json["continuation"]
            .as_str()
            .expect("more")
            .to_owned();
        assert_ne!(token, "c", "cursor is opaque");
        {
            let state = c.hub.state();
            let (query, after, limit) = state.last_list.as_ref().expect("listed");
            assert_eq!(query.group.as_deref(), Some("x"));
            assert_eq!(query.tag, Some(("site".into(), "s:1".into())));
            assert!(query.status.is_none());
            assert_eq!(query.connection, Some(ConnectionState::Disconnected));
            assert!(after.is_none());
            assert_eq!(*limit, 2);
        }
        let second = c
            .call(
                "GET",
                &format!("/api/devices?group=x&limit=2&continuation={token}"),
                None,
            )
            .await;
        assert_eq!(second.json["items"][0]["deviceId"], "d");
        assert!(second.json.get("continuation").is_none());
        assert_eq!(
            c.hub.state().last_list.as_ref().and_then(|l| l.1.clone()),
            Some("c".into())
        );

        for bad in [
            "/api/devices?limit=0",
            "/api/devices?limit=1001",
            "/api/devices?limit=ten",
            "/api/devices?status=on",
            "/api/devices?connectionState=maybe",
            "/api/devices?tag=novalue",
            "/api/devices?continuation=garbage",
            "/api/devices?grop=x",
        ] {
            let r = c.call("GET", bad, None).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.text);
        }
    }
}
