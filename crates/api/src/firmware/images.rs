//! Firmware images: upload (verified by the store), list, manifest and download.
//!
//! The upload is one JSON document, `{manifest, image}` with the image in base64, so
//! that the manifest and the bytes it signs arrive (and are refused) together and the
//! operation fits the API's JSON operations table; the cost is a third more bytes on
//! the wire, acceptable for images up to [`MAX_IMAGE_LEN`]. Downloads are raw bytes.

use std::io::{Read, Seek, SeekFrom};

use axum::extract::State;
use axum::http::header::{ACCEPT_RANGES, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ota::{FirmwareStore, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::range::{self, Answer};
use super::{blocking, store};
use crate::extract::{JsonBody, PathParams};
use crate::problem::Problem;
use crate::{base64, reply, ApiState, ControlPlane};

/// Largest image accepted, in bytes.
pub(super) const MAX_IMAGE_LEN: usize = 32 * 1024 * 1024;
/// Largest upload body: the image in base64 plus room for the manifest.
pub(super) const MAX_UPLOAD_BODY: usize = MAX_IMAGE_LEN / 3 * 4 + 64 * 1024;

/// Body of `POST /api/firmware`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Upload {
    /// The signed manifest, as `bosun firmware sign` wrote it.
    manifest: Value,
    /// The image, base64.
    image: String,
}

/// `POST /api/firmware`: stores an image whose manifest verifies.
pub(super) async fn upload<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    JsonBody(body): JsonBody<Upload>,
) -> Result<Response, Problem> {
    let store = store(&state)?;
    let image = base64::decode(&body.image)
        .map_err(|e| Problem::bad_request(format!("image is not base64: {e}")))?;
    if image.len() > MAX_IMAGE_LEN {
        return Err(Problem::bad_request(format!(
            "image over {MAX_IMAGE_LEN} bytes"
        )));
    }
    let manifest = serde_json::to_vec(&body.manifest).map_err(Problem::internal)?;
    let firmware = blocking(move || store.upload(&manifest, &image)).await?;
    reply::json(StatusCode::CREATED, &firmware)
}

/// `GET /api/firmware`: every stored image, newest version first.
pub(super) async fn list<H: ControlPlane>(
    State(state): State<ApiState<H>>,
) -> Result<Response, Problem> {
    let store = store(&state)?;
    let items = blocking(move || store.list()).await?;
    reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// `GET /api/firmware/{id}`: one image's signed manifest.
pub(super) async fn get<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let store = store(&state)?;
    let manifest = blocking(move || store.manifest(&id).map(|m| (id, m))).await?;
    reply::json(
        StatusCode::OK,
        &json!({ "id": manifest.0, "manifest": manifest.1 }),
    )
}

/// The bytes a download sends, read off the async workers.
struct Slice {
    /// What the `Range` header amounted to.
    answer: Answer,
    /// The image's length.
    len: u64,
    /// The bytes to send (empty when unsatisfiable).
    bytes: Vec<u8>,
}

/// Reads what `range_header` asks of image `id`.
fn read_slice(
    store: &FirmwareStore,
    id: &str,
    range_header: Option<&str>,
) -> Result<Slice, StoreError> {
    let (mut file, len) = store.open_image(id)?;
    let answer = range::answer(range_header, len);
    let (start, count) = match answer {
        Answer::Full => (0, len),
        Answer::Part { start, end } => (start, end - start + 1),
        Answer::Unsatisfiable => (0, 0),
    };
    let io = |source| StoreError::Io {
        path: id.into(),
        source,
    };
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    file.take(count).read_to_end(&mut bytes).map_err(io)?;
    Ok(Slice { answer, len, bytes })
}

/// `GET /api/firmware/{id}/image`: the image, or the part a `Range` header asks for.
pub(super) async fn image<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let store = store(&state)?;
    let range_header = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let etag = format!("\"{id}\"");
    let slice = blocking(move || read_slice(&store, &id, range_header.as_deref())).await?;
    let (status, content_range) = match slice.answer {
        Answer::Full => (StatusCode::OK, None),
        Answer::Part { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            Some(format!("bytes {start}-{end}/{}", slice.len)),
        ),
        Answer::Unsatisfiable => {
            return Err(Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "Range not satisfiable",
                format!("the image has {} bytes", slice.len),
            )
            .with_header(CONTENT_RANGE, format!("bytes */{}", slice.len)));
        }
    };
    let mut response = (status, slice.bytes).into_response();
    response = reply::with_header(response, CONTENT_TYPE, "application/octet-stream")?;
    response = reply::with_header(response, ACCEPT_RANGES, "bytes")?;
    // Content-addressed: the id is the image's hash, so it is a strong validator.
    response = reply::with_header(response, ETAG, &etag)?;
    if let Some(content_range) = content_range {
        response = reply::with_header(response, CONTENT_RANGE, &content_range)?;
    }
    Ok(response)
}
