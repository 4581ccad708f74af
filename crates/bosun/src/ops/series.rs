//! `bosun series query|list` and `bosun anomalies`: the time series the data pipeline
//! stores and the anomaly events its models raise, through the REST API.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::api::{print_json, query, Api, ApiArgs, Output};
use super::table::{cell, Table};

/// `bosun series --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun series list --device motor-17
  bosun series query --field x.rms --device motor-17 --from -1h --step 1m
  bosun series query --field anomaly.score --tag line:A --agg max --step 10m
  bosun series query --field x.kurtosis --from 2026-11-26T00:00:00Z --csv > kurtosis.csv
  bosun series anomalies --device motor-17";

/// `bosun series …`.
#[derive(Debug, Args)]
pub(crate) struct SeriesArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: SeriesCommand,
}

const QUERY_EXAMPLES: &str = "\
Examples:
  bosun series query --field x.rms --device motor-17 --from -1h --step 1m
  bosun series query --field anomaly.score --tag line:A --agg max --step 10m
  bosun series query --field temp --from 2026-11-26T00:00:00Z --to now --csv > temp.csv";

const LIST_EXAMPLES: &str = "\
Examples:
  bosun series list
  bosun series list --device motor-17 --output json";

const ANOMALIES_EXAMPLES: &str = "\
Examples:
  bosun series anomalies
  bosun series anomalies --device motor-17 --limit 5";

/// The series verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum SeriesCommand {
    /// Aggregates of one field over a time range, per device.
    #[command(after_help = QUERY_EXAMPLES)]
    Query(QueryArgs),
    /// The series the store holds.
    #[command(after_help = LIST_EXAMPLES)]
    List {
        /// Only this device's series.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
    },
    /// Anomaly events (devices entering and leaving the anomalous state), newest first.
    #[command(after_help = ANOMALIES_EXAMPLES)]
    Anomalies {
        /// Only this device's events.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// `bosun series query` flags.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The field, e.g. `x.rms` or `anomaly.score`.
    #[arg(long)]
    field: String,
    /// Devices (repeatable; default: all).
    #[arg(long, value_name = "ID")]
    device: Vec<String>,
    /// Devices whose twin tag KEY is VALUE (`KEY:VALUE`).
    #[arg(long, value_name = "KEY:VALUE", conflicts_with = "device")]
    tag: Option<String>,
    /// Start: epoch ms, RFC 3339, `now` or `-1h`.
    #[arg(long, default_value = "-1h", allow_hyphen_values = true)]
    from: String,
    /// End (exclusive), same forms.
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    to: String,
    /// Bucket width such as `10s`, `1m`, `1h`; none: one value per device.
    #[arg(long)]
    step: Option<String>,
    /// mean, min, max, count, last or p99.
    #[arg(long, default_value = "mean")]
    agg: String,
    /// Print CSV (`device_id,time_ms,value`) instead of a table.
    #[arg(long)]
    csv: bool,
}

/// Runs `bosun series …`.
pub(crate) fn run(args: &SeriesArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    let json = args.api.output == Output::Json;
    match &args.command {
        SeriesCommand::Query(q) => run_query(&api, q, json),
        SeriesCommand::List { device } => {
            let answer = api.get(&format!(
                "/api/series/keys{}",
                query(&[("deviceId", device.clone())])
            ))?;
            print_items(&answer, json)
        }
        SeriesCommand::Anomalies { device, limit } => {
            let pairs = [
                ("deviceId", device.clone()),
                ("limit", Some(limit.to_string())),
            ];
            let answer = api.get(&format!("/api/anomalies{}", query(&pairs)))?;
            print_items(&answer, json)
        }
    }
}

fn run_query(api: &Api, q: &QueryArgs, json: bool) -> Result<()> {
    let devices = (!q.device.is_empty()).then(|| q.device.join(","));
    let pairs = [
        ("field", Some(q.field.clone())),
        ("deviceId", devices),
        ("tag", q.tag.clone()),
        ("from", Some(q.from.clone())),
        ("to", Some(q.to.clone())),
        ("step", q.step.clone()),
        ("agg", Some(q.agg.clone())),
    ];
    let answer = api.get(&format!("/api/series{}", query(&pairs)))?;
    if json {
        return print_json(&answer);
    }
    let mut csv = String::from("device_id,time_ms,value\n");
    let mut table = Table::new(&["DEVICE", "TIME", "VALUE"]);
    for series in answer["series"].as_array().into_iter().flatten() {
        let device = cell(&series["deviceId"]);
        for point in series["points"].as_array().into_iter().flatten() {
            let (t, v) = (cell(&point[0]), cell(&point[1]));
            csv.push_str(&format!("{device},{t},{v}\n"));
            let time = point[0].as_i64().map_or(t.clone(), hub::twin::rfc3339);
            table.push(vec![device.clone(), time, v]);
        }
    }
    super::emit(&if q.csv { csv } else { table.render() })
}

fn print_items(answer: &Value, json: bool) -> Result<()> {
    if json {
        return print_json(answer);
    }
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    super::emit(&Table::from_objects(&items).render())
}
