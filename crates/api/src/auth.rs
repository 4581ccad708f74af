//! Who may call what: roles, the bearer-token check, and `POST /api/tokens`.
//!
//! Roles are ordered; each includes the ones below it:
//! - `read-only`: every `GET`, `POST /api/query` (a read with a body) and the event
//!   stream. For dashboards and monitoring.
//! - `operator`: also creates and updates devices (including enable/disable), patches
//!   twins, invokes direct methods, sends and purges cloud-to-device messages, defines
//!   and deletes device groups. Day-to-day fleet work, all of it reversible or transient.
//! - `admin`: also deletes devices (which drops their twin and queue for good) and
//!   creates tokens (which hands out access).
//!
//! `GET /api/openapi.json` needs no token: it describes the API, not the fleet.
//!
//! The role an operation needs is in the operations table; [`guard`] runs in front of
//! each handler with that table row's [`Gate`], so a handler cannot forget the check.
//! The same guard rejects query parameters the table does not list for the operation.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::extract::{JsonBody, QueryParams};
use crate::operations::{In, Operation};
use crate::problem::{self, Problem};
use crate::{reply, ApiState, ControlPlane, Tokens};

/// What a token may do; a higher role may do everything a lower one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads: devices, twins, queries, queues, feedback, events.
    ReadOnly,
    /// Reads and reversible writes: devices, twins, methods, C2D.
    Operator,
    /// Everything, including deleting devices and creating tokens.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::ReadOnly, Role::Operator, Role::Admin];

    /// The role's name in the token file, the API and the docs.
    pub fn name(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown role {s:?}: expected admin, operator or read-only"))
    }
}

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone, without a token.
    Public,
    /// A token with at least this role.
    Role(Role),
    /// A token with at least this role, or a presigned URL (a `sig` query parameter)
    /// that the handler verifies: firmware downloads by devices, which have no token.
    RoleOrPresigned(Role),
}

/// What [`guard`] checks for one operation; built from its table row.
#[derive(Clone)]
pub(crate) struct Gate {
    /// `operationId`, for messages.
    operation: &'static str,
    /// Who may call it.
    access: Access,
    /// Query parameters it takes; others are rejected.
    query: Arc<[&'static str]>,
    /// The valid tokens.
    tokens: Arc<Tokens>,
}

impl Gate {
    /// The gate for `op`.
    pub(crate) fn new<H>(op: &Operation<H>, tokens: Arc<Tokens>) -> Gate {
        Gate {
            operation: op.id,
            access: op.access,
            query: op
                .params
                .iter()
                .filter(|p| p.location == In::Query)
                .map(|p| p.name)
                .collect(),
            tokens,
        }
    }

    /// The caller's role, or the problem to answer with.
    fn check_access(&self, headers: &HeaderMap, query: Option<&str>) -> Result<(), Problem> {
        let needed = match self.access {
            Access::Public => return Ok(()),
            Access::Role(role) => role,
            Access::RoleOrPresigned(role) => {
                let presigned = QueryParams::parse(query).is_ok_and(|q| q.get("sig").is_some());
                if presigned {
                    return Ok(());
                }
                role
            }
        };
        let role = match bearer_token(headers) {
            Bearer::Missing => {
                return Err(problem::unauthorized(
                    "send a token: Authorization: Bearer TOKEN",
                    false,
                ))
            }
            Bearer::OtherScheme => {
                return Err(problem::unauthorized(
                    "only bearer tokens are accepted: Authorization: Bearer TOKEN",
                    false,
                ))
            }
            Bearer::Token(token) => self
                .tokens
                .authenticate(token)
                .ok_or_else(|| problem::unauthorized("the token is not valid", true))?,
        };
        if role < needed {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Insufficient role",
                format!(
                    "{} needs the {needed} role; this token has {role}",
                    self.operation
                ),
            )
            .with_extension("requiredRole", json!(needed))
            .with_extension("role", json!(role)));
        }
        Ok(())
    }

    /// Rejects query parameters the operation does not take (typos would otherwise
    /// silently widen a listing).
    fn check_query(&self, query: Option<&str>) -> Result<(), Problem> {
        let params = QueryParams::parse(query)?;
        for name in params.names() {
            if !self.query.contains(&name) {
                let takes = if self.query.is_empty() {
                    "no query parameters".to_owned()
                } else {
                    self.query.join(", ")
                };
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {name:?}; {} takes {takes}",
                    self.operation
                )));
            }
        }
        Ok(())
    }
}

/// Middleware in front of every operation: authentication, role, query parameters.
pub(crate) async fn guard(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if let Err(problem) = gate
        .check_access(request.headers(), request.uri().query())
        .and_then(|()| gate.check_query(request.uri().query()))
    {
        return problem.into_response();
    }
    next.run(request).await
}

/// The role of the token a request carries, if it carries a valid one (the guard has
/// already checked the operation's minimum role; handlers ask this to decide what to
/// show, e.g. secrets to administrators only).
pub(crate) fn caller_role(headers: &HeaderMap, tokens: &Tokens) -> Option<Role> {
    match bearer_token(headers) {
        Bearer::Token(token) => tokens.authenticate(token),
        Bearer::Missing | Bearer::OtherScheme => None,
    }
}

/// What the `Authorization` header holds.
enum Bearer<'a> {
    /// No header.
    Missing,
    /// A header with a scheme other than `Bearer` (or not text).
    OtherScheme,
    /// `Bearer TOKEN`.
    Token(&'a str),
}

/// Reads `Authorization: Bearer TOKEN`; the scheme is case-insensitive (RFC 7235).
fn bearer_token(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Bearer::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Bearer::OtherScheme;
    };
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Bearer::Token(token.trim())
        }
        _ => Bearer::OtherScheme,
    }
}

/// Body of `POST /api/tokens`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewToken {
    /// Role of the new token.
    role: Role,
}

/// `POST /api/tokens`: a new token with a role; shown once, in this response.
pub(crate) async fn create_token<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<Response, Problem> {
    let token = state.tokens.create(body.role).map_err(|e| {
        tracing::warn!(error = %e, "cannot save API token");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "the token file could not be saved; see the server log",
        )
    })?;
    reply::json(
        StatusCode::CREATED,
        &json!({ "role": body.role, "token": token }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::ReadOnly < Role::Operator && Role::Operator < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
            assert_eq!(json!(role), json!(role.name()));
        }
        assert!("root".parse::<Role>().is_err());
    }

    /// Every operation, called with no token, a wrong token and each role's token.
    #[tokio::test]
    async fn every_operation_enforces_its_role() {
        use crate::fake::Fake;
        use crate::operations::table;
        use crate::testing::{request, Client};

        let c = Client::new();
        for op in table::<Fake>() {
            let path = op.path.replace("{id}", "d1").replace("{name}", "m");
            let method = op.verb.name();
            let body = op.request.map(|_| json!({}));
            let anonymous = c.send_raw(method, &path, None, body.as_ref()).await;
            let (Access::Role(needed) | Access::RoleOrPresigned(needed)) = op.access else {
                assert_eq!(anonymous.status, 200, "{} is public", op.id);
                continue;
            };
            assert_eq!(anonymous.status, 401, "{}", op.id);
            assert_eq!(
                anonymous.header("www-authenticate"),
                Some(r#"Bearer realm="bosun""#)
            );
            assert_eq!(
                anonymous.header("content-type"),
                Some("application/problem+json")
            );
            let wrong = c
                .send_raw(method, &path, Some("wrong-token"), body.as_ref())
                .await;
            assert_eq!(wrong.status, 401, "{}", op.id);
            assert!(wrong
                .header("www-authenticate")
                .is_some_and(|h| h.contains("invalid_token")));
            for (role, token) in [
                (Role::ReadOnly, &c.reader),
                (Role::Operator, &c.operator),
                (Role::Admin, &c.admin),
            ] {
                let request = request(method, &path, Some(token), &[], body.as_ref());
                if role < needed {
                    let r = c.send(request).await;
                    assert_eq!(r.status, 403, "{} as {role}", op.id);
                    assert_eq!(r.json["requiredRole"], json!(needed));
                } else {
                    // Status only: the event stream's body never ends.
                    let status = c.open(request).await.status().as_u16();
                    assert!(
                        !matches!(status, 401 | 403),
                        "{} as {role}: {status}",
                        op.id
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn admins_create_tokens_that_work_at_once() {
        let c = crate::testing::Client::new();
        let created = c
            .call("POST", "/api/tokens", Some(&json!({"role": "read-only"})))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.json["role"], "read-only");
        let token = created.json["token"].as_str().expect("token");
        let list = c.send_raw("GET", "/api/devices", Some(token), None).await;
        assert_eq!(list.status, 200);
        let write = c
            .send_raw(
                "POST",
                "/api/devices",
                Some(token),
                Some(&json!({"deviceId": "x"})),
            )
            .await;
        assert_eq!(write.status, 403);
        let bad = c
            .call("POST", "/api/tokens", Some(&json!({"role": "root"})))
            .await;
        assert_eq!(bad.status, 400);
    }

    #[test]
    fn bearer_header_forms() {
        let mut headers = HeaderMap::new();
        assert!(matches!(bearer_token(&headers), Bearer::Missing));
        for (value, expected) in [
            ("Bearer abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None),
            ("Bearer", None),
        ] {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            match (bearer_token(&headers), expected) {
                (Bearer::Token(t), Some(e)) => assert_eq!(t, e),
                (Bearer::OtherScheme, None) => {}
                _ => panic!("{value}"),
            }
        }
    }
}
