//! Tokens → [`ast::File`](super::ast::File), by recursive descent over the proto2 and
//! proto3 grammar (the parts bosun supports; see the module docs for what is refused).
//!
//! Rules that need only one statement are checked here (labels per syntax, map key
//! types, option value kinds, number ranges of the literal); rules that need the whole
//! file or other files (names, numbers, types) are the checker's.

use super::ast::{
    Constant, Enum, EnumValue, Field, FieldOptions, FieldType, File, Import, ImportKind, Label,
    Message, Method, Reserved, Service, Syntax,
};
use super::build::camel_case;
use super::error::{Located, Pos, Result};
use super::lexer::{Kind, Token};
use super::options::{self, Context};
use super::{MAX_DOTTED, MAX_FIELD_NUMBER, MAX_NESTING};

/// Parses one file's tokens (ending with [`Kind::Eof`]).
pub(crate) fn parse(tokens: &[Token]) -> Result<File> {
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
        syntax: Syntax::Proto2,
    };
    p.file()
}

pub(super) struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    depth: usize,
    pub(super) syntax: Syntax,
}

/// Scalar type names and their `FieldDescriptorProto.Type` numbers.
const SCALARS: [(&str, i32); 15] = [
    ("double", 1),
    ("float", 2),
    ("int64", 3),
    ("uint64", 4),
    ("int32", 5),
    ("fixed64", 6),
    ("fixed32", 7),
    ("bool", 8),
    ("string", 9),
    ("bytes", 12),
    ("uint32", 13),
    ("sfixed32", 15),
    ("sfixed64", 16),
    ("sint32", 17),
    ("sint64", 18),
];

/// The scalar type named `name`, if it is one.
pub(crate) fn scalar(name: &str) -> Option<i32> {
    SCALARS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

impl<'a> Parser<'a> {
    fn peek_at(&self, ahead: usize) -> &'a Token {
        let last = self.tokens.len().saturating_sub(1);
        let i = self.at.saturating_add(ahead).min(last);
        // `tokenize` always ends with Eof, so the list is never empty; a static Eof
        // covers an empty list anyway.
        self.tokens.get(i).unwrap_or(&EOF)
    }

    pub(super) fn peek(&self) -> &'a Token {
        self.peek_at(0)
    }

    pub(super) fn pos(&self) -> Pos {
        self.peek().pos
    }

    pub(super) fn advance(&mut self) -> &'a Token {
        let t = self.peek();
        if t.kind != Kind::Eof {
            self.at += 1;
        }
        t
    }

    pub(super) fn is_symbol(&self, c: char) -> bool {
        self.peek().kind == Kind::Symbol(c)
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(&self.peek().kind, Kind::Ident(w) if w == word)
    }

    pub(super) fn eat_symbol(&mut self, c: char) -> bool {
        let yes = self.is_symbol(c);
        if yes {
            self.advance();
        }
        yes
    }

    pub(super) fn expect_symbol(&mut self, c: char) -> Result<Pos> {
        let t = self.peek();
        if t.kind == Kind::Symbol(c) {
            self.advance();
            Ok(t.pos)
        } else {
            Err(self.unexpected(&format!("\"{c}\"")))
        }
    }

    pub(super) fn unexpected(&self, wanted: &str) -> Located {
        let t = self.peek();
        let got = match &t.kind {
            Kind::Ident(s) => format!("`{s}`"),
            Kind::Int(n) => n.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Str(_) => "a string".to_owned(),
            Kind::Symbol(c) => format!("\"{c}\""),
            Kind::Eof => "end of file".to_owned(),
        };
        Located::new(t.pos, format!("expected {wanted}, found {got}"))
    }

    pub(super) fn ident(&mut self, what: &str) -> Result<(String, Pos)> {
        let t = self.peek();
        match &t.kind {
            Kind::Ident(s) => {
                self.advance();
                Ok((s.clone(), t.pos))
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// `a.b.c`, optionally with a leading `.` when `absolute_ok`.
    pub(super) fn dotted(&mut self, what: &str, absolute_ok: bool) -> Result<(String, Pos)> {
        let pos = self.pos();
        let mut name = String::new();
        if absolute_ok && self.eat_symbol('.') {
            name.push('.');
        }
        name.push_str(&self.ident(what)?.0);
        while self.eat_symbol('.') {
            name.push('.');
            name.push_str(&self.ident(what)?.0);
            if name.len() > MAX_DOTTED {
                return Err(Located::new(
                    pos,
                    format!("name longer than {MAX_DOTTED} characters"),
                ));
            }
        }
        Ok((name, pos))
    }

    fn string(&mut self, what: &str) -> Result<(String, Pos)> {
        let pos = self.pos();
        let mut bytes = Vec::new();
        let mut any = false;
        while let Kind::Str(s) = &self.peek().kind {
            bytes.extend_from_slice(s);
            any = true;
            self.advance();
        }
        if !any {
            return Err(self.unexpected(what));
        }
        String::from_utf8(bytes)
            .map(|s| (s, pos))
            .map_err(|_| Located::new(pos, format!("{what} must be valid UTF-8")))
    }

    fn file(&mut self) -> Result<File> {
        let mut file = File {
            syntax: Syntax::Proto2,
            package: None,
            imports: Vec::new(),
            messages: Vec::new(),
            enums: Vec::new(),
            services: Vec::new(),
        };
        if self.is_keyword("syntax") {
            self.syntax_statement()?;
            file.syntax = self.syntax;
        } else if self.is_keyword("edition") {
            return Err(Located::new(
                self.pos(),
                "editions are not supported; use syntax = \"proto3\" or \"proto2\"",
            ));
        }
        loop {
            let t = self.peek();
            let Kind::Ident(word) = &t.kind else {
                match t.kind {
                    Kind::Eof => return Ok(file),
                    Kind::Symbol(';') => {
                        self.advance();
                        continue;
                    }
                    _ => return Err(self.unexpected("a top-level statement")),
                }
            };
            match word.as_str() {
                "import" => file.imports.push(self.import()?),
                "package" => {
                    if file.package.is_some() {
                        return Err(Located::new(t.pos, "multiple package definitions"));
                    }
                    self.advance();
                    file.package = Some(self.dotted("a package name", false)?);
                    self.expect_symbol(';')?;
                }
                "option" => {
                    self.advance();
                    self.option_statement(Context::File)?;
                }
                "message" => file.messages.push(self.message()?),
                "enum" => file.enums.push(self.enum_()?),
                "service" => file.services.push(self.service()?),
                "syntax" => return Err(Located::new(t.pos, "syntax must be the first statement")),
                "extend" => {
                    return Err(Located::new(
                        t.pos,
                        "extensions (`extend`) are not supported",
                    ))
                }
                _ => return Err(self.unexpected("a top-level statement")),
            }
        }
    }

    fn syntax_statement(&mut self) -> Result<()> {
        self.advance();
        self.expect_symbol('=')?;
        let (value, pos) = self.string("\"proto2\" or \"proto3\"")?;
        self.syntax = match value.as_str() {
            "proto2" => Syntax::Proto2,
            "proto3" => Syntax::Proto3,
            other => {
                return Err(Located::new(
                    pos,
                    format!(
                    "unrecognized syntax {other:?}; this compiler knows \"proto2\" and \"proto3\""
                ),
                ))
            }
        };
        self.expect_symbol(';')?;
        Ok(())
    }

    fn import(&mut self) -> Result<Import> {
        self.advance();
        let kind = if self.is_keyword("public") {
            self.advance();
            ImportKind::Public
        } else if self.is_keyword("weak") {
            self.advance();
            ImportKind::Weak
        } else {
            ImportKind::Normal
        };
        let (path, pos) = self.string("a file name in quotes")?;
        self.expect_symbol(';')?;
        Ok(Import { path, kind, pos })
    }

    /// `service Name { rpc … }`; kept in the descriptor (bosun serves no RPCs).
    fn service(&mut self) -> Result<Service> {
        self.advance();
        let (name, pos) = self.ident("a service name")?;
        let mut service = Service {
            name,
            pos,
            methods: Vec::new(),
            deprecated: None,
        };
        self.expect_symbol('{')?;
        while !self.eat_symbol('}') {
            if self.eat_symbol(';') {
                continue;
            }
            if self.is_keyword("option") {
                self.advance();
                if let Some(d) = self.option_statement(Context::Service)? {
                    service.deprecated = Some(d);
                }
            } else if self.is_keyword("rpc") {
                self.advance();
                service.methods.push(self.method()?);
            } else {
                return Err(self.unexpected("`rpc`, `option` or \"}\""));
            }
        }
        Ok(service)
    }

    fn method(&mut self) -> Result<Method> {
        let (name, pos) = self.ident("a method name")?;
        let input = self.method_type()?;
        if !self.is_keyword("returns") {
            return Err(self.unexpected("`returns`"));
        }
        self.advance();
        let output = self.method_type()?;
        let mut deprecated = None;
        if self.eat_symbol('{') {
            while !self.eat_symbol('}') {
                if self.eat_symbol(';') {
                    continue;
                }
                if !self.is_keyword("option") {
                    return Err(self.unexpected("`option` or \"}\""));
                }
                self.advance();
                if let Some(d) = self.option_statement(Context::Method)? {
                    deprecated = Some(d);
                }
            }
        } else {
            self.expect_symbol(';')?;
        }
        Ok(Method {
            name,
            pos,
            input,
            output,
            deprecated,
        })
    }

    /// `( [stream] Type )`.
    fn method_type(&mut self) -> Result<(String, Pos, bool)> {
        self.expect_symbol('(')?;
        let stream =
            self.is_keyword("stream") && !matches!(self.peek_at(1).kind, Kind::Symbol(')' | '.'));
        if stream {
            self.advance();
        }
        let (name, pos) = self.dotted("a message type", true)?;
        self.expect_symbol(')')?;
        Ok((name, pos, stream))
    }

    fn enter(&mut self, pos: Pos) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(Located::new(
                pos,
                format!("declarations nested deeper than {MAX_NESTING}"),
            ));
        }
        Ok(())
    }

    fn message(&mut self) -> Result<Message> {
        self.advance();
        let (name, pos) = self.ident("a message name")?;
        self.enter(pos)?;
        let mut message = Message {
            name,
            pos,
            fields: Vec::new(),
            oneofs: Vec::new(),
            messages: Vec::new(),
            enums: Vec::new(),
            reserved: Reserved::default(),
            deprecated: None,
            map_entry: false,
        };
        self.expect_symbol('{')?;
        while !self.eat_symbol('}') {
            self.message_statement(&mut message)?;
        }
        self.depth -= 1;
        Ok(message)
    }

    fn message_statement(&mut self, message: &mut Message) -> Result<()> {
        let t = self.peek();
        let word = match &t.kind {
            Kind::Symbol(';') => {
                self.advance();
                return Ok(());
            }
            Kind::Ident(w) => w.as_str(),
            Kind::Symbol('.') => "",
            _ => return Err(self.unexpected("a field, message, enum, oneof, option or reserved")),
        };
        match word {
            "message" => message.messages.push(self.message()?),
            "enum" => message.enums.push(self.enum_()?),
            "oneof" => self.oneof(message)?,
            "reserved" => self.reserved(&mut message.reserved, false)?,
            "option" => {
                self.advance();
                if let Some(v) = self.option_statement(Context::Message)? {
                    message.deprecated = Some(v);
                }
            }
            "extensions" | "extend" => {
                return Err(Located::new(t.pos, "extensions are not supported"))
            }
            "map" if self.peek_at(1).kind == Kind::Symbol('<') => self.map_field(message)?,
            _ => {
                let field = self.field(None)?;
                message.fields.push(field);
            }
        }
        Ok(())
    }

    fn oneof(&mut self, message: &mut Message) -> Result<()> {
        self.advance();
        let (name, pos) = self.ident("a oneof name")?;
        let index = message.oneofs.len();
        message.oneofs.push((name, pos));
        self.expect_symbol('{')?;
        let mut any = false;
        while !self.eat_symbol('}') {
            if self.eat_symbol(';') {
                continue;
            }
            if self.is_keyword("option") {
                self.advance();
                self.option_statement(Context::Oneof)?;
                continue;
            }
            if self.is_keyword("map") && self.peek_at(1).kind == Kind::Symbol('<') {
                return Err(Located::new(
                    self.pos(),
                    "map fields are not allowed in oneofs",
                ));
            }
            message.fields.push(self.field(Some(index))?);
            any = true;
        }
        if !any {
            return Err(Located::new(pos, "oneof must have at least one field"));
        }
        Ok(())
    }

    /// `[label] type name = number [options];`
    fn field(&mut self, oneof: Option<usize>) -> Result<Field> {
        let label_pos = self.pos();
        let label = match &self.peek().kind {
            Kind::Ident(w) if w == "optional" => Some(Label::Optional),
            Kind::Ident(w) if w == "required" => Some(Label::Required),
            Kind::Ident(w) if w == "repeated" => Some(Label::Repeated),
            _ => None,
        };
        if label.is_some() {
            self.advance();
            if oneof.is_some() {
                return Err(Located::new(
                    label_pos,
                    "fields in oneofs must not have labels",
                ));
            }
        }
        if self.is_keyword("group") {
            return Err(Located::new(self.pos(), "groups are not supported"));
        }
        if self.is_keyword("map") && self.peek_at(1).kind == Kind::Symbol('<') {
            return Err(Located::new(label_pos, "map fields cannot have labels"));
        }
        match (self.syntax, label) {
            (Syntax::Proto3, Some(Label::Required)) => {
                return Err(Located::new(
                    label_pos,
                    "required fields are not allowed in proto3",
                ))
            }
            (Syntax::Proto2, None) if oneof.is_none() => {
                return Err(Located::new(
                    label_pos,
                    "expected \"required\", \"optional\", or \"repeated\"",
                ))
            }
            _ => {}
        }
        let (type_name, type_pos) = self.dotted("a field type", true)?;
        let ty = scalar(&type_name).map_or(FieldType::Named(type_name), FieldType::Scalar);
        self.field_rest(label, ty, type_pos, oneof)
    }

    /// `name = number [options];` after the type.
    fn field_rest(
        &mut self,
        label: Option<Label>,
        ty: FieldType,
        type_pos: Pos,
        oneof: Option<usize>,
    ) -> Result<Field> {
        let (name, pos) = self.ident("a field name")?;
        self.expect_symbol('=')?;
        let number_pos = self.pos();
        let number = match self.advance().kind {
            Kind::Int(n) => i64::try_from(n).unwrap_or(i64::MAX),
            _ => return Err(Located::new(number_pos, "expected a field number")),
        };
        if !(1..=MAX_FIELD_NUMBER).contains(&number) {
            return Err(Located::new(
                number_pos,
                format!("field numbers must be between 1 and {MAX_FIELD_NUMBER}"),
            ));
        }
        let options = if self.is_symbol('[') {
            self.field_options()?
        } else {
            FieldOptions::default()
        };
        self.expect_symbol(';')?;
        Ok(Field {
            name,
            pos,
            label,
            ty,
            type_pos,
            number,
            number_pos,
            options,
            oneof,
        })
    }

    /// `map<K, V> name = n;`: the field becomes `repeated NameEntry name = n;` and the
    /// message gets the entry type `NameEntry { K key = 1; V value = 2; }`, as protoc
    /// does.
    fn map_field(&mut self, message: &mut Message) -> Result<()> {
        let map_pos = self.pos();
        self.advance();
        self.expect_symbol('<')?;
        let (key, key_pos) = self.ident("a map key type")?;
        let key_type = scalar(&key).filter(|t| !matches!(t, 1 | 2 | 12));
        let Some(key_type) = key_type else {
            return Err(Located::new(
                key_pos,
                "map keys must be integral types, bool or string (not float, double, bytes, enums or messages)",
            ));
        };
        self.expect_symbol(',')?;
        if self.is_keyword("map") {
            return Err(Located::new(self.pos(), "map values cannot be maps"));
        }
        let (value, value_pos) = self.dotted("a map value type", true)?;
        self.expect_symbol('>')?;
        let value_type = scalar(&value).map_or(FieldType::Named(value), FieldType::Scalar);
        let mut field =
            self.field_rest(Some(Label::Repeated), FieldType::Scalar(0), map_pos, None)?;
        let entry_name = format!("{}Entry", camel_case(&field.name));
        let entry_field = |name: &str, number, ty, type_pos| Field {
            name: name.to_owned(),
            pos: type_pos,
            label: Some(Label::Optional),
            ty,
            type_pos,
            number,
            number_pos: type_pos,
            options: FieldOptions::default(),
            oneof: None,
        };
        message.messages.push(Message {
            name: entry_name.clone(),
            pos: field.pos,
            fields: vec![
                entry_field("key", 1, FieldType::Scalar(key_type), key_pos),
                entry_field("value", 2, value_type, value_pos),
            ],
            oneofs: Vec::new(),
            messages: Vec::new(),
            enums: Vec::new(),
            reserved: Reserved::default(),
            deprecated: None,
            map_entry: true,
        });
        field.ty = FieldType::Named(entry_name);
        message.fields.push(field);
        Ok(())
    }

    fn field_options(&mut self) -> Result<FieldOptions> {
        self.expect_symbol('[')?;
        let mut options = FieldOptions::default();
        loop {
            options::field_option(self, &mut options)?;
            if self.eat_symbol(']') {
                return Ok(options);
            }
            self.expect_symbol(',')?;
        }
    }

    fn enum_(&mut self) -> Result<Enum> {
        self.advance();
        let (name, pos) = self.ident("an enum name")?;
        let mut e = Enum {
            name,
            pos,
            values: Vec::new(),
            allow_alias: None,
            deprecated: None,
            reserved: Reserved::default(),
        };
        self.expect_symbol('{')?;
        while !self.eat_symbol('}') {
            if self.eat_symbol(';') {
                continue;
            }
            if self.is_keyword("option") {
                self.advance();
                options::enum_option(self, &mut e)?;
            } else if self.is_keyword("reserved") {
                self.reserved(&mut e.reserved, true)?;
            } else {
                let value = self.enum_value()?;
                e.values.push(value);
            }
        }
        if e.values.is_empty() {
            return Err(Located::new(pos, "enums must contain at least one value"));
        }
        Ok(e)
    }

    fn enum_value(&mut self) -> Result<EnumValue> {
        let (name, pos) = self.ident("an enum value name")?;
        self.expect_symbol('=')?;
        let number_pos = self.pos();
        let number = self.signed_int("an enum value number")?;
        if i32::try_from(number).is_err() {
            return Err(Located::new(
                number_pos,
                "enum values must fit in a 32-bit signed integer",
            ));
        }
        let mut value = EnumValue {
            name,
            pos,
            number,
            deprecated: None,
        };
        if self.eat_symbol('[') {
            loop {
                if let Some(v) = options::value_option(self)? {
                    value.deprecated = Some(v);
                }
                if self.eat_symbol(']') {
                    break;
                }
                self.expect_symbol(',')?;
            }
        }
        self.expect_symbol(';')?;
        Ok(value)
    }

    fn signed_int(&mut self, what: &str) -> Result<i64> {
        let negative = self.eat_symbol('-');
        let pos = self.pos();
        match self.peek().kind {
            Kind::Int(n) => {
                self.advance();
                let n =
                    i64::try_from(n).map_err(|_| Located::new(pos, "integer is out of range"))?;
                Ok(if negative { -n } else { n })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// `reserved 2, 9 to 11, 40 to max;` or `reserved "a", "b";`.
    fn reserved(&mut self, into: &mut Reserved, in_enum: bool) -> Result<()> {
        self.advance();
        if matches!(self.peek().kind, Kind::Str(_)) {
            loop {
                let (name, pos) = self.string("a reserved name")?;
                into.names.push((name, pos));
                if !self.eat_symbol(',') {
                    break;
                }
            }
            self.expect_symbol(';')?;
            return Ok(());
        }
        let max = if in_enum {
            i64::from(i32::MAX)
        } else {
            MAX_FIELD_NUMBER
        };
        loop {
            let pos = self.pos();
            let start = self.signed_int("a reserved number or name")?;
            let end = if self.is_keyword("to") {
                self.advance();
                if self.is_keyword("max") {
                    self.advance();
                    max
                } else {
                    self.signed_int("a number or `max`")?
                }
            } else {
                start
            };
            let min = if in_enum { i64::from(i32::MIN) } else { 1 };
            if start < min || end > max {
                return Err(Located::new(
                    pos,
                    format!("reserved numbers must be between {min} and {max}"),
                ));
            }
            if end < start {
                return Err(Located::new(pos, "reserved range end is before its start"));
            }
            into.ranges.push((start, end, pos));
            if !self.eat_symbol(',') {
                break;
            }
        }
        self.expect_symbol(';')?;
        Ok(())
    }

    /// `option name = value;` at file, message or oneof level; returns a `deprecated`
    /// value (the one option these levels keep).
    fn option_statement(&mut self, context: Context) -> Result<Option<bool>> {
        let kept = options::statement_option(self, context)?;
        self.expect_symbol(';')?;
        Ok(kept)
    }

    /// A constant: `true`, `-1`, `1.5`, `-inf`, `"text" "more"`, or `{ aggregate }`.
    pub(super) fn constant(&mut self) -> Result<(Constant, Pos)> {
        let pos = self.pos();
        let sign: i8 = if self.eat_symbol('-') {
            -1
        } else {
            self.eat_symbol('+');
            1
        };
        let t = self.peek();
        let value = match &t.kind {
            Kind::Int(n) => Constant::Int(i128::from(*n) * i128::from(sign)),
            Kind::Float(f) => Constant::Float(*f * f64::from(sign)),
            Kind::Ident(w) if sign == -1 => match w.as_str() {
                "inf" => Constant::Float(f64::NEG_INFINITY),
                "nan" => Constant::Float(f64::NAN),
                _ => return Err(self.unexpected("a number")),
            },
            Kind::Ident(w) => Constant::Ident(w.clone()),
            Kind::Str(_) if sign == 1 => {
                let mut bytes = Vec::new();
                while let Kind::Str(s) = &self.peek().kind {
                    bytes.extend_from_slice(s);
                    self.advance();
                }
                return Ok((Constant::Str(bytes), pos));
            }
            Kind::Symbol('{') if sign == 1 => {
                self.skip_aggregate()?;
                return Ok((Constant::Aggregate, pos));
            }
            _ => return Err(self.unexpected("a constant")),
        };
        self.advance();
        Ok((value, pos))
    }

    /// Skips `{ … }` (a text-format option value) with balanced braces, no recursion.
    fn skip_aggregate(&mut self) -> Result<()> {
        let start = self.pos();
        let mut depth = 0usize;
        loop {
            match self.advance().kind {
                Kind::Symbol('{') => depth += 1,
                Kind::Symbol('}') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Kind::Eof => return Err(Located::new(start, "option value is never closed")),
                _ => {}
            }
        }
    }
}

static EOF: Token = Token {
    kind: Kind::Eof,
    pos: Pos { line: 0, column: 0 },
};
