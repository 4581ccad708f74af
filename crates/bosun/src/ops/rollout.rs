//! `bosun rollout create|status|pause|resume|cancel`: firmware rollouts through the
//! REST API.
//!
//! A rollout updates a device group phase by phase (`--phases 1%,10%,50%,100%`),
//! soaking after each, and stops on a breach of its health gates (failures, devices
//! going offline, anomalies, compared with the rest of the group). The hub drives it;
//! these commands start it, show it (per-phase counts with progress bars) and steer it.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand, ValueEnum};
use ota::rollout::{parse_percent, parse_phases};
use serde_json::{json, Map, Value};

use super::api::{print_json, segment, Api, ApiArgs, Output};
use super::table::{text, Table};

/// `bosun rollout --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun rollout create spring --firmware 9f86d0… --group plant-7 \\
      --phases 1%,10%,50%,100% --soak 10m --max-failure 2% --max-concurrent 50
  bosun rollout create night --firmware 9f86d0… --group plant-7 \\
      --window 22:00-02:00 --window 12:00-13:00     # UTC; notifies only inside
  bosun rollout status                 # every rollout, one line each
  bosun rollout status spring          # per-phase counts and progress bars
  bosun rollout pause spring
  bosun rollout resume spring          # failures so far are accepted
  bosun rollout cancel spring --roll-back

Devices report progress in their twin's reported `firmware`; a breach pauses the
rollout (or cancels it and rolls updated devices back, with --policy rollback).";

/// Width of a progress bar, in characters.
const BAR: usize = 20;

/// `bosun rollout …`.
#[derive(Debug, Args)]
pub(crate) struct RolloutArgs {
    /// Where the API is and how to print.
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: RolloutCommand,
}

/// What a breach does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BreachPolicy {
    /// Stop notifying devices until resumed.
    Pause,
    /// Cancel and roll updated devices back.
    Rollback,
}

/// The rollout verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum RolloutCommand {
    /// Start rolling a stored image out to a device group.
    #[command(after_help = EXAMPLES)]
    Create(Box<CreateArgs>),
    /// Show every rollout, or one in detail.
    #[command(after_help = EXAMPLES)]
    Status {
        /// Rollout name; none: list them all.
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// Stop notifying devices until resumed.
    #[command(after_help = EXAMPLES)]
    Pause {
        /// Rollout name.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Continue a paused rollout (failures so far are accepted).
    #[command(after_help = EXAMPLES)]
    Resume {
        /// Rollout name.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Stop a rollout for good.
    #[command(after_help = EXAMPLES)]
    Cancel {
        /// Rollout name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Tell updated devices to go back to their previous image.
        #[arg(long)]
        roll_back: bool,
    },
}

/// `rollout create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Rollout name (1-64 of A-Z a-z 0-9 . _ -).
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// Firmware id (from `bosun firmware list`).
    #[arg(long, value_name = "ID")]
    pub(crate) firmware: String,
    /// Target device group.
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: String,
    /// Cumulative share per phase.
    #[arg(long, value_name = "P%,…", default_value = "1%,10%,50%,100%")]
    pub(crate) phases: String,
    /// Soak after each phase (`30s`, `10m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub(crate) soak: String,
    /// Failure gate.
    #[arg(long, value_name = "P%", default_value = "2%")]
    pub(crate) max_failure: String,
    /// Success needed to advance.
    #[arg(long, value_name = "P%", default_value = "95%")]
    pub(crate) min_success: String,
    /// Offline gate, over the rest of the group.
    #[arg(long, value_name = "P%", default_value = "20%")]
    pub(crate) max_offline_excess: String,
    /// Anomaly gate, over the rest of the group.
    #[arg(long, value_name = "P%", default_value = "20%")]
    pub(crate) max_anomaly_excess: String,
    /// Reboot gate (devices' boot counters), over the rest of the group.
    #[arg(long, value_name = "P%", default_value = "20%")]
    pub(crate) max_reboot_excess: String,
    /// Devices updating at once.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) max_concurrent: usize,
    /// Random per-device start delay bound.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub(crate) start_delay: String,
    /// A device silent this long counts as failed.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub(crate) device_timeout: String,
    /// What a breach does.
    #[arg(long, value_name = "POLICY", default_value = "pause")]
    pub(crate) policy: BreachPolicy,
    /// A daily maintenance window in UTC, e.g. 01:00-05:00 (may wrap midnight; repeat
    /// for several): devices are notified only inside one [default: any time].
    #[arg(long, value_name = "HH:MM-HH:MM", value_parser = parse_window)]
    pub(crate) window: Vec<String>,
}

/// A `--window` value, checked (and normalized) by the engine's parser.
fn parse_window(text: &str) -> Result<String, String> {
    ota::rollout::Window::parse(text)
        .map(|w| w.to_string())
        .map_err(|e| e.to_string())
}

/// Runs `bosun rollout …`.
pub(crate) fn run(args: &RolloutArgs) -> Result<()> {
    let api = Api::from_args(&args.api)?;
    let output = args.api.output;
    let path = |name: &str, verb: &str| format!("/api/rollouts/{}{verb}", segment(name));
    let reply = match &args.command {
        RolloutCommand::Create(create) => {
            let body = create_body(create)?;
            api.call("POST", "/api/rollouts", Some(&body), &[])?.json
        }
        RolloutCommand::Status { name: None } => {
            let list = api.get("/api/rollouts")?;
            return match output {
                Output::Json => print_json(&list),
                Output::Table => {
                    let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                    super::emit(&list_table(items).render())
                }
            };
        }
        RolloutCommand::Status { name: Some(name) } => api.get(&path(name, ""))?,
        RolloutCommand::Pause { name } => api.call("POST", &path(name, "/pause"), None, &[])?.json,
        RolloutCommand::Resume { name } => {
            api.call("POST", &path(name, "/resume"), None, &[])?.json
        }
        RolloutCommand::Cancel { name, roll_back } => {
            let body = json!({ "rollBack": roll_back });
            api.call("POST", &path(name, "/cancel"), Some(&body), &[])?
                .json
        }
    };
    match output {
        Output::Json => print_json(&reply),
        Output::Table => super::emit(&detail(&reply)),
    }
}

/// `30s`, `10m`, `1h`, `2d` or plain seconds, in seconds.
fn seconds(text: &str) -> Result<u64> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(anyhow!("{text:?} is not a duration like 30s, 10m or 1h")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| anyhow!("{text:?} is not a duration like 30s, 10m or 1h"))?;
    Ok(n.saturating_mul(scale))
}

/// A `P%` flag as a percent number.
fn percent(text: &str) -> Result<f64> {
    Ok(parse_percent(text)? * 100.0)
}

/// The `POST /api/rollouts` body.
fn create_body(a: &CreateArgs) -> Result<Value> {
    let phases: Vec<f64> = parse_phases(&a.phases)?.iter().map(|p| p * 100.0).collect();
    let policy = match a.policy {
        BreachPolicy::Pause => "pause",
        BreachPolicy::Rollback => "rollback",
    };
    Ok(json!({
        "name": a.name,
        "firmware": a.firmware,
        "group": a.group,
        "phases": phases,
        "soakSeconds": seconds(&a.soak)?,
        "maxFailurePercent": percent(&a.max_failure)?,
        "minSuccessPercent": percent(&a.min_success)?,
        "maxOfflineExcessPercent": percent(&a.max_offline_excess)?,
        "maxAnomalyExcessPercent": percent(&a.max_anomaly_excess)?,
        "maxRebootExcessPercent": percent(&a.max_reboot_excess)?,
        "maxConcurrent": a.max_concurrent,
        "maxStartDelaySeconds": seconds(&a.start_delay)?,
        "deviceTimeoutSeconds": seconds(&a.device_timeout)?,
        "policy": policy,
        "windows": a.window,
    }))
}

/// Maintenance windows as `01:00-05:00 UTC, …`, or `any time`.
fn windows(list: &Value) -> String {
    let all: Vec<&str> = list
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if all.is_empty() {
        "any time".into()
    } else {
        format!("{} UTC", all.join(", "))
    }
}

/// `[#######.............]` for `done` of `total`.
fn bar(done: u64, total: u64) -> String {
    let filled = if total == 0 {
        BAR
    } else {
        (done.min(total) as usize * BAR) / total as usize
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(BAR - filled))
}

/// The status words of a rollout document (`running`, `paused (failures)`, `running,
/// waiting for window`…).
fn status(rollout: &Value) -> String {
    let progress = &rollout["progress"];
    let word = text(&progress["status"], "status");
    let word = match progress["status"]["breach"]["gate"].as_str() {
        Some(gate) => format!("{word} ({gate})"),
        None => word,
    };
    if rollout["waitingForWindow"] == true {
        format!("{word}, waiting for window")
    } else {
        word
    }
}

fn list_table(items: &[Value]) -> Table {
    let mut table = Table::new(&["NAME", "STATUS", "PHASE", "MEMBERS", "GROUP", "FIRMWARE"]);
    for item in items {
        let p = &item["progress"];
        let phases = p["phases"].as_array().map_or(0, Vec::len);
        let phase = p["phase"].as_u64().unwrap_or(0) + 1;
        table.push(vec![
            text(item, "name"),
            status(item),
            format!("{phase}/{phases}"),
            super::table::cell(&p["members"]),
            text(item, "group"),
            super::table::shorten(&text(item, "firmware"), 16),
        ]);
    }
    table
}

/// One rollout: header lines, a row per phase with a progress bar, recent events.
fn detail(rollout: &Value) -> String {
    let p = &rollout["progress"];
    let mut out = super::table::fields(&[
        ("rollout", text(rollout, "name")),
        ("status", status(rollout)),
        ("windows", windows(&rollout["spec"]["windows"])),
        ("group", text(rollout, "group")),
        ("firmware", text(rollout, "firmware")),
        ("members", super::table::cell(&p["members"])),
    ]);
    let mut table = Table::new(&[
        "PHASE",
        "TARGET",
        "PENDING",
        "UPDATING",
        "OK",
        "FAILED",
        "ROLLED BACK",
        "PROGRESS",
    ]);
    let current = p["phase"].as_u64().unwrap_or(0) as usize;
    let empty = Vec::new();
    for (k, ph) in p["phases"].as_array().unwrap_or(&empty).iter().enumerate() {
        let n = |key: &str| ph[key].as_u64().unwrap_or(0);
        let marker = if k == current { "▶" } else { " " };
        table.push(vec![
            format!("{marker}{}", k + 1),
            n("target").to_string(),
            n("pending").to_string(),
            n("inProgress").to_string(),
            n("succeeded").to_string(),
            n("failed").to_string(),
            n("rolledBack").to_string(),
            bar(n("succeeded") + n("failed"), n("target")),
        ]);
    }
    out.push('\n');
    out.push_str(&table.render());
    if let Some(events) = rollout["events"].as_array().filter(|e| !e.is_empty()) {
        out.push_str("\nrecent events:\n");
        for e in events.iter().rev().take(10).rev() {
            let mut event = e["event"].as_object().cloned().unwrap_or_else(Map::new);
            let name = event.remove("event").unwrap_or(Value::Null);
            let rest = Value::Object(event);
            out.push_str(&format!(
                "  {} {} {}\n",
                super::table::cell(&e["timeMs"]),
                super::table::cell(&name),
                super::table::sanitize(&rest.to_string()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_percentages_and_bars() {
        assert_eq!(seconds("90").ok(), Some(90));
        assert_eq!(seconds("10m").ok(), Some(600));
        assert_eq!(seconds("1h").ok(), Some(3600));
        assert!(seconds("10 minutes").is_err());
        assert!(seconds("m").is_err());
        assert_eq!(percent("2.5%").ok(), Some(2.5));
        assert_eq!(
            bar(5, 10),
            format!("[{}{}]", "#".repeat(10), ".".repeat(10))
        );
        assert_eq!(bar(0, 0).matches('#').count(), BAR);
    }
}
