//! `bosun group put|list|get|delete|devices`: device groups through the REST API.
//!
//! A group is a name for a twin-query condition (`--where`, the WHERE part of
//! `SELECT * FROM devices WHERE …`); its devices are whichever match when asked, so
//! `group devices` follows tag and property changes without anyone editing the group.
//! The hub checks the condition and reports errors with their position in it.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::api::{print_json, query, segment, Api, ApiArgs, Output};
use super::table::{fields, text, Table};

/// `bosun group --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun group put plant-7 --where \"tags.site = 'plant-7'\"
  bosun group list
  bosun group devices plant-7 --all --output json
  bosun group delete plant-7

A group is a saved twin-query condition: a device belongs to it while its twin matches,
so tagging a device is enough to move it between groups.";

const PUT_EXAMPLES: &str = "\
Examples:
  bosun group put plant-7 --where \"tags.site = 'plant-7'\"
  bosun group put alarms --where \"tags.site = 'plant-7' AND properties.reported.mode = 'alarm'\"
  bosun group put old-fw --where \"properties.reported.firmware.version < '2.0.0'\"

Putting an existing group replaces its condition. A condition that does not parse is
refused (exit 1) with the position of the error in it.";

const LIST_EXAMPLES: &str = "\
Examples:
  bosun group list
  bosun group list --output json";

const GET_EXAMPLES: &str = "\
Examples:
  bosun group get plant-7
  bosun group get plant-7 --output json";

const DELETE_EXAMPLES: &str = "\
Examples:
  bosun group delete plant-7        # the devices stay; only the group goes";

const DEVICES_EXAMPLES: &str = "\
Examples:
  bosun group devices plant-7
  bosun group devices plant-7 --all --output json | jq -r '.items[].deviceId'
  bosun group devices plant-7 --limit 10";

/// `bosun group …`.
#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: GroupCommand,
}

/// The group verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Define a group by a twin-query condition, or replace its condition.
    #[command(after_help = PUT_EXAMPLES)]
    Put(PutArgs),
    /// List every group.
    #[command(after_help = LIST_EXAMPLES)]
    List,
    /// Show one group's definition.
    #[command(after_help = GET_EXAMPLES)]
    Get(NameArg),
    /// Delete a group (its devices are untouched).
    #[command(after_help = DELETE_EXAMPLES)]
    Delete(NameArg),
    /// List the devices that match a group now (one page unless --all).
    #[command(after_help = DEVICES_EXAMPLES)]
    Devices(DevicesArgs),
}

/// A group name.
#[derive(Debug, Args)]
pub(crate) struct NameArg {
    /// Group name.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

/// `group put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// Group name: 1–128 of A–Z a–z 0–9 - . % _ * ? ! ( ) , : = @ $ '
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// The condition: the WHERE part of a twin query, e.g. "tags.site = 'plant-7'".
    #[arg(long = "where", value_name = "CONDITION")]
    pub(crate) condition: String,
}

/// `group devices`.
#[derive(Debug, Args)]
pub(crate) struct DevicesArgs {
    /// Group name.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// Devices per page (1–1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub(crate) limit: Option<u16>,
    /// Fetch every page, not just the first.
    #[arg(long)]
    pub(crate) all: bool,
}

/// Runs `bosun group …`.
pub(crate) fn run(args: &GroupArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    let output = args.api.output;
    match &args.command {
        GroupCommand::Put(put) => {
            let body = json!({ "condition": put.condition });
            let reply = api.call("PUT", &group_path(&put.name), Some(&body), &[])?;
            show_group(&reply.json, output)
        }
        GroupCommand::List => {
            let list = api.get("/api/groups")?;
            match output {
                Output::Json => print_json(&list),
                Output::Table => {
                    let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                    super::emit(&group_table(items).render())
                }
            }
        }
        GroupCommand::Get(NameArg { name }) => show_group(&api.get(&group_path(name))?, output),
        GroupCommand::Delete(NameArg { name }) => {
            api.call("DELETE", &group_path(name), None, &[])?;
            if output == Output::Table {
                super::emit(&format!("deleted {}\n", super::table::sanitize(name)))?;
            }
            Ok(())
        }
        GroupCommand::Devices(devices) => run_devices(&api, devices, output),
    }
}

/// `/api/groups/NAME`, the name encoded.
fn group_path(name: &str) -> String {
    format!("/api/groups/{}", segment(name))
}

/// `group devices`: one page, or all of them with `--all`.
fn run_devices(api: &Api, args: &DevicesArgs, output: Output) -> Result<()> {
    let pages = super::collect_pages(args.all, |continuation| {
        api.get(&format!(
            "{}/devices{}",
            group_path(&args.name),
            query(&[
                ("limit", args.limit.map(|l| l.to_string())),
                ("continuation", continuation.map(str::to_owned)),
            ])
        ))
    })?;
    let more = "more devices: add --all, or a larger --limit";
    super::print_pages(&pages, output, member_table, more)
}

/// The group listing table.
fn group_table(items: &[Value]) -> Table {
    let mut table = Table::new(&["GROUP", "CREATED", "CONDITION"]);
    for g in items {
        table.push(vec![
            text(g, "name"),
            text(g, "createdTime"),
            text(g, "condition"),
        ]);
    }
    table
}

/// The member listing table.
fn member_table(items: &[Value]) -> Table {
    let mut table = Table::new(&["DEVICE", "STATUS", "CONNECTION"]);
    for d in items {
        table.push(vec![
            text(d, "deviceId"),
            text(d, "status"),
            text(d, "connectionState"),
        ]);
    }
    table
}

/// One group, as `name: value` lines or JSON.
fn show_group(group: &Value, output: Output) -> Result<()> {
    if output == Output::Json {
        return print_json(group);
    }
    super::emit(&fields(&[
        ("group", text(group, "name")),
        ("where", text(group, "condition")),
        ("created", text(group, "createdTime")),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_member_rows() {
        let groups = [json!({
            "name": "plant-7",
            "condition": "tags.site = 'plant-7'",
            "createdTime": "2025-01-01T00:00:00.000Z",
        })];
        assert_eq!(
            group_table(&groups).render(),
            "GROUP    CREATED                   CONDITION\n\
             plant-7  2025-01-01T00:00:00.000Z  tags.site = 'plant-7'\n"
        );
        let members = [
            json!({"deviceId": "pump-7", "status": "enabled", "connectionState": "connected"}),
            json!({"deviceId": "x\u{1b}[2J", "status": "disabled"}),
        ];
        assert_eq!(
            member_table(&members).render(),
            "DEVICE  STATUS    CONNECTION\n\
             pump-7  enabled   connected\n\
             x\u{fffd}[2J   disabled  -\n"
        );
        assert_eq!(group_path("a b/c"), "/api/groups/a%20b%2Fc");
    }
}
