//! `bosun capture list|get`: raw vibration captures devices streamed after an anomaly,
//! as stored by the data pipeline, through the REST API.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::api::{print_json, query, segment, Api, ApiArgs, Output};
use super::table::Table;

/// `bosun capture --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun capture list --device motor-17
  bosun capture get c1764140000000-0 --out capture.f32
  bosun capture get c1764140000000-0 --format csv --out capture.csv";

/// `bosun capture …`.
#[derive(Debug, Args)]
pub(crate) struct CaptureArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: CaptureCommand,
}

const LIST_EXAMPLES: &str = "\
Examples:
  bosun capture list
  bosun capture list --device motor-17 --output json";

const GET_EXAMPLES: &str = "\
Examples:
  bosun capture get c1764140000000-0                    # writes c1764140000000-0.f32
  bosun capture get c1764140000000-0 --format csv --out capture.csv";

/// The capture verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum CaptureCommand {
    /// Stored captures, newest first (missing chunks listed).
    #[command(after_help = LIST_EXAMPLES)]
    List {
        /// Only this device's captures.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
    },
    /// Download one capture's samples.
    #[command(after_help = GET_EXAMPLES)]
    Get {
        /// The capture id (from `bosun capture list`).
        id: String,
        /// Samples as little-endian f32, or CSV (`index,time_s,value`).
        #[arg(long, default_value = "f32")]
        format: SampleFormat,
        /// Where to write them (default: `ID.f32` or `ID.csv`).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// How samples are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SampleFormat {
    /// Little-endian IEEE-754 f32, headerless.
    F32,
    /// `index,time_s,value`, missing chunks as `#` comment lines.
    Csv,
}

/// Runs `bosun capture …`.
pub(crate) fn run(args: &CaptureArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    match &args.command {
        CaptureCommand::List { device } => {
            let answer = api.get(&format!(
                "/api/captures{}",
                query(&[("deviceId", device.clone())])
            ))?;
            if args.api.output == Output::Json {
                return print_json(&answer);
            }
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            super::emit(&Table::from_objects(&items).render())
        }
        CaptureCommand::Get { id, format, out } => {
            let (name, ext) = match format {
                SampleFormat::F32 => ("f32", "f32"),
                SampleFormat::Csv => ("csv", "csv"),
            };
            let bytes = api.get_bytes(&format!("/api/captures/{}?format={name}", segment(id)))?;
            let path = out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{id}.{ext}")));
            std::fs::write(&path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} bytes to {}", bytes.len(), path.display());
            Ok(())
        }
    }
}
