//! `/api/groups`: device groups, named twin-query conditions.
//!
//! A group stores a condition, not a list of devices: who is in it is worked out when
//! its devices are listed, so membership follows tags and reported properties as they
//! change. The hub checks conditions (its message names the byte position inside the
//! condition) and stores groups; this file translates JSON and query strings, and gives
//! an unknown group its own problem type, since the hub reports it as a plain
//! `NotFound`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hub::service::HubError;
use serde::Deserialize;
use serde_json::json;

use crate::devices::opaque;
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane};

/// Body of `PUT /api/groups/{name}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PutBody {
    /// The WHERE part of a twin query.
    condition: String,
}

/// `PUT /api/groups/{name}`: defines the group, or replaces its condition.
pub(crate) async fn put<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<PutBody>,
) -> Result<Response, Problem> {
    if body.condition.trim().is_empty() {
        return Err(Problem::bad_request(
            "condition is empty; a group needs one, such as tags.site = 'plant-7'",
        ));
    }
    let info = state
        .hub
        .put_group(&name, &body.condition)
        .await
        .map_err(|e| group_problem(&name, e))?;
    reply::json(StatusCode::OK, &info)
}

/// `GET /api/groups`.
pub(crate) async fn list<H: ControlPlane>(
    State(state): State<ApiState<H>>,
) -> Result<Response, Problem> {
    let groups = state.hub.groups().await?;
    reply::json(StatusCode::OK, &json!({ "items": groups }))
}

/// `GET /api/groups/{name}`.
pub(crate) async fn get<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    let info = state
        .hub
        .group(&name)
        .await
        .map_err(|e| group_problem(&name, e))?;
    reply::json(StatusCode::OK, &info)
}

/// `DELETE /api/groups/{name}`.
pub(crate) async fn delete<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    state
        .hub
        .delete_group(&name)
        .await
        .map_err(|e| group_problem(&name, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/groups/{name}/devices`.
pub(crate) async fn devices<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(name): PathParams<String>,
    params: QueryParams,
) -> Result<Response, Problem> {
    let (limit, after) = params.page()?;
    let page = state
        .hub
        .group_devices(&name, after, limit)
        .await
        .map_err(|e| group_problem(&name, e))?;
    reply::json(StatusCode::OK, &opaque(page))
}

/// The problem for a hub error about group `name`: in these operations `NotFound` can
/// only mean the group (the generic mapping would call it a device).
fn group_problem(name: &str, error: HubError) -> Problem {
    match error {
        HubError::NotFound(_) => Problem::new(
            StatusCode::NOT_FOUND,
            "group-not-found",
            "Group not found",
            format!("group {name} not found"),
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::testing::Client;

    /// A client with devices `a`, `b`, `c` at sites x, y, x.
    async fn fleet() -> Client {
        let c = Client::new();
        for (id, site) in [("a", "x"), ("b", "y"), ("c", "x")] {
            let r = c
                .call(
                    "POST",
                    "/api/devices",
                    Some(&json!({"deviceId": id, "tags": {"site": site}})),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
        c
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|d| d["deviceId"].as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn put_get_list_delete() {
        let c = fleet().await;
        let body = json!({"condition": "tags.site = 'x'"});
        let put = c
            .send_raw("PUT", "/api/groups/site-x", Some(&c.operator), Some(&body))
            .await;
        assert_eq!(put.status, 200, "{}", put.text);
        assert_eq!(put.json["name"], "site-x");
        assert_eq!(put.json["condition"], "tags.site = 'x'");
        assert!(put.json["createdTime"].is_string());

        let got = c
            .send_raw("GET", "/api/groups/site-x", Some(&c.reader), None)
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(got.json, put.json);

        let redefined = c
            .call(
                "PUT",
                "/api/groups/site-x",
                Some(&json!({"condition": "tags.site = 'y'"})),
            )
            .await;
        assert_eq!(redefined.json["condition"], "tags.site = 'y'");
        c.call(
            "PUT",
            "/api/groups/all-x",
            Some(&json!({"condition": "status = 'enabled'"})),
        )
        .await;
        let list = c
            .send_raw("GET", "/api/groups", Some(&c.reader), None)
            .await;
        assert_eq!(list.status, 200);
        let names: Vec<&str> = list.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert_eq!(names, ["all-x", "site-x"]);

        let deleted = c
            .send_raw("DELETE", "/api/groups/site-x", Some(&c.operator), None)
            .await;
        assert_eq!(deleted.status, 204);
        assert!(deleted.text.is_empty());
        let gone = c.call("GET", "/api/groups/site-x", None).await;
        assert_eq!(gone.status, 404);
        assert_eq!(gone.json["type"], "urn:bosun:problem:group-not-found");
        assert_eq!(gone.json["detail"], "group site-x not found");
        assert_eq!(
            c.call("DELETE", "/api/groups/site-x", None).await.status,
            404
        );
    }

    #[tokio::test]
    async fn members_follow_tags_and_page_with_opaque_tokens() {
        let c = fleet().await;
        c.call(
            "PUT",
            "/api/groups/x",
            Some(&json!({"condition": "tags.site = 'x'"})),
        )
        .await;
        let all = c
            .send_raw("GET", "/api/groups/x/devices", Some(&c.reader), None)
            .await;
        assert_eq!(all.status, 200, "{}", all.text);
        assert_eq!(ids(&all.json), ["a", "c"]);
        assert_eq!(all.json["items"][0]["status"], "enabled");
        assert_eq!(all.json["items"][0]["connectionState"], "disconnected");
        assert!(all.json.get("continuation").is_none());

        c.call(
            "PATCH",
            "/api/devices/b/twin",
            Some(&json!({"tags": {"site": "x"}})),
        )
        .await;
        let first = c.call("GET", "/api/groups/x/devices?limit=2", None).await;
        assert_eq!(ids(&first.json), ["a", "b"]);
        let token = first.json["continuation"].as_str().expect("more");
        assert_ne!(token, "b", "cursor is opaque");
        let second = c
            .call(
                "GET",
                &format!("/api/groups/x/devices?limit=2&continuation={token}"),
                None,
            )
            .await;
        assert_eq!(ids(&second.json), ["c"]);
        assert_eq!(
            c.hub.state().last_group_devices,
            Some(("x".into(), Some("b".into()), 2))
        );

        let unknown = c.call("GET", "/api/groups/nope/devices", None).await;
        assert_eq!(unknown.status, 404);
        assert_eq!(unknown.json["type"], "urn:bosun:problem:group-not-found");
        for bad in [
            "/api/groups/x/devices?limit=0",
            "/api/groups/x/devices?limit=1001",
            "/api/groups/x/devices?continuation=garbage",
            "/api/groups/x/devices?after=a",
        ] {
            let r = c.call("GET", bad, None).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.text);
        }
    }

    #[tokio::test]
    async fn bad_definitions_are_problems() {
        let c = fleet().await;
        let bad = c
            .call(
                "PUT",
                "/api/groups/g",
                Some(&json!({"condition": "tags.site = 'x' AND nonsense"})),
            )
            .await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        assert_eq!(bad.json["type"], "urn:bosun:problem:invalid-request");
        assert!(
            bad.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("at 20")),
            "{}",
            bad.text
        );
        for (body, kind) in [
            (json!({"condition": "  "}), "invalid-request"),
            (json!({}), "invalid-body"),
            (json!({"condition": 7}), "invalid-body"),
            (
                json!({"condition": "tags.a = 'b'", "where": "x"}),
                "invalid-body",
            ),
        ] {
            let r = c.call("PUT", "/api/groups/g", Some(&body)).await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
            assert_eq!(
                r.json["type"],
                format!("urn:bosun:problem:{kind}"),
                "{body}"
            );
        }
        assert_eq!(c.call("GET", "/api/groups/g", None).await.status, 404);
        let reader = c
            .send_raw(
                "PUT",
                "/api/groups/g",
                Some(&c.reader),
                Some(&json!({"condition": "tags.a = 'b'"})),
            )
            .await;
        assert_eq!(reader.status, 403);
    }
}
