//! Fuzzes the durable log's record decoder: whatever bytes a damaged disk hands back,
//! `Record::decode` returns a record or an error, never panics, and a record that
//! decodes encodes back to bytes that decode to the same record.
#![no_main]

use broker::persist::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::decode(data) {
        let again = Record::decode(&record.encode()).expect("an encoded record decodes");
        assert_eq!(again, record);
    }
});
