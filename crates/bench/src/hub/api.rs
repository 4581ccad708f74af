//! Driving the REST API: many requests over a fixed number of keep-alive connections,
//! each answer checked, each round trip timed.
//!
//! A batch of `count` requests is shared by `concurrency` workers, each with its own
//! connection, taking the next request number as soon as its previous answer is in, so
//! exactly `concurrency` requests are outstanding until the batch runs dry. The first
//! wrong answer stops the batch with an error quoting the request and the answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::http::{HttpClient, Response};

/// How often a running batch prints progress.
const PRINT_EVERY: Duration = Duration::from_secs(5);

/// Where the API is and the token that may call it.
#[derive(Clone, Debug)]
pub(crate) struct Api {
    /// The HTTP listener.
    pub(crate) addr: SocketAddr,
    /// The admin bearer token.
    pub(crate) token: String,
}

impl Api {
    /// A new keep-alive connection (opened on first use).
    pub(crate) fn client(&self) -> HttpClient {
        HttpClient::new(self.addr, &self.token)
    }
}

/// One request of a batch.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    /// HTTP method.
    pub(crate) method: &'static str,
    /// Path and query.
    pub(crate) path: String,
    /// JSON body.
    pub(crate) body: String,
    /// The status a correct answer has.
    pub(crate) expect: u16,
}

impl Call {
    /// Sends the call on `client` and checks the status; returns the answer and the
    /// round-trip time.
    pub(crate) async fn send(&self, client: &mut HttpClient) -> Result<(Response, Duration)> {
        let start = Instant::now();
        let response = client
            .send(self.method, &self.path, Some(&self.body))
            .await?;
        let took = start.elapsed();
        if response.status != self.expect {
            bail!(
                "{} {} with {} answered {} (expected {}): {}",
                self.method,
                self.path,
                self.body,
                response.status,
                self.expect,
                response.excerpt()
            );
        }
        Ok((response, took))
    }
}

/// What a batch measured.
pub(crate) struct Batch {
    /// From the first request sent to the last answer read.
    pub(crate) elapsed: Duration,
    /// Round-trip time of every request, sorted.
    pub(crate) latencies: Vec<Duration>,
}

/// Runs `count` calls, `make(i)` being call `i`, over `concurrency` connections, and
/// checks every answer with `check(i, answer)` beyond its status. Fails on the first
/// wrong answer, or when the whole batch has not finished within `limit`.
pub(crate) async fn batch<M, C>(
    api: &Api,
    concurrency: usize,
    count: usize,
    limit: Duration,
    label: &str,
    make: M,
    check: C,
) -> Result<Batch>
where
    M: Fn(usize) -> Call + Send + Sync + 'static,
    C: Fn(usize, &Response) -> Result<()> + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let work = Arc::new((make, check));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let (next, done, work) = (Arc::clone(&next), Arc::clone(&done), Arc::clone(&work));
        let mut client = api.client();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let (make, check) = &*work;
                let (response, took) = make(i).send(&mut client).await?;
                check(i, &response).with_context(|| format!("request {i}"))?;
                latencies.push(took);
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let collect = collect(&mut workers, &done, count, label);
    let mut latencies = tokio::time::timeout(limit, collect)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{label}: only {} of {count} answered within {limit:?}",
                done.load(Ordering::Relaxed)
            )
        })?
        .with_context(|| format!("{label} failed"))?;
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Ok(Batch { elapsed, latencies })
}

/// Joins the workers, printing progress; the first error aborts the others (by
/// dropping the set).
async fn collect(
    workers: &mut tokio::task::JoinSet<Result<Vec<Duration>>>,
    done: &AtomicUsize,
    count: usize,
    label: &str,
) -> Result<Vec<Duration>> {
    let mut all = Vec::with_capacity(count);
    let mut ticker = tokio::time::interval(PRINT_EVERY);
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(result) => all.extend(result.context("API worker panicked")??),
                None => return Ok(all),
            },
            _ = ticker.tick() => {
                crate::progress(&format!("{label}: {}/{count}", done.load(Ordering::Relaxed)));
            }
        }
    }
}

/// `POST /api/devices` for one device.
pub(crate) fn create_device(id: &str) -> Call {
    Call {
        method: "POST",
        path: "/api/devices".to_owned(),
        body: format!("{{\"deviceId\":\"{id}\"}}"),
        expect: 201,
    }
}

/// `PATCH /api/devices/{id}/twin` setting one desired property to `value`.
pub(crate) fn patch_desired(id: &str, key: &str, value: u64) -> Call {
    Call {
        method: "PATCH",
        path: format!("/api/devices/{id}/twin"),
        body: format!("{{\"properties\":{{\"desired\":{{\"{key}\":{value}}}}}}}"),
        expect: 200,
    }
}

/// `POST /api/devices/{id}/methods/{name}` with payload `{"call": n}`.
pub(crate) fn invoke(id: &str, name: &str, n: usize) -> Call {
    Call {
        method: "POST",
        path: format!("/api/devices/{id}/methods/{name}"),
        body: format!("{{\"payload\":{{\"call\":{n}}},\"responseTimeoutInSeconds\":30}}"),
        expect: 200,
    }
}

/// Checks a method answer: the device's status is 200 and its payload is the request's
/// payload echoed back.
pub(crate) fn check_method_answer(n: usize, response: &Response) -> Result<()> {
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .with_context(|| format!("method answer is not JSON: {}", response.excerpt()))?;
    let status = body.get("status").and_then(serde_json::Value::as_i64);
    let echoed = body
        .get("payload")
        .and_then(|p| p.get("call"))
        .and_then(serde_json::Value::as_u64);
    if status != Some(200) || echoed != Some(n as u64) {
        bail!(
            "method answer should be {{\"status\":200,\"payload\":{{\"call\":{n}}}}}, got {}",
            response.excerpt()
        );
    }
    Ok(())
}

/// Accepts any answer with the expected status.
pub(crate) fn any_body(_: usize, _: &Response) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Response {
        Response {
            status: 200,
            body: body.as_bytes().to_vec(),
            close: false,
        }
    }

    #[test]
    fn bodies_are_json() -> Result<()> {
        for call in [
            create_device("d-1"),
            patch_desired("d-1", "benchRound", 3),
            invoke("d-1", "echo", 7),
        ] {
            serde_json::from_str::<serde_json::Value>(&call.body)
                .with_context(|| call.body.clone())?;
        }
        Ok(())
    }

    #[test]
    fn method_answers_must_echo() {
        assert!(check_method_answer(7, &answer(r#"{"status":200,"payload":{"call":7}}"#)).is_ok());
        assert!(check_method_answer(7, &answer(r#"{"status":200,"payload":{"call":8}}"#)).is_err());
        assert!(check_method_answer(7, &answer(r#"{"status":500,"payload":{"call":7}}"#)).is_err());
        assert!(check_method_answer(7, &answer("not json")).is_err());
    }
}
