//! Direct methods: a request to one device, its answer matched by request id, with a
//! connect timeout (waiting for an offline device) and a response timeout.

use broker::service::SendOutcome;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{plain_publish, Hub, HubError, MethodCall, MethodResponse};
use crate::topics;

/// Longest method name accepted.
const MAX_NAME: usize = 128;

/// A call waiting for its answer.
pub(super) struct Pending {
    /// Only this device may answer it.
    device: String,
    reply: oneshot::Sender<MethodResponse>,
}

impl Hub {
    /// Invokes a method and waits for the device's answer. Many calls may be in flight
    /// to one device; each has its own request id.
    pub async fn invoke_method(
        &self,
        id: &str,
        call: MethodCall,
    ) -> Result<MethodResponse, HubError> {
        validate_name(&call.name)?;
        self.device(id).await?;
        let rid = self.next_id().to_string();
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            device: id.to_string(),
            reply: tx,
        };
        self.volatile().methods.insert(rid.clone(), pending);
        let result = self.call(id, &rid, &call, rx).await;
        self.volatile().methods.remove(&rid);
        result
    }

    async fn call(
        &self,
        id: &str,
        rid: &str,
        call: &MethodCall,
        answer: oneshot::Receiver<MethodResponse>,
    ) -> Result<MethodResponse, HubError> {
        let connect_by = Instant::now() + call.connect_timeout;
        let payload = call.payload.to_string().into_bytes();
        loop {
            // Armed before sending, so an arrival between the two is not missed.
            let arrival = self.inner.arrivals.notified();
            tokio::pin!(arrival);
            arrival.as_mut().enable();
            let request = plain_publish(
                topics::method_request(&call.name, rid),
                payload.clone(),
                mqtt::QoS::AtMostOnce,
            );
            match self.inner.broker.send_to(id, request, None).await {
                Ok(SendOutcome::Accepted) => break,
                Ok(_) if Instant::now() < connect_by => {
                    let _ = tokio::time::timeout_at(connect_by, arrival).await;
                }
                Ok(_) => return Err(HubError::NotConnected(id.to_string())),
                Err(e) => return Err(HubError::Unavailable(e.to_string())),
            }
        }
        match tokio::time::timeout(call.response_timeout, answer).await {
            Ok(Ok(response)) => Ok(response),
            _ => Err(HubError::Timeout(id.to_string())),
        }
    }

    /// `$iothub/methods/res/{status}/?$rid=…` from `device`.
    pub(super) fn method_answer(&self, device: &str, status: i32, rid: &str, payload: &[u8]) {
        let pending = {
            let mut state = self.volatile();
            match state.methods.get(rid) {
                Some(p) if p.device == device => state.methods.remove(rid),
                Some(_) => {
                    tracing::warn!(
                        device,
                        rid,
                        "method answer for another device's call ignored"
                    );
                    None
                }
                None => None,
            }
        };
        let Some(pending) = pending else {
            tracing::debug!(device, rid, "late or unknown method answer");
            return;
        };
        let payload = if payload.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
        };
        let _ = pending.reply.send(MethodResponse { status, payload });
    }
}

/// Method names go into a topic level: no separators, wildcards or query marks.
fn validate_name(name: &str) -> Result<(), HubError> {
    let bad = |c: char| matches!(c, '/' | '+' | '#' | '?' | '&' | '=') || c.is_control();
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(bad) {
        return Err(HubError::Invalid(format!(
            "method name must be 1 to {MAX_NAME} characters without / + # ? & = or control characters"
        )));
    }
    Ok(())
}
