//! Firmware images: upload (verified by the store), list, manifest and download.
//!
//! The upload is one JSON document, `{manifest, image}` with the image in base64, so
//! that the manifest and the bytes it signs arrive (and are refused) together and the
//! operation fits the API's JSON operations table; the cost is a third more bytes on
//! the wire, acceptable for images up to [`MAX_IMAGE_LEN`]. Downloads are raw bytes,
//! streamed from the file in chunks with a `Content-Length`, and need a read-only token
//! or a device's presigned URL.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ota::{FirmwareStore, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::range::{self, Answer};
use super::rate::DownloadLimit;
use super::{blocking, store};
use crate::extract::{JsonBody, PathParams, QueryParams};
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
    /// The image file, positioned at the first byte to send.
    file: File,
    /// How many bytes to send from there (0 when unsatisfiable).
    count: u64,
}

/// Opens image `id` at what `range_header` asks for.
fn open_slice(
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
    file.seek(SeekFrom::Start(start))
        .map_err(|source| StoreError::Io {
            path: id.into(),
            source,
        })?;
    Ok(Slice {
        answer,
        len,
        file,
        count,
    })
}

/// Bytes read from the image file per body chunk.
const CHUNK: u64 = 64 * 1024;

/// A body streaming `count` bytes of `file` in [`CHUNK`]s, each read off the async
/// workers and, under a `limit`, sent when the shared bucket allows: a download holds
/// one chunk in memory, not the image (many devices may be downloading a 32 MiB image
/// at once). A read error or a file shorter than announced
/// ends the body early, which the client sees as a cut download and resumes.
fn stream_body(file: File, count: u64, limit: Option<Arc<DownloadLimit>>) -> Body {
    let chunks = futures_util::stream::unfold((Some(file), count), move |(file, left)| {
        let limit = limit.clone();
        async move {
            let mut file = file.filter(|_| left > 0)?;
            let want = left.min(CHUNK) as usize;
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; want];
                let n = file.read(&mut buf)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>((file, buf))
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
            match read {
                Ok((file, buf)) if !buf.is_empty() => {
                    if let Some(limit) = &limit {
                        limit.take(buf.len() as u64).await;
                    }
                    let left = left - buf.len() as u64;
                    Some((Ok(Bytes::from(buf)), (Some(file), left)))
                }
                Ok(_) => {
                    let eof =
                        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "image file shrank");
                    Some((Err(eof), (None, 0)))
                }
                Err(e) => Some((Err(e), (None, 0))),
            }
        }
    });
    Body::from_stream(chunks)
}

/// Who may download: an API token (read-only or above), or a presigned URL for this
/// image (`device`, `expires`, `sig`; see `ota::UrlSigner`), which is how devices
/// download: they have no token.
fn authorize(store: &FirmwareStore, id: &str, query: Option<&str>) -> Result<(), Problem> {
    let params = QueryParams::parse(query)?;
    let Some(sig) = params.get("sig") else {
        // No presigned URL: the guard has checked the token's role already.
        return Ok(());
    };
    let refused = |detail: String| {
        Problem::new(
            StatusCode::FORBIDDEN,
            "download-url-refused",
            "Download URL refused",
            detail,
        )
    };
    let device = params
        .get("device")
        .ok_or_else(|| refused("a presigned URL names its device".into()))?;
    let expires = params
        .number("expires", 0, u64::MAX)?
        .ok_or_else(|| refused("a presigned URL has an expiry".into()))?;
    let now = super::driver::now_ms() / 1000;
    store
        .url_signer()
        .verify(id, device, expires, sig, now)
        .map_err(|e| refused(e.to_string()))
}

/// `GET /api/firmware/{id}/image`: the image, or the part a `Range` header asks for.
pub(super) async fn image<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    PathParams(id): PathParams<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let store = store(&state)?;
    authorize(&store, &id, uri.query())?;
    let range_header = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let etag = format!("\"{id}\"");
    let slice = blocking(move || open_slice(&store, &id, range_header.as_deref())).await?;
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
    let body = stream_body(slice.file, slice.count, state.download_limit.clone());
    let mut response = (status, body).into_response();
    // Announced, so the body is sent with a length (not chunked) as clients expect.
    response = reply::with_header(response, CONTENT_LENGTH, &slice.count.to_string())?;
    response = reply::with_header(response, CONTENT_TYPE, "application/octet-stream")?;
    response = reply::with_header(response, ACCEPT_RANGES, "bytes")?;
    // Content-addressed: the id is the image's hash, so it is a strong validator.
    response = reply::with_header(response, ETAG, &etag)?;
    if let Some(content_range) = content_range {
        response = reply::with_header(response, CONTENT_RANGE, &content_range)?;
    }
    Ok(response)
}
