//! `bosun method invoke`: call a direct method on a device and print its answer.
//!
//! Exit status follows the device: 0 when it answered with a 2xx status, 1 when it
//! answered with another status, could not be reached or did not answer in time.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::api::{print_json, segment, Api, ApiArgs, Output};
use super::table::fields;

/// `bosun method --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun method invoke pump-7 reboot
  bosun method invoke pump-7 capture --payload '{\"rateHz\":10000,\"seconds\":30}' --timeout 60";

const INVOKE_EXAMPLES: &str = "\
Examples:
  bosun method invoke pump-7 reboot
  bosun method invoke pump-7 setMode --payload '\"alarm\"'
  bosun method invoke pump-7 capture --payload '{\"seconds\":30}' --timeout 120
  bosun method invoke sleepy-1 wake --connect-timeout 60     # wait for it to connect

Prints the device's status and payload. Exit status: 0 if the device answered 2xx,
1 if it answered anything else, is not connected, or did not answer in time.";

/// Slack on top of the method's own timeouts before the CLI stops waiting for the hub.
const HTTP_SLACK: Duration = Duration::from_secs(30);

/// `bosun method …`.
#[derive(Debug, Args)]
pub(crate) struct MethodArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: MethodCommand,
}

/// The direct-method verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum MethodCommand {
    /// Call a direct method and wait for the answer.
    #[command(after_help = INVOKE_EXAMPLES)]
    Invoke(InvokeArgs),
}

/// `method invoke`.
#[derive(Debug, Args)]
pub(crate) struct InvokeArgs {
    /// Device id.
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Method name.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// JSON payload sent to the device.
    #[arg(long, value_name = "JSON", value_parser = super::parse_json)]
    pub(crate) payload: Option<Value>,
    /// Seconds the device has to answer (1–300).
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) timeout: u64,
    /// Seconds to wait for an offline device to connect (0–300).
    #[arg(long, value_name = "SECONDS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=300))]
    pub(crate) connect_timeout: u64,
}

/// Runs `bosun method …`.
pub(crate) fn run(args: &MethodArgs) -> Result<()> {
    let MethodCommand::Invoke(invoke) = &args.command;
    let api = Api::from_args(&args.api)?
        .with_timeout(Duration::from_secs(invoke.timeout + invoke.connect_timeout) + HTTP_SLACK);
    let mut body = json!({
        "responseTimeoutInSeconds": invoke.timeout,
        "connectTimeoutInSeconds": invoke.connect_timeout,
    });
    if let Some(payload) = &invoke.payload {
        body["payload"] = payload.clone();
    }
    let target = format!(
        "/api/devices/{}/methods/{}",
        segment(&invoke.id),
        segment(&invoke.name)
    );
    let answer = api.call("POST", &target, Some(&body), &[])?.json;
    match args.api.output {
        Output::Json => print_json(&answer)?,
        Output::Table => {
            let status = fields(&[("status", super::table::text(&answer, "status"))]);
            super::emit(&format!("{status}payload:\n"))?;
            print_json(&answer["payload"])?;
        }
    }
    match answer["status"].as_i64() {
        Some(status) if (200..300).contains(&status) => Ok(()),
        Some(status) => bail!("the device answered with status {status}"),
        None => bail!("the answer has no status"),
    }
}
