//! The Markdown report of `bosun-bench hub`: how it was run, the median of every metric
//! over the runs next to each run's value, and what each row measures.

use std::fmt::Write as _;

use super::steps::Settings;
use crate::report::{median, num, Machine};
use crate::scenario::Metric;

/// What one run produced.
pub(crate) struct RunOutcome {
    /// Wall-clock seconds of the whole run, server start to stop.
    pub(crate) seconds: f64,
    /// The metrics, or why the run failed.
    pub(crate) result: Result<Vec<Metric>, String>,
}

/// What the rows mean, in report order; shown under the table.
const DEFINITIONS: &[(&str, &str)] = &[
    ("registration", "`POST /api/devices` for every device over the API connections; rate = devices / time until the last 201"),
    ("connect", "CONNECT + one SUBSCRIBE of the three device filters, 64 handshakes in flight; *all SUBACKs* = time until the last SUBACK; *hub caught up* = time until a twin GET sent after that (and after the desired updates the hub sends at subscription) is answered, i.e. until the hub has processed every connection event"),
    ("reported patch", "every device sends its patches on `$iothub/twin/PATCH/properties/reported/?$rid=…`, the next one when the previous `204` answer arrives; rate = patches / time until the last answer; latency = send to answer, per patch"),
    ("desired fan-out", "one `PATCH /api/devices/{id}/twin` per device over the API connections; time until the last device has received its update and sent PUBACK"),
    ("method", "`POST /api/devices/{id}/methods/echo` to random devices, which echo the payload; first one call at a time, then the same number of calls from all API connections at once"),
    ("hub CPU", "user + system CPU time of the bosun process during the step, per operation"),
    ("losses", "`bosun_service_events_dropped_total` from `/metrics`, and answers the devices found wrong or unexpected; all should be 0"),
];

/// Renders the whole report.
pub(crate) fn render(
    machine: &Machine,
    command: &str,
    settings: &Settings,
    runs: &[RunOutcome],
) -> String {
    let mut out = String::new();
    header(&mut out, machine, command, settings, runs);
    table(&mut out, runs);
    let errors = runs
        .iter()
        .map(|r| r.result.as_ref().err().map(String::as_str));
    crate::report::closing(&mut out, errors, DEFINITIONS);
    out
}

/// Title, machine and settings.
fn header(
    out: &mut String,
    machine: &Machine,
    command: &str,
    settings: &Settings,
    runs: &[RunOutcome],
) {
    let durations: Vec<String> = runs.iter().map(|r| format!("{:.0} s", r.seconds)).collect();
    machine.intro(out, "bosun control plane: benchmark results");
    let _ = writeln!(out, "- bosun: `{}`, `serve --dev` with its default configuration, a fresh process and data directory per run", machine.bosun);
    let _ = writeln!(out, "- Command: `{command}`");
    let _ = writeln!(
        out,
        "- {} simulated devices in one process (MQTT 3.1.1, one connection each), {} reported \
         patch(es) per device, {} method calls, {} API connections",
        num(settings.devices as f64),
        settings.patches,
        num(settings.method_calls as f64),
        settings.concurrency
    );
    let _ = writeln!(
        out,
        "- Each cell is the median of {} run(s); run durations: {}\n",
        runs.len(),
        durations.join(", ")
    );
}

/// One row per metric: the median and every run's value.
pub(crate) fn table(out: &mut String, runs: &[RunOutcome]) {
    let _ = writeln!(out, "| metric | median | runs |");
    let _ = writeln!(out, "|---|--:|---|");
    let ok: Vec<&Vec<Metric>> = runs.iter().filter_map(|r| r.result.as_ref().ok()).collect();
    let Some(first) = ok.first() else {
        let _ = writeln!(out, "| (no run succeeded) | | |\n");
        return;
    };
    for m in first.iter() {
        let values: Vec<f64> = ok
            .iter()
            .filter_map(|ms| ms.iter().find(|x| x.name == m.name).map(|x| x.value))
            .collect();
        let cell = median(&values).map_or_else(
            || "–".to_owned(),
            |v| format!("{} {}", number(v, m.unit), m.unit),
        );
        let list: Vec<String> = values.iter().map(|v| number(*v, m.unit)).collect();
        let _ = writeln!(out, "| {} | {cell} | {} |", m.name, list.join(" / "));
    }
    let _ = writeln!(out);
}

/// A value as the report shows it: counts as whole numbers, the rest by [`num`].
fn number(value: f64, unit: &str) -> String {
    if unit == "count" && value.abs() < 1000.0 {
        format!("{value:.0}")
    } else {
        num(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{metric, Better};

    fn machine() -> Machine {
        Machine {
            nproc: 2,
            cpu: "cpu".into(),
            kernel: "6".into(),
            mosquitto: String::new(),
            bosun: "bosun 0.1.0".into(),
            date: "today".into(),
        }
    }

    #[test]
    fn medians_and_failed_runs() {
        let run = |v: f64| RunOutcome {
            seconds: 10.0,
            result: Ok(vec![metric(
                "registration rate",
                "devices/s",
                Better::Higher,
                v,
            )]),
        };
        let failed = RunOutcome {
            seconds: 1.0,
            result: Err("boom".into()),
        };
        let settings = Settings {
            devices: 10,
            patches: 1,
            method_calls: 5,
            concurrency: 2,
        };
        let text = render(
            &machine(),
            "x",
            &settings,
            &[run(1000.0), run(3000.0), failed, run(2000.0)],
        );
        assert!(
            text.contains("| registration rate | 2,000 devices/s | 1,000 / 3,000 / 2,000 |"),
            "{text}"
        );
        assert!(text.contains("**run 3 failed**: boom"), "{text}");
    }
}
