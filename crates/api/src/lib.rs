//! bosun's REST API: the control plane (devices, twins, direct methods, cloud-to-device
//! messages, events) over HTTP, for operators, scripts and the `bosun` CLI.
//!
//! This crate owns HTTP concerns only: routes, input validation, authentication, error
//! documents and the OpenAPI description. What an operation *means* is the hub's business
//! ([`hub::service::Hub`]); the binary owns the listener and mounts [`router`] into it.
//!
//! Layout:
//! - `operations`: the one table of every operation (method, path, role, parameters,
//!   schemas, handler). The router, the per-operation checks and the OpenAPI document
//!   are all built from it, so they cannot drift apart.
//! - `devices`, `keys`, `twins`, `methods`, `messages`, `events`, `groups`: handlers,
//!   one file per resource.
//! - `groups`: device groups (named twin-query conditions) and their current members.
//! - `data`: the data pipeline's side: series, anomalies, captures, rules, dead letters.
//! - `firmware`: OTA publisher keys, signed images (upload, list, ranged download) and
//!   rollouts, with the task that drives them ([`rollout_driver`], spawned by the binary).
//! - `enrollments`: provisioning enrollments (individual and group); keys to admins only.
//! - `openapi`: renders the table as an OpenAPI 3.0 document; `schema` has the bodies.
//! - `problem`: RFC 9457 problem details; every error leaves through it.
//! - `auth`: bearer tokens checked against the table's role; `tokens`: the token file.
//! - `extract`, `reply`: request input with problem rejections, JSON responses.
//! - `control`: the [`ControlPlane`] trait the handlers call, implemented by the hub.
//! - `continuation`: the opaque page cursor; base64 is `hub::base64`, shared with the
//!   hub's SAS tokens (times use `hub::twin::rfc3339`).
//!
//! Mounting: `http_router.merge(api::router(ApiState { hub, tokens }))`, with `tokens`
//! from [`Tokens::open_or_init`]. Roles are described in [`Role`]; the generated
//! document is also checked in as `crates/api/openapi.json` (a test keeps it current).
#![forbid(unsafe_code)]

mod auth;
mod continuation;
mod control;
mod data;
mod devices;
mod enrollments;
mod events;
mod extract;
mod firmware;
mod groups;
mod keys;
mod messages;
mod methods;
mod openapi;
mod operations;
mod problem;
mod reply;
mod schema;
mod tokens;
mod twins;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod hub_e2e;
#[cfg(test)]
mod testing;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::routing::{any, MethodRouter};
use axum::Router;
use hub::base64;

pub use auth::Role;
pub use control::ControlPlane;
pub use firmware::{rollout_driver, DownloadLimit};
pub use tokens::{TokenError, Tokens, ADMIN_TOKEN_FILE, TOKENS_FILE};

/// What every handler needs: the control plane and the tokens that may call it.
///
/// Generic so the handlers can be tested against an in-memory control plane; the
/// default is the real hub, so the binary writes `ApiState { hub, tokens }`.
#[derive(Clone)]
pub struct ApiState<H = hub::service::Hub> {
    /// The control plane every operation is forwarded to.
    pub hub: H,
    /// Bearer tokens and their roles; shared so `POST /api/tokens` is seen at once.
    pub tokens: Arc<Tokens>,
    /// The data pipeline behind `/api/series`, `/api/captures`, `/api/rules`…; without
    /// it those answer 503.
    pub data: Option<pipeline::Pipeline>,
    /// The firmware store behind `/api/firmware` and `/api/rollouts`; without it those
    /// answer 503.
    pub firmware: Option<ota::FirmwareStore>,
    /// One rate limit shared by every firmware image download (bytes per second);
    /// `None`: unlimited.
    pub download_limit: Option<Arc<DownloadLimit>>,
}

/// The REST API, every route under `/api`, ready to `.merge()` into the HTTP server.
///
/// Has no router-level fallback (so merging never conflicts); unknown paths under
/// `/api` and wrong methods get problem documents from explicit catch-all routes.
pub fn router<H: ControlPlane>(state: ApiState<H>) -> Router {
    let mut by_path: BTreeMap<&'static str, (MethodRouter<ApiState<H>>, Vec<&'static str>)> =
        BTreeMap::new();
    for op in operations::table::<H>() {
        let guarded = (op.route)(op.verb.filter()).layer(axum::middleware::from_fn_with_state(
            auth::Gate::new(&op, state.tokens.clone()),
            auth::guard,
        ));
        match by_path.remove(op.path) {
            Some((routes, mut verbs)) => {
                verbs.push(op.verb.name());
                by_path.insert(op.path, (routes.merge(guarded), verbs));
            }
            None => {
                by_path.insert(op.path, (guarded, vec![op.verb.name()]));
            }
        }
    }
    let mut router = Router::new();
    for (path, (routes, verbs)) in by_path {
        let allow = verbs.join(", ");
        router = router.route(
            path,
            routes.fallback(move || problem::method_not_allowed(allow.clone())),
        );
    }
    router
        .route("/api", any(problem::no_such_route))
        // The catch-all needs at least one character after the slash.
        .route("/api/", any(problem::no_such_route))
        .route("/api/{*rest}", any(problem::no_such_route))
        .with_state(state)
}
