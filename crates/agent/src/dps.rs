//! Provisioning through the DPS device protocol over MQTT, before the device has an
//! identity: symmetric-key attestation with a group-derived key, or X.509 attestation
//! with the device's client certificate.
//!
//! The exchange ([`Registration`] is its pure state machine; [`provision`] drives it):
//! 1. connect as the provisioning client (client id = registration id, credentials from
//!    [`crate::identity::registration_credentials`]), subscribe `$dps/registrations/res/#`;
//! 2. publish `$dps/registrations/PUT/iotdps-register/?$rid=R` with
//!    `{"registrationId": …}`; the hub answers 202 with an `operationId`;
//! 3. after `retry-after` seconds, publish
//!    `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=R&operationId=O` until the
//!    answer is 200 with `status: assigned` and `registrationState.{assignedHub,
//!    deviceId}`.
//!
//! bosun is one hub, so the agent then connects to the same address it provisioned
//! through and uses `assignedHub` as the host in its SAS token. A 4xx answer stops
//! with [`Error::Provisioning`]; 429 and 5xx are retried after `retry-after`.

use std::time::Duration;

use bytes::Bytes;
use mqtt::{
    Connect, Packet, Properties, Publish, QoS, Subscribe, Subscription, SubscriptionOptions,
};
use serde_json::{json, Value};

use crate::identity::{expiry_from_now, registration_credentials};
use crate::link::{Endpoint, Link, VERSION};
use crate::topics::query_value;
use crate::Error;

/// Where answers arrive.
const ANSWERS: &str = "$dps/registrations/res/#";
/// Most polls before giving up.
const MAX_POLLS: u32 = 30;
/// Wait between polls when the hub names none.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between polls honoured.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How long one answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The result of a registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The hub's host name, for the SAS token.
    pub assigned_hub: String,
    /// The device id to connect as.
    pub device_id: String,
}

/// What to do after an answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Send this request after waiting.
    Send {
        /// How long to wait first.
        after: Duration,
        /// The request.
        packet: Box<Packet>,
    },
    /// Registered.
    Done(Assignment),
    /// Not an answer to our request: keep waiting.
    Ignore,
}

/// The registration exchange, without IO.
#[derive(Debug, Clone)]
pub struct Registration {
    registration_id: String,
    rid: u64,
    polls: u32,
}

impl Registration {
    /// A registration of `registration_id`.
    pub fn new(registration_id: &str) -> Registration {
        Registration {
            registration_id: registration_id.to_owned(),
            rid: 0,
            polls: 0,
        }
    }

    /// The register request.
    pub fn register(&mut self) -> Packet {
        self.rid += 1;
        let body = json!({ "registrationId": self.registration_id });
        request(
            format!("$dps/registrations/PUT/iotdps-register/?$rid={}", self.rid),
            body.to_string(),
        )
    }

    /// Handles one PUBLISH from the hub.
    pub fn on_answer(&mut self, topic: &str, payload: &[u8]) -> Result<Step, Error> {
        let Some(rest) = topic.strip_prefix("$dps/registrations/res/") else {
            return Ok(Step::Ignore);
        };
        let (status, query) = rest.split_once('/').unwrap_or((rest, ""));
        let status: u16 = status.parse().unwrap_or(0);
        if query_value(query, "$rid") != Some(self.rid.to_string()) {
            return Ok(Step::Ignore);
        }
        let retry = query_value(query, "retry-after")
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(DEFAULT_RETRY, Duration::from_secs)
            .min(MAX_RETRY);
        let body: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        match status {
            200 if body["status"] == "assigned" => assignment(&body).map(Step::Done),
            200 | 202 => self.poll(&body, retry),
            429 | 500..=599 => Ok(Step::Send {
                after: retry,
                packet: Box::new(self.register()),
            }),
            _ => Err(Error::Provisioning(format!(
                "hub answered {status}: {}",
                body["message"].as_str().unwrap_or("no message")
            ))),
        }
    }

    fn poll(&mut self, body: &Value, after: Duration) -> Result<Step, Error> {
        let operation = body["operationId"]
            .as_str()
            .ok_or_else(|| Error::Provisioning(format!("answer without operationId: {body}")))?;
        self.polls += 1;
        if self.polls > MAX_POLLS {
            return Err(Error::Provisioning(
                "still not assigned after 30 polls".into(),
            ));
        }
        self.rid += 1;
        let topic = format!(
            "$dps/registrations/GET/iotdps-get-operationstatus/?$rid={}&operationId={}",
            self.rid,
            hub::auth::percent_encode(operation)
        );
        Ok(Step::Send {
            after,
            packet: Box::new(request(topic, String::new())),
        })
    }
}

/// The assignment in a 200 answer.
fn assignment(body: &Value) -> Result<Assignment, Error> {
    let state = &body["registrationState"];
    match (state["assignedHub"].as_str(), state["deviceId"].as_str()) {
        (Some(hub), Some(id)) if !id.is_empty() => Ok(Assignment {
            assigned_hub: hub.to_owned(),
            device_id: id.to_owned(),
        }),
        _ => Err(Error::Provisioning(format!(
            "assigned without hub or device id: {body}"
        ))),
    }
}

/// A QoS 0 request.
fn request(topic: String, body: String) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic,
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from(body),
    })
}

/// Registers `registration_id` in `id_scope` through `endpoint`, with `device_key`
/// (derived from the group key) or, when `None`, the client certificate of the
/// endpoint's TLS configuration.
pub async fn provision(
    endpoint: &Endpoint,
    id_scope: &str,
    registration_id: &str,
    device_key: Option<&str>,
) -> Result<Assignment, Error> {
    let credentials =
        registration_credentials(id_scope, registration_id, device_key, expiry_from_now())?;
    let connect = Connect {
        protocol: VERSION,
        clean_start: true,
        keep_alive: 60,
        client_id: registration_id.to_owned(),
        will: None,
        username: Some(credentials.username),
        password: credentials.password,
        properties: Properties::default(),
    };
    let (mut link, _) = Link::open(endpoint, connect).await?;
    let subscribe = Subscribe {
        packet_id: 1,
        subscriptions: vec![Subscription {
            filter: ANSWERS.into(),
            options: SubscriptionOptions::default(),
        }],
        properties: Properties::default(),
    };
    link.send(&Packet::Subscribe(subscribe)).await?;
    let mut registration = Registration::new(registration_id);
    link.send(&registration.register()).await?;
    loop {
        let packet = tokio::time::timeout(ANSWER_TIMEOUT, link.next())
            .await
            .map_err(|_| Error::Provisioning("no answer from the hub".into()))??;
        let Some(packet) = packet else {
            return Err(Error::Provisioning("the hub closed the connection".into()));
        };
        let Packet::Publish(publish) = packet else {
            continue;
        };
        match registration.on_answer(&publish.topic, &publish.payload)? {
            Step::Done(assignment) => {
                let _ = link
                    .send(&Packet::Disconnect(crate::link::normal_disconnect()))
                    .await;
                return Ok(assignment);
            }
            Step::Send { after, packet } => {
                tokio::time::sleep(after).await;
                link.send(&packet).await?;
            }
            Step::Ignore => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(packet: &Packet) -> String {
        match packet {
            Packet::Publish(p) => p.topic.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn registers_polls_and_is_assigned() {
        let mut r = Registration::new("dev-9");
        assert_eq!(
            topic(&r.register()),
            "$dps/registrations/PUT/iotdps-register/?$rid=1"
        );
        let step = r
            .on_answer(
                "$dps/registrations/res/202/?$rid=1&retry-after=2",
                br#"{"operationId":"op 1","status":"assigning"}"#,
            )
            .expect("step");
        match step {
            Step::Send { after, packet } => {
                assert_eq!(after, Duration::from_secs(2));
                assert_eq!(
                    topic(&packet),
                    "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=op%201"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.on_answer("$dps/registrations/res/200/?$rid=1", b"{}")
                .ok(),
            Some(Step::Ignore)
        );
        let done = r.on_answer(
            "$dps/registrations/res/200/?$rid=2",
            br#"{"operationId":"op 1","status":"assigned","registrationState":{"assignedHub":"hub.local","deviceId":"dev-9"}}"#,
        );
        assert_eq!(
            done.ok(),
            Some(Step::Done(Assignment {
                assigned_hub: "hub.local".into(),
                device_id: "dev-9".into()
            }))
        );
    }

    #[test]
    fn refusals_stop_and_overload_retries() {
        let mut r = Registration::new("dev-9");
        r.register();
        assert!(r
            .on_answer("$dps/registrations/res/401/?$rid=1", br#"{"message":"no"}"#)
            .is_err());
        let mut r = Registration::new("dev-9");
        r.register();
        assert!(matches!(
            r.on_answer("$dps/registrations/res/429/?$rid=1", b""),
            Ok(Step::Send { .. })
        ));
        assert!(r
            .on_answer("$dps/registrations/res/200/?$rid=2", b"garbage")
            .is_err());
    }
}
