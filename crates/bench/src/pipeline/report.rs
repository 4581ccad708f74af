//! The Markdown report of `bosun-bench pipeline`: how it was run, the median of every
//! metric next to each run's value (the table of `bosun-bench hub`), the hub's own
//! histogram of the loop, and what the rows measure.

use std::fmt::Write as _;

use super::{PipelineArgs, Run};
use crate::hub::report::{table, RunOutcome};
use crate::report::Machine;

/// What the rows mean; shown under the table.
const DEFINITIONS: &[(&str, &str)] = &[
    ("loop", "per device, from just before the publish of the anomalous message that trips the alarm (the second in a row) to the `capture` C2D command's arrival at the device, over MQTT on loopback; it bounds \"arrival at the hub → command leaving the broker\" from above, since it adds the device→broker and broker→device hops; percentiles are nearest-rank over the devices"),
    ("hub histogram", "`bosun_pipeline_anomaly_to_command_seconds` from `/metrics` after the loop: the hub's own measurement from the message's arrival to the command leaving for the broker"),
    ("anomalous messages beyond 2", "devices whose command only came after a third or later anomalous message (that message is then the trigger); should be 0"),
    ("ingest", "messages the pipeline took in (`bosun_pipeline_messages_total`) / time from the first publish until it has taken in or skipped every message and `bosun_pipeline_points_total` has stopped moving (its last change is the end); for JSON, every taken message's point of one field is then checked with `GET /api/series?agg=count`"),
    ("points stored", "`bosun_pipeline_points_total` gained / the same time; a JSON message gives its 30 numbers, a CBOR `Features` message every number of its three axes (97), each plus the anomaly score once the model's 30-message warm-up is over"),
    ("all acknowledged", "time until the last PUBACK (the broker has the message; the pipeline may still be behind)"),
    ("hub CPU per message", "user + system CPU time of the bosun process (`/proc/PID/stat`) from the first publish to the end, per message: broker, hub and pipeline together"),
    ("lagged / store failures", "`bosun_pipeline_lagged_total` (messages the pipeline skipped because it fell behind the hub) and `bosun_pipeline_store_failures_total`; both must be 0"),
];

/// Renders the whole report.
pub(super) fn render(
    machine: &Machine,
    command: &str,
    args: &PipelineArgs,
    runs: &[Run],
    loads: (&str, &str),
) -> String {
    let mut out = String::new();
    header(&mut out, machine, command, args, runs, loads);
    let outcomes: Vec<RunOutcome> = runs
        .iter()
        .map(|r| RunOutcome {
            seconds: r.seconds,
            result: match &r.result {
                Ok(m) => Ok(m.metrics.clone()),
                Err(e) => Err(e.clone()),
            },
        })
        .collect();
    table(&mut out, &outcomes);
    histograms(&mut out, runs);
    let errors = runs
        .iter()
        .map(|r| r.result.as_ref().err().map(String::as_str));
    crate::report::closing(&mut out, errors, DEFINITIONS);
    out
}

/// Title, machine, settings and caveats.
fn header(
    out: &mut String,
    machine: &Machine,
    command: &str,
    args: &PipelineArgs,
    runs: &[Run],
    loads: (&str, &str),
) {
    let durations: Vec<String> = runs.iter().map(|r| format!("{:.0} s", r.seconds)).collect();
    machine.intro(out, "bosun data pipeline: benchmark results");
    let _ = writeln!(out, "- bosun: `{}`, `serve --dev` with its default configuration (default anomaly rules and model), a fresh process and data directory per measurement", machine.bosun);
    let _ = writeln!(out, "- Command: `{command}`");
    let _ = writeln!(
        out,
        "- Closed loop: {} devices (MQTT 3.1.1, client id = device id, subscribed to their devicebound topic), 40 normal JSON messages each, then one device at a time turns anomalous",
        args.devices
    );
    let _ = writeln!(
        out,
        "- Ingest: {} devices × {} messages, QoS 1 with {} in flight per device; JSON (30 numbers + `ts`){}",
        args.ingest_devices,
        args.messages,
        args.in_flight,
        if args.no_cbor { "" } else { ", then CBOR `device::Features` (three axes)" }
    );
    let _ = writeln!(
        out,
        "- Caveat: the load generator and bosun share the machine's {} cores, so the numbers are a floor for the hub alone; the loop is measured on an otherwise idle hub",
        machine.nproc
    );
    let _ = writeln!(
        out,
        "- Load average (1, 5, 15 min) at the start: {}; at the end: {}",
        loads.0, loads.1
    );
    let _ = writeln!(out, "- No peer comparison: no other product runs this loop");
    let _ = writeln!(
        out,
        "- Each cell is the median of {} run(s); run durations: {}\n",
        runs.len(),
        durations.join(", ")
    );
}

/// The hub's histogram of every successful run: cumulative counts per bucket.
fn histograms(out: &mut String, runs: &[Run]) {
    let ok: Vec<_> = runs.iter().filter_map(|r| r.result.as_ref().ok()).collect();
    let Some(first) = ok.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "\n`bosun_pipeline_anomaly_to_command_seconds` after the loop (cumulative counts per run):\n"
    );
    let heads: Vec<String> = (1..=ok.len()).map(|i| format!("run {i}")).collect();
    let _ = writeln!(out, "| le (s) | {} |", heads.join(" | "));
    let _ = writeln!(out, "|--:|{}", "--:|".repeat(ok.len()));
    for (le, _) in &first.histogram {
        let cells: Vec<String> = ok
            .iter()
            .map(|m| {
                m.histogram
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or_else(|| "–".to_owned(), |(_, v)| format!("{v:.0}"))
            })
            .collect();
        let _ = writeln!(out, "| {le} | {} |", cells.join(" | "));
    }
}
