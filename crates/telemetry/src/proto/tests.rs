//! The compiler against protoc's rules: the repo's own feature schema, error positions,
//! scoping, a comparison with protoc's output (when protoc is installed), and property
//! tests (no input panics; generated schemas load into prost-reflect).

use std::collections::BTreeMap;

use proptest::prelude::*;
use prost_reflect::prost_types::{
    field_descriptor_proto::{Label, Type},
    FileDescriptorSet,
};
use prost_reflect::DescriptorPool;
use serde_json::json;

use super::*;
use crate::decode::{Decoder, Input, Limits, SchemaRegistry};

const FEATURES_PROTO: &str = include_str!("../../../device/proto/features.proto");

fn one(text: &str) -> Result<FileDescriptorSet, ProtoError> {
    compile([("test.proto", text)])
}

/// The error of compiling `text` as `test.proto`, as `line:column: message`.
fn error(text: &str) -> String {
    match one(text) {
        Ok(_) => "compiled".to_owned(),
        Err(e) => format!("{}:{}: {}", e.pos.line, e.pos.column, e.message),
    }
}

#[test]
fn the_device_feature_schema_compiles_to_what_the_sdk_encodes() {
    let set = compile([("bosun/device/v1/features.proto", FEATURES_PROTO)]);
    let set = set.unwrap_or_else(|e| panic!("{e}"));
    let file = &set.file[0];
    assert_eq!(file.package.as_deref(), Some("bosun.device.v1"));
    assert_eq!(file.syntax.as_deref(), Some("proto3"));
    let names: Vec<_> = file.message_type.iter().map(|m| m.name()).collect();
    assert_eq!(names, ["DefectBands", "AxisFeatures", "Features"]);
    let axes = &file.message_type[2].field[4];
    assert_eq!((axes.name(), axes.number()), ("axes", 5));
    assert_eq!(
        (axes.label(), axes.r#type()),
        (Label::Repeated, Type::Message)
    );
    assert_eq!(axes.type_name(), ".bosun.device.v1.AxisFeatures");
    let spectrum = &file.message_type[1].field[9];
    assert_eq!(spectrum.type_name(), ".bosun.device.v1.DefectBands");
    assert_eq!(file.message_type[0].field[0].r#type(), Type::Float);

    // Decoding what the SDK encodes through the run-time schema gives the same numbers
    // as bosun's built-in feature decoder.
    let mut registry = SchemaRegistry::new();
    let bytes = compile_to_bytes([("features.proto", FEATURES_PROTO)]).unwrap_or_default();
    assert!(registry.register_descriptor_set(&bytes).is_ok());
    let decoder = Decoder::new(Limits::default(), registry);
    let mut axis = device::AxisFeatures {
        rms: 0.5,
        crest: 3.25,
        ..Default::default()
    };
    axis.envelope.bpfi = [0.25, 0.125, 0.0625];
    let features = device::Features {
        seq: 9,
        sample_rate_hz: 12_000.0,
        window_len: 4096,
        shaft_hz: 29.5,
        axes: [Some(axis), None, None],
    };
    let payload = device::encode::protobuf::to_vec(&features);
    let input = |ct| Input {
        device_id: "d",
        group: None,
        properties: &[],
        content_type: Some(ct),
        payload: &payload,
        received_ms: 0,
    };
    let runtime = decoder.decode(&input(
        "application/x-protobuf; messageType=bosun.device.v1.Features",
    ));
    let builtin = decoder.decode(&input(crate::decode::FEATURES_PROTOBUF));
    let (Ok(runtime), Ok(builtin)) = (runtime, builtin) else {
        panic!("both decode");
    };
    let axis0 = &runtime.body["axes"][0];
    for key in ["seq", "sample_rate_hz", "window_len", "shaft_hz"] {
        assert_eq!(runtime.body[key], builtin.body[key], "{key}");
    }
    assert_eq!(axis0["rms"], builtin.body["x"]["rms"]);
    assert_eq!(axis0["crest"], builtin.body["x"]["crest"]);
    assert_eq!(
        axis0["envelope"]["bpfi"],
        builtin.body["x"]["envelope"]["bpfi"]
    );
    assert_eq!(axis0["envelope"]["bpfi"], json!([0.25, 0.125, 0.0625]));
}

#[test]
fn maps_oneofs_and_proto3_optional_are_laid_out_as_protoc_does() {
    let text = r#"
        syntax = "proto3";
        package acme;
        message Reading {
          map<string, double> tags = 1;
          optional int32 level = 2;
          oneof source { string sensor = 3; int32 slot = 4; }
          map<int32, Inner> by_slot = 5;
          message Inner { float rms = 1; }
        }
    "#;
    let set = one(text).unwrap_or_else(|e| panic!("{e}"));
    let reading = &set.file[0].message_type[0];
    let nested: Vec<_> = reading.nested_type.iter().map(|m| m.name()).collect();
    assert_eq!(nested, ["TagsEntry", "BySlotEntry", "Inner"]);
    let entry = &reading.nested_type[0];
    assert_eq!(entry.options.as_ref().and_then(|o| o.map_entry), Some(true));
    assert_eq!(reading.field[0].type_name(), ".acme.Reading.TagsEntry");
    assert_eq!(
        reading.nested_type[1].field[1].type_name(),
        ".acme.Reading.Inner"
    );
    let oneofs: Vec<_> = reading.oneof_decl.iter().map(|o| o.name()).collect();
    assert_eq!(oneofs, ["source", "_level"]);
    assert_eq!(reading.field[1].oneof_index, Some(1));
    assert_eq!(reading.field[1].proto3_optional, Some(true));
    assert_eq!(reading.field[2].oneof_index, Some(0));
    assert_eq!(reading.field[4].json_name(), "bySlot");
    assert!(DescriptorPool::from_file_descriptor_set(set).is_ok());
}

#[test]
fn names_resolve_by_protobuf_scoping() {
    let files = BTreeMap::from([
        (
            "a.proto",
            r#"syntax = "proto3"; package x.y;
               import public "b.proto";
               message Outer {
                 message Inner { int32 v = 1; }
                 Inner a = 1;          // x.y.Outer.Inner
                 Outer.Inner b = 2;    // via x.y.Outer
                 .x.y.Top c = 3;       // fully qualified
                 Top d = 4;            // x.y.Top
                 y.Top e = 5;          // via package x.y
                 z.Shared f = 6;       // x.z.Shared, from b.proto
               }
               message Top { Outer.Inner i = 1; }"#,
        ),
        (
            "b.proto",
            "syntax = \"proto3\"; package x.z; message Shared {}",
        ),
        (
            "c.proto",
            "syntax = \"proto3\"; import \"a.proto\"; message C { x.z.Shared s = 1; }",
        ),
    ]);
    let set = compile(&files).unwrap_or_else(|e| panic!("{e}"));
    let order: Vec<_> = set.file.iter().map(|f| f.name()).collect();
    assert_eq!(order, ["b.proto", "a.proto", "c.proto"]);
    let outer = &set.file[1].message_type[0];
    let types: Vec<_> = outer.field.iter().map(|f| f.type_name()).collect();
    assert_eq!(
        types,
        [
            ".x.y.Outer.Inner",
            ".x.y.Outer.Inner",
            ".x.y.Top",
            ".x.y.Top",
            ".x.y.Top",
            ".x.z.Shared"
        ]
    );
    assert_eq!(set.file[1].public_dependency, [0]);
    assert!(DescriptorPool::from_file_descriptor_set(set).is_ok());

    // The first component binds to the innermost scope that has it, with no further
    // backtracking, like protoc.
    let shadowed = "syntax = \"proto3\"; package p; message Top { message Top {} } \
                    message M { message Top {} Top.Inner x = 1; }";
    assert!(error(shadowed).contains("resolved to `p.M.Top.Inner`, which is not defined"));
    // A field named like a type does not hide the type.
    let field_first = "syntax = \"proto3\"; message Foo {} message M { int32 Foo = 1; Foo f = 2; }";
    assert_eq!(error(field_first), "compiled");
}

#[test]
fn errors_carry_line_column_and_protocs_reason() {
    let cases: &[(&str, &str)] = &[
        ("syntax = \"proto3\";\nmessage M {\n  Featurs f = 1;\n}", "3:3: unknown type `Featurs`"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 1; int32 b = 1; }", "2:36: field number 1 has already been used in `M` by field `a`"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 1; string a = 2; }", "2:33: `M.a` is already defined (as a field in test.proto)"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 19001; }", "2:23: field numbers 19000 through 19999 are reserved"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 536870912; }", "2:23: field numbers must be between 1 and 536870911"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 0; }", "2:23: field numbers must be between 1"),
        ("syntax = \"proto3\";\nmessage M { required int32 a = 1; }", "2:13: required fields are not allowed in proto3"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 1 [default = 5]; }", "2:36: explicit default values are not allowed in proto3"),
        ("syntax = \"proto3\";\nenum E { ONE = 1; }", "2:10: the first enum value must be zero in proto3"),
        ("syntax = \"proto3\";\nenum E { A = 0; B = 0; }", "2:17: `B` uses the same enum value as `A`"),
        ("syntax = \"proto3\";\nenum E { option allow_alias = true; A = 0; B = 1; }", "2:6: `E` declares allow_alias but no values share a number"),
        ("syntax = \"proto3\";\nenum E { A = 0; }\nenum F { A = 0; }", "3:10: `A` is already defined (as a enum value in test.proto); enum values use C++ scoping"),
        ("syntax = \"proto3\";\nmessage M { reserved 2, 4 to 6; int32 a = 5; }", "2:43: field `a` uses reserved number 5"),
        ("syntax = \"proto3\";\nmessage M { reserved \"a\"; int32 a = 1; }", "2:33: field name `a` is reserved"),
        ("syntax = \"proto3\";\nmessage M { reserved 1 to 5, 3; }", "2:30: reserved range 3 to 3 overlaps with already-defined range 1 to 5"),
        ("message M { int32 a = 1; }", "1:13: expected \"required\", \"optional\", or \"repeated\""),
        ("syntax = \"proto3\";\nmessage M { int32 a = 1 [packed = true]; }", "2:26: [packed = true] can only be specified for repeated primitive fields"),
        ("syntax = \"proto3\";\nmessage M { map<float, int32> m = 1; }", "2:17: map keys must be integral types"),
        ("syntax = \"proto3\";\nmessage M { repeated map<int32, int32> m = 1; }", "2:13: map fields cannot have labels"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 1 }", "2:25: expected \";\", found \"}\""),
        ("syntax = \"proto3\";\nimport \"google/protobuf/timestamp.proto\";", "2:8: `google/protobuf/timestamp.proto` is a well-known type file"),
        ("syntax = \"proto3\";\nimport \"other.proto\";", "2:8: import `other.proto` is not among the files given"),
        ("syntax = \"proto4\";", "1:10: unrecognized syntax \"proto4\""),
        ("syntax = \"proto3\";\noption (my.opt) = 1;", "2:8: custom options are not supported"),
        ("syntax = \"proto3\";\noption java_pakage = \"x\";", "2:8: option `java_pakage` unknown"),
        ("syntax = \"proto3\";\nmessage M { extensions 100 to 200; }", "2:13: extensions are not supported"),
        ("syntax = \"proto2\";\nmessage M { optional group G = 1 {} }", "2:22: groups are not supported"),
        ("syntax = \"proto2\";\nmessage M { optional int32 a = 1 [default = 3000000000]; }", "2:45: default value does not fit"),
        ("syntax = \"proto2\";\nenum E { A = 1; }\nmessage M { optional E e = 1 [default = B]; }", "3:41: enum type of field `e` has no value named `B`"),
        ("syntax = \"proto3\";\nmessage M { oneof o { } }", "2:19: oneof must have at least one field"),
        ("syntax = \"proto3\";\nmessage M { int32 foo_bar = 1; int32 fooBar = 2; }", "2:38: the JSON name of field `fooBar`"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 1; }\n/* never closed", "3:1: block comment is never closed"),
        ("syntax = \"proto3\";\nmessage M { int32 M = 1; message M {} }", "2:34: `M.M` is already defined"),
        ("syntax = \"proto3\";\nmessage M { int32 a = 1; }\nmessage N { M.a x = 1; }", "3:13: `M.a` is not a type (it is a field)"),
        ("syntax = \"proto3\";\nmessage M { map<string, string> tags = 1; message TagsEntry {} }", "2:51: `M.TagsEntry` is already defined"),
        ("syntax = \"proto2\";\nenum E { A = 0; }\nmessage M { optional int32 a = 1; }", "compiled"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(text, want)| (text, want, error(text)))
        .filter(|(_, want, got)| !got.starts_with(**want))
        .map(|(text, want, got)| format!("{text}\n got: {got}\nwant: {want}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    let e = one("syntax = \"proto3\";\nmessage M {\n  Featurs f = 1;\n}").err();
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("test.proto: line 3:3: unknown type `Featurs`")
    );
}

#[test]
fn proto3_files_may_not_use_proto2_enums() {
    let files = [
        ("old.proto", "syntax = \"proto2\"; enum Old { A = 1; }"),
        (
            "new.proto",
            "syntax = \"proto3\"; import \"old.proto\"; message M { Old o = 1; }",
        ),
    ];
    let e = compile(files)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with("new.proto: line 1:52: enum `Old` is a proto2 enum"),
        "{e}"
    );
}

#[test]
fn imports_are_checked() {
    let cycle = [
        ("a.proto", "import \"b.proto\";"),
        ("b.proto", "import \"a.proto\";"),
    ];
    assert!(compile(cycle).is_err_and(|e| e.message.contains("cycle")));
    // Types of a file that is not imported are not visible.
    let unimported = [
        ("a.proto", "syntax = \"proto3\"; message A {}"),
        ("b.proto", "syntax = \"proto3\"; message B { A a = 1; }"),
    ];
    let e = compile(unimported)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("seems to be defined in a.proto, which is not imported"),
        "{e}"
    );
    // Nor are those of an import's imports, unless imported publicly.
    let indirect = [
        ("a.proto", "syntax = \"proto3\"; message A {}"),
        ("b.proto", "syntax = \"proto3\"; import \"a.proto\";"),
        (
            "c.proto",
            "syntax = \"proto3\"; import \"b.proto\"; message C { A a = 1; }",
        ),
    ];
    assert!(compile(indirect).is_err());
    assert!(compile([("../x.proto", "")]).is_err());
    assert!(compile([("x.txt", "")]).is_err());
    assert!(compile(Vec::<(&str, &str)>::new()).is_err());
    assert!(compile([("a.proto", ""), ("a.proto", "")]).is_err());
}

#[test]
fn inputs_are_bounded() {
    let deep = "message A {".repeat(10_000);
    assert!(error(&deep).contains("nested deeper than 32"));
    let big = " ".repeat(MAX_FILE_BYTES + 1);
    assert!(one(&big).is_err_and(|e| e.message.contains("over the limit")));
    let aggregate = format!("option java_package = {};", "{".repeat(50_000));
    assert!(one(&aggregate).is_err());
    let service =
        "message M {} service S { rpc A (M) returns (stream M) { option deprecated = true; } }";
    assert_eq!(error(service), "compiled");
}

#[test]
fn proto2_defaults_are_written_as_protoc_writes_them() {
    let text = r#"
        syntax = "proto2";
        enum E { A = 0; B = 1; }
        message M {
          optional int32 i = 1 [default = -0x10];
          optional uint64 u = 2 [default = 18446744073709551615];
          optional double d = 3 [default = -inf];
          optional bool b = 4 [default = true];
          optional string s = 5 [default = "h\x69 \u00e9"];
          optional bytes y = 6 [default = "a\001\n\"'"];
          optional E e = 7 [default = B];
          required float f = 8 [default = 1.5, deprecated = true, json_name = "eff"];
          repeated int32 p = 9 [packed = true];
        }
    "#;
    let set = one(text).unwrap_or_else(|e| panic!("{e}"));
    let fields = &set.file[0].message_type[0].field;
    let defaults: Vec<_> = fields.iter().map(|f| f.default_value()).collect();
    assert_eq!(
        defaults,
        [
            "-16",
            "18446744073709551615",
            "-inf",
            "true",
            "hi é",
            "a\\001\\n\\\"\\'",
            "B",
            "1.5",
            ""
        ]
    );
    assert_eq!(fields[7].label(), Label::Required);
    assert_eq!(fields[7].json_name(), "eff");
    assert_eq!(
        fields[8].options.as_ref().and_then(|o| o.packed),
        Some(true)
    );
    assert_eq!(set.file[0].syntax, None);
    assert!(DescriptorPool::from_file_descriptor_set(set).is_ok());
}

/// Schemas compiled by protoc (if installed) and by this compiler give equal
/// descriptor sets.
#[test]
fn matches_protoc_when_installed() {
    let Some(protoc) = which_protoc() else {
        eprintln!("protoc not installed (Debian: protobuf-compiler): comparison skipped");
        return;
    };
    let cases: &[&[(&str, &str)]] = &[
        &[("features.proto", FEATURES_PROTO)],
        &[("kitchen.proto", KITCHEN_SINK)],
        &[("legacy.proto", LEGACY_PROTO2)],
        &[
            ("common/units.proto", UNITS),
            ("plant/reading.proto", READING),
        ],
    ];
    let dir = std::env::temp_dir().join(format!("bosun-proto-{}", std::process::id()));
    for files in cases {
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in *files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap_or(&dir)).unwrap_or_default();
            std::fs::write(&path, text).unwrap_or_default();
        }
        let out = dir.join("set.pb");
        let status = std::process::Command::new(&protoc)
            .arg(format!("-I{}", dir.display()))
            .arg(format!("--descriptor_set_out={}", out.display()))
            .arg("--include_imports")
            .args(files.iter().map(|(n, _)| *n))
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "protoc refused {:?}",
            files[0].0
        );
        let bytes = std::fs::read(&out).unwrap_or_default();
        let mut theirs = <FileDescriptorSet as prost_reflect::prost::Message>::decode(&bytes[..])
            .unwrap_or_default();
        for f in &mut theirs.file {
            f.source_code_info = None;
            f.options = None;
        }
        let ours = compile(files.iter().copied()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ours, theirs, "{}", files[0].0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn which_protoc() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("protoc"))
        .find(|p| p.is_file())
}

const KITCHEN_SINK: &str = r#"
// Everything proto3 that telemetry schemas use.
syntax = "proto3";
package acme.plant.v2;
option go_package = "example.com/acme";   // accepted, ignored

/* A reading; comments do not nest */
message Reading {
  reserved 8, 10 to 12, 100 to max;
  reserved "old", "older";
  enum Mode {
    option allow_alias = true;
    MODE_UNKNOWN = 0;
    MODE_RUN = 1;
    MODE_RUNNING = 1 [deprecated = true];
    MODE_STOP = -2;
    reserved 5, 7 to 9;
    reserved "MODE_GONE";
  }
  message Axis { float rms = 1; repeated double spectrum = 2 [packed = false]; }
  double temp = 1;
  sfixed64 ts = 2;
  repeated float samples = 3;
  Mode mode = 4;
  map<string, Axis> axes = 5;
  map<uint64, Mode> modes = 6;
  optional string label = 7;
  oneof source { string sensor = 9; acme.plant.v2.Axis.Axis2 nested = 13; bytes raw = 14; }
  bool ok = 15 [deprecated = true];
  int32 i32 = 16; int64 i64 = 17; uint32 u32 = 18; uint64 u64 = 19;
  sint32 s32 = 20; sint64 s64 = 21; fixed32 f32 = 22; fixed64 f64 = 23;
  sfixed32 sf32 = 24; .acme.plant.v2.Reading.Axis abs = 25;
  int32 json_named = 26 [json_name = "jn"];
}
message Axis { message Axis2 { int32 z = 1; } }
service Plant {
  rpc Send (Reading) returns (Reading);
  rpc Watch (stream Reading.Axis) returns (stream acme.plant.v2.Axis) { option deprecated = true; }
}
"#;

const LEGACY_PROTO2: &str = r#"
syntax = "proto2";
package legacy;
enum Unit { MM = 1; INCH = 2; }
message Sample {
  required int32 id = 1;
  optional Unit unit = 2 [default = INCH];
  optional string name = 3 [default = "unnamed"];
  optional bytes magic = 4 [default = "\x01\x02ab"];
  repeated int32 packed_values = 5 [packed = true];
  optional sint64 delta = 6 [default = -42];
  optional bool on = 7 [default = false];
  oneof value { int32 iv = 8; string sv = 9; }
  map<int32, string> names = 10;
  message Sub { optional Unit u = 1; }
  optional Sub sub = 11;
}
"#;

const UNITS: &str = r#"syntax = "proto3"; package acme.common; enum Unit { UNIT_UNSPECIFIED = 0; UNIT_G = 1; } message Quantity { double value = 1; Unit unit = 2; }"#;

const READING: &str = r#"syntax = "proto3";
package acme.plant;
import "common/units.proto";
message Reading { common.Quantity rms = 1; acme.common.Unit unit = 2; repeated .acme.common.Quantity peaks = 3; }"#;

/// A generated schema: per message, its fields as (type choice, label choice, gap).
#[derive(Debug, Clone)]
struct Schema {
    proto3: bool,
    enum_values: usize,
    messages: Vec<Vec<(u8, u8, u8)>>,
    oneof: bool,
}

const SCALAR_NAMES: [&str; 15] = [
    "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string", "bytes",
    "uint32", "sfixed32", "sfixed64", "sint32", "sint64",
];

impl Schema {
    /// The `.proto` text, and per message the expected (name, number) of each field.
    fn render(&self) -> (String, Vec<Vec<(String, u32)>>) {
        let syntax = if self.proto3 { "proto3" } else { "proto2" };
        let mut text = format!("syntax = \"{syntax}\";\npackage gen.v1;\nenum Kind {{\n");
        for v in 0..self.enum_values {
            text.push_str(&format!("  KIND_{v} = {v};\n"));
        }
        text.push_str("}\n");
        let mut expected = Vec::new();
        for (m, fields) in self.messages.iter().enumerate() {
            text.push_str(&format!(
                "message M{m} {{\n  message Nested {{ {}int32 x = 1; }}\n",
                if self.proto3 { "" } else { "optional " }
            ));
            let mut number = 0u32;
            let mut names = Vec::new();
            for (i, &(ty, label, gap)) in fields.iter().enumerate() {
                number += 1 + u32::from(gap);
                let ty_name = match usize::from(ty) % (SCALAR_NAMES.len() + 4) {
                    k if k < SCALAR_NAMES.len() => SCALAR_NAMES[k].to_owned(),
                    15 => "Kind".to_owned(),
                    16 => "Nested".to_owned(),
                    17 => format!(".gen.v1.M{}", m.saturating_sub(1)),
                    _ => "map".to_owned(),
                };
                let name = format!("f{i}");
                if ty_name == "map" {
                    text.push_str(&format!("  map<string, Nested> {name} = {number};\n"));
                } else {
                    let label = match (self.proto3, label % 3) {
                        (_, 1) => "optional ",
                        (_, 2) => "repeated ",
                        (true, _) => "",
                        (false, _) => "required ",
                    };
                    text.push_str(&format!("  {label}{ty_name} {name} = {number};\n"));
                }
                names.push((name, number));
            }
            if self.oneof {
                number += 1;
                text.push_str(&format!(
                    "  oneof choice {{ string a = {number}; Kind b = {}; }}\n",
                    number + 1
                ));
                names.push(("a".to_owned(), number));
                names.push(("b".to_owned(), number + 1));
            }
            text.push_str("}\n");
            expected.push(names);
        }
        (text, expected)
    }
}

fn schemas() -> impl Strategy<Value = Schema> {
    (
        any::<bool>(),
        1usize..5,
        prop::collection::vec(
            prop::collection::vec((any::<u8>(), any::<u8>(), 0u8..40), 0..12),
            1..5,
        ),
        any::<bool>(),
    )
        .prop_map(|(proto3, enum_values, messages, oneof)| Schema {
            proto3,
            enum_values,
            messages,
            oneof,
        })
}

/// Fragments of `.proto` text, for inputs that get past the lexer.
fn token_soup() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "syntax",
        "=",
        "\"proto3\"",
        "\"proto2\"",
        ";",
        "package",
        "a.b",
        "import",
        "\"x.proto\"",
        "message",
        "M",
        "N",
        "{",
        "}",
        "enum",
        "E",
        "A",
        "0",
        "1",
        "-1",
        "19000",
        "536870912",
        "0x10",
        "1.5",
        "optional",
        "repeated",
        "required",
        "int32",
        "string",
        "map",
        "<",
        ">",
        ",",
        "oneof",
        "reserved",
        "to",
        "max",
        "\"a\"",
        "[",
        "]",
        "packed",
        "default",
        "true",
        "option",
        "allow_alias",
        ".",
        "(",
        ")",
        "service",
        "rpc",
        "returns",
        "//",
        "/*",
        "*/",
        "\n",
        "group",
        "extend",
        "json_name",
        "deprecated",
        ".M",
        "M.N",
    ]);
    prop::collection::vec(words, 0..80).prop_map(|w| w.join(" "))
}

fn check_error_position(text: &str, e: &ProtoError) {
    let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
    assert!(
        e.pos.line <= lines.saturating_add(1),
        "{e} beyond {lines} lines"
    );
    assert!(!e.message.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Err(e) = one(&text) {
            check_error_position(&text, &e);
        }
    }

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        match one(&text) {
            Ok(set) => { let _ = DescriptorPool::from_file_descriptor_set(set); }
            Err(e) => check_error_position(&text, &e),
        }
    }

    #[test]
    fn generated_schemas_load_into_prost_reflect(schema in schemas()) {
        let (text, expected) = schema.render();
        let set = one(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let pool = DescriptorPool::from_file_descriptor_set(set)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        for (m, fields) in expected.iter().enumerate() {
            let message = pool.get_message_by_name(&format!("gen.v1.M{m}"));
            let message = message.ok_or_else(|| TestCaseError::fail(format!("no M{m}")))?;
            let got: Vec<(String, u32)> = message.fields().map(|f| (f.name().to_owned(), f.number())).collect();
            prop_assert_eq!(&got, fields);
        }
    }
}

/// A file near the size limit (1,000 messages, 10 fields each, references to each
/// other) compiles, and quickly: prints the time for the docs.
#[test]
fn a_file_near_the_size_limit_compiles() {
    let mut text = String::from("syntax = \"proto3\";\npackage big;\n");
    for m in 0..1000 {
        text.push_str(&format!("message M{m} {{\n"));
        for f in 1..=9 {
            text.push_str(&format!("  double field_{f} = {f};\n"));
        }
        text.push_str(&format!("  M{} next = 10;\n}}\n", (m + 1) % 1000));
    }
    assert!(text.len() < MAX_FILE_BYTES, "{}", text.len());
    let start = std::time::Instant::now();
    let set = one(&text).unwrap_or_else(|e| panic!("{e}"));
    let elapsed = start.elapsed();
    eprintln!("{} bytes, 10,000 fields: {elapsed:?}", text.len());
    assert_eq!(set.file[0].message_type.len(), 1000);
    assert!(DescriptorPool::from_file_descriptor_set(set).is_ok());
}

/// Long names are bounded, and the worst case within the bounds stays cheap: a package
/// of 256 components and 15,000 fields whose types resolve through every scope.
#[test]
fn long_names_are_bounded_and_cheap() {
    let long = vec!["a"; 60_000].join(".");
    assert!(error(&format!("package {long};")).contains("name longer than 512"));
    assert!(
        error(&format!("message {} {{}}", "M".repeat(300))).contains("identifier longer than 256")
    );
    let name = "N".repeat(250);
    let deep = format!(
        "{}{}",
        format!("message {name} {{ ").repeat(5),
        "}".repeat(5)
    );
    assert!(error(&deep).contains("full name longer than 1024"));

    let package = vec!["a"; 255].join(".");
    let mut text =
        format!("syntax = \"proto3\";\npackage {package};\nmessage X {{}}\nmessage M {{\n");
    for f in 1..=15_000 {
        text.push_str(&format!("X f{f}={f};"));
    }
    text.push_str("}\n");
    assert!(text.len() < MAX_FILE_BYTES);
    let start = std::time::Instant::now();
    assert!(one(&text).is_ok());
    let elapsed = start.elapsed();
    eprintln!(
        "{} bytes, 15,000 references through 256 scopes: {elapsed:?}",
        text.len()
    );
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}

/// Lookups that scale with the file stay cheap: 3,000 reserved numbers and names
/// checked against 3,000 fields, and a 3,000-value enum used by 3,000 fields.
#[test]
fn many_reserved_entries_and_enum_uses_are_cheap() {
    let mut text = String::from("syntax = \"proto2\";\nenum E {\n");
    for v in 0..3_000 {
        text.push_str(&format!("V{v}={v};"));
    }
    text.push_str("}\nmessage M {\n");
    for r in 0..3_000 {
        text.push_str(&format!("reserved {};reserved \"r{r}\";", 100_000 + r));
    }
    for f in 1..=3_000 {
        text.push_str(&format!("optional E f{f}={f}[default=V9];"));
    }
    text.push_str("}\n");
    let start = std::time::Instant::now();
    let result = one(&text);
    assert!(result.is_ok(), "{:?}", result.err());
    let elapsed = start.elapsed();
    eprintln!("{} bytes: {elapsed:?}", text.len());
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}
