//! `GET /api/events`: device events as server-sent events.
//!
//! Each hub event becomes `event: <kind>` with the JSON event as `data:`. The hub's
//! channel is a bounded broadcast: a client that reads too slowly misses events rather
//! than holding memory in the hub. It is then told so, with an `event: lagged` whose
//! data is `{"skipped": n}`, and the stream goes on from the oldest event still held.
//! A comment line every [`KEEP_ALIVE`] keeps proxies and idle timeouts from closing a
//! quiet stream. The stream ends when the hub closes its channel (shutdown).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use hub::service::Event;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::extract::QueryParams;
use crate::{ApiState, ControlPlane};

/// Idle time after which a keep-alive comment is sent.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /api/events[?deviceId=ID]`.
pub(crate) async fn stream<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    params: QueryParams,
) -> Response {
    let device = params.get("deviceId").map(str::to_owned);
    // Subscribed before the response goes out: nothing after this point is missed.
    let receiver = state.hub.events();
    let events = stream::unfold((receiver, device), |(mut receiver, device)| async move {
        loop {
            let item = match receiver.recv().await {
                Ok(event) if device.as_ref().is_some_and(|d| *d != event.device_id) => continue,
                Ok(event) => to_sse(&event),
                Err(RecvError::Lagged(skipped)) => SseEvent::default()
                    .event("lagged")
                    .data(json!({ "skipped": skipped }).to_string()),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok::<_, Infallible>(item), (receiver, device)));
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response()
}

/// One hub event as an SSE event.
fn to_sse(event: &Event) -> SseEvent {
    // Serializing these plain fields cannot fail; an empty object would still be valid.
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default().event(event.kind).data(data)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use futures_util::StreamExt;

    use super::*;
    use crate::fake::EVENT_CAPACITY;
    use crate::testing::{request, Client};

    /// Reads frames until `want` has appeared or the deadline passes.
    async fn read_until(body: &mut axum::body::BodyDataStream, want: &str) -> String {
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !text.contains(want) {
            let frame = tokio::time::timeout_at(deadline, body.next())
                .await
                .unwrap_or_else(|_| panic!("no {want:?} in {text:?}"))
                .expect("stream open")
                .expect("frame");
            text.push_str(&String::from_utf8_lossy(&frame));
        }
        text
    }

    async fn open(c: &Client, path: &str) -> axum::body::BodyDataStream {
        let response = c
            .open(request("GET", path, Some(&c.reader), &[], None))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{:?}",
            response.headers()
        );
        Body::into_data_stream(response.into_body())
    }

    #[tokio::test]
    async fn events_are_filtered_by_device() {
        let c = Client::new();
        let mut body = open(&c, "/api/events?deviceId=d2").await;
        c.hub.emit("deviceConnected", "d1");
        c.hub.emit("twinChanged", "d2");
        let text = read_until(&mut body, "\n\n").await;
        assert!(text.starts_with("event: twinChanged\ndata: {"), "{text}");
        assert!(text.contains("\"deviceId\":\"d2\""), "{text}");
        assert!(!text.contains("d1"), "{text}");
    }

    #[tokio::test]
    async fn a_lagging_client_is_told_and_goes_on() {
        let c = Client::new();
        let mut body = open(&c, "/api/events").await;
        for i in 0..EVENT_CAPACITY + 2 {
            c.hub.emit("deviceConnected", &format!("d{i}"));
        }
        let text = read_until(&mut body, "\"deviceId\":\"d2\"").await;
        assert!(
            text.starts_with("event: lagged\ndata: {\"skipped\":2}"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_streams_get_keep_alive_comments() {
        let c = Client::new();
        let mut body = open(&c, "/api/events").await;
        let text = read_until(&mut body, ": keep-alive").await;
        assert!(text.starts_with(": keep-alive"), "{text}");
    }

    #[tokio::test]
    async fn unknown_parameters_and_missing_tokens_are_refused() {
        let c = Client::new();
        assert_eq!(
            c.call("GET", "/api/events?device=d1", None).await.status,
            400
        );
        assert_eq!(
            c.send_raw("GET", "/api/events", None, None).await.status,
            401
        );
    }
}
