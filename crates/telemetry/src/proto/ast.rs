//! What the parser makes of one `.proto` file: the declarations as written, with the
//! positions the checker needs for its errors. Type names are still unresolved text;
//! map fields already have their synthesized entry message (as protoc does).

use super::error::Pos;

/// `syntax = "proto2"` (also the default) or `"proto3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// proto2: labels required, `required` and defaults allowed, closed enums.
    Proto2,
    /// proto3: implicit presence, open enums whose first value is 0.
    Proto3,
}

/// One parsed file.
#[derive(Debug, Clone)]
pub(crate) struct File {
    pub(crate) syntax: Syntax,
    pub(crate) package: Option<(String, Pos)>,
    pub(crate) imports: Vec<Import>,
    pub(crate) messages: Vec<Message>,
    pub(crate) enums: Vec<Enum>,
    pub(crate) services: Vec<Service>,
}

/// `service Name { rpc … }`: kept in the descriptor, never served.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) methods: Vec<Method>,
    pub(crate) deprecated: Option<bool>,
}

/// `rpc Name (stream In) returns (stream Out);`
#[derive(Debug, Clone)]
pub(crate) struct Method {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    /// Type name as written, where, and whether it is a stream.
    pub(crate) input: (String, Pos, bool),
    pub(crate) output: (String, Pos, bool),
    pub(crate) deprecated: Option<bool>,
}

/// How an import is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImportKind {
    /// `import "x.proto";`
    Normal,
    /// `import public "x.proto";`: importers of this file see x's types too.
    Public,
    /// `import weak "x.proto";`
    Weak,
}

/// `import "path";`
#[derive(Debug, Clone)]
pub(crate) struct Import {
    pub(crate) path: String,
    pub(crate) kind: ImportKind,
    pub(crate) pos: Pos,
}

/// A field label as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    Optional,
    Required,
    Repeated,
}

/// A field's type as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldType {
    /// `double`, `int32`, … (the descriptor's `Type` number).
    Scalar(i32),
    /// A message or enum name, relative or `.`-qualified; resolved by the checker.
    Named(String),
}

/// A constant in an option or default: what the lexer read, sign applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Constant {
    /// An identifier (`true`, `inf`, an enum value name).
    Ident(String),
    /// An integer with its sign.
    Int(i128),
    /// A float with its sign.
    Float(f64),
    /// A string (adjacent literals joined).
    Str(Vec<u8>),
    /// `{ … }` text-format aggregate, skipped.
    Aggregate,
}

/// `[packed = true, deprecated = true, default = 5, json_name = "x"]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldOptions {
    pub(crate) packed: Option<(bool, Pos)>,
    pub(crate) deprecated: Option<bool>,
    pub(crate) default: Option<(Constant, Pos)>,
    pub(crate) json_name: Option<String>,
}

/// One field, map fields included (already rewritten to a repeated entry message).
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) label: Option<Label>,
    pub(crate) ty: FieldType,
    pub(crate) type_pos: Pos,
    pub(crate) number: i64,
    pub(crate) number_pos: Pos,
    pub(crate) options: FieldOptions,
    /// Index into the message's oneofs.
    pub(crate) oneof: Option<usize>,
}

/// `reserved 2, 9 to 11;` (ends inclusive as written) and `reserved "a";`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reserved {
    pub(crate) ranges: Vec<(i64, i64, Pos)>,
    pub(crate) names: Vec<(String, Pos)>,
}

/// A message, with its nested declarations in the order written.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) fields: Vec<Field>,
    pub(crate) oneofs: Vec<(String, Pos)>,
    pub(crate) messages: Vec<Message>,
    pub(crate) enums: Vec<Enum>,
    pub(crate) reserved: Reserved,
    pub(crate) deprecated: Option<bool>,
    /// True only for a synthesized map entry.
    pub(crate) map_entry: bool,
}

/// One enum value.
#[derive(Debug, Clone)]
pub(crate) struct EnumValue {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) number: i64,
    pub(crate) deprecated: Option<bool>,
}

/// An enum.
#[derive(Debug, Clone)]
pub(crate) struct Enum {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) values: Vec<EnumValue>,
    pub(crate) allow_alias: Option<bool>,
    pub(crate) deprecated: Option<bool>,
    pub(crate) reserved: Reserved,
}
