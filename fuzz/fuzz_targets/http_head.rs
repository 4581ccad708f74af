//! Fuzzes the device agent's HTTP/1.1 response-head parser (the firmware download
//! client): any bytes give a head, "need more" or an error, never a panic, and a head
//! never claims more bytes than were given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = agent::ota::http::parse_head(data) {
        assert!(used <= data.len());
    }
});
