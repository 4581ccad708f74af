//! `bosun enrollment group|individual|list|derive-key`: provisioning enrollments
//! through the REST API (admin token: enrollments hold keys). `--x509-ca` /
//! `--x509-serial` make X.509 enrollments, whose devices present certificates.
//!
//! A group enrollment's devices each use a key derived from the group key and their
//! registration id (base64 HMAC-SHA256, the Azure convention); `derive-key` computes
//! it here from the group key the API returns, so a factory can flash per-device keys
//! without the group key leaving the line's tooling.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::api::{print_json, segment, Api, ApiArgs, Output};
use super::table::{cell, fields, text, Table};

/// `bosun enrollment --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun enrollment group create line-1 --tag site=plant-7 --desired '{\"mode\":\"idle\"}' --device-group line-1
  bosun enrollment group show line-1
  bosun enrollment derive-key --group line-1 --registration-id sensor-042
  bosun enrollment individual create sensor-100 --tag site=lab
  bosun enrollment group create line-2 --x509-ca bosun --tag site=plant-7
  bosun enrollment list

Devices register with the Azure DPS device protocol (ProvisioningDeviceClient) at the
hub's MQTTS address with the hub's id scope ([hub] id_scope) and their key, or (X.509
enrollments) a certificate whose CN is the registration id (bosun ca issue-device).";

const GROUP_EXAMPLES: &str = "\
Examples:
  bosun enrollment group create line-1 --tag site=plant-7 --device-group line-1
  bosun enrollment group show line-1
  bosun enrollment group delete line-1";

const INDIVIDUAL_EXAMPLES: &str = "\
Examples:
  bosun enrollment individual create sensor-100 --desired '{\"mode\":\"idle\"}'
  bosun enrollment individual show sensor-100
  bosun enrollment individual delete sensor-100";

const LIST_EXAMPLES: &str = "\
Examples:
  bosun enrollment list
  bosun enrollment list --output json";

const DERIVE_EXAMPLES: &str = "\
Examples:
  bosun enrollment derive-key --group line-1 --registration-id sensor-042

The key is base64(HMAC-SHA256(group key, registration id)), what Azure's
`az iot dps enrollment-group compute-device-key` prints for the same inputs.";

const CREATE_EXAMPLES: &str = "\
Examples:
  bosun enrollment group create line-1 --tag site=plant-7 --desired '{\"mode\":\"idle\"}'
  bosun enrollment individual create sensor-100 --key BASE64 --disabled
  bosun enrollment group create line-2 --x509-ca bosun
  bosun enrollment individual create cam-1 --x509-serial 4a:0b:...

Creating an existing enrollment replaces it; its key is kept unless --key is given.
--x509-ca/--x509-serial make an X.509 enrollment (no key): a group must name its CA.";

const SHOW_EXAMPLES: &str = "\
Examples:
  bosun enrollment group show line-1
  bosun enrollment individual show sensor-100 --output json";

const DELETE_EXAMPLES: &str = "\
Examples:
  bosun enrollment group delete line-1      # registered devices stay";

/// `bosun enrollment …`.
#[derive(Debug, Args)]
pub(crate) struct EnrollmentArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: EnrollmentCommand,
}

/// The enrollment verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum EnrollmentCommand {
    /// Group enrollments: many devices, keys derived from one group key.
    #[command(subcommand, after_help = GROUP_EXAMPLES)]
    Group(KindCommand),
    /// Individual enrollments: one registration id with its own key.
    #[command(subcommand, after_help = INDIVIDUAL_EXAMPLES)]
    Individual(KindCommand),
    /// List every enrollment.
    #[command(after_help = LIST_EXAMPLES)]
    List,
    /// Print the device key a registration id gets in a group enrollment.
    #[command(after_help = DERIVE_EXAMPLES)]
    DeriveKey(DeriveArgs),
}

/// What can be done to one kind of enrollment.
#[derive(Debug, Subcommand)]
pub(crate) enum KindCommand {
    /// Create an enrollment, or replace it (its key is kept unless --key is given).
    #[command(after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),
    /// Show an enrollment, its key included.
    #[command(after_help = SHOW_EXAMPLES)]
    Show(NameArg),
    /// Delete an enrollment (devices it registered stay).
    #[command(after_help = DELETE_EXAMPLES)]
    Delete(NameArg),
}

/// An enrollment name (group name or registration id).
#[derive(Debug, Args)]
pub(crate) struct NameArg {
    /// Group name or registration id.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

/// `enrollment … create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Group name or registration id: 1–128 of A–Z a–z 0–9 - . % _ * ? ! ( ) , : = @ $ '
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// An initial twin tag of registered devices; repeat for more.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
    pub(crate) tags: Vec<(String, String)>,
    /// Initial desired properties (a JSON object).
    #[arg(long, value_name = "JSON", value_parser = super::parse_json_object)]
    pub(crate) desired: Option<Value>,
    /// Device group registered devices join.
    #[arg(long, value_name = "GROUP")]
    pub(crate) device_group: Option<String>,
    /// The symmetric key (base64); generated when absent.
    #[arg(long, value_name = "BASE64", conflicts_with_all = ["x509_ca", "x509_serial"])]
    pub(crate) key: Option<String>,
    /// An X.509 enrollment: devices present a certificate (CN = registration id) signed
    /// by this registered CA (`bosun ca list`; `bosun` is the built-in one).
    #[arg(long, value_name = "CA")]
    pub(crate) x509_ca: Option<String>,
    /// An X.509 individual enrollment pinned to one certificate serial (hex).
    #[arg(long, value_name = "HEX")]
    pub(crate) x509_serial: Option<String>,
    /// Refuse registrations.
    #[arg(long)]
    pub(crate) disabled: bool,
}

/// `enrollment derive-key`.
#[derive(Debug, Args)]
pub(crate) struct DeriveArgs {
    /// The group enrollment.
    #[arg(long, value_name = "NAME")]
    pub(crate) group: String,
    /// The device's registration id (its future device id).
    #[arg(long, value_name = "ID")]
    pub(crate) registration_id: String,
}

/// Runs `bosun enrollment …`.
pub(crate) fn run(args: &EnrollmentArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    let output = args.api.output;
    match &args.command {
        EnrollmentCommand::Group(command) => run_kind(&api, "groups", command, output),
        EnrollmentCommand::Individual(command) => run_kind(&api, "individual", command, output),
        EnrollmentCommand::List => {
            let mut items = Vec::new();
            for kind in ["groups", "individual"] {
                let list = api.get(&format!("/api/enrollments/{kind}"))?;
                items.extend(list["items"].as_array().cloned().unwrap_or_default());
            }
            match output {
                Output::Json => print_json(&json!({ "items": items })),
                Output::Table => super::emit(&enrollment_table(&items).render()),
            }
        }
        EnrollmentCommand::DeriveKey(derive) => {
            let group = api.get(&path("groups", &derive.group))?;
            if group["attestation"] == "x509" {
                anyhow::bail!(
                    "group {} is an X.509 enrollment: its devices use certificates, not keys",
                    derive.group
                );
            }
            let key = group["key"]
                .as_str()
                .context("the API did not return the group key (an admin token is needed)")?;
            let device_key = hub::auth::derive_device_key(key, &derive.registration_id)
                .context("the group key is not base64")?;
            match output {
                Output::Json => print_json(&json!({
                    "registrationId": derive.registration_id,
                    "key": device_key,
                })),
                Output::Table => super::emit(&format!("{device_key}\n")),
            }
        }
    }
}

fn run_kind(api: &Api, kind: &str, command: &KindCommand, output: Output) -> Result<()> {
    match command {
        KindCommand::Create(create) => {
            let tags: Map<String, Value> = create
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let mut body = json!({
                "initialTwin": {
                    "tags": tags,
                    "desired": create.desired.clone().unwrap_or_else(|| json!({})),
                },
                "deviceGroup": create.device_group,
                "disabled": create.disabled,
            });
            if let Some(key) = &create.key {
                body["key"] = json!(key);
            }
            if create.x509_ca.is_some() || create.x509_serial.is_some() {
                body["x509"] = json!({"ca": create.x509_ca, "serial": create.x509_serial});
            }
            let reply = api.call("PUT", &path(kind, &create.name), Some(&body), &[])?;
            show(&reply.json, output)
        }
        KindCommand::Show(NameArg { name }) => show(&api.get(&path(kind, name))?, output),
        KindCommand::Delete(NameArg { name }) => {
            api.call("DELETE", &path(kind, name), None, &[])?;
            if output == Output::Table {
                super::emit(&format!("deleted {}\n", super::table::sanitize(name)))?;
            }
            Ok(())
        }
    }
}

/// `/api/enrollments/KIND/NAME`, the name encoded.
fn path(kind: &str, name: &str) -> String {
    format!("/api/enrollments/{kind}/{}", segment(name))
}

/// The listing table.
fn enrollment_table(items: &[Value]) -> Table {
    let mut table = Table::new(&[
        "KIND",
        "NAME",
        "ATTESTATION",
        "DISABLED",
        "DEVICE GROUP",
        "CREATED",
    ]);
    for e in items {
        table.push(vec![
            text(e, "kind"),
            text(e, "name"),
            text(e, "attestation"),
            cell(&e["disabled"]),
            text(e, "deviceGroup"),
            text(e, "createdTime"),
        ]);
    }
    table
}

/// One enrollment, as `name: value` lines (with how to derive device keys) or JSON.
fn show(e: &Value, output: Output) -> Result<()> {
    if output == Output::Json {
        return print_json(e);
    }
    let name = text(e, "name");
    let x509 = e["attestation"] == "x509";
    let mut lines = vec![
        ("kind", text(e, "kind")),
        ("name", name.clone()),
        ("attestation", text(e, "attestation")),
    ];
    if x509 {
        lines.push(("x509 CA", text(&e["x509"], "ca")));
        lines.push(("x509 serial", text(&e["x509"], "serial")));
    } else {
        lines.push(("key", text(e, "key")));
    }
    lines.extend([
        ("device group", text(e, "deviceGroup")),
        ("disabled", cell(&e["disabled"])),
        ("tags", cell(&e["initialTwin"]["tags"])),
        ("desired", cell(&e["initialTwin"]["desired"])),
        ("created", text(e, "createdTime")),
    ]);
    if e["kind"] == "group" && !x509 {
        lines.push((
            "device key",
            format!("bosun enrollment derive-key --group {name} --registration-id ID"),
        ));
    }
    super::emit(&fields(&lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrollment_rows_and_paths() {
        let items = [json!({
            "kind": "group", "name": "line-1", "disabled": false,
            "deviceGroup": "g", "createdTime": "2025-01-01T00:00:00.000Z",
        })];
        let rendered = enrollment_table(&items).render();
        assert!(rendered.contains("line-1"), "{rendered}");
        assert!(rendered.contains("false"), "{rendered}");
        assert_eq!(path("groups", "a b"), "/api/enrollments/groups/a%20b");
    }
}
