//! Fuzzes the OTA manifest parser the hub, the CLI and every device run on whatever a
//! download or an upload delivers: any bytes parse to a manifest or an error, never a
//! panic, and a manifest that parsed says the same thing after a round trip (when its
//! pretty form still fits the size limit).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = ota::Manifest::from_json(data) {
        let json = manifest.to_json();
        if json.len() <= ota::MAX_MANIFEST_LEN {
            let again = ota::Manifest::from_json(json.as_bytes()).expect("a parsed manifest re-parses");
            assert_eq!(again, manifest);
        }
    }
});
