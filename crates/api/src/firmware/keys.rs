//! Publisher keys: the public keys uploads must be signed with. Admin-only to change,
//! since whoever registers a key may publish firmware to every device.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, store};
use crate::extract::{JsonBody, PathParams};
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane};

/// Body of `POST /api/firmware/keys`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewKey {
    /// A name for people.
    name: String,
    /// `PUBLIC KEY` PEM (SubjectPublicKeyInfo) of an Ed25519 or P-256 key.
    public_key: String,
}

/// `POST /api/firmware/keys`: registers (or renames) a publisher key.
pub(super) async fn add<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<Response, Problem> {
    let store = store(&state)?;
    let key = blocking(move || store.add_key(&body.name, &body.public_key)).await?;
    reply::json(StatusCode::CREATED, &key)
}

/// `GET /api/firmware/keys`.
pub(super) async fn list<H: ControlPlane>(
    State(state): State<ApiState<H>>,
) -> Result<Response, Problem> {
    let keys = store(&state)?.keys();
    reply::json(StatusCode::OK, &json!({ "items": keys }))
}

/// `DELETE /api/firmware/keys/{id}`: images it signed stay stored.
pub(super) async fn remove<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let store = store(&state)?;
    blocking(move || store.remove_key(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
