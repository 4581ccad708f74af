//! `bosun device create|list|get|enable|disable|delete|keys`: the device registry, through
//! the REST API; and `bosun device run`, the on-device agent (`crates/agent`), which talks
//! MQTT to the hub instead.

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
    /// Run the device agent: be device ID, publish vibration features (docs/agent.md).
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
}

const RUN_EXAMPLES: &str = "\
Examples:
  bosun device run --id pump-7 --hub 127.0.0.1:1883                 # bosun serve --dev
  bosun device run --id pump-7 --hub hub.example:8883 --ca ca.pem --key BASE64KEY
  bosun device run --id pump-8 --hub hub.example:8883 --ca ca.pem --group-key KEY --id-scope 0ne00000001
  bosun device run --id pump-9 --hub hub.example:8883 --ca ca.pem --cert pump-9.pem --cert-key pump-9.key
  bosun device run --id sim-1 --hub 127.0.0.1:1883 --source synthetic:fault=bpfo,onset=120s --speed 60
  bosun device run --id cwru-1 --hub 127.0.0.1:1883 --source cwru:ir007_0hp.f32,rpm=1797 --interval 10s";

/// `device run`: the agent's flags (see `agent::Options`).
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Device id (the registration id when provisioning with --group-key).
    #[arg(long, value_name = "ID")]
    pub(crate) id: String,
    /// The hub's MQTT (or MQTTS, with --ca) address.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) hub: String,
    /// CA certificates (PEM) to trust: connects with TLS (e.g. DATA_DIR/tls/ca.pem).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<std::path::PathBuf>,
    /// The device's symmetric key (base64): SAS token authentication.
    #[arg(long, value_name = "KEY", conflicts_with = "group_key")]
    pub(crate) key: Option<String>,
    /// An enrollment group's key (base64): provision through DPS first.
    #[arg(long, value_name = "KEY", requires = "id_scope")]
    pub(crate) group_key: Option<String>,
    /// DPS id scope: provision first (with --group-key, or with --cert for X.509).
    #[arg(long, value_name = "SCOPE")]
    pub(crate) id_scope: Option<String>,
    /// Client certificate (PEM, CN = device id): X.509 authentication over TLS.
    #[arg(long, value_name = "FILE", requires = "cert_key", conflicts_with_all = ["key", "group_key"])]
    pub(crate) cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) cert_key: Option<std::path::PathBuf>,
    /// Host name in SAS tokens [default: the host of --hub].
    #[arg(long, value_name = "NAME")]
    pub(crate) host_name: Option<String>,
    /// Vibration source: synthetic[:fault=bpfo|bpfi,onset=120s,growth=10m,rpm=…] or cwru:FILE[,rpm=R].
    #[arg(long, value_name = "SPEC", default_value = "synthetic")]
    pub(crate) source: String,
    /// Feature interval until the twin's interval_s overrides it (e.g. 60s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub(crate) interval: String,
    /// Offline buffer directory [default: ./bosun-agent/ID].
    #[arg(long, value_name = "DIR")]
    pub(crate) buffer_dir: Option<std::path::PathBuf>,
    /// Most feature messages kept while offline (oldest evicted first).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub(crate) buffer_max: usize,
    /// Time acceleration: device time runs N times faster (intervals, captures, faults).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub(crate) speed: f64,
    /// Firmware version to report.
    #[arg(long, value_name = "VERSION")]
    pub(crate) firmware: Option<String>,
    /// Install signed firmware updates: the publisher's public key (PEM) pinned in the
    /// device; only images it signed install. Needs --ca (images come over HTTPS).
    #[arg(long, value_name = "FILE")]
    pub(crate) firmware_key: Option<std::path::PathBuf>,
    /// Directory of the A/B slots and boot.json [default: BUFFER_DIR/firmware].
    #[arg(long, value_name = "DIR", requires = "firmware_key")]
    pub(crate) slot_dir: Option<std::path::PathBuf>,
    /// This device's hardware id; a manifest must list it.
    #[arg(long, value_name = "ID", default_value = "bosun-agent")]
    pub(crate) hw: String,
    /// The hub's HTTPS API for image downloads [default: host of --hub, port 8443].
    #[arg(long, value_name = "HOST:PORT", requires = "firmware_key")]
    pub(crate) firmware_server: Option<String>,
    /// How long a new image has to reach the hub before it is rolled back.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub(crate) health_deadline: String,
}

/// Runs `bosun device run` until Ctrl-C or SIGTERM.
fn run_agent(args: &RunArgs) -> Result<()> {
    let mut options = agent::Options::new(&args.id, &args.hub);
    options.ca = args.ca.clone();
    options.host_name = args.host_name.clone();
    options.identity = match (&args.key, &args.group_key, &args.cert, &args.cert_key) {
        (Some(key), ..) => agent::Identity::DeviceKey(key.clone()),
        (None, Some(group_key), ..) => agent::Identity::GroupKey {
            group_key: group_key.clone(),
            id_scope: args.id_scope.clone().unwrap_or_default(),
        },
        (None, None, Some(cert), Some(key)) => agent::Identity::Certificate {
            cert: cert.clone(),
            key: key.clone(),
            id_scope: args.id_scope.clone(),
        },
        _ => agent::Identity::Anonymous,
    };
    options.source = args.source.clone();
    options.interval = agent::source::parse_duration(&args.interval)?;
    if let Some(dir) = &args.buffer_dir {
        options.buffer_dir = dir.clone();
    }
    options.buffer_limits.max_messages = args.buffer_max.max(1);
    options.speed = args.speed;
    if let Some(firmware) = &args.firmware {
        options.firmware = firmware.clone();
    }
    if let Some(key) = &args.firmware_key {
        let key = agent::ota::OtaOptions::read_key(key)?;
        let slots = args
            .slot_dir
            .clone()
            .unwrap_or_else(|| options.buffer_dir.join("firmware"));
        let mut ota = agent::ota::OtaOptions::new(key, slots, &args.hw);
        ota.server = args.firmware_server.clone();
        ota.health_deadline = agent::source::parse_duration(&args.health_deadline)?;
        options.ota = Some(ota);
    }
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = crate::logging::filter_directive(None, rust_log.as_deref(), "info");
    crate::logging::init(crate::config::LogFormat::Text, &filter)?;
    Ok(agent::run_blocking(options)?)
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
    if let DeviceCommand::Run(run) = &args.command {
        return run_agent(run);
    }
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
        DeviceCommand::Run(run) => run_agent(run),
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
