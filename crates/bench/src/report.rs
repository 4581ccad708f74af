//! The Markdown report: machine and version information, the exact command line, and
//! per scenario the median of every metric for both brokers with the bosun/Mosquitto
//! ratio, every individual run, and which targets from the issue are met.

use std::fmt::Write as _;

use crate::peer::{Kind, BOSUN_SETTINGS, MOSQUITTO_SETTINGS};
use crate::scenario::{Better, Metric, Scenario};

/// What one broker produced in one repetition of one scenario.
pub(crate) struct Outcome {
    /// The scenario run.
    pub(crate) scenario: Scenario,
    /// The broker measured.
    pub(crate) kind: Kind,
    /// The metrics, or why the run failed.
    pub(crate) result: Result<Vec<Metric>, String>,
}

/// Facts about the machine and the software under test.
pub(crate) struct Machine {
    /// Logical CPUs.
    pub(crate) nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub(crate) cpu: String,
    /// Kernel release.
    pub(crate) kernel: String,
    /// First line of `mosquitto -h`.
    pub(crate) mosquitto: String,
    /// `bosun --version`.
    pub(crate) bosun: String,
    /// UTC time of the run.
    pub(crate) date: String,
}

impl Machine {
    /// Collects the machine facts; anything unreadable is reported as `unknown`.
    pub(crate) fn probe(paths: &crate::peer::Paths) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel,
            mosquitto: first_line(&paths.mosquitto.to_string_lossy(), &["-h"]),
            bosun: first_line(&paths.bosun.to_string_lossy(), &["--version"]),
            date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        }
    }

    /// A report's title and the lines every report opens with: when and on what it ran.
    pub(crate) fn intro(&self, out: &mut String, title: &str) {
        let _ = writeln!(out, "# {title}\n");
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(
            out,
            "- Machine: {}, nproc {}, Linux {}",
            self.cpu, self.nproc, self.kernel
        );
    }
}

/// A line per failed run (numbered from 1), then what each row of the tables means.
pub(crate) fn closing<'a>(
    out: &mut String,
    errors: impl Iterator<Item = Option<&'a str>>,
    definitions: &[(&str, &str)],
) {
    for (i, error) in errors.enumerate() {
        if let Some(e) = error {
            let _ = writeln!(out, "- **run {} failed**: {}", i + 1, e.replace('\n', " "));
        }
    }
    let _ = writeln!(out, "\nWhat the rows measure:\n");
    for (name, text) in definitions {
        let _ = writeln!(out, "- **{name}**: {text}.");
    }
}

/// First non-empty output line of a command (stdout, else stderr), or `unknown`.
fn first_line(exe: &str, args: &[&str]) -> String {
    std::process::Command::new(exe)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Median of a non-empty list (mean of the middle two for an even length).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// A number with a precision suited to its size, thousands separated.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_owned();
    }
    if x.abs() >= 1000.0 {
        let digits = format!("{:.0}", x.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if x < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Renders the whole report.
pub(crate) fn render(
    machine: &Machine,
    command: &str,
    repeat: usize,
    outcomes: &[Outcome],
) -> String {
    let mut out = String::new();
    machine.intro(&mut out, "bosun vs Mosquitto: MQTT benchmark results");
    let _ = writeln!(
        out,
        "- bosun: `{}`; Mosquitto: `{}`",
        machine.bosun, machine.mosquitto
    );
    let _ = writeln!(
        out,
        "- Mosquitto settings besides the listener: `{}`",
        MOSQUITTO_SETTINGS.join("`, `")
    );
    let bosun_env: Vec<String> = BOSUN_SETTINGS
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(
        out,
        "- bosun: `serve --dev` on ephemeral ports with `{}`",
        bosun_env.join("`, `")
    );
    let _ = writeln!(out, "- Command: `{command}`");
    let _ = writeln!(
        out,
        "- Each cell is the median of {repeat} runs; every run starts a fresh broker, and the two brokers \
         alternate which goes first. Broker and load generator share the machine's CPUs, so the \
         per-CPU-second metrics are the fair comparison; rates are shown for context.\n"
    );
    for scenario in Scenario::ALL {
        let runs: Vec<&Outcome> = outcomes.iter().filter(|o| o.scenario == scenario).collect();
        if runs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {}\n", scenario.name());
        let _ = writeln!(out, "| metric | bosun | mosquitto | bosun/mosquitto | better | bosun runs | mosquitto runs |");
        let _ = writeln!(out, "|---|--:|--:|--:|:-:|---|---|");
        for (name, unit, better) in metric_names(&runs) {
            let values = |kind: Kind| -> Vec<f64> {
                runs.iter()
                    .filter(|o| o.kind == kind)
                    .filter_map(|o| o.result.as_ref().ok())
                    .filter_map(|ms| ms.iter().find(|m| m.name == name).map(|m| m.value))
                    .collect()
            };
            let (b, m) = (values(Kind::Bosun), values(Kind::Mosquitto));
            let (bm, mm) = (median(&b), median(&m));
            let ratio = match (bm, mm) {
                (Some(b), Some(m)) if m != 0.0 => format!("{:.2}×", b / m),
                _ => "–".to_owned(),
            };
            let cell =
                |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{} {unit}", num(v)));
            let list = |v: &[f64]| v.iter().map(|x| num(*x)).collect::<Vec<_>>().join(" / ");
            let arrow = if better == Better::Higher {
                "↑"
            } else {
                "↓"
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {ratio} | {arrow} | {} | {} |",
                cell(bm),
                cell(mm),
                list(&b),
                list(&m)
            );
        }
        let _ = writeln!(out);
        for o in runs.iter().filter(|o| o.result.is_err()) {
            if let Err(e) = &o.result {
                let _ = writeln!(out, "- **{} run failed**: {}", o.kind, e.replace('\n', " "));
            }
        }
        let lookup = |kind: Kind, name: &str| -> Option<f64> {
            let v: Vec<f64> = runs
                .iter()
                .filter(|o| o.kind == kind)
                .filter_map(|o| o.result.as_ref().ok())
                .filter_map(|ms| ms.iter().find(|m| m.name == name).map(|m| m.value))
                .collect();
            median(&v)
        };
        for (text, met) in targets(scenario, &lookup) {
            let mark = match met {
                Some(true) => "met",
                Some(false) => "**not met**",
                None => "not measured",
            };
            let _ = writeln!(out, "- Target: {text}: {mark}");
        }
        let _ = writeln!(out);
    }
    out
}

/// Metric names in first-seen order, with their unit and direction.
fn metric_names(runs: &[&Outcome]) -> Vec<(&'static str, &'static str, Better)> {
    let mut names: Vec<(&'static str, &'static str, Better)> = Vec::new();
    for ms in runs.iter().filter_map(|o| o.result.as_ref().ok()) {
        for m in ms {
            if !names.iter().any(|(n, _, _)| *n == m.name) {
                names.push((m.name, m.unit, m.better));
            }
        }
    }
    names
}

/// The targets for a scenario, each with whether the medians meet it.
fn targets(
    scenario: Scenario,
    get: &dyn Fn(Kind, &str) -> Option<f64>,
) -> Vec<(String, Option<bool>)> {
    let ratio = |name: &str| Some(get(Kind::Bosun, name)? / get(Kind::Mosquitto, name)?);
    let at_least = |name: &str, r: f64| {
        (
            format!("{name} ≥ {r}× Mosquitto"),
            ratio(name).map(|x| x >= r),
        )
    };
    let no_worse = |name: &str| {
        let met = get(Kind::Bosun, name)
            .zip(get(Kind::Mosquitto, name))
            .map(|(b, m)| b <= m);
        (format!("{name} no worse than Mosquitto"), met)
    };
    match scenario {
        Scenario::Fanin0 => vec![at_least("msgs per broker CPU-s", 1.5)],
        Scenario::Fanin1 => vec![at_least("msgs per broker CPU-s", 1.0)],
        Scenario::Fanout => {
            let back = get(Kind::Bosun, "RSS, 2 s after run")
                .zip(get(Kind::Bosun, "RSS, subscribers idle"))
                .map(|(after, idle)| after <= idle * 1.25);
            vec![
                at_least("deliveries per broker CPU-s", 1.5),
                (
                    "bosun RSS 2 s after the run within 25 % of its idle RSS".to_owned(),
                    back,
                ),
            ]
        }
        Scenario::Idle => vec![
            (
                "bosun RSS per connection ≤ 2 KiB".to_owned(),
                get(Kind::Bosun, "RSS per connection").map(|b| b <= 2048.0),
            ),
            at_least("connect+subscribe rate", 1.0),
        ],
        Scenario::Latency => vec![no_worse("p50 latency"), no_worse("p99 latency")],
    }
}
