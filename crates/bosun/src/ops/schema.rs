//! `bosun schema add|assign|unassign`: Protobuf schemas the data pipeline decodes with,
//! registered at run time through the REST API (`POST /api/schemas`), as `.proto`
//! source files or as a `protoc --descriptor_set_out` file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::api::{print_json, segment, Api, ApiArgs, Output};

/// `bosun schema --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun schema add reading.proto
  bosun schema add proto/acme/reading.proto proto/acme/units.proto --root proto
  bosun schema add acme.pb                              # protoc --descriptor_set_out
  bosun schema assign pump-7 'application/x-protobuf; messageType=acme.Reading'
  bosun schema unassign pump-7";

/// `bosun schema …`.
#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: SchemaCommand,
}

const ADD_EXAMPLES: &str = "\
Examples:
  bosun schema add reading.proto
  bosun schema add proto/acme/reading.proto proto/acme/units.proto --root proto
  bosun schema add acme.pb

.proto files are compiled by the hub (proto2 and proto3; imports only among the files
given; a file is named as its path relative to --root, which is what its importers
write). A file with an error is refused with its line and column. Any other file is
read as a binary FileDescriptorSet (protoc --descriptor_set_out, buf build -o).";

const ASSIGN_EXAMPLES: &str = "\
Examples:
  bosun schema assign pump-7 'application/x-protobuf; messageType=acme.Reading'
  bosun schema assign pump-8 application/cbor

For devices whose messages carry neither an MQTT 5 content type nor a $.ct topic
property; a content type the message names itself still wins.";

const UNASSIGN_EXAMPLES: &str = "\
Examples:
  bosun schema unassign pump-7";

/// The schema verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Register Protobuf message types from .proto files or one descriptor set.
    #[command(after_help = ADD_EXAMPLES)]
    Add {
        /// `.proto` files (all of one schema, imports included), or one descriptor set.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Name .proto files by their path relative to this directory (default: the
        /// path as given, or the bare file name for an absolute path).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Set the content type assumed for a device's messages that name none.
    #[command(after_help = ASSIGN_EXAMPLES)]
    Assign {
        /// The device.
        device: String,
        /// E.g. `application/x-protobuf; messageType=acme.Reading`.
        content_type: String,
    },
    /// Remove a device's assumed content type.
    #[command(after_help = UNASSIGN_EXAMPLES)]
    Unassign {
        /// The device.
        device: String,
    },
}

/// Runs `bosun schema …`.
pub(crate) fn run(args: &SchemaArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    match &args.command {
        SchemaCommand::Add { files, root } => {
            let body = add_body(files, root.as_deref())?;
            let answer = api.call("POST", "/api/schemas", Some(&body), &[])?.json;
            if args.api.output == Output::Json {
                return print_json(&answer);
            }
            let names: Vec<&str> = answer["messages"]
                .as_array()
                .map(|m| m.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if names.is_empty() {
                eprintln!("registered (no new message types)");
            }
            super::emit(&names.iter().map(|n| format!("{n}\n")).collect::<String>())
        }
        SchemaCommand::Assign {
            device,
            content_type,
        } => {
            let body = json!({ "contentType": content_type });
            let path = format!("/api/schemas/devices/{}", segment(device));
            let answer = api.call("PUT", &path, Some(&body), &[])?.json;
            print_json(&answer)
        }
        SchemaCommand::Unassign { device } => {
            let path = format!("/api/schemas/devices/{}", segment(device));
            api.call("DELETE", &path, None, &[])?;
            Ok(())
        }
    }
}

/// The `POST /api/schemas` body for `files`: `.proto` sources by name, or one
/// descriptor set in base64.
fn add_body(files: &[PathBuf], root: Option<&Path>) -> Result<Value> {
    let is_proto = |p: &PathBuf| p.extension().is_some_and(|e| e == "proto");
    let protos = files.iter().filter(|p| is_proto(p)).count();
    if protos == 0 {
        let [set] = files else {
            bail!("give one descriptor set, or .proto files");
        };
        let bytes = std::fs::read(set).with_context(|| format!("cannot read {}", set.display()))?;
        return Ok(json!({ "descriptorSet": hub::base64::encode(&bytes) }));
    }
    if protos != files.len() {
        bail!("give either .proto files or one descriptor set, not both");
    }
    let mut sources = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
        sources.insert(proto_name(path, root)?, text);
    }
    Ok(json!({ "proto": sources }))
}

/// The name a `.proto` file is registered (and imported) under, with `/` separators.
fn proto_name(path: &Path, root: Option<&Path>) -> Result<String> {
    let relative = match root {
        Some(root) => path.strip_prefix(root).with_context(|| {
            format!("{} is not under --root {}", path.display(), root.display())
        })?,
        None if path.is_absolute() => Path::new(path.file_name().unwrap_or_default()),
        None => path,
    };
    let parts: Vec<String> = relative
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_files_are_named_as_importers_name_them() {
        let name = |p: &str, root: Option<&str>| proto_name(Path::new(p), root.map(Path::new)).ok();
        assert_eq!(
            name("./acme/r.proto", None).as_deref(),
            Some("acme/r.proto")
        );
        assert_eq!(name("/tmp/x/r.proto", None).as_deref(), Some("r.proto"));
        assert_eq!(
            name("proto/acme/r.proto", Some("proto")).as_deref(),
            Some("acme/r.proto")
        );
        assert_eq!(name("elsewhere/r.proto", Some("proto")), None);
        let mixed = [PathBuf::from("a.proto"), PathBuf::from("b.pb")];
        assert!(add_body(&mixed, None).is_err());
    }
}
