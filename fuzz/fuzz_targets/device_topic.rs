//! Fuzzes what devices put in topics: the IoT Hub topic parser and the property-bag
//! decoder never panic, and a decoded property bag re-encodes to one that decodes to
//! the same pairs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hub::topics::parse(text);
    if let Ok(pairs) = hub::topics::decode_property_bag(text) {
        let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| !k.is_empty()).collect();
        let again = hub::topics::decode_property_bag(&hub::topics::encode_property_bag(&pairs))
            .expect("an encoded bag decodes");
        assert_eq!(again, pairs);
    }
});
