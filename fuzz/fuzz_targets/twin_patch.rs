//! Fuzzes twin patches as devices and services send them: any JSON either applies
//! within the limits or is refused with the twin unchanged; the twin always serializes
//! and reads back equal.
#![no_main]

use hub::twin::{Limits, Twin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(patch) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let limits = Limits::default();
    let Ok(mut twin) = Twin::new("d1", None, None, 0, &limits) else {
        return;
    };
    let before = twin.clone();
    if twin.patch_reported(&patch, 1, &limits).is_err() {
        assert_eq!(twin, before, "a refused patch changed the twin");
    }
    let before = twin.clone();
    if twin.patch_service(&patch, 2, &limits).is_err() {
        assert_eq!(twin, before, "a refused service patch changed the twin");
    }
    let again = Twin::from_json(&twin.to_json()).expect("a twin reads back");
    assert_eq!(again, twin);
});
