//! Calling the REST API from the CLI: where it is, which token, JSON in and out, and
//! problem documents turned into error messages.
//!
//! Resolution order, first found wins:
//! - address: `--api`, `BOSUN_API`, `http://127.0.0.1:8080`;
//! - token: `--token`, `BOSUN_TOKEN`, the file `DATA_DIR/admin.token` that `bosun serve`
//!   writes on first start (`DATA_DIR`: `--data-dir`, default `./bosun-data`).

use std::io::BufReader;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::Value;

use super::client::{self, BodyReader, Endpoint, Request};
use super::sse::EventReader;

/// API address when neither `--api` nor `BOSUN_API` is set.
const DEFAULT_API: &str = "http://127.0.0.1:8080";
/// Data directory when `--data-dir` is not given (as `bosun serve`'s default).
const DEFAULT_DATA_DIR: &str = "./bosun-data";
/// Token file inside the data directory (written by `bosun serve`).
const ADMIN_TOKEN_FILE: &str = "admin.token";
/// How long an ordinary call may take.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags every operator command shares; given before or after the verb.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiArgs {
    /// REST API address [env: BOSUN_API] [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL", global = true)]
    pub(crate) api: Option<String>,
    /// Bearer token [env: BOSUN_TOKEN] [default: the contents of DATA_DIR/admin.token].
    /// Prefer the environment variable: flags show up in process listings.
    #[arg(long, value_name = "TOKEN", global = true)]
    pub(crate) token: Option<String>,
    /// Hub data directory, where the local admin token is found [default: ./bosun-data].
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Output: aligned text for people, or the API's JSON for scripts.
    #[arg(long, value_name = "FORMAT", global = true, default_value = "table")]
    pub(crate) output: Output,
}

/// How operator commands print what they get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns and `name: value` lines.
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Response headers (names lower-case).
    pub(crate) headers: Vec<(String, String)>,
    /// Body as JSON (`Null` when empty).
    pub(crate) json: Value,
}

impl Reply {
    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A configured connection to the API (one TCP connection per call).
pub(crate) struct Api {
    /// Where it is.
    endpoint: Endpoint,
    /// `Authorization: Bearer` value.
    token: String,
    /// Per-read timeout of ordinary calls.
    timeout: Duration,
}

impl Api {
    /// Resolves address and token from flags, environment and data directory.
    pub(crate) fn from_args(args: &ApiArgs) -> Result<Api> {
        let url = args
            .api
            .clone()
            .or_else(|| env_var("BOSUN_API"))
            .unwrap_or_else(|| DEFAULT_API.to_owned());
        let endpoint = Endpoint::parse(&url).with_context(|| format!("bad API address {url:?}"))?;
        let token = match args.token.clone().or_else(|| env_var("BOSUN_TOKEN")) {
            Some(token) => token,
            None => {
                let dir = args
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
                let path = dir.join(ADMIN_TOKEN_FILE);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    anyhow!(
                        "no API token: pass --token or set BOSUN_TOKEN, or run where {} \
                         exists (bosun serve writes it on first start): {e}",
                        path.display()
                    )
                })?;
                text.trim().to_owned()
            }
        };
        if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
            bail!("the API token is empty or has spaces or control characters in it");
        }
        Ok(Api {
            endpoint,
            token,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same API with a longer (or shorter) per-read timeout.
    pub(crate) fn with_timeout(mut self, timeout: Duration) -> Api {
        self.timeout = timeout;
        self
    }

    /// `GET target`, JSON back.
    pub(crate) fn get(&self, target: &str) -> Result<Value> {
        Ok(self.call("GET", target, None, &[])?.json)
    }

    /// `GET target`, the body as it came (binary downloads such as capture samples).
    pub(crate) fn get_bytes(&self, target: &str) -> Result<Vec<u8>> {
        let request = Request {
            method: "GET",
            target,
            headers: self.headers("*/*"),
            body: None,
        };
        let response = client::send(&self.endpoint, &request, self.timeout)
            .map_err(|e| self.transport_error("GET", target, e))?;
        if response.head.status >= 400 {
            return Err(problem(
                response.head.status,
                &response.head.reason,
                &response.body,
            ));
        }
        Ok(response.body)
    }

    /// `method target` with an optional JSON body and extra headers.
    pub(crate) fn call(
        &self,
        method: &str,
        target: &str,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
    ) -> Result<Reply> {
        let body = body.map(Value::to_string);
        let mut all = self.headers("application/json");
        all.extend(headers.iter().cloned());
        let request = Request {
            method,
            target,
            headers: all,
            body: body.as_deref().map(str::as_bytes),
        };
        let response = client::send(&self.endpoint, &request, self.timeout)
            .map_err(|e| self.transport_error(method, target, e))?;
        if response.head.status >= 400 {
            return Err(problem(
                response.head.status,
                &response.head.reason,
                &response.body,
            ));
        }
        let json = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body)
                .with_context(|| format!("{method} {target}: the response is not JSON"))?
        };
        Ok(Reply {
            headers: response.head.headers,
            json,
        })
    }

    /// Opens an event stream at `target`; reads fail after `idle` without data (the
    /// server sends keep-alives, so silence that long means it is gone).
    pub(crate) fn events(
        &self,
        target: &str,
        idle: Duration,
    ) -> Result<EventReader<BufReader<BodyReader<BufReader<TcpStream>>>>> {
        let request = Request {
            method: "GET",
            target,
            headers: self.headers("text/event-stream"),
            body: None,
        };
        let (head, body) = client::open(&self.endpoint, &request, Some(idle))
            .map_err(|e| self.transport_error("GET", target, e))?;
        if head.status >= 400 {
            let text = client::read_body(body).unwrap_or_default();
            return Err(problem(head.status, &head.reason, &text));
        }
        if !head
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"))
        {
            bail!("GET {target}: the server did not answer with an event stream");
        }
        Ok(EventReader::new(BufReader::new(body)))
    }

    /// The error for a call that got no HTTP answer, with a hint when nothing listens.
    fn transport_error(&self, method: &str, target: &str, e: std::io::Error) -> anyhow::Error {
        let hint = match e.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut => {
                " (is `bosun serve` running there? point --api or BOSUN_API at its --http address)"
            }
            _ => "",
        };
        anyhow!("{method} {}{target}: {e}{hint}", self.endpoint)
    }

    fn headers(&self, accept: &str) -> Vec<(&'static str, String)> {
        vec![
            ("Authorization", format!("Bearer {}", self.token)),
            ("Accept", accept.to_owned()),
        ]
    }
}

/// The error for a `status` answer: the problem document's title and detail when there
/// is one, else the status line and the start of the body.
fn problem(status: u16, reason: &str, body: &[u8]) -> anyhow::Error {
    let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut message = match (doc["title"].as_str(), doc["detail"].as_str()) {
        (Some(title), Some(detail)) => format!("{title}: {detail}"),
        (Some(title), None) => title.to_owned(),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = super::table::shorten(text.trim(), 200);
            format!("HTTP {status} {reason} {}", super::table::sanitize(&text))
                .trim_end()
                .to_owned()
        }
    };
    if status == 401 {
        message.push_str(" (pass --token, set BOSUN_TOKEN, or check DATA_DIR/admin.token)");
    }
    anyhow!(message)
}

/// A non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Percent-encodes one path segment (all but RFC 3986 unreserved characters): device
/// ids may hold `%`, `?`, `'` and friends.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?a=1&b=2` from the pairs that have a value (empty when none do).
pub(crate) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={}", segment(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &Value) -> Result<()> {
    super::emit(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves a small axum router on 127.0.0.1:0 from a background runtime: the
    /// client against the real HTTP stack the hub uses, without a hub.
    fn serve_fixture() -> String {
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::{delete, get, post};

        let router = axum::Router::new()
            .route(
                "/api/echo",
                post(|headers: HeaderMap, body: String| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let etag = [("etag", "\"3\"")];
                    (etag, format!(r#"{{"auth":{auth:?},"body":{body}}}"#))
                }),
            )
            .route("/api/gone", delete(|| async { StatusCode::NO_CONTENT }))
            .route(
                "/api/missing",
                get(|| async {
                    (
                        StatusCode::NOT_FOUND,
                        [("content-type", "application/problem+json")],
                        r#"{"type":"urn:bosun:problem:device-not-found","title":"Device not found","status":404,"detail":"device x not found"}"#,
                    )
                }),
            );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                axum::serve(listener, router).await.expect("serve");
            });
        });
        format!("http://{}", rx.recv().expect("address"))
    }

    #[test]
    fn calls_against_a_real_server() {
        let args = ApiArgs {
            api: Some(serve_fixture()),
            token: Some("t0ken".into()),
            data_dir: None,
            output: Output::Json,
        };
        let api = Api::from_args(&args).expect("api");
        let reply = api
            .call(
                "POST",
                "/api/echo",
                Some(&serde_json::json!({"a": [1, 2]})),
                &[],
            )
            .expect("echo");
        assert_eq!(reply.json["auth"], "Bearer t0ken");
        assert_eq!(reply.json["body"]["a"][1], 2);
        assert_eq!(reply.header("etag"), Some("\"3\""));
        let gone = api.call("DELETE", "/api/gone", None, &[]).expect("204");
        assert!(gone.json.is_null());
        let missing = api.get("/api/missing").expect_err("404");
        assert_eq!(missing.to_string(), "Device not found: device x not found");
    }

    #[test]
    fn problems_become_messages() {
        let body = br#"{"type":"urn:bosun:problem:device-not-found","title":"Device not found","status":404,"detail":"device d1 not found"}"#;
        assert_eq!(
            problem(404, "Not Found", body).to_string(),
            "Device not found: device d1 not found"
        );
        assert_eq!(
            problem(502, "Bad Gateway", b"<html>\x1b[2J</html>").to_string(),
            "HTTP 502 Bad Gateway <html>\u{fffd}[2J</html>"
        );
        assert!(problem(401, "Unauthorized", b"")
            .to_string()
            .contains("BOSUN_TOKEN"));
    }

    #[test]
    fn paths_and_queries_are_encoded() {
        assert_eq!(segment("pump 7/a?b%"), "pump%207%2Fa%3Fb%25");
        assert_eq!(
            query(&[
                ("status", Some("enabled".into())),
                ("group", None),
                ("tag", Some("k:v w".into()))
            ]),
            "?status=enabled&tag=k%3Av%20w"
        );
        assert_eq!(query(&[("a", None)]), "");
    }
}
