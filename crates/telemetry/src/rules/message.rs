//! The `telemetry` document of a decoded [`Message`], so the pipeline goes from decoder to
//! rules in one call. The `$system` member holds:
//!
//! | member | value |
//! |---|---|
//! | `deviceId` | the sending device |
//! | `contentType` | the canonical content type the payload was decoded as |
//! | `contentEncoding`, `messageId`, `correlationId`, `userId` | when given |
//! | `receivedTime` / `receivedMs` | when the hub received it (RFC 3339 UTC / ms since the epoch) |
//! | `timestamp` / `timestampMs` | the message's time: the device's if sane, else the hub's |
//! | `payloadBytes` | payload size |
//! | other `$.…` and `iothub-…` properties | as given, by their own names |

use serde_json::{Map, Value};

use super::document::document;
use crate::decode::Message;

/// Builds the `telemetry` document of a decoded message with the device twin's `tags`.
pub fn message_document(message: Message, tags: Map<String, Value>) -> Map<String, Value> {
    let Message {
        device_id,
        ts_ms,
        body,
        app_properties,
        system: props,
        ..
    } = message;
    let mut system = Map::new();
    for (key, value) in props.other {
        system.insert(key, Value::String(value));
    }
    let optional = [
        ("contentEncoding", props.content_encoding),
        ("messageId", props.message_id),
        ("correlationId", props.correlation_id),
        ("userId", props.user_id),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            system.insert(key.into(), Value::String(value));
        }
    }
    system.insert("contentType".into(), Value::String(props.content_type));
    system.insert(
        "receivedTime".into(),
        Value::String(rfc3339(props.received_ms)),
    );
    system.insert("receivedMs".into(), Value::from(props.received_ms));
    system.insert("timestamp".into(), Value::String(rfc3339(ts_ms)));
    system.insert("timestampMs".into(), Value::from(ts_ms));
    system.insert("payloadBytes".into(), Value::from(props.payload_bytes));
    document(&device_id, body, tags, app_properties, system)
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds
/// (`2026-11-26T04:00:00.000Z`).
fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (s, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (eras of 400 years, as
/// in the well-known days-to-civil conversion).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_665_600_123), "2026-11-26T04:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn builds_the_system_member() {
        let Value::Object(body) = serde_json::json!({"x": {"rms": 0.9}, "deviceId": "fake"}) else {
            return;
        };
        let message = Message {
            device_id: "pump-7".into(),
            ts_ms: 1_795_665_600_000,
            ts_source: crate::decode::TsSource::Device,
            ts_issue: None,
            ts_field: Some("ts"),
            body,
            app_properties: vec![("site".into(), "berlin".into())],
            system: crate::decode::SystemProperties {
                content_type: "application/json".into(),
                received_ms: 1_795_665_600_250,
                message_id: Some("m1".into()),
                other: vec![("iothub-connection-auth-method".into(), "sas".into())],
                payload_bytes: 42,
                ..Default::default()
            },
        };
        let doc = message_document(message, Map::new());
        let expected = serde_json::json!({
            "x": {"rms": 0.9},
            "deviceId": "pump-7",
            "tags": {},
            "properties": {"site": "berlin"},
            "$system": {
                "deviceId": "pump-7",
                "contentType": "application/json",
                "messageId": "m1",
                "iothub-connection-auth-method": "sas",
                "receivedTime": "2026-11-26T04:00:00.250Z",
                "receivedMs": 1_795_665_600_250i64,
                "timestamp": "2026-11-26T04:00:00.000Z",
                "timestampMs": 1_795_665_600_000i64,
                "payloadBytes": 42,
            },
        });
        assert_eq!(Value::Object(doc), expected);
    }

    proptest! {
        #[test]
        fn formatting_round_trips_through_the_decoder(ms in -62_135_596_800_000i64..253_402_300_799_999) {
            let text = rfc3339(ms);
            prop_assert_eq!(crate::decode::timestamp::parse_rfc3339(&text), Some(ms), "{}", text);
        }
    }
}
