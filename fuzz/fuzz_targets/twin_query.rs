//! Fuzzes the twin query parser with arbitrary text: it returns a query or an error
//! whose position lies inside the input, never panics (deep nesting included), and a
//! parsed query can be evaluated and projected against a twin document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match hub::query::parse(text) {
        Ok(query) => {
            let doc = serde_json::json!({
                "deviceId": "d1", "status": "enabled", "connectionState": "connected",
                "tags": {"site": "plant-7", "n": 3},
                "properties": {"desired": {"mode": "alarm"}, "reported": {"mode": "running", "t": 1.5}}
            });
            let _ = query.matches(&doc);
            let _ = query.project(&doc);
        }
        Err(e) => assert!(e.position <= text.len(), "position {} past {}", e.position, text.len()),
    }
});
