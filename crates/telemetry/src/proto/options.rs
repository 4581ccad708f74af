//! Options: which ones bosun knows, which it keeps, and the type checks on the kept ones.
//!
//! Options change code generation, not the wire format, so most are accepted and
//! ignored. Kept (they shape the descriptor): `packed`, `deprecated`, `default` (proto2)
//! and `json_name` on fields, `allow_alias` and `deprecated` on enums, `deprecated` on
//! messages and enum values. An option name protoc does not know is refused, as protoc
//! does; custom options (`(my.opt)`) are refused too, because their definitions extend
//! `google/protobuf/descriptor.proto`, which bosun does not load.

use super::ast::{Constant, Enum, FieldOptions};
use super::error::{Located, Pos, Result};
use super::parser::Parser;

/// Where an option is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    File,
    Message,
    Field,
    Enum,
    EnumValue,
    Oneof,
    Service,
    Method,
}

const FILE: &[&str] = &[
    "java_package",
    "java_outer_classname",
    "java_multiple_files",
    "java_generate_equals_and_hash",
    "java_string_check_utf8",
    "optimize_for",
    "go_package",
    "cc_generic_services",
    "java_generic_services",
    "py_generic_services",
    "php_generic_services",
    "deprecated",
    "cc_enable_arenas",
    "objc_class_prefix",
    "csharp_namespace",
    "swift_prefix",
    "php_class_prefix",
    "php_namespace",
    "php_metadata_namespace",
    "ruby_package",
];
const MESSAGE: &[&str] = &[
    "message_set_wire_format",
    "no_standard_descriptor_accessor",
    "deprecated",
    "map_entry",
    "deprecated_legacy_json_field_conflicts",
];
const FIELD: &[&str] = &[
    "ctype",
    "packed",
    "jstype",
    "lazy",
    "unverified_lazy",
    "deprecated",
    "weak",
    "debug_redact",
    "retention",
    "targets",
    "default",
    "json_name",
];
const ENUM: &[&str] = &[
    "allow_alias",
    "deprecated",
    "deprecated_legacy_json_field_conflicts",
];
const ENUM_VALUE: &[&str] = &["deprecated", "debug_redact"];

fn known(context: Context) -> &'static [&'static str] {
    match context {
        Context::File => FILE,
        Context::Message => MESSAGE,
        Context::Field => FIELD,
        Context::Enum => ENUM,
        Context::EnumValue => ENUM_VALUE,
        Context::Oneof => &[],
        Context::Service => &["deprecated"],
        Context::Method => &["deprecated", "idempotency_level"],
    }
}

/// `name = constant` (no terminator); the name is checked against `context`.
fn name_and_value(p: &mut Parser<'_>, context: Context) -> Result<(String, Pos, Constant, Pos)> {
    let pos = p.pos();
    if p.is_symbol('(') {
        return Err(Located::new(
            pos,
            "custom options are not supported (their definitions need google/protobuf/descriptor.proto)",
        ));
    }
    let (name, _) = p.dotted("an option name", false)?;
    if !known(context).contains(&name.as_str()) {
        return Err(Located::new(pos, format!("option `{name}` unknown")));
    }
    p.expect_symbol('=')?;
    let (value, value_pos) = p.constant()?;
    Ok((name, pos, value, value_pos))
}

fn boolean(name: &str, value: &Constant, pos: Pos) -> Result<bool> {
    match value {
        Constant::Ident(w) if w == "true" => Ok(true),
        Constant::Ident(w) if w == "false" => Ok(false),
        _ => Err(Located::new(
            pos,
            format!("value must be \"true\" or \"false\" for boolean option `{name}`"),
        )),
    }
}

/// A file, message, oneof, service or method option; returns the value of `deprecated` when that was it.
pub(crate) fn statement_option(p: &mut Parser<'_>, context: Context) -> Result<Option<bool>> {
    let (name, pos, value, value_pos) = name_and_value(p, context)?;
    match name.as_str() {
        "map_entry" => Err(Located::new(
            pos,
            "map_entry should not be set explicitly; use map<KeyType, ValueType> instead",
        )),
        "message_set_wire_format" if boolean(&name, &value, value_pos)? => {
            Err(Located::new(pos, "message sets are not supported"))
        }
        "deprecated" => boolean(&name, &value, value_pos).map(Some),
        _ => Ok(None),
    }
}

/// One `name = value` inside a field's `[…]`.
pub(crate) fn field_option(p: &mut Parser<'_>, options: &mut FieldOptions) -> Result<()> {
    let (name, pos, value, value_pos) = name_and_value(p, Context::Field)?;
    match name.as_str() {
        "packed" => options.packed = Some((boolean(&name, &value, value_pos)?, pos)),
        "deprecated" => options.deprecated = Some(boolean(&name, &value, value_pos)?),
        "default" => {
            if options.default.is_some() {
                return Err(Located::new(pos, "already set option `default`"));
            }
            options.default = Some((value, value_pos));
        }
        "json_name" => match value {
            Constant::Str(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| Located::new(value_pos, "json_name must be valid UTF-8"))?;
                options.json_name = Some(text);
            }
            _ => return Err(Located::new(value_pos, "json_name must be a string")),
        },
        _ => {}
    }
    Ok(())
}

/// `name = value;` in an enum body.
pub(crate) fn enum_option(p: &mut Parser<'_>, e: &mut Enum) -> Result<()> {
    let (name, _, value, value_pos) = name_and_value(p, Context::Enum)?;
    match name.as_str() {
        "allow_alias" => e.allow_alias = Some(boolean(&name, &value, value_pos)?),
        "deprecated" => e.deprecated = Some(boolean(&name, &value, value_pos)?),
        _ => {}
    }
    p.expect_symbol(';')?;
    Ok(())
}

/// One `name = value` inside an enum value's `[…]`; returns `deprecated`'s value.
pub(crate) fn value_option(p: &mut Parser<'_>) -> Result<Option<bool>> {
    let (name, _, value, value_pos) = name_and_value(p, Context::EnumValue)?;
    if name == "deprecated" {
        return boolean(&name, &value, value_pos).map(Some);
    }
    Ok(None)
}
