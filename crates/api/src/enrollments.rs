//! `/api/enrollments`: provisioning enrollments, individual (`/individual/{registrationId}`)
//! and group (`/groups/{name}`).
//!
//! Writes need the admin role: an enrollment holds a key (or names a CA) that lets
//! devices create themselves. Reads need read-only, and the key is shown to
//! administrators only. `"x509": {"ca": …, "serial": …}` makes an X.509 enrollment.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hub::service::{EnrollmentInfo, EnrollmentKind, EnrollmentSpec, HubError, X509Attestation};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::extract::{JsonBody, PathParams};
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane, Role};

/// Body of `PUT /api/enrollments/…/{name}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PutBody {
    /// The symmetric key (base64); generated when absent for a new enrollment.
    #[serde(default)]
    key: Option<String>,
    /// `{"tags": …, "desired": …}` for registered devices.
    #[serde(default)]
    initial_twin: Option<InitialTwin>,
    /// The device group registered devices join.
    #[serde(default)]
    device_group: Option<String>,
    /// Refuse registrations.
    #[serde(default)]
    disabled: bool,
    /// An X.509 enrollment: the CA (and, individually, the serial) devices' certificates
    /// must have.
    #[serde(default)]
    x509: Option<X509Body>,
}

/// The X.509 attestation of an enrollment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct X509Body {
    #[serde(default)]
    ca: Option<String>,
    #[serde(default)]
    serial: Option<String>,
}

/// The initial twin of registered devices.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InitialTwin {
    #[serde(default)]
    tags: Option<Value>,
    #[serde(default)]
    desired: Option<Value>,
}

/// `PUT /api/enrollments/groups/{name}`.
pub(crate) async fn put_group<H: ControlPlane>(
    state: State<ApiState<H>>,
    name: PathParams<String>,
    body: JsonBody<PutBody>,
) -> Result<Response, Problem> {
    put(state, EnrollmentKind::Group, name, body).await
}

/// `PUT /api/enrollments/individual/{registrationId}`.
pub(crate) async fn put_individual<H: ControlPlane>(
    state: State<ApiState<H>>,
    name: PathParams<String>,
    body: JsonBody<PutBody>,
) -> Result<Response, Problem> {
    put(state, EnrollmentKind::Individual, name, body).await
}

async fn put<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    kind: EnrollmentKind,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<PutBody>,
) -> Result<Response, Problem> {
    let twin = body.initial_twin.unwrap_or_default();
    let spec = EnrollmentSpec {
        key: body.key,
        tags: twin.tags,
        desired: twin.desired,
        device_group: body.device_group,
        disabled: body.disabled,
        x509: body.x509.map(|x| X509Attestation {
            ca: x.ca,
            serial: x.serial,
        }),
    };
    let info = state
        .hub
        .put_enrollment(kind, &name, spec)
        .await
        .map_err(|e| enrollment_problem(&name, e))?;
    reply::json(StatusCode::OK, &info)
}

/// `GET /api/enrollments/groups`.
pub(crate) async fn list_groups<H: ControlPlane>(
    state: State<ApiState<H>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    list(state, headers, EnrollmentKind::Group).await
}

/// `GET /api/enrollments/individual`.
pub(crate) async fn list_individual<H: ControlPlane>(
    state: State<ApiState<H>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    list(state, headers, EnrollmentKind::Individual).await
}

async fn list<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    headers: HeaderMap,
    kind: EnrollmentKind,
) -> Result<Response, Problem> {
    let admin = is_admin(&headers, &state);
    let items: Vec<EnrollmentInfo> = state
        .hub
        .enrollments(kind)
        .await?
        .into_iter()
        .map(|info| shown(info, admin))
        .collect();
    reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// `GET /api/enrollments/groups/{name}`.
pub(crate) async fn get_group<H: ControlPlane>(
    state: State<ApiState<H>>,
    headers: HeaderMap,
    name: PathParams<String>,
) -> Result<Response, Problem> {
    get(state, headers, EnrollmentKind::Group, name).await
}

/// `GET /api/enrollments/individual/{registrationId}`.
pub(crate) async fn get_individual<H: ControlPlane>(
    state: State<ApiState<H>>,
    headers: HeaderMap,
    name: PathParams<String>,
) -> Result<Response, Problem> {
    get(state, headers, EnrollmentKind::Individual, name).await
}

async fn get<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    headers: HeaderMap,
    kind: EnrollmentKind,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    let admin = is_admin(&headers, &state);
    let info = state
        .hub
        .enrollment(kind, &name)
        .await
        .map_err(|e| enrollment_problem(&name, e))?;
    reply::json(StatusCode::OK, &shown(info, admin))
}

/// `DELETE /api/enrollments/groups/{name}`.
pub(crate) async fn delete_group<H: ControlPlane>(
    state: State<ApiState<H>>,
    name: PathParams<String>,
) -> Result<Response, Problem> {
    delete(state, EnrollmentKind::Group, name).await
}

/// `DELETE /api/enrollments/individual/{registrationId}`.
pub(crate) async fn delete_individual<H: ControlPlane>(
    state: State<ApiState<H>>,
    name: PathParams<String>,
) -> Result<Response, Problem> {
    delete(state, EnrollmentKind::Individual, name).await
}

async fn delete<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    kind: EnrollmentKind,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    state
        .hub
        .delete_enrollment(kind, &name)
        .await
        .map_err(|e| enrollment_problem(&name, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether the caller holds an admin token.
fn is_admin<H>(headers: &HeaderMap, state: &ApiState<H>) -> bool {
    crate::auth::caller_role(headers, &state.tokens) == Some(Role::Admin)
}

/// The enrollment as this caller may see it.
fn shown(info: EnrollmentInfo, admin: bool) -> EnrollmentInfo {
    if admin {
        info
    } else {
        info.redacted()
    }
}

/// In these operations `NotFound` can only mean the enrollment.
fn enrollment_problem(name: &str, error: HubError) -> Problem {
    match error {
        HubError::NotFound(_) => Problem::new(
            StatusCode::NOT_FOUND,
            "enrollment-not-found",
            "Enrollment not found",
            format!("enrollment {name} not found"),
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::testing::Client;

    #[tokio::test]
    async fn admins_manage_enrollments_and_only_they_see_keys() {
        let c = Client::new();
        let body = json!({
            "initialTwin": {"tags": {"site": "x"}, "desired": {"rate": 5}},
            "deviceGroup": "line-1",
        });
        let path = "/api/enrollments/groups/line-1";
        let r = c.call("PUT", path, Some(&body)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.json["key"].is_string(), "{}", r.text);
        assert_eq!(r.json["initialTwin"]["desired"]["rate"], 5);
        let r = c.call("GET", "/api/enrollments/groups", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["items"][0]["name"], "line-1");
        assert!(r.json["items"][0]["key"].is_string(), "{}", r.text);
        for token in [&c.reader, &c.operator] {
            let r = c.send_raw("GET", path, Some(token), None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert!(r.json.get("key").is_none(), "{}", r.text);
            let r = c.send_raw("PUT", path, Some(token), Some(&json!({}))).await;
            assert_eq!(r.status, 403, "{}", r.text);
            let r = c.send_raw("DELETE", path, Some(token), None).await;
            assert_eq!(r.status, 403, "{}", r.text);
        }
        let r = c
            .call("DELETE", "/api/enrollments/individual/line-1", None)
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(
            r.json["type"]
                .as_str()
                .map(|t| t.ends_with("enrollment-not-found")),
            Some(true),
            "{}",
            r.text
        );
        let r = c.call("DELETE", path, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = c.call("PUT", path, Some(&json!({"unknown": 1}))).await;
        assert_eq!(r.status, 400, "{}", r.text);
    }

    #[tokio::test]
    async fn x509_enrollments_name_a_ca_and_have_no_key() {
        let c = Client::new();
        let path = "/api/enrollments/groups/by-ca";
        let r = c
            .call("PUT", path, Some(&json!({"x509": {"ca": "bosun"}})))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["attestation"], "x509", "{}", r.text);
        assert_eq!(r.json["x509"]["ca"], "bosun", "{}", r.text);
        assert!(r.json.get("key").is_none(), "{}", r.text);
        let r = c
            .call("PUT", path, Some(&json!({"x509": {"issuer": "bosun"}})))
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
}
