//! Zero-touch provisioning: the device side of the Azure Device Provisioning Service
//! (DPS) protocol over MQTT, served by the hub itself.
//!
//! A provisioning client (authenticated against an enrollment by `auth/provisioning.rs`,
//! which records the enrollment in [`crate::auth::Registrations`]) subscribes to
//! `$dps/registrations/res/#` and:
//! 1. publishes `$dps/registrations/PUT/iotdps-register/?$rid={rid}` with
//!    `{"registrationId": …, "payload": …}`; the hub answers
//!    `$dps/registrations/res/202/?$rid={rid}&retry-after=1` with
//!    `{"operationId": …, "status": "assigning"}` and then assigns: it creates the
//!    device (id = registration id, auth kind `sas` with the enrollment's or the derived
//!    key, or `x509` for an X.509 enrollment; the enrollment's initial twin and device
//!    group);
//! 2. polls `$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={op}`
//!    and gets 202 while assigning, then 200 with
//!    `{"operationId", "status": "assigned", "registrationState": {…, "assignedHub",
//!    "deviceId", "substatus": "initialAssignment"}}`.
//!
//! Failures are answered with an HTTP-like status (401 no enrollment, 403 disabled,
//! 404 unknown operation, 409 the device id belongs to a device with other
//! credentials, 400 a bad request, 500 a store failure) and
//! `{"errorCode", "message"}`; the SDKs report 300–428 as an error and retry 429 and up.
//!
//! Registering again is idempotent: an existing device whose key is the enrollment's
//! (for an X.509 enrollment: an existing `x509` device) is assigned again unchanged
//! (its twin is not reset).
//!
//! Operations live in memory: they last seconds, and a client whose operation was lost
//! in a restart registers again. At most [`MAX_OPERATIONS`], each kept
//! [`OPERATION_TTL`].

use std::time::{Duration, Instant};

use broker::service::ServicePublish;
use serde_json::{json, Value};
use store::{Enrollment, EnrollmentKind, StoreError};

use super::{now_ms, plain_publish, Hub, HubError, NewDevice};
use crate::auth::EnrollmentRef;
use crate::topics::{self, DeviceTopic};
use crate::twin::rfc3339;

/// Operations remembered at once; the oldest are dropped past this.
pub(super) const MAX_OPERATIONS: usize = 10_000;
/// How long a finished operation can still be polled.
const OPERATION_TTL: Duration = Duration::from_secs(600);
/// Seconds a client is told to wait before polling an operation still assigning.
const RETRY_AFTER_SECONDS: u32 = 1;

/// A registration operation.
#[derive(Debug, Clone)]
pub(super) struct Operation {
    /// The registration (client) it belongs to; others cannot poll it.
    registration_id: String,
    /// Where it stands.
    state: OperationState,
    /// When it started, for expiry.
    started: Instant,
}

/// Where an operation stands.
#[derive(Debug, Clone)]
enum OperationState {
    /// The device is being created.
    Assigning,
    /// Done: the `registrationState` document.
    Assigned(Value),
    /// Refused: an HTTP-like status and a message.
    Failed(Failure),
}

/// A refusal as the client is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// HTTP-like status of the answer topic.
    status: u16,
    /// Human-readable reason.
    message: String,
}

impl Failure {
    fn new(status: u16, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// The error body DPS sends: `errorCode` is the status followed by three digits.
    fn body(&self) -> Value {
        json!({
            "errorCode": u32::from(self.status) * 1000 + 1,
            "trackingId": "",
            "message": self.message,
        })
    }
}

/// The answer to an operation that is still assigning.
fn assigning_body(operation_id: &str) -> Value {
    json!({ "operationId": operation_id, "status": "assigning" })
}

/// The answer to an operation that assigned the device.
fn assigned_body(operation_id: &str, state: &Value) -> Value {
    json!({
        "operationId": operation_id,
        "status": "assigned",
        "registrationState": state,
    })
}

/// The `registrationState` of an assignment.
fn registration_state(registration_id: &str, hub: &str, created: &str, updated: &str) -> Value {
    json!({
        "registrationId": registration_id,
        "createdDateTimeUtc": created,
        "assignedHub": hub,
        "deviceId": registration_id,
        "status": "assigned",
        "substatus": "initialAssignment",
        "lastUpdatedDateTimeUtc": updated,
        "etag": format!("\"{}\"", now_ms()),
    })
}

/// Checks a register request's body: empty, or a JSON object whose `registrationId`
/// (if any) is the authenticated one.
fn check_register_body(payload: &[u8], registration_id: &str) -> Result<(), Failure> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(payload)
        .map_err(|_| Failure::new(400, "the request body is not JSON"))?;
    let Some(object) = body.as_object() else {
        return Err(Failure::new(400, "the request body is not a JSON object"));
    };
    match object.get("registrationId") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(id)) if id == registration_id => Ok(()),
        Some(_) => Err(Failure::new(
            400,
            "registrationId is not the registration that authenticated",
        )),
    }
}

/// The key a device registered through `enrollment` authenticates with.
fn device_key(enrollment: &Enrollment, registration_id: &str) -> Result<String, Failure> {
    match enrollment.kind {
        EnrollmentKind::Individual => Ok(enrollment.key.clone()),
        EnrollmentKind::Group => crate::auth::derive_device_key(&enrollment.key, registration_id)
            .map_err(|_| Failure::new(500, "the enrollment's key is unreadable")),
    }
}

impl Hub {
    /// A publish on `$dps/…`: a registration request or a status poll.
    pub(super) async fn on_provisioning_publish(&self, p: ServicePublish) {
        let client = &*p.client_id;
        let topic = match topics::parse(&p.topic) {
            Some(Ok(topic)) => topic,
            Some(Err(e)) => {
                tracing::info!(client, topic = %p.topic, error = %e, "malformed provisioning topic");
                return;
            }
            None => return,
        };
        match topic {
            DeviceTopic::DpsRegister { rid } => self.dps_register(client, &rid, &p.payload).await,
            DeviceTopic::DpsPoll { rid, operation_id } => {
                self.dps_poll(client, &rid, &operation_id).await;
            }
            _ => tracing::info!(client, topic = %p.topic, "not a provisioning request"),
        }
    }

    /// `iotdps-register`: answers 202 with a new operation, then assigns.
    async fn dps_register(&self, client: &str, rid: &str, payload: &[u8]) {
        let Some(enrollment) = self.inner.config.registrations.get(client) else {
            // Only clients authenticated against an enrollment get here, except
            // anonymous loopback clients in development mode.
            let failure = Failure::new(401, "not authenticated as a registration");
            return self
                .dps_answer(client, rid, failure.status, None, &failure.body())
                .await;
        };
        if let Err(failure) = check_register_body(payload, client) {
            return self
                .dps_answer(client, rid, failure.status, None, &failure.body())
                .await;
        }
        let operation_id = format!("{:x}.{}", now_ms(), self.next_id());
        self.put_operation(&operation_id, client, OperationState::Assigning);
        let body = assigning_body(&operation_id);
        self.dps_answer(client, rid, 202, Some(RETRY_AFTER_SECONDS), &body)
            .await;
        let state = match self.assign(client, &enrollment).await {
            Ok(state) => {
                tracing::info!(device = client, enrollment = %enrollment.name, "device provisioned");
                OperationState::Assigned(state)
            }
            Err(failure) => {
                tracing::info!(registration = client, enrollment = %enrollment.name, reason = %failure.message, "provisioning refused");
                OperationState::Failed(failure)
            }
        };
        self.put_operation(&operation_id, client, state);
    }

    /// `iotdps-get-operationstatus`.
    async fn dps_poll(&self, client: &str, rid: &str, operation_id: &str) {
        let operation = self
            .volatile()
            .dps_operations
            .get(operation_id)
            .filter(|op| op.registration_id == client)
            .map(|op| op.state.clone());
        match operation {
            Some(OperationState::Assigning) => {
                let body = assigning_body(operation_id);
                self.dps_answer(client, rid, 202, Some(RETRY_AFTER_SECONDS), &body)
                    .await;
            }
            Some(OperationState::Assigned(state)) => {
                let body = assigned_body(operation_id, &state);
                self.dps_answer(client, rid, 200, None, &body).await;
            }
            Some(OperationState::Failed(failure)) => {
                self.dps_answer(client, rid, failure.status, None, &failure.body())
                    .await;
            }
            None => {
                let failure = Failure::new(404, "unknown operation");
                self.dps_answer(client, rid, failure.status, None, &failure.body())
                    .await;
            }
        }
    }

    /// Creates (or finds) the device for a registration; its `registrationState`.
    async fn assign(
        &self,
        registration_id: &str,
        enrollment: &EnrollmentRef,
    ) -> Result<Value, Failure> {
        let record = match self
            .load_enrollment(enrollment.kind, &enrollment.name)
            .await
        {
            Ok(record) => record,
            Err(HubError::NotFound(_)) => {
                return Err(Failure::new(401, "the enrollment no longer exists"))
            }
            Err(e) => return Err(Failure::new(500, e.to_string())),
        };
        if record.disabled {
            return Err(Failure::new(403, "the enrollment is disabled"));
        }
        if record.x509.is_some() != enrollment.by_certificate {
            // Changed between the client's CONNECT and its request.
            return Err(Failure::new(401, "the enrollment's attestation changed"));
        }
        // `None` for an X.509 enrollment: the device authenticates by certificate.
        let key = match record.x509 {
            Some(_) => None,
            None => Some(device_key(&record, registration_id)?),
        };
        let (tags, desired) = super::enrollments::initial_sections(&record);
        let auth_kind = match key {
            Some(_) => crate::auth::AUTH_KIND_SAS,
            None => crate::auth::AUTH_KIND_X509,
        };
        let new = NewDevice {
            id: registration_id.to_string(),
            auth_kind: Some(auth_kind.into()),
            group: record.device_group.clone(),
            tags: Some(tags),
            desired: Some(desired),
            status: None,
            symmetric_key: key.clone(),
        };
        let hub = &self.inner.config.host_name;
        let now = rfc3339(now_ms());
        match self.create_device(new).await {
            Ok(device) => Ok(registration_state(
                registration_id,
                hub,
                &device.created_time,
                &now,
            )),
            Err(HubError::AlreadyExists(_)) => {
                // Registering again: the same assignment, if the device is ours.
                if !self.is_ours(registration_id, key).await? {
                    return Err(Failure::new(
                        409,
                        "the device id belongs to a device with other credentials",
                    ));
                }
                let device = self
                    .device(registration_id)
                    .await
                    .map_err(|e| Failure::new(500, e.to_string()))?;
                Ok(registration_state(
                    registration_id,
                    hub,
                    &device.created_time,
                    &now,
                ))
            }
            Err(HubError::Invalid(message)) => Err(Failure::new(400, message)),
            Err(e) => Err(Failure::new(500, e.to_string())),
        }
    }

    /// Whether an existing device is the one this registration would create: a SAS
    /// device holding `key`, or (no key: an X.509 enrollment) an `x509` device, which
    /// the certificate just verified (CN = device id, from a registered CA) can
    /// connect as anyway.
    async fn is_ours(&self, id: &str, key: Option<String>) -> Result<bool, Failure> {
        let owned = id.to_string();
        let Some(key) = key else {
            let device = self.blocking(move |s| s.device(&owned)).await;
            return match device {
                Ok(device) => Ok(device.auth_kind == crate::auth::AUTH_KIND_X509),
                Err(StoreError::NotFound) => Ok(false),
                Err(e) => Err(Failure::new(500, e.to_string())),
            };
        };
        match self.blocking(move |s| s.keys(&owned)).await {
            Ok(keys) => Ok(keys.primary == key || keys.secondary == key),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(Failure::new(500, e.to_string())),
        }
    }

    /// Records an operation's state, dropping expired ones (and the oldest when full).
    fn put_operation(&self, operation_id: &str, registration_id: &str, state: OperationState) {
        let mut volatile = self.volatile();
        let operations = &mut volatile.dps_operations;
        if let Some(op) = operations.get_mut(operation_id) {
            op.state = state;
            return;
        }
        if operations.len() >= MAX_OPERATIONS {
            operations.retain(|_, op| op.started.elapsed() < OPERATION_TTL);
        }
        if operations.len() >= MAX_OPERATIONS {
            let oldest = operations
                .iter()
                .min_by_key(|(_, op)| op.started)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                operations.remove(&oldest);
            }
        }
        operations.insert(
            operation_id.to_string(),
            Operation {
                registration_id: registration_id.to_string(),
                state,
                started: Instant::now(),
            },
        );
    }

    /// Sends a DPS answer (QoS 0) to the client's own subscription.
    async fn dps_answer(
        &self,
        client: &str,
        rid: &str,
        status: u16,
        retry_after: Option<u32>,
        body: &Value,
    ) {
        let topic = topics::dps_response(status, rid, retry_after);
        let publish = plain_publish(topic, body.to_string().into_bytes(), mqtt::QoS::AtMostOnce);
        let _ = self.inner.broker.send_to(client, publish, None).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_have_the_shape_the_sdks_parse() {
        assert_eq!(
            assigning_body("op1"),
            json!({"operationId": "op1", "status": "assigning"})
        );
        let state = registration_state("dev-1", "hub.example", "t0", "t1");
        let done = assigned_body("op1", &state);
        assert_eq!(done["status"], "assigned");
        assert_eq!(done["operationId"], "op1");
        let state = &done["registrationState"];
        assert_eq!(state["assignedHub"], "hub.example");
        assert_eq!(state["deviceId"], "dev-1");
        assert_eq!(state["registrationId"], "dev-1");
        assert_eq!(state["status"], "assigned");
        assert_eq!(state["substatus"], "initialAssignment");
        assert_eq!(state["createdDateTimeUtc"], "t0");
        let failure = Failure::new(403, "the enrollment is disabled").body();
        assert_eq!(failure["errorCode"], 403_001);
        assert_eq!(failure["message"], "the enrollment is disabled");
    }

    #[test]
    fn register_bodies_must_name_the_authenticated_registration() {
        assert!(check_register_body(b"", "d1").is_ok());
        assert!(check_register_body(br#"{"registrationId":"d1"}"#, "d1").is_ok());
        assert!(check_register_body(br#"{"registrationId":"d1","payload":{"a":1}}"#, "d1").is_ok());
        assert!(check_register_body(br#"{"payload":null}"#, "d1").is_ok());
        for bad in [&br#"{"registrationId":"d2"}"#[..], b"[1]", b"{", b"\xff"] {
            assert_eq!(check_register_body(bad, "d1").unwrap_err().status, 400);
        }
    }

    #[test]
    fn group_enrollments_derive_the_device_key() {
        let mut enrollment = Enrollment {
            kind: EnrollmentKind::Group,
            name: "g".into(),
            key: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
            x509: None,
            initial_twin: "{}".into(),
            device_group: None,
            disabled: false,
            created_ms: 0,
        };
        assert_eq!(
            device_key(&enrollment, "sensor-042").unwrap(),
            "YWGfx6psUG2GN+2JfRsJbaVugWxYb8ZAofr1S3X3L6w="
        );
        enrollment.kind = EnrollmentKind::Individual;
        assert_eq!(device_key(&enrollment, "x").unwrap(), enrollment.key);
    }
}
