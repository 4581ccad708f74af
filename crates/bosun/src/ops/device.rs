//! `bosun device create|list|get|enable|disable|delete|keys`: the device registry, through
//! the REST API. Management verbs only; an on-device agent mode, if added later, gets
//! its own verb under `device`.

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use super::api::{print_json, query, segment, Api, ApiArgs, Output};
use super::table::{fields, text, Table};

/// `bosun device --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun device create pump-7 --group pumps --tag site=north
  bosun device list --status enabled --connection connected
  bosun device list --group pumps --all --output json
  bosun device disable pump-7
  bosun device delete pump-7              # needs an admin token
  bosun device keys pump-7                # connection string of a SAS device (admin)

The hub is found at --api (or BOSUN_API, default http://127.0.0.1:8080); the token is
--token, BOSUN_TOKEN, or ./bosun-data/admin.token on the hub's host.";

const CREATE_EXAMPLES: &str = "\
Examples:
  bosun device create pump-7
  bosun device create pump-7 --group pumps --tag site=north --tag line=2
  bosun device create spare-1 --disabled --auth-kind x509";

const LIST_EXAMPLES: &str = "\
Examples:
  bosun device list
  bosun device list --status disabled
  bosun device list --connection connected --group pumps
  bosun device list --tag site=north --all --output json";

const GET_EXAMPLES: &str = "\
Examples:
  bosun device get pump-7
  bosun device get pump-7 --output json";

const ENABLE_EXAMPLES: &str = "\
Examples:
  bosun device enable pump-7";

const DISABLE_EXAMPLES: &str = "\
Examples:
  bosun device disable pump-7       # refused at its next connect";

const DELETE_EXAMPLES: &str = "\
Examples:
  bosun device delete pump-7        # drops its twin and queued messages; admin only";

const KEYS_EXAMPLES: &str = "\
Examples:
  bosun device create pump-7 --auth-kind sas
  bosun device keys pump-7                  # the connection string for the device SDKs
  bosun device keys pump-7 --output json    # both keys too; admin only";

/// `bosun device …`.
#[derive(Debug, Args)]
pub(crate) struct DeviceArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: DeviceCommand,
}

/// The registry verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// Register a device.
    #[command(after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),
    /// List devices (one page unless --all).
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Show one device.
    #[command(after_help = GET_EXAMPLES)]
    Get(IdArg),
    /// Allow a device to connect.
    #[command(after_help = ENABLE_EXAMPLES)]
    Enable(IdArg),
    /// Refuse a device's connections.
    #[command(after_help = DISABLE_EXAMPLES)]
    Disable(IdArg),
    /// Delete a device, its twin and its queued messages.
    #[command(after_help = DELETE_EXAMPLES)]
    Delete(IdArg),
    /// Print a SAS device's connection string (its keys with --output json).
    #[command(after_help = KEYS_EXAMPLES)]
    Keys(IdArg),
}

/// A device id.
#[derive(Debug, Args)]
pub(crate) struct IdArg {
    /// Device id.
    #[arg(value_name = "ID")]
    pub(crate) id: String,
}

/// `device create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Device id: 1–128 of A–Z a–z 0–9 - . % _ * ? ! ( ) , : = @ $ '
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Device group.
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// A twin tag; repeat for more.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
    pub(crate) tags: Vec<(String, String)>,
    /// Create it disabled (it cannot connect until enabled).
    #[arg(long)]
    pub(crate) disabled: bool,
    /// How it authenticates [default: none].
    #[arg(long, value_name = "KIND")]
    pub(crate) auth_kind: Option<AuthKind>,
}

/// Device authentication kinds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AuthKind {
    /// No credentials (development hubs).
    None,
    /// Shared access signature.
    Sas,
    /// X.509 certificate.
    X509,
}

/// `device list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only devices with this status.
    #[arg(long, value_name = "STATUS")]
    pub(crate) status: Option<StatusFilter>,
    /// Only devices in this connection state.
    #[arg(long, value_name = "STATE")]
    pub(crate) connection: Option<ConnectionFilter>,
    /// Only devices in this group.
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// Only devices whose twin tag KEY is VALUE.
    #[arg(long, value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
    pub(crate) tag: Option<(String, String)>,
    /// Devices per page (1–1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub(crate) limit: Option<u16>,
    /// Fetch every page, not just the first.
    #[arg(long)]
    pub(crate) all: bool,
}

/// `--status` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum StatusFilter {
    /// May connect.
    Enabled,
    /// Refused at connect.
    Disabled,
}

/// `--connection` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ConnectionFilter {
    /// Has an open connection.
    Connected,
    /// Has none.
    Disconnected,
}

/// Runs `bosun device …`.
pub(crate) fn run(args: &DeviceArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    let output = args.api.output;
    match &args.command {
        DeviceCommand::Create(create) => {
            let mut body = json!({ "deviceId": create.id });
            if let Some(group) = &create.group {
                body["group"] = json!(group);
            }
            if !create.tags.is_empty() {
                let tags: Map<String, Value> = create
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                body["tags"] = Value::Object(tags);
            }
            if create.disabled {
                body["status"] = json!("disabled");
            }
            if let Some(kind) = create.auth_kind {
                body["authKind"] = json!(super::value_name(kind));
            }
            let reply = api.call("POST", "/api/devices", Some(&body), &[])?;
            show_device(&reply.json, output)
        }
        DeviceCommand::List(list) => run_list(&api, list, output),
        DeviceCommand::Get(IdArg { id }) => {
            show_device(&api.get(&format!("/api/devices/{}", segment(id)))?, output)
        }
        DeviceCommand::Enable(IdArg { id }) => set_status(&api, id, "enabled", output),
        DeviceCommand::Disable(IdArg { id }) => set_status(&api, id, "disabled", output),
        DeviceCommand::Keys(IdArg { id }) => {
            let keys = api.get(&format!("/api/devices/{}/keys", segment(id)))?;
            match output {
                Output::Json => print_json(&keys),
                Output::Table => {
                    let line = super::table::sanitize(&text(&keys, "connectionString"));
                    super::emit(&format!("{line}\n"))
                }
            }
        }
        DeviceCommand::Delete(IdArg { id }) => {
            api.call(
                "DELETE",
                &format!("/api/devices/{}", segment(id)),
                None,
                &[],
            )?;
            if output == Output::Table {
                super::emit(&format!("deleted {}\n", super::table::sanitize(id)))?;
            }
            Ok(())
        }
    }
}

/// `device enable|disable`.
fn set_status(api: &Api, id: &str, status: &str, output: Output) -> Result<()> {
    let reply = api.call(
        "PATCH",
        &format!("/api/devices/{}", segment(id)),
        Some(&json!({ "status": status })),
        &[],
    )?;
    show_device(&reply.json, output)
}

/// `device list`: one page, or all of them with `--all`.
fn run_list(api: &Api, list: &ListArgs, output: Output) -> Result<()> {
    let pages = super::collect_pages(list.all, |continuation| {
        api.get(&format!(
            "/api/devices{}",
            query(&[
                ("status", list.status.map(super::value_name)),
                ("connectionState", list.connection.map(super::value_name)),
                ("group", list.group.clone()),
                ("tag", list.tag.as_ref().map(|(k, v)| format!("{k}:{v}"))),
                ("limit", list.limit.map(|l| l.to_string())),
                ("continuation", continuation.map(str::to_owned)),
            ])
        ))
    })?;
    let more = "more devices: add --all, or a larger --limit";
    super::print_pages(&pages, output, device_table, more)
}

/// The device listing table.
pub(crate) fn device_table(items: &[Value]) -> Table {
    let mut table = Table::new(&[
        "DEVICE",
        "STATUS",
        "CONNECTION",
        "GROUP",
        "LAST ACTIVITY",
        "FIRMWARE",
    ]);
    for d in items {
        table.push(vec![
            text(d, "deviceId"),
            text(d, "status"),
            text(d, "connectionState"),
            text(d, "group"),
            text(d, "lastActivityTime"),
            text(d, "firmwareVersion"),
        ]);
    }
    table
}

/// One device, as `name: value` lines or JSON.
fn show_device(device: &Value, output: Output) -> Result<()> {
    if output == Output::Json {
        return print_json(device);
    }
    let tags = match &device["tags"] {
        Value::Object(map) if map.is_empty() => "-".to_owned(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let connection = match device["connectionReason"].as_str() {
        Some(reason) => format!("{} ({reason})", text(device, "connectionState")),
        None => text(device, "connectionState"),
    };
    super::emit(&fields(&[
        ("device", text(device, "deviceId")),
        ("status", text(device, "status")),
        ("auth", text(device, "authKind")),
        ("group", text(device, "group")),
        ("connection", connection),
        ("since", text(device, "connectionStateUpdatedTime")),
        ("last activity", text(device, "lastActivityTime")),
        ("created", text(device, "createdTime")),
        ("firmware", text(device, "firmwareVersion")),
        ("tags", tags),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rows() {
        let items = [
            json!({"deviceId": "pump-7", "status": "enabled", "connectionState": "connected",
                   "group": "pumps", "lastActivityTime": "2025-01-01T00:00:00.000Z",
                   "firmwareVersion": "1.2.0"}),
            json!({"deviceId": "spare", "status": "disabled", "connectionState": "disconnected",
                   "group": null}),
        ];
        assert_eq!(
            device_table(&items).render(),
            "DEVICE  STATUS    CONNECTION    GROUP  LAST ACTIVITY             FIRMWARE\n\
             pump-7  enabled   connected     pumps  2025-01-01T00:00:00.000Z  1.2.0\n\
             spare   disabled  disconnected  -      -                         -\n"
        );
    }
}
