//! Parsed files → `FileDescriptorProto`s, with protoc's checks on each declaration:
//! field numbers (range, duplicates, reserved), type references, labels and
//! `proto3_optional` (with its synthetic oneof), `packed`, defaults, json names, enum
//! values (proto3's zero first value, aliases, reserved).

use std::collections::{HashMap, HashSet};

use prost_reflect::prost_types::{
    descriptor_proto::ReservedRange, enum_descriptor_proto::EnumReservedRange, DescriptorProto,
    EnumDescriptorProto, EnumOptions, EnumValueDescriptorProto, EnumValueOptions,
    FieldDescriptorProto, FieldOptions, MessageOptions, MethodDescriptorProto, MethodOptions,
    OneofDescriptorProto, ServiceDescriptorProto, ServiceOptions,
};

use super::ast::{Constant, Enum, Field, FieldType, Label, Message, Reserved, Service, Syntax};
use super::error::{Located, Pos, Result};
use super::symbols::{join, SymKind, Symbols};

/// Field numbers protobuf keeps for itself.
const IMPLEMENTATION_RESERVED: std::ops::RangeInclusive<i64> = 19_000..=19_999;

const TYPE_MESSAGE: i32 = 11;
const TYPE_ENUM: i32 = 14;

/// What every declaration of one file is checked against.
pub(crate) struct Scope<'a> {
    pub(crate) symbols: &'a Symbols,
    pub(crate) visible: &'a HashSet<usize>,
    pub(crate) names: &'a [&'a str],
    pub(crate) syntax: Syntax,
}

impl Scope<'_> {
    fn proto3(&self) -> bool {
        self.syntax == Syntax::Proto3
    }
}

/// Builds message `m`, declared in `scope` (package or enclosing message).
pub(crate) fn message(s: &Scope<'_>, scope: &str, m: &Message) -> Result<DescriptorProto> {
    let full = join(scope, &m.name);
    let reserved = check_reserved(&m.reserved, false)?;
    let mut fields = Vec::with_capacity(m.fields.len());
    let mut numbers: HashMap<i64, &str> = HashMap::new();
    let mut json_names: HashMap<String, &str> = HashMap::new();
    for f in &m.fields {
        check_number(f, &full, &reserved, &mut numbers)?;
        let built = field(s, &full, f, m.map_entry)?;
        if s.proto3() {
            let json = json_name(&f.name);
            if let Some(other) = json_names.insert(json.clone(), &f.name) {
                return Err(Located::new(
                    f.pos,
                    format!("the JSON name of field `{}` ({json}) conflicts with field `{other}`; not allowed in proto3", f.name),
                ));
            }
        }
        fields.push(built);
    }
    let oneof_decl = oneofs(m, &mut fields);
    let mut nested_type = Vec::with_capacity(m.messages.len());
    for nested in &m.messages {
        nested_type.push(message(s, &full, nested)?);
    }
    let mut enum_type = Vec::with_capacity(m.enums.len());
    for e in &m.enums {
        enum_type.push(enumeration(s, e)?);
    }
    let options = (m.map_entry || m.deprecated.is_some()).then(|| MessageOptions {
        map_entry: m.map_entry.then_some(true),
        deprecated: m.deprecated,
        ..Default::default()
    });
    Ok(DescriptorProto {
        name: Some(m.name.clone()),
        field: fields,
        nested_type,
        enum_type,
        oneof_decl,
        options,
        reserved_range: reserved
            .written
            .iter()
            .map(|&(start, end)| ReservedRange {
                start: i32::try_from(start).ok(),
                end: i32::try_from(end.saturating_add(1)).ok(),
            })
            .collect(),
        reserved_name: m.reserved.names.iter().map(|(n, _)| n.clone()).collect(),
        ..Default::default()
    })
}

/// The message's oneofs: the declared ones, then one synthetic `_name` per proto3
/// `optional` field (after all declared ones, as protoc orders them).
fn oneofs(m: &Message, fields: &mut [FieldDescriptorProto]) -> Vec<OneofDescriptorProto> {
    let mut decl: Vec<OneofDescriptorProto> = m
        .oneofs
        .iter()
        .map(|(name, _)| OneofDescriptorProto {
            name: Some(name.clone()),
            options: None,
        })
        .collect();
    let taken: HashSet<&str> = m
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .chain(m.oneofs.iter().map(|(n, _)| n.as_str()))
        .chain(m.messages.iter().map(|n| n.name.as_str()))
        .chain(m.enums.iter().map(|e| e.name.as_str()))
        .collect();
    let mut synthetic: HashSet<String> = HashSet::new();
    for (f, built) in m.fields.iter().zip(fields.iter_mut()) {
        built.oneof_index = f.oneof.and_then(|i| i32::try_from(i).ok());
        if built.proto3_optional == Some(true) {
            let mut name = format!("_{}", f.name);
            while taken.contains(name.as_str()) || synthetic.contains(&name) {
                name.insert(0, 'X');
            }
            built.oneof_index = i32::try_from(decl.len()).ok();
            synthetic.insert(name.clone());
            decl.push(OneofDescriptorProto {
                name: Some(name),
                options: None,
            });
        }
    }
    decl
}

fn check_number<'m>(
    f: &'m Field,
    message: &str,
    reserved: &ReservedIndex<'_>,
    numbers: &mut HashMap<i64, &'m str>,
) -> Result<()> {
    let n = f.number;
    if IMPLEMENTATION_RESERVED.contains(&n) {
        return Err(Located::new(
            f.number_pos,
            "field numbers 19000 through 19999 are reserved for the protocol buffer library implementation",
        ));
    }
    if let Some(other) = numbers.insert(n, &f.name) {
        return Err(Located::new(
            f.number_pos,
            format!("field number {n} has already been used in `{message}` by field `{other}`"),
        ));
    }
    if reserved.has_number(n) {
        return Err(Located::new(
            f.number_pos,
            format!("field `{}` uses reserved number {n}", f.name),
        ));
    }
    if reserved.has_name(&f.name) {
        return Err(Located::new(
            f.pos,
            format!("field name `{}` is reserved", f.name),
        ));
    }
    Ok(())
}

/// Checks that reserved ranges do not overlap and names are listed once (protoc 3.21
/// accepts any text as a reserved name, so this does too); returns the ranges in the
/// order written.
fn check_reserved(r: &Reserved, in_enum: bool) -> Result<ReservedIndex<'_>> {
    let mut ranges: Vec<(i64, i64, Pos)> = r.ranges.clone();
    ranges.sort_by_key(|&(a, b, _)| (a, b));
    for pair in ranges.windows(2) {
        if let [(a1, b1, _), (a2, b2, pos)] = pair {
            if a2 <= b1 {
                return Err(Located::new(
                    *pos,
                    format!("reserved range {a2} to {b2} overlaps with already-defined range {a1} to {b1}"),
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    for (name, pos) in &r.names {
        if !seen.insert(name.as_str()) {
            let what = if in_enum { "enum value" } else { "field" };
            return Err(Located::new(
                *pos,
                format!("{what} name `{name}` is reserved multiple times"),
            ));
        }
    }
    Ok(ReservedIndex {
        written: r.ranges.iter().map(|&(a, b, _)| (a, b)).collect(),
        sorted: ranges.iter().map(|&(a, b, _)| (a, b)).collect(),
        names: seen,
    })
}

/// Checked reserved numbers and names, for lookups that stay cheap however many there
/// are.
struct ReservedIndex<'r> {
    /// As written: the descriptor keeps this order, as protoc does.
    written: Vec<(i64, i64)>,
    /// By start, not overlapping.
    sorted: Vec<(i64, i64)>,
    names: HashSet<&'r str>,
}

impl ReservedIndex<'_> {
    fn has_number(&self, n: i64) -> bool {
        let after = self.sorted.partition_point(|&(start, _)| start <= n);
        after
            .checked_sub(1)
            .and_then(|i| self.sorted.get(i))
            .is_some_and(|&(_, end)| n <= end)
    }

    fn has_name(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

fn field(
    s: &Scope<'_>,
    message: &str,
    f: &Field,
    in_map_entry: bool,
) -> Result<FieldDescriptorProto> {
    let label = match f.label {
        None | Some(Label::Optional) => 1,
        Some(Label::Required) => 2,
        Some(Label::Repeated) => 3,
    };
    let (ty, type_name, enum_values) = match &f.ty {
        FieldType::Scalar(t) => (*t, None, None),
        FieldType::Named(name) => {
            let found = s
                .symbols
                .resolve(name, message, s.visible, f.type_pos, s.names)?;
            let is_enum = found.symbol.kind == SymKind::Enum;
            if is_enum && s.proto3() && !found.symbol.proto3 {
                return Err(Located::new(
                    f.type_pos,
                    format!("enum `{}` is a proto2 enum and cannot be used in proto3 message `{message}`", found.full_name),
                ));
            }
            let values = is_enum.then_some(found.symbol.values.as_slice());
            let ty = if is_enum { TYPE_ENUM } else { TYPE_MESSAGE };
            (ty, Some(format!(".{}", found.full_name)), values)
        }
    };
    let mut options = None;
    if let Some((packed, pos)) = f.options.packed {
        if label != 3 || matches!(ty, 9 | 12 | TYPE_MESSAGE) {
            return Err(Located::new(
                pos,
                "[packed = true] can only be specified for repeated primitive fields",
            ));
        }
        options = Some(FieldOptions {
            packed: Some(packed),
            ..Default::default()
        });
    }
    if let Some(deprecated) = f.options.deprecated {
        options.get_or_insert_with(FieldOptions::default).deprecated = Some(deprecated);
    }
    let default_value = match &f.options.default {
        None => None,
        Some((value, pos)) => Some(default_text(s, f, ty, enum_values, value, *pos)?),
    };
    let proto3_optional =
        (s.proto3() && f.label == Some(Label::Optional) && !in_map_entry).then_some(true);
    Ok(FieldDescriptorProto {
        name: Some(f.name.clone()),
        number: i32::try_from(f.number).ok(),
        label: Some(label),
        r#type: Some(ty),
        type_name,
        default_value,
        json_name: Some(
            f.options
                .json_name
                .clone()
                .unwrap_or_else(|| json_name(&f.name)),
        ),
        options,
        proto3_optional,
        ..Default::default()
    })
}

/// protoc's default JSON name: `foo_bar` → `fooBar`.
pub(crate) fn json_name(name: &str) -> String {
    join_words(name, false)
}

/// `foo_bar` → `FooBar`, the way protoc names map entry types.
pub(crate) fn camel_case(name: &str) -> String {
    join_words(name, true)
}

/// Drops the underscores of `name` and capitalises the letter after each one (and the
/// first letter when `first_upper`).
fn join_words(name: &str, first_upper: bool) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = first_upper;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A proto2 `[default = …]` as the descriptor writes it, after checking that the field
/// may have one and that the value fits its type.
fn default_text(
    s: &Scope<'_>,
    f: &Field,
    ty: i32,
    enum_values: Option<&[String]>,
    value: &Constant,
    pos: Pos,
) -> Result<String> {
    let refuse = |why: &str| Err(Located::new(pos, why.to_owned()));
    if s.proto3() {
        return refuse("explicit default values are not allowed in proto3");
    }
    if f.label == Some(Label::Repeated) {
        return refuse("repeated fields cannot have default values");
    }
    let mismatch = || {
        Located::new(
            pos,
            format!("default value does not fit the type of field `{}`", f.name),
        )
    };
    match (ty, value) {
        (TYPE_MESSAGE, _) => refuse("messages cannot have default values"),
        (5 | 15 | 17, Constant::Int(n)) => {
            int_in(*n, i128::from(i32::MIN), i128::from(i32::MAX)).ok_or_else(mismatch)
        }
        (3 | 16 | 18, Constant::Int(n)) => {
            int_in(*n, i128::from(i64::MIN), i128::from(i64::MAX)).ok_or_else(mismatch)
        }
        (7 | 13, Constant::Int(n)) => int_in(*n, 0, i128::from(u32::MAX)).ok_or_else(mismatch),
        (4 | 6, Constant::Int(n)) => int_in(*n, 0, i128::from(u64::MAX)).ok_or_else(mismatch),
        (1 | 2, Constant::Int(n)) => Ok(n.to_string()),
        (1 | 2, Constant::Float(x)) => Ok(float_text(*x)),
        (1 | 2, Constant::Ident(w)) if w == "inf" || w == "nan" => Ok(w.clone()),
        (8, Constant::Ident(w)) if w == "true" || w == "false" => Ok(w.clone()),
        (9, Constant::Str(bytes)) => String::from_utf8(bytes.clone())
            .map_err(|_| Located::new(pos, "string default values must be valid UTF-8")),
        (12, Constant::Str(bytes)) => Ok(c_escape(bytes)),
        (TYPE_ENUM, Constant::Ident(w)) => match enum_values {
            Some(values) if values.contains(w) => Ok(w.clone()),
            _ => refuse(&format!(
                "enum type of field `{}` has no value named `{w}`",
                f.name
            )),
        },
        _ => Err(mismatch()),
    }
}

fn int_in(n: i128, min: i128, max: i128) -> Option<String> {
    (min..=max).contains(&n).then(|| n.to_string())
}

fn float_text(x: f64) -> String {
    if x.is_nan() {
        "nan".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        x.to_string()
    }
}

/// Bytes as protoc writes a `bytes` default: printable ASCII as is, `\n \r \t \" \' \\`
/// escaped, everything else as three octal digits.
fn c_escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out
}

/// Builds enum `e`.
pub(crate) fn enumeration(s: &Scope<'_>, e: &Enum) -> Result<EnumDescriptorProto> {
    let reserved = check_reserved(&e.reserved, true)?;
    if let Some(first) = e.values.first() {
        if s.proto3() && first.number != 0 {
            return Err(Located::new(
                first.pos,
                "the first enum value must be zero in proto3",
            ));
        }
    }
    let mut numbers: HashMap<i64, &str> = HashMap::new();
    let mut aliased = false;
    for v in &e.values {
        if let Some(other) = numbers.insert(v.number, &v.name) {
            if e.allow_alias != Some(true) {
                return Err(Located::new(
                    v.pos,
                    format!("`{}` uses the same enum value as `{other}`; set option allow_alias = true to allow this", v.name),
                ));
            }
            aliased = true;
        }
        if reserved.has_number(v.number) {
            return Err(Located::new(
                v.pos,
                format!("enum value `{}` uses reserved number {}", v.name, v.number),
            ));
        }
        if reserved.has_name(&v.name) {
            return Err(Located::new(
                v.pos,
                format!("enum value `{}` is reserved", v.name),
            ));
        }
    }
    if e.allow_alias == Some(true) && !aliased {
        return Err(Located::new(
            e.pos,
            format!(
                "`{}` declares allow_alias but no values share a number; remove the option",
                e.name
            ),
        ));
    }
    let options = (e.allow_alias.is_some() || e.deprecated.is_some()).then(|| EnumOptions {
        allow_alias: e.allow_alias,
        deprecated: e.deprecated,
        ..Default::default()
    });
    Ok(EnumDescriptorProto {
        name: Some(e.name.clone()),
        value: e
            .values
            .iter()
            .map(|v| EnumValueDescriptorProto {
                name: Some(v.name.clone()),
                number: i32::try_from(v.number).ok(),
                options: v.deprecated.map(|d| EnumValueOptions {
                    deprecated: Some(d),
                    ..Default::default()
                }),
            })
            .collect(),
        options,
        reserved_range: reserved
            .written
            .iter()
            .map(|&(a, b)| EnumReservedRange {
                start: i32::try_from(a).ok(),
                end: i32::try_from(b).ok(),
            })
            .collect(),
        reserved_name: e.reserved.names.iter().map(|(n, _)| n.clone()).collect(),
    })
}

/// Builds service `svc` of package `package`: method types must be messages.
pub(crate) fn service(
    s: &Scope<'_>,
    package: &str,
    svc: &Service,
) -> Result<ServiceDescriptorProto> {
    let scope = join(package, &svc.name);
    let message_type = |(name, pos, _): &(String, Pos, bool)| -> Result<String> {
        let found = s.symbols.resolve(name, &scope, s.visible, *pos, s.names)?;
        if found.symbol.kind != SymKind::Message {
            return Err(Located::new(
                *pos,
                format!("`{name}` is not a message type"),
            ));
        }
        Ok(format!(".{}", found.full_name))
    };
    let mut method = Vec::with_capacity(svc.methods.len());
    for m in &svc.methods {
        method.push(MethodDescriptorProto {
            name: Some(m.name.clone()),
            input_type: Some(message_type(&m.input)?),
            output_type: Some(message_type(&m.output)?),
            client_streaming: m.input.2.then_some(true),
            server_streaming: m.output.2.then_some(true),
            options: m.deprecated.map(|d| MethodOptions {
                deprecated: Some(d),
                ..Default::default()
            }),
        });
    }
    Ok(ServiceDescriptorProto {
        name: Some(svc.name.clone()),
        method,
        options: svc.deprecated.map(|d| ServiceOptions {
            deprecated: Some(d),
            ..Default::default()
        }),
    })
}
