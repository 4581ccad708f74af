//! `bosun twin get|patch|query`: device twins and the twin query language, through the
//! REST API.

use anyhow::Result;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

use super::api::{print_json, segment, Api, ApiArgs, Output, Reply};
use super::table::Table;

/// `bosun twin --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun twin get pump-7
  bosun twin patch pump-7 --desired '{\"mode\":\"alarm\"}'
  bosun twin query \"SELECT * FROM devices WHERE properties.reported.mode = 'alarm'\"";

const GET_EXAMPLES: &str = "\
Examples:
  bosun twin get pump-7
  bosun twin get pump-7 --output json | jq .properties.reported";

const PATCH_EXAMPLES: &str = "\
Examples:
  bosun twin patch pump-7 --desired '{\"mode\":\"alarm\"}'
  bosun twin patch pump-7 --tags '{\"site\":\"north\",\"old\":null}'     # null removes a key
  bosun twin patch pump-7 --desired '{\"rate\":100}' --if-match '\"7\"'   # only if unchanged

With --if-match the patch is refused (exit 1) when someone changed the twin since you
read that ETag; `bosun twin get` prints the current one.";

const QUERY_EXAMPLES: &str = "\
Examples:
  bosun twin query \"SELECT * FROM devices WHERE tags.site = 'north'\"
  bosun twin query \"SELECT deviceId, properties.reported.firmware FROM devices\" --all
  bosun twin query \"SELECT * FROM devices\" --output json";

/// `bosun twin …`.
#[derive(Debug, Args)]
pub(crate) struct TwinArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: TwinCommand,
}

/// The twin verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum TwinCommand {
    /// Show a device's twin and its ETag.
    #[command(after_help = GET_EXAMPLES)]
    Get {
        /// Device id.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Merge-patch desired properties and/or tags.
    #[command(after_help = PATCH_EXAMPLES)]
    Patch(PatchArgs),
    /// Run a twin query.
    #[command(after_help = QUERY_EXAMPLES)]
    Query(QueryArgs),
}

/// `twin patch`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("changes").required(true).multiple(true).args(["desired", "tags"])))]
pub(crate) struct PatchArgs {
    /// Device id.
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Desired properties to merge, a JSON object.
    #[arg(long, value_name = "JSON", value_parser = super::parse_json_object)]
    pub(crate) desired: Option<Value>,
    /// Tags to merge, a JSON object.
    #[arg(long, value_name = "JSON", value_parser = super::parse_json_object)]
    pub(crate) tags: Option<Value>,
    /// Apply only if the twin's ETag is still this one (e.g. '"7"').
    #[arg(long, value_name = "ETAG")]
    pub(crate) if_match: Option<String>,
}

/// `twin query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The query, e.g. "SELECT * FROM devices WHERE tags.site = 'north'".
    #[arg(value_name = "QUERY")]
    pub(crate) query: String,
    /// Results per page (1–1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub(crate) limit: Option<u16>,
    /// Fetch every page, not just the first.
    #[arg(long)]
    pub(crate) all: bool,
}

/// Runs `bosun twin …`.
pub(crate) fn run(args: &TwinArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    let output = args.api.output;
    match &args.command {
        TwinCommand::Get { id } => {
            let reply = api.call("GET", &twin_path(id), None, &[])?;
            show_twin(&reply, output)
        }
        TwinCommand::Patch(patch) => {
            let body = patch_body(patch);
            let headers: Vec<(&'static str, String)> = patch
                .if_match
                .iter()
                .map(|etag| ("If-Match", etag.clone()))
                .collect();
            let reply = api.call("PATCH", &twin_path(&patch.id), Some(&body), &headers)?;
            show_twin(&reply, output)
        }
        TwinCommand::Query(query) => run_query(&api, query, output),
    }
}

fn twin_path(id: &str) -> String {
    format!("/api/devices/{}/twin", segment(id))
}

/// The API's patch document for the flags.
fn patch_body(patch: &PatchArgs) -> Value {
    let mut body = json!({});
    if let Some(tags) = &patch.tags {
        body["tags"] = tags.clone();
    }
    if let Some(desired) = &patch.desired {
        body["properties"] = json!({ "desired": desired });
    }
    body
}

/// A twin: the ETag line, then the document.
fn show_twin(reply: &Reply, output: Output) -> Result<()> {
    if output == Output::Table {
        let etag = reply.header("etag").unwrap_or("-");
        super::emit(&format!("etag: {}\n", super::table::sanitize(etag)))?;
    }
    // Pretty JSON escapes control characters, so it is safe on a terminal as it is.
    print_json(&reply.json)
}

/// `twin query`: pages until done with `--all`.
fn run_query(api: &Api, args: &QueryArgs, output: Output) -> Result<()> {
    let pages = super::collect_pages(args.all, |continuation| {
        let mut body = json!({ "query": args.query });
        if let Some(limit) = args.limit {
            body["limit"] = json!(limit);
        }
        if let Some(c) = continuation {
            body["continuation"] = json!(c);
        }
        Ok(api.call("POST", "/api/query", Some(&body), &[])?.json)
    })?;
    super::print_pages(
        &pages,
        output,
        Table::from_objects,
        "more results: add --all",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_documents() {
        let patch = PatchArgs {
            id: "d".into(),
            desired: Some(json!({"mode": "alarm"})),
            tags: Some(json!({"site": null})),
            if_match: None,
        };
        assert_eq!(
            patch_body(&patch),
            json!({"tags": {"site": null}, "properties": {"desired": {"mode": "alarm"}}})
        );
        assert_eq!(twin_path("a b"), "/api/devices/a%20b/twin");
    }
}
