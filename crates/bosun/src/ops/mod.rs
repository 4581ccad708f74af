//! Operator commands that talk to a running hub over its REST API:
//! `bosun device|twin|group|method|c2d|events …`.
//!
//! Each command group keeps its clap arguments, `--help` examples and output next to
//! the code that runs it (the top-level `cli.rs` only names the groups), so adding a
//! verb touches one file.
//!
//! Layout:
//! - `client`: blocking HTTP/1.1 over `TcpStream`: requests, responses, chunked bodies.
//! - `sse`: the `text/event-stream` format, for `events tail`.
//! - `api`: address and token resolution, JSON calls, problem documents as errors.
//! - `table`: human output (aligned tables, `name: value` lines).
//! - `device`, `twin`, `group`, `method`, `c2d`, `events`, `series` (and anomalies),
//!   `capture`: one command group per file.
//! - `enrollment`: provisioning enrollments, and deriving group members' keys.
//! - `ca`: the device CA; unlike the others it works on the data directory, not the API.
//! - `schema`: Protobuf schemas for the pipeline (`.proto` files or descriptor sets).
//! - `dsp`: offline vibration analytics on raw recordings (`crates/analytics`); no API.
//!
//! Exit codes: 0 ok, 1 failure (the API's problem title and detail on stderr), 2 usage
//! (clap, including flag values that do not parse, such as bad JSON).

pub(crate) mod api;
pub(crate) mod c2d;
pub(crate) mod ca;
pub(crate) mod capture;
pub(crate) mod client;
pub(crate) mod demo;
pub(crate) mod device;
pub(crate) mod dsp;
pub(crate) mod enrollment;
pub(crate) mod events;
pub(crate) mod firmware;
pub(crate) mod group;
pub(crate) mod method;
pub(crate) mod rollout;
pub(crate) mod schema;
pub(crate) mod series;
pub(crate) mod sim;
pub(crate) mod sse;
pub(crate) mod table;
pub(crate) mod twin;

use std::io::{self, Write};

use clap::ValueEnum;
use serde_json::{json, Value};

use crate::ops::api::Output;
use crate::ops::table::Table;

/// Writes `text` to stdout. A closed stdout (`bosun … | head`) is not a failure: the
/// reader has what it wanted.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `KEY=VALUE` (the value may contain `=`), for `--tag` and `--property`.
pub(crate) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Any JSON value, for `--payload`.
pub(crate) fn parse_json(s: &str) -> Result<Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))
}

/// A JSON object, for `--desired` and `--tags`.
pub(crate) fn parse_json_object(s: &str) -> Result<Value, String> {
    match parse_json(s)? {
        value @ Value::Object(_) => Ok(value),
        _ => Err("expected a JSON object, like '{\"mode\":\"alarm\"}'".to_owned()),
    }
}

/// The command-line (and wire) name of a clap value.
pub(crate) fn value_name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// The items of one or more pages of a listing, and where the server said to go on.
pub(crate) struct Pages {
    /// Every item read.
    pub(crate) items: Vec<Value>,
    /// The continuation after the last page read; `None` when that was the last.
    pub(crate) continuation: Option<String>,
}

/// Reads one page, or every page with `all`; `fetch` reads the page after the given
/// continuation (`None`: the first). Every listing command pages the same way.
pub(crate) fn collect_pages(
    all: bool,
    mut fetch: impl FnMut(Option<&str>) -> anyhow::Result<Value>,
) -> anyhow::Result<Pages> {
    let mut items = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut page = fetch(continuation.as_deref())?;
        if let Some(Value::Array(page_items)) = page.get_mut("items").map(Value::take) {
            items.extend(page_items);
        }
        continuation = page["continuation"].as_str().map(str::to_owned);
        if !all || continuation.is_none() {
            return Ok(Pages {
                items,
                continuation,
            });
        }
    }
}

/// Prints pages as the API's `{items, continuation}` JSON, or as `table` with a hint on
/// stderr (`more`) when further pages exist.
pub(crate) fn print_pages(
    pages: &Pages,
    output: Output,
    table: impl FnOnce(&[Value]) -> Table,
    more: &str,
) -> anyhow::Result<()> {
    match output {
        Output::Json => {
            let mut body = json!({ "items": pages.items });
            if let Some(c) = &pages.continuation {
                body["continuation"] = json!(c);
            }
            api::print_json(&body)
        }
        Output::Table => {
            emit(&table(&pages.items).render())?;
            if pages.continuation.is_some() {
                eprintln!("({more})");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_key_value("a="), Ok(("a".into(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
        assert!(parse_json("{").is_err());
        assert_eq!(parse_json("\"x\""), Ok(Value::from("x")));
        assert!(parse_json_object("[1]").is_err());
        assert!(parse_json_object("{\"a\":1}").is_ok());
        assert_eq!(value_name(device::AuthKind::X509), "x509");
    }
}
