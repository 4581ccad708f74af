//! A small, strict `.proto` compiler: source text → `FileDescriptorSet`, so Protobuf
//! schemas can be registered at run time as the `.proto` files device teams already
//! have, and decoded by the descriptor-set path ([`SchemaRegistry`]) without protoc.
//!
//! Supported, with protoc's rules: `syntax` (proto2, proto3; default proto2),
//! `package`, `import` / `import public` / `import weak` of files given in the same
//! request, `option` (see `options`: most are accepted and ignored), messages with
//! nested messages and enums, fields with labels (`optional`, `repeated`, proto2
//! `required`; proto3 `optional` gets its synthetic oneof), every scalar type,
//! message and enum references resolved by protobuf's scoping rules (relative or
//! `.pkg.Msg`), `map<K, V>` (the entry message synthesized as protoc does), `oneof`,
//! enums (with `allow_alias`), `reserved` numbers, ranges and names, field options
//! `packed`, `deprecated`, `default` (proto2) and `json_name`, `//` and `/* */`
//! comments. `service` blocks are compiled too (methods' types resolved and checked),
//! though bosun serves no RPCs: a file shared with an RPC API need not be edited.
//!
//! Refused with an error: editions, `extend` / `extensions`, groups, custom options,
//! imports of files not in the request (the well-known types
//! `google/protobuf/*.proto` included: use a descriptor set built with `protoc
//! --include_imports` for those). Every error names the file, line and column.
//!
//! No input panics; inputs are bounded ([`MAX_FILES`], [`MAX_FILE_BYTES`],
//! [`MAX_TOTAL_BYTES`], nesting depth 32, identifiers of 256 characters, dotted names
//! of 512 and full names of 1,024).
//!
//! Layout: `lexer` (text → tokens), `parser` and `options` (tokens → `ast`),
//! `symbols` (names and scoping), `build` (checks, descriptors), this file (files,
//! imports and their order).
//!
//! [`SchemaRegistry`]: crate::decode::SchemaRegistry

mod ast;
mod build;
mod error;
mod lexer;
mod options;
mod parser;
mod symbols;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use prost_reflect::prost::Message as _;
use prost_reflect::prost_types::{FileDescriptorProto, FileDescriptorSet};

pub use error::{Pos, ProtoError};

use ast::{File, ImportKind, Syntax};
use error::Located;

/// Most files one request may hold.
pub const MAX_FILES: usize = 64;
/// Largest single `.proto` file, in bytes.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Largest request (all files together), in bytes.
pub const MAX_TOTAL_BYTES: usize = 1024 * 1024;
/// Deepest nesting of messages in messages.
pub(crate) const MAX_NESTING: usize = 32;
/// Longest identifier, dotted name (package, type reference) and full name of a
/// declaration, in characters. protoc has no such limits; they keep name resolution
/// (which builds candidate names scope by scope) linear in practice.
pub(crate) const MAX_IDENT: usize = 256;
pub(crate) const MAX_DOTTED: usize = 512;
pub(crate) const MAX_FULL_NAME: usize = 1024;
/// The largest field number (2^29 - 1).
pub(crate) const MAX_FIELD_NUMBER: i64 = 536_870_911;

/// Compiles `.proto` files (name as imports refer to it, source text) into a
/// descriptor set, dependencies before the files that import them.
pub fn compile<I, N, T>(files: I) -> Result<FileDescriptorSet, ProtoError>
where
    I: IntoIterator<Item = (N, T)>,
    N: AsRef<str>,
    T: AsRef<str>,
{
    let sources: Vec<(N, T)> = files.into_iter().take(MAX_FILES + 1).collect();
    let names: Vec<&str> = sources.iter().map(|(n, _)| n.as_ref()).collect();
    check_request(&sources, &names)?;
    let mut parsed = Vec::with_capacity(sources.len());
    for (name, text) in &sources {
        let name = name.as_ref();
        let tokens = lexer::tokenize(text.as_ref()).map_err(|e| e.in_file(name))?;
        parsed.push(parser::parse(&tokens).map_err(|e| e.in_file(name))?);
    }
    let deps = dependencies(&parsed, &names)?;
    let order = order(&deps, &parsed, &names)?;
    let symbols = symbols::Symbols::collect(&parsed, &names)?;
    let mut out = Vec::with_capacity(parsed.len());
    for i in order {
        let (Some(file), Some(name)) = (parsed.get(i), names.get(i)) else {
            continue;
        };
        let visible = visible(i, &deps);
        let scope = build::Scope {
            symbols: &symbols,
            visible: &visible,
            names: &names,
            syntax: file.syntax,
        };
        out.push(file_descriptor(&scope, file, name).map_err(|e| e.in_file(name))?);
    }
    Ok(FileDescriptorSet { file: out })
}

/// [`compile`], then encoded: what `protoc --descriptor_set_out` would write.
pub fn compile_to_bytes<I, N, T>(files: I) -> Result<Vec<u8>, ProtoError>
where
    I: IntoIterator<Item = (N, T)>,
    N: AsRef<str>,
    T: AsRef<str>,
{
    compile(files).map(|set| set.encode_to_vec())
}

fn whole(file: &str, message: impl Into<String>) -> ProtoError {
    Located::new(Pos::default(), message).in_file(file)
}

/// Counts, sizes and names of the request's files.
fn check_request<N: AsRef<str>, T: AsRef<str>>(
    sources: &[(N, T)],
    names: &[&str],
) -> Result<(), ProtoError> {
    if sources.is_empty() {
        return Err(whole("", "no .proto files given"));
    }
    if sources.len() > MAX_FILES {
        return Err(whole(
            "",
            format!("more than {MAX_FILES} files in one request"),
        ));
    }
    let mut total = 0usize;
    let mut seen = HashSet::new();
    for (name, text) in sources {
        let (name, len) = (name.as_ref(), text.as_ref().len());
        if len > MAX_FILE_BYTES {
            return Err(whole(
                name,
                format!("file is {len} bytes, over the limit of {MAX_FILE_BYTES}"),
            ));
        }
        total += len;
        let bad_name = name.is_empty()
            || name.len() > 256
            || name.starts_with('/')
            || name.contains('\\')
            || name
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
            || !name.ends_with(".proto");
        if bad_name {
            return Err(whole(name, "file names must be relative paths ending in .proto (like acme/reading.proto), without `.` or `..` parts"));
        }
        if !seen.insert(name) {
            return Err(whole(name, "file given twice"));
        }
    }
    if total > MAX_TOTAL_BYTES {
        return Err(whole(
            names.first().copied().unwrap_or(""),
            format!("request is {total} bytes, over the limit of {MAX_TOTAL_BYTES}"),
        ));
    }
    Ok(())
}

/// Per file, the indices of its imports (checked: in the request, each once).
fn dependencies(
    parsed: &[File],
    names: &[&str],
) -> Result<Vec<Vec<(usize, ImportKind)>>, ProtoError> {
    let mut all = Vec::with_capacity(parsed.len());
    for (file, name) in parsed.iter().zip(names) {
        let mut deps = Vec::with_capacity(file.imports.len());
        for import in &file.imports {
            let at = |m: String| Located::new(import.pos, m).in_file(name);
            let Some(index) = names.iter().position(|n| *n == import.path) else {
                if import.path.starts_with("google/protobuf/") {
                    return Err(at(format!(
                        "`{}` is a well-known type file, which bosun does not ship; register a descriptor set built with protoc --include_imports instead",
                        import.path
                    )));
                }
                return Err(at(format!(
                    "import `{}` is not among the files given",
                    import.path
                )));
            };
            if deps.iter().any(|(d, _)| *d == index) {
                return Err(at(format!("import `{}` was listed twice", import.path)));
            }
            deps.push((index, import.kind));
        }
        all.push(deps);
    }
    Ok(all)
}

/// Files in an order where each comes after everything it imports; a cycle is an error.
fn order(
    deps: &[Vec<(usize, ImportKind)>],
    parsed: &[File],
    names: &[&str],
) -> Result<Vec<usize>, ProtoError> {
    let mut done = vec![false; deps.len()];
    let mut out = Vec::with_capacity(deps.len());
    while out.len() < deps.len() {
        let next = (0..deps.len()).find(|&i| {
            !done.get(i).copied().unwrap_or(true)
                && deps.get(i).is_some_and(|d| {
                    d.iter()
                        .all(|(j, _)| done.get(*j).copied().unwrap_or(false))
                })
        });
        let Some(i) = next else {
            let stuck = (0..deps.len())
                .find(|&i| !done.get(i).copied().unwrap_or(true))
                .unwrap_or(0);
            let name = names.get(stuck).copied().unwrap_or("");
            let pos = parsed
                .get(stuck)
                .and_then(|f| f.imports.first())
                .map_or(Pos::default(), |imp| imp.pos);
            return Err(Located::new(pos, "files import each other in a cycle").in_file(name));
        };
        if let Some(d) = done.get_mut(i) {
            *d = true;
        }
        out.push(i);
    }
    Ok(out)
}

/// The files whose names file `i` sees: itself, its imports, and what those re-export
/// with `import public` (transitively).
fn visible(i: usize, deps: &[Vec<(usize, ImportKind)>]) -> HashSet<usize> {
    let mut seen: HashSet<usize> = HashSet::from([i]);
    let mut stack: Vec<usize> = deps
        .get(i)
        .map(|d| d.iter().map(|(j, _)| *j).collect())
        .unwrap_or_default();
    while let Some(j) = stack.pop() {
        if seen.insert(j) {
            let public = deps
                .get(j)
                .into_iter()
                .flatten()
                .filter(|(_, k)| *k == ImportKind::Public);
            stack.extend(public.map(|(k, _)| *k));
        }
    }
    seen
}

fn file_descriptor(
    s: &build::Scope<'_>,
    file: &File,
    name: &str,
) -> Result<FileDescriptorProto, Located> {
    let package = file.package.as_ref().map_or("", |(p, _)| p.as_str());
    let mut message_type = Vec::with_capacity(file.messages.len());
    for m in &file.messages {
        message_type.push(build::message(s, package, m)?);
    }
    let mut enum_type = Vec::with_capacity(file.enums.len());
    for e in &file.enums {
        enum_type.push(build::enumeration(s, e)?);
    }
    let mut service = Vec::with_capacity(file.services.len());
    for svc in &file.services {
        service.push(build::service(s, package, svc)?);
    }
    let index_of = |kind: ImportKind| -> Vec<i32> {
        file.imports
            .iter()
            .zip(0..)
            .filter(|(imp, _)| imp.kind == kind)
            .map(|(_, i)| i)
            .collect()
    };
    Ok(FileDescriptorProto {
        name: Some(name.to_owned()),
        package: file.package.as_ref().map(|(p, _)| p.clone()),
        dependency: file.imports.iter().map(|imp| imp.path.clone()).collect(),
        public_dependency: index_of(ImportKind::Public),
        weak_dependency: index_of(ImportKind::Weak),
        message_type,
        enum_type,
        service,
        syntax: (file.syntax == Syntax::Proto3).then(|| "proto3".to_owned()),
        ..Default::default()
    })
}
