//! Fuzzes telemetry decoding as the pipeline runs it: any payload under any content type
//! either decodes to a message whose numbers flatten within bounds, or is refused with a
//! reason and makes a dead letter that reads back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry::decode::{DeadLetter, Decoder, Input, FEATURES_CBOR, FEATURES_PROTOBUF};

const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("application/json"),
    Some("application/cbor"),
    Some(FEATURES_CBOR),
    Some(FEATURES_PROTOBUF),
    Some("application/x-protobuf; messageType=acme.Unknown"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let input = Input {
        device_id: "fuzz",
        group: None,
        properties: &[],
        content_type,
        payload,
        received_ms: 1_717_243_200_000,
    };
    let decoder = Decoder::default();
    match decoder.decode(&input) {
        Ok(message) => {
            let fields = message.numeric_fields();
            assert!(fields.len() <= decoder.limits().max_numeric_fields);
            assert!(fields.iter().all(|(_, v)| v.is_finite()));
        }
        Err(error) => {
            assert!(!error.reason().is_empty());
            let letter = DeadLetter::new(&input, &error, 256);
            let back = DeadLetter::from_json_line(&letter.to_json_line()).expect("reads back");
            assert_eq!(back, letter);
        }
    }
});
