//! The questions the report asks the hub, over its REST API.
//!
//! [`HubApi`] is the seam: the `bosun` binary implements it with its HTTP client, and
//! the tests here with canned answers. Everything is paged or bounded the way the API
//! is (`limit` ≤ 1,000 and continuation tokens).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::Error;

/// Largest page the API hands out.
const PAGE: usize = 1000;

/// A blocking `GET` of the hub's REST API, as admin, JSON back.
pub trait HubApi {
    /// `GET target` (path and query, percent-encoded); the JSON body, or why not.
    fn get(&self, target: &str) -> Result<Value, String>;
    /// `POST target` with a JSON body; the JSON answer, or why not.
    fn post(&self, target: &str, body: &Value) -> Result<Value, String>;
}

/// An anomaly event (`entered`) of one device.
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    /// The device.
    pub device_id: String,
    /// When the hub scored the message, ms since the Unix epoch.
    pub time_ms: i64,
    /// The anomaly score.
    pub score: f64,
    /// The features that drove it, most important first.
    pub top: Vec<String>,
}

/// A stored raw capture.
#[derive(Clone, Debug, PartialEq)]
pub struct Capture {
    /// The device.
    pub device_id: String,
    /// Samples stored.
    pub samples: u64,
    /// Sampling rate, Hz.
    pub rate_hz: f64,
    /// Whether no chunk is missing.
    pub complete: bool,
}

fn call(api: &dyn HubApi, target: &str) -> Result<Value, Error> {
    api.get(target).map_err(|detail| Error::Api {
        target: target.to_owned(),
        detail,
    })
}

/// How many of `ids` are in the registry (`connected_only`: and connected now).
pub fn count_devices(
    api: &dyn HubApi,
    ids: &HashSet<&str>,
    connected_only: bool,
) -> Result<usize, Error> {
    let filter = if connected_only {
        "&connectionState=connected"
    } else {
        ""
    };
    Ok(listed(api, filter, ids)?.len())
}

/// Those of `ids` that the registry lists with `filter` (a query suffix).
fn listed(api: &dyn HubApi, filter: &str, ids: &HashSet<&str>) -> Result<HashSet<String>, Error> {
    let mut found = HashSet::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut target = format!("/api/devices?limit={PAGE}{filter}");
        if let Some(c) = &continuation {
            target.push_str(&format!("&continuation={}", encode(c)));
        }
        let page = call(api, &target)?;
        found.extend(
            items(&page)
                .filter_map(|d| d["deviceId"].as_str())
                .filter(|id| ids.contains(id))
                .map(str::to_owned),
        );
        continuation = page["continuation"].as_str().map(str::to_owned);
        if continuation.is_none() {
            return Ok(found);
        }
    }
}

/// Registers those of `ids` the registry does not hold yet, and says how many that
/// was. For anonymous devices on a `serve --dev` hub: a device registered on first use
/// is not marked connected until its next connection, so the report could not count it.
pub fn register(api: &dyn HubApi, ids: &[&str]) -> Result<usize, Error> {
    let wanted: HashSet<&str> = ids.iter().copied().collect();
    let known = listed(api, "", &wanted)?;
    let mut created = 0;
    for id in ids.iter().filter(|id| !known.contains(**id)) {
        let body = serde_json::json!({ "deviceId": id });
        api.post("/api/devices", &body)
            .map_err(|detail| Error::Api {
                target: format!("POST /api/devices {id}"),
                detail,
            })?;
        created += 1;
    }
    Ok(created)
}

/// How far past `from` the count of stored messages reaches: the API's default end is
/// "now", and an accelerated device clock may stamp points ahead of the hub's.
const STORED_SPAN_MS: i64 = 10 * 365 * 24 * 3_600_000;

/// Feature messages stored per device since `from_ms`: the count of `x.rms` points
/// (every feature record has an x axis).
pub fn stored_counts(api: &dyn HubApi, from_ms: i64) -> Result<HashMap<String, u64>, Error> {
    let to_ms = from_ms.saturating_add(STORED_SPAN_MS);
    let answer = call(
        api,
        &format!("/api/series?field=x.rms&from={from_ms}&to={to_ms}&agg=count"),
    )?;
    let mut counts = HashMap::new();
    for series in answer["series"].as_array().into_iter().flatten() {
        let Some(device) = series["deviceId"].as_str() else {
            continue;
        };
        let n: f64 = series["points"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get(1).and_then(Value::as_f64))
            .sum();
        *counts.entry(device.to_owned()).or_default() += n.max(0.0) as u64;
    }
    Ok(counts)
}

/// `entered` anomaly events since `since_ms`, oldest first (the newest 1,000 events).
pub fn anomalies(api: &dyn HubApi, since_ms: i64) -> Result<Vec<Anomaly>, Error> {
    let answer = call(api, &format!("/api/anomalies?limit={PAGE}"))?;
    let mut events: Vec<Anomaly> = items(&answer)
        .filter(|e| e["transition"] == "entered")
        .filter_map(|e| {
            Some(Anomaly {
                device_id: e["deviceId"].as_str()?.to_owned(),
                time_ms: e["timeMs"].as_i64()?,
                score: e["score"].as_f64().unwrap_or_default(),
                top: e["explanation"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x["feature"].as_str().map(str::to_owned))
                    .collect(),
            })
        })
        .filter(|a| a.time_ms >= since_ms)
        .collect();
    events.sort_by_key(|a| a.time_ms);
    Ok(events)
}

/// Stored captures (all devices, or one).
pub fn captures(api: &dyn HubApi, device: Option<&str>) -> Result<Vec<Capture>, Error> {
    let target = match device {
        Some(d) => format!("/api/captures?deviceId={}", encode(d)),
        None => "/api/captures".to_owned(),
    };
    let answer = call(api, &target)?;
    Ok(items(&answer)
        .filter_map(|c| {
            Some(Capture {
                device_id: c["deviceId"].as_str()?.to_owned(),
                samples: c["samples"].as_u64().unwrap_or_default(),
                rate_hz: c["rateHz"].as_f64().unwrap_or_default(),
                complete: c["missing"].as_array().is_some_and(|m| m.is_empty()),
            })
        })
        .collect())
}

/// The `items` array of an answer (empty when absent).
fn items(answer: &Value) -> impl Iterator<Item = &Value> {
    answer["items"].as_array().into_iter().flatten()
}

/// Percent-encodes a query value (continuation tokens, device ids).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Answers by the target's path prefix; POSTs are recorded.
    struct Canned(Vec<(&'static str, Value)>, std::cell::RefCell<Vec<Value>>);

    impl HubApi for Canned {
        fn post(&self, _target: &str, body: &Value) -> Result<Value, String> {
            self.1.borrow_mut().push(body.clone());
            Ok(body.clone())
        }

        fn get(&self, target: &str) -> Result<Value, String> {
            self.0
                .iter()
                .find(|(prefix, _)| target.starts_with(prefix))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("no answer for {target}"))
        }
    }

    #[test]
    fn pages_counts_and_filters() {
        let api = Canned(
            vec![
                (
                    "/api/devices?limit=1000&connectionState=connected&continuation=p%2B2",
                    json!({"items": [{"deviceId": "m-2"}]}),
                ),
                (
                    "/api/devices?limit=1000&connectionState=connected",
                    json!({"items": [{"deviceId": "m-1"}, {"deviceId": "other"}], "continuation": "p+2"}),
                ),
                (
                    "/api/series",
                    json!({"series": [{"deviceId": "m-1", "points": [[0, 7.0]]}, {"deviceId": "m-2", "points": []}]}),
                ),
                (
                    "/api/anomalies",
                    json!({"items": [
                        {"deviceId": "m-1", "timeMs": 20, "transition": "entered", "score": 9.5, "explanation": [{"feature": "x.rms"}]},
                        {"deviceId": "m-1", "timeMs": 30, "transition": "exited", "score": 1.0},
                        {"deviceId": "m-2", "timeMs": 5, "transition": "entered", "score": 7.0}
                    ]}),
                ),
                (
                    "/api/captures",
                    json!({"items": [{"deviceId": "m-1", "samples": 300000, "rateHz": 10000.0, "missing": []}]}),
                ),
                (
                    "/api/devices?limit=1000",
                    json!({"items": [{"deviceId": "m-1"}]}),
                ),
            ],
            Default::default(),
        );
        let ids: HashSet<&str> = ["m-1", "m-2"].into();
        assert_eq!(count_devices(&api, &ids, true).expect("count"), 2);
        let stored = stored_counts(&api, 0).expect("stored");
        assert_eq!(stored.get("m-1"), Some(&7));
        assert_eq!(stored.get("m-2"), Some(&0));
        let events = anomalies(&api, 10).expect("anomalies");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].top, ["x.rms"]);
        let caps = captures(&api, Some("m-1")).expect("captures");
        assert!(caps[0].complete && caps[0].samples == 300_000);
        assert!(count_devices(&Canned(vec![], Default::default()), &ids, false).is_err());
        assert_eq!(register(&api, &["m-1", "m-3"]).expect("register"), 1);
        assert_eq!(api.1.borrow().as_slice(), [json!({"deviceId": "m-3"})]);
    }
}
