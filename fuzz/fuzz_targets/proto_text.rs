//! Fuzzes the `.proto` compiler (`telemetry::proto`) on operator-supplied text: no input
//! panics; a refusal names one of the request's files and a line inside the text; a
//! schema it accepts is one prost-reflect accepts too (the compiler is never laxer than
//! the descriptor checks behind it). The first byte picks one file or two (split at the
//! first NUL, the first importing the second).
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry::decode::SchemaRegistry;
use telemetry::proto::compile_to_bytes;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let files: Vec<(&str, String)> = match text.split_once('\0') {
        Some((a, b)) if selector % 2 == 1 => vec![
            ("a.proto", format!("import \"b.proto\";\n{a}")),
            ("b.proto", b.to_owned()),
        ],
        _ => vec![("a.proto", text.clone().into_owned())],
    };
    match compile_to_bytes(files.iter().map(|(n, t)| (*n, t.as_str()))) {
        Ok(bytes) => {
            let mut registry = SchemaRegistry::new();
            if let Err(e) = registry.register_descriptor_set(&bytes) {
                panic!("compiled, but prost-reflect refuses it: {e}\n{files:?}");
            }
        }
        Err(e) => {
            let source = files.iter().find(|(n, _)| *n == e.file);
            let (_, source) = source.unwrap_or_else(|| panic!("error names no file: {e}"));
            let lines = source.lines().count() as u32;
            assert!(e.pos.line <= lines + 1, "{e} is past the end ({lines} lines)");
            assert!(!e.message.is_empty());
        }
    }
});
