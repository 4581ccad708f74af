//! Test helper: the router in-process, with one token per role, and responses read
//! into status, headers and JSON.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tower_service::Service;

use crate::fake::Fake;
use crate::{router, ApiState, ControlPlane, Role, Tokens};

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct TestResponse {
    /// Status code.
    pub(crate) status: u16,
    /// Headers.
    pub(crate) headers: HeaderMap,
    /// Body as text.
    pub(crate) text: String,
    /// Body as JSON (`Null` if it is not JSON).
    pub(crate) json: Value,
}

impl TestResponse {
    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The API over a control plane, with a token for each role.
pub(crate) struct Client<H = Fake> {
    /// The router under test.
    router: Router,
    /// The control plane behind it.
    pub(crate) hub: H,
    /// Admin token.
    pub(crate) admin: String,
    /// Operator token.
    pub(crate) operator: String,
    /// Read-only token.
    pub(crate) reader: String,
}

impl Client<Fake> {
    /// The API over a fresh fake.
    pub(crate) fn new() -> Client<Fake> {
        Client::with_hub(Fake::new())
    }
}

impl<H: ControlPlane> Client<H> {
    /// The API over `hub`.
    pub(crate) fn with_hub(hub: H) -> Client<H> {
        Client::with_firmware(hub, None)
    }

    /// The API over `hub` and a firmware store.
    pub(crate) fn with_firmware(hub: H, firmware: Option<ota::FirmwareStore>) -> Client<H> {
        let tokens = Tokens::in_memory();
        let admin = tokens.create(Role::Admin).expect("token");
        let operator = tokens.create(Role::Operator).expect("token");
        let reader = tokens.create(Role::ReadOnly).expect("token");
        let router = router(ApiState {
            hub: hub.clone(),
            tokens: Arc::new(tokens),
            data: None,
            firmware,
            download_limit: None,
        });
        Client {
            router,
            hub,
            admin,
            operator,
            reader,
        }
    }

    /// Sends `request` and returns the response unread (for streams).
    pub(crate) async fn open(&self, request: Request<Body>) -> Response {
        let mut service = self.router.clone();
        std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut service, cx))
            .await
            .expect("router is always ready");
        service.call(request).await.expect("infallible")
    }

    /// Sends `request` and reads the whole response.
    pub(crate) async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.open(request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            text,
            json,
        }
    }

    /// `method path` with an optional bearer token and JSON body.
    pub(crate) async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        self.send(request(method, path, token, &[], body)).await
    }

    /// `method path` as admin.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> TestResponse {
        self.send_raw(method, path, Some(&self.admin), body).await
    }
}

/// Builds a request; a body is sent as JSON.
pub(crate) fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(value) => {
            builder = builder.header("content-type", "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).expect("request")
}
