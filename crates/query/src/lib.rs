//! The SQL-like twin query language of Azure IoT Hub, the subset bosun supports:
//!
//! ```text
//! SELECT * | SELECT path[, path...] | SELECT COUNT() [AS name]
//! FROM source [WHERE condition]
//! ```
//!
//! The source after `FROM` is any identifier; the caller decides which it serves (twin
//! queries want `devices`, see [`parse_from`]; telemetry rules read `telemetry` or
//! `anomalies`, see [`Query::source`]).
//!
//! Paths are dotted (`deviceId`, `tags.site`, `properties.reported.mode`, `status`,
//! `connectionState`, `$system.contentType`). A segment that is a decimal number also
//! indexes an array (`top.0.feature`); on an object it is an ordinary key. Conditions are `path op literal` (`= != <> < <= > >=`),
//! `path IN ['a', 'b']` (or `(...)`), `IS_DEFINED(path)`, `AND`, `OR`, `NOT` and
//! parentheses; literals are `'single'`/`"double"` quoted strings, numbers, `true`,
//! `false`, `null`. Keywords are case-insensitive. See `ast` for how comparisons decide
//! (a missing path or a type mismatch is false for every operator).
//!
//! The documents queried are the service view of a twin plus top-level `status` and
//! `connectionState`; this module neither knows nor fetches them. Input is bounded
//! ([`MAX_QUERY_LEN`], [`MAX_NESTING`]) so hostile text cannot exhaust the stack.
//!
//! Layout: `lexer` (text to tokens), `parser` (tokens to a [`Query`]), `ast` (the query's
//! parts and how conditions decide).

mod ast;
mod lexer;
mod parser;

use serde_json::{Map, Value};

use ast::{Cond, Path};

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses and `NOT`s accepted.
pub const MAX_NESTING: usize = 32;
/// The count's name when `COUNT()` has no `AS`, as in Azure.
pub const DEFAULT_COUNT_ALIAS: &str = "numberOfDevices";

/// A parsed query, ready to run against many documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What to return per match.
    select: Select,
    /// The name after `FROM`.
    source: Source,
    /// The `WHERE` condition; `None` matches everything.
    condition: Option<Cond>,
}

/// The `SELECT` clause.
#[derive(Debug, Clone, PartialEq)]
enum Select {
    /// `*`: whole documents.
    All,
    /// Listed paths.
    Paths(Vec<Path>),
    /// `COUNT() AS alias`.
    Count(String),
}

/// The name after `FROM` and where it was written, for errors about it.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    /// As written.
    name: String,
    /// Byte offset of the name in the query text.
    position: usize,
}

/// Why query text was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {position}: {message}")]
pub struct QueryError {
    /// Byte offset in the query text (at most its length; the length means "at the end").
    pub position: usize,
    /// What was expected or what is wrong.
    pub message: String,
}

impl QueryError {
    /// An error at `position`.
    fn new(position: usize, message: impl Into<String>) -> Self {
        QueryError {
            position,
            message: message.into(),
        }
    }
}

/// Parses query text. Errors carry the byte offset of the problem.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    parse_text(text, None)
}

/// Checks the length, then parses.
fn parse_text(text: &str, source: Option<&str>) -> Result<Query, QueryError> {
    if text.len() > MAX_QUERY_LEN {
        let message = format!("query is longer than {MAX_QUERY_LEN} bytes");
        return Err(QueryError::new(MAX_QUERY_LEN, message));
    }
    parser::parse_query(text, source)
}

/// Parses query text that must read from `source` (any case), as twin queries must read
/// `FROM devices`. Any other source is an error at the source's position, reported
/// exactly as when the source was part of the grammar (`expected devices, found
/// 'modules'`), before any error after it.
pub fn parse_from(text: &str, source: &str) -> Result<Query, QueryError> {
    parse_text(text, Some(source))
}

impl Query {
    /// Does `doc` satisfy the `WHERE` condition (true without one)? A document that is
    /// not an object has no paths, so only conditions such as `NOT …` can hold for it.
    pub fn matches(&self, doc: &Value) -> bool {
        match doc {
            Value::Object(object) => self.matches_object(object),
            _ => self.matches_object(&Map::new()),
        }
    }

    /// [`Query::matches`] for a document held as a map, sparing callers that build
    /// documents as maps (telemetry rules) a copy into a `Value`.
    pub fn matches_object(&self, doc: &Map<String, Value>) -> bool {
        self.condition.as_ref().is_none_or(|c| c.holds(doc))
    }

    /// The name after `FROM`, as written (compare it ignoring ASCII case).
    pub fn source(&self) -> &str {
        &self.source.name
    }

    /// Byte offset of the source name in the query text, to point errors at it.
    pub fn source_position(&self) -> usize {
        self.source.position
    }

    /// Is the source one of `allowed` (any case)? If not, the error points at the source
    /// and names what was expected, e.g. `expected devices, found 'modules'`.
    pub fn expect_source(&self, allowed: &[&str]) -> Result<(), QueryError> {
        if allowed
            .iter()
            .any(|name| self.source.name.eq_ignore_ascii_case(name))
        {
            return Ok(());
        }
        let message = format!(
            "expected {}, found '{}'",
            allowed.join(" or "),
            self.source()
        );
        Err(QueryError::new(self.source.position, message))
    }

    /// Is this a `SELECT *` query (whole documents)?
    pub fn selects_all(&self) -> bool {
        matches!(self.select, Select::All)
    }

    /// The selected paths as written, empty for `SELECT *` and `COUNT()`.
    pub fn selected_paths(&self) -> impl Iterator<Item = &str> {
        let paths = match &self.select {
            Select::Paths(paths) => paths.as_slice(),
            _ => &[],
        };
        paths.iter().map(|path| path.text.as_str())
    }

    /// What the query returns for a matching `doc`: the whole document for `SELECT *`, an
    /// object keyed by each selected path as written (`{"deviceId": .., "tags.site": ..}`)
    /// for a path list, leaving out paths the document lacks. A count query has no
    /// per-document result: `{}` (see [`Query::count_result`]).
    pub fn project(&self, doc: &Value) -> Value {
        match &self.select {
            Select::All => doc.clone(),
            Select::Paths(paths) => Value::Object(project_paths(paths, doc)),
            Select::Count(_) => Value::Object(Map::new()),
        }
    }

    /// The selected paths of `doc`, keyed as written and leaving out missing ones (as
    /// [`Query::project`]); `SELECT *` and `COUNT()` give `{}`, since only the caller
    /// knows what "everything" means for its documents.
    pub fn project_paths(&self, doc: &Map<String, Value>) -> Map<String, Value> {
        match &self.select {
            Select::Paths(paths) => paths
                .iter()
                .filter_map(|path| Some((path.text.clone(), path.lookup_in(doc)?.clone())))
                .collect(),
            _ => Map::new(),
        }
    }

    /// Is this a `SELECT COUNT()` query (one result for all matches)?
    pub fn is_count(&self) -> bool {
        matches!(self.select, Select::Count(_))
    }

    /// The name of the count: the `AS` name, else `numberOfDevices`.
    pub fn count_alias(&self) -> &str {
        match &self.select {
            Select::Count(alias) => alias,
            _ => DEFAULT_COUNT_ALIAS,
        }
    }

    /// The single result row of a count query, `{"<alias>": count}`.
    pub fn count_result(&self, count: u64) -> Value {
        let mut row = Map::new();
        row.insert(self.count_alias().to_owned(), Value::from(count));
        Value::Object(row)
    }
}

/// Picks the selected paths out of a document.
fn project_paths(paths: &[Path], doc: &Value) -> Map<String, Value> {
    paths
        .iter()
        .filter_map(|path| Some((path.text.clone(), path.lookup(doc)?.clone())))
        .collect()
}

#[cfg(test)]
mod tests;
