//! `/api/series` and `/api/series/keys`: the time-series store, by device or tag, as
//! JSON or CSV; and the time and step forms the data API accepts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{csv, data};
use crate::extract::QueryParams;
use crate::operations::MAX_LIMIT;
use crate::problem::Problem;
use crate::{reply, ApiState, ControlPlane};

/// Points one `/api/series` answer may carry in all, to bound its memory.
const MAX_POINTS: usize = 1_000_000;
/// `GET /api/series`: aggregates of one field over a time range, per device.
pub(super) async fn series<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let pipeline = data(&state)?;
    let now = hub::service::now_ms();
    let field = query
        .get("field")
        .ok_or_else(|| Problem::bad_request("query parameter field is required"))?;
    let from = query
        .get("from")
        .map(|t| time(t, now, "from"))
        .transpose()?;
    let to = query.get("to").map(|t| time(t, now, "to")).transpose()?;
    let (from_ms, to_ms) = (from.unwrap_or(now - 3_600_000), to.unwrap_or(now + 1));
    if from_ms >= to_ms {
        return Err(Problem::bad_request("from must be before to"));
    }
    let step_ms = query.get("step").map(step).transpose()?;
    let agg = match query.get("agg") {
        Some(a) => a
            .parse()
            .map_err(|e: tsdb::ParseAggError| Problem::bad_request(e.to_string()))?,
        None => tsdb::Agg::Mean,
    };
    let devices = devices(&state, &query).await?;
    let q = tsdb::Query {
        field: field.to_string(),
        devices,
        from_ms,
        to_ms,
        step_ms,
        agg,
    };
    let results = pipeline.query(q).await?;
    let points: usize = results.iter().map(|r| r.buckets.len()).sum();
    if points > MAX_POINTS {
        return Err(Problem::bad_request(format!(
            "{points} points; narrow the range or use a larger step (at most {MAX_POINTS})"
        )));
    }
    match query.get("format").unwrap_or("json") {
        "json" => reply::json(StatusCode::OK, &series_json(field, agg, &results)),
        "csv" => Ok(csv(series_csv(&results), "series.csv")),
        other => Err(Problem::bad_request(format!(
            "format must be json or csv, not {other:?}"
        ))),
    }
}

/// The devices a series query covers: `deviceId` (comma-separated), or those whose twin
/// tag matches `tag=key:value`, or every device (`None`).
async fn devices<H: ControlPlane>(
    state: &ApiState<H>,
    query: &QueryParams,
) -> Result<Option<Vec<String>>, Problem> {
    if let Some(ids) = query.get("deviceId") {
        return Ok(Some(ids.split(',').map(str::to_string).collect()));
    }
    let Some(tag) = query.get("tag") else {
        return Ok(None);
    };
    let (key, value) = tag
        .split_once(':')
        .ok_or_else(|| Problem::bad_request("tag must be key:value"))?;
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let q = hub::service::DeviceQuery {
            tag: Some((key.to_string(), value.to_string())),
            ..Default::default()
        };
        let page = state.hub.list_devices(q, after, MAX_LIMIT).await?;
        ids.extend(page.items.into_iter().map(|d| d.device_id));
        match page.continuation {
            Some(next) => after = Some(next),
            None => return Ok(Some(ids)),
        }
    }
}

fn series_json(field: &str, agg: tsdb::Agg, results: &[tsdb::SeriesResult]) -> Value {
    let series: Vec<Value> = results
        .iter()
        .map(|r| {
            let points: Vec<Value> = r
                .buckets
                .iter()
                .map(|b| json!([b.ts_ms, b.value]))
                .collect();
            json!({ "deviceId": r.device, "points": points })
        })
        .collect();
    json!({ "field": field, "agg": agg.as_str(), "series": series })
}

fn series_csv(results: &[tsdb::SeriesResult]) -> String {
    let mut out = String::from("device_id,time_ms,value\n");
    for r in results {
        for b in &r.buckets {
            out.push_str(&format!(
                "{},{},{}\n",
                csv_field(&r.device),
                b.ts_ms,
                b.value
            ));
        }
    }
    out
}

/// A CSV field, quoted when it needs to be (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `GET /api/series/keys`: the series the store holds.
pub(super) async fn keys<H: ControlPlane>(
    State(state): State<ApiState<H>>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let device = query.get("deviceId");
    let items: Vec<Value> = data(&state)?
        .series()
        .await
        .into_iter()
        .filter(|k| device.is_none_or(|d| d == k.device))
        .map(|k| json!({ "deviceId": k.device, "field": k.field }))
        .collect();
    reply::json(StatusCode::OK, &json!({ "items": items }))
}

/// Reads a time: epoch ms, RFC 3339, `now`, or `-N{ms,s,m,h,d}` before now.
fn time(text: &str, now: i64, name: &str) -> Result<i64, Problem> {
    let bad = || {
        Problem::bad_request(format!(
            "{name} must be milliseconds since the epoch, RFC 3339, now or -15m, not {text:?}"
        ))
    };
    if text == "now" {
        return Ok(now);
    }
    if let Some(rel) = text.strip_prefix('-') {
        if !rel.starts_with(|c: char| c.is_ascii_digit()) || rel.parse::<i64>().is_ok() {
            return text.parse::<i64>().map_err(|_| bad());
        }
        return duration_ms(rel)
            .map(|d| now.saturating_sub(d))
            .ok_or_else(bad);
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    telemetry::decode::timestamp::parse_rfc3339(text).ok_or_else(bad)
}

fn step(text: &str) -> Result<i64, Problem> {
    duration_ms(text)
        .or_else(|| text.parse::<i64>().ok())
        .filter(|ms| *ms > 0)
        .ok_or_else(|| {
            Problem::bad_request(format!("step must be like 10s, 1m or 1h, not {text:?}"))
        })
}

/// `500ms`, `10s`, `5m`, `2h`, `1d` in milliseconds.
fn duration_ms(text: &str) -> Option<i64> {
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(digits);
    let n: i64 = n.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_steps_parse_in_every_accepted_form() {
        let now = 1_000_000_000;
        assert_eq!(time("now", now, "to").ok(), Some(now));
        assert_eq!(time("-15m", now, "from").ok(), Some(now - 900_000));
        assert_eq!(time("1234", now, "from").ok(), Some(1234));
        assert_eq!(time("-5", now, "from").ok(), Some(-5));
        assert_eq!(time("1970-01-01T00:00:01Z", now, "from").ok(), Some(1000));
        assert!(time("yesterday", now, "from").is_err());
        assert!(time("-15x", now, "from").is_err());
        assert_eq!(step("1m").ok(), Some(60_000));
        assert_eq!(step("250").ok(), Some(250));
        assert!(step("0s").is_err());
        assert!(step("1y").is_err());
        assert!(step("99999999999999999d").is_err());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("m1"), "m1");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
