//! Every name the request's files define, for duplicate checks and type resolution.
//!
//! Protobuf has one namespace per scope: packages, messages, enums, fields, oneofs and
//! enum values all live in it (enum values beside their enum, C++ style), so `Msg.foo`
//! may not be both a field and a nested type. Resolution follows protoc: a relative name
//! is looked up from the innermost scope outwards by its first component; once that
//! component is found, the rest must be inside it (no further backtracking), and only
//! files the current file imports (directly, or through `import public`) are visible.

use std::collections::{HashMap, HashSet};

use super::ast::{Enum, File, Message, Syntax};
use super::error::{Located, Pos, ProtoError};
use super::MAX_FULL_NAME;

/// What a name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymKind {
    Message,
    Enum,
    Field,
    Oneof,
    EnumValue,
    Service,
    Method,
}

impl SymKind {
    fn noun(self) -> &'static str {
        match self {
            SymKind::Message => "message",
            SymKind::Enum => "enum",
            SymKind::Field => "field",
            SymKind::Oneof => "oneof",
            SymKind::EnumValue => "enum value",
            SymKind::Service => "service",
            SymKind::Method => "method",
        }
    }
}

/// One defined name.
#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    pub(crate) kind: SymKind,
    /// Index of the defining file.
    pub(crate) file: usize,
    /// For enums: the value names (defaults name one) and whether the file is proto3.
    pub(crate) values: Vec<String>,
    pub(crate) proto3: bool,
}

/// What a lookup found: can it have members, is it a type.
#[derive(Debug, Clone, Copy)]
struct Found {
    aggregate: bool,
    is_type: bool,
}

/// A resolved type reference (borrowing the symbol: an enum's value list is not copied
/// for every field of its type).
#[derive(Debug, Clone)]
pub(crate) struct Resolved<'a> {
    /// Fully qualified, without the leading dot.
    pub(crate) full_name: String,
    pub(crate) symbol: &'a Symbol,
}

/// All names of all files in the request.
#[derive(Debug, Default)]
pub(crate) struct Symbols {
    names: HashMap<String, Symbol>,
    /// Package (and parent package) names → the files declaring them.
    packages: HashMap<String, Vec<usize>>,
}

/// `scope.name`, or `name` at the root.
pub(crate) fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

impl Symbols {
    /// Collects the names of every file; `names[i]` is file `i`'s name for errors.
    pub(crate) fn collect(files: &[File], names: &[&str]) -> Result<Symbols, ProtoError> {
        let mut symbols = Symbols::default();
        for (i, file) in files.iter().enumerate() {
            let in_file = |e: Located| e.in_file(names.get(i).copied().unwrap_or(""));
            symbols.add_file(i, file, names).map_err(in_file)?;
        }
        Ok(symbols)
    }

    fn add_file(&mut self, i: usize, file: &File, names: &[&str]) -> Result<(), Located> {
        let package = file.package.as_ref().map_or("", |(p, _)| p.as_str());
        if let Some((p, pos)) = &file.package {
            let mut prefix = String::new();
            for part in p.split('.') {
                prefix = join(&prefix, part);
                if let Some(existing) = self.names.get(&prefix) {
                    return Err(self.conflict(*pos, &prefix, existing, names));
                }
                let files = self.packages.entry(prefix.clone()).or_default();
                if !files.contains(&i) {
                    files.push(i);
                }
            }
        }
        let proto3 = file.syntax == Syntax::Proto3;
        for m in &file.messages {
            self.add_message(i, package, m, proto3, names)?;
        }
        for e in &file.enums {
            self.add_enum(i, package, e, proto3, names)?;
        }
        for service in &file.services {
            let full = join(package, &service.name);
            self.add(
                i,
                &full,
                service.pos,
                SymKind::Service,
                Vec::new(),
                proto3,
                names,
            )?;
            for m in &service.methods {
                let method = join(&full, &m.name);
                self.add(
                    i,
                    &method,
                    m.pos,
                    SymKind::Method,
                    Vec::new(),
                    proto3,
                    names,
                )?;
            }
        }
        Ok(())
    }

    fn add_message(
        &mut self,
        i: usize,
        scope: &str,
        m: &Message,
        proto3: bool,
        names: &[&str],
    ) -> Result<(), Located> {
        let full = join(scope, &m.name);
        self.add(i, &full, m.pos, SymKind::Message, Vec::new(), proto3, names)?;
        for f in &m.fields {
            self.add(
                i,
                &join(&full, &f.name),
                f.pos,
                SymKind::Field,
                Vec::new(),
                proto3,
                names,
            )?;
        }
        for (o, pos) in &m.oneofs {
            self.add(
                i,
                &join(&full, o),
                *pos,
                SymKind::Oneof,
                Vec::new(),
                proto3,
                names,
            )?;
        }
        for nested in &m.messages {
            self.add_message(i, &full, nested, proto3, names)?;
        }
        for e in &m.enums {
            self.add_enum(i, &full, e, proto3, names)?;
        }
        Ok(())
    }

    fn add_enum(
        &mut self,
        i: usize,
        scope: &str,
        e: &Enum,
        proto3: bool,
        names: &[&str],
    ) -> Result<(), Located> {
        let values = e.values.iter().map(|v| v.name.clone()).collect();
        self.add(
            i,
            &join(scope, &e.name),
            e.pos,
            SymKind::Enum,
            values,
            proto3,
            names,
        )?;
        for v in &e.values {
            let full = join(scope, &v.name);
            self.add(i, &full, v.pos, SymKind::EnumValue, Vec::new(), proto3, names)
                .map_err(|mut err| {
                    err.message.push_str(
                        "; enum values use C++ scoping: they are siblings of their enum, not children of it",
                    );
                    err
                })?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        file: usize,
        full: &str,
        pos: Pos,
        kind: SymKind,
        values: Vec<String>,
        proto3: bool,
        names: &[&str],
    ) -> Result<(), Located> {
        if full.len() > MAX_FULL_NAME {
            return Err(Located::new(
                pos,
                format!("full name longer than {MAX_FULL_NAME} characters"),
            ));
        }
        if self.packages.contains_key(full) {
            return Err(Located::new(
                pos,
                format!("`{full}` is already defined as a package"),
            ));
        }
        if let Some(existing) = self.names.get(full) {
            return Err(self.conflict(pos, full, existing, names));
        }
        let symbol = Symbol {
            kind,
            file,
            values,
            proto3,
        };
        self.names.insert(full.to_owned(), symbol);
        Ok(())
    }

    fn conflict(&self, pos: Pos, full: &str, existing: &Symbol, names: &[&str]) -> Located {
        let file = names.get(existing.file).copied().unwrap_or("");
        Located::new(
            pos,
            format!(
                "`{full}` is already defined (as a {} in {file})",
                existing.kind.noun()
            ),
        )
    }

    /// What `full` is, if a visible file defines it (or declares it as a package).
    fn visible(&self, full: &str, visible: &HashSet<usize>) -> Option<Found> {
        if let Some(s) = self.names.get(full) {
            let found = match s.kind {
                SymKind::Message => Found {
                    aggregate: true,
                    is_type: true,
                },
                SymKind::Enum => Found {
                    aggregate: true,
                    is_type: true,
                },
                SymKind::Service => Found {
                    aggregate: true,
                    is_type: false,
                },
                _ => Found {
                    aggregate: false,
                    is_type: false,
                },
            };
            return visible.contains(&s.file).then_some(found);
        }
        let files = self.packages.get(full)?;
        let package = Found {
            aggregate: true,
            is_type: false,
        };
        files.iter().any(|f| visible.contains(f)).then_some(package)
    }

    /// Resolves the type name `name` as written in scope `scope` (a message's full
    /// name, or the package) of a file that sees `visible`.
    pub(crate) fn resolve(
        &self,
        name: &str,
        scope: &str,
        visible: &HashSet<usize>,
        pos: Pos,
        names: &[&str],
    ) -> Result<Resolved<'_>, Located> {
        let full = match name.strip_prefix('.') {
            Some(absolute) => absolute.to_owned(),
            None => self.search(name, scope, visible, pos)?,
        };
        match self.names.get(&full) {
            Some(s) if visible.contains(&s.file) => match s.kind {
                SymKind::Message | SymKind::Enum => Ok(Resolved {
                    full_name: full,
                    symbol: s,
                }),
                other => Err(Located::new(
                    pos,
                    format!("`{name}` is not a type (it is a {})", other.noun()),
                )),
            },
            Some(s) => {
                let file = names.get(s.file).copied().unwrap_or("");
                Err(Located::new(
                    pos,
                    format!("`{name}` seems to be defined in {file}, which is not imported; add the import"),
                ))
            }
            None => Err(Located::new(pos, format!("unknown type `{name}`"))),
        }
    }

    /// The full name a relative reference denotes (it may not exist).
    fn search(
        &self,
        name: &str,
        scope: &str,
        visible: &HashSet<usize>,
        pos: Pos,
    ) -> Result<String, Located> {
        let (first, rest) = match name.split_once('.') {
            Some((first, rest)) => (first, Some(rest)),
            None => (name, None),
        };
        let mut scope = scope.to_owned();
        loop {
            let candidate = join(&scope, first);
            match (self.visible(&candidate, visible), rest) {
                (Some(found), None) if found.is_type => return Ok(candidate),
                (Some(found), Some(rest)) if found.aggregate => {
                    let full = join(&candidate, rest);
                    if self.visible(&full, visible).is_none() {
                        return Err(Located::new(
                            pos,
                            format!(
                                "`{name}` resolved to `{full}`, which is not defined; the innermost scope is searched first in name resolution, consider a leading `.` (`.{name}`)"
                            ),
                        ));
                    }
                    return Ok(full);
                }
                _ => {}
            }
            if scope.is_empty() {
                return Ok(name.to_owned());
            }
            scope = scope
                .rsplit_once('.')
                .map_or(String::new(), |(s, _)| s.to_owned());
        }
    }
}
