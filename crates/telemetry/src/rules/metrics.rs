//! Per-rule counters: how often each rule matched and how its actions fared. Atomics, so
//! the pipeline's workers count through a shared `&RuleSet` without a lock; a snapshot
//! renders as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters of one rule.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Messages the rule matched.
    pub(super) matched: AtomicU64,
    /// Actions that succeeded.
    pub(super) actions_ok: AtomicU64,
    /// Actions that failed (after all retries).
    pub(super) actions_failed: AtomicU64,
}

impl Counters {
    /// Reads the counters; each is read on its own, which is all Prometheus expects.
    pub(super) fn snapshot(&self, rule: &str) -> RuleStats {
        RuleStats {
            rule: rule.to_owned(),
            matched: self.matched.load(Ordering::Relaxed),
            actions_ok: self.actions_ok.load(Ordering::Relaxed),
            actions_failed: self.actions_failed.load(Ordering::Relaxed),
        }
    }
}

/// Counters of one rule at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStats {
    /// The rule's name.
    pub rule: String,
    /// Messages the rule matched.
    pub matched: u64,
    /// Actions that succeeded.
    pub actions_ok: u64,
    /// Actions that failed (after all retries).
    pub actions_failed: u64,
}

/// A metric family: name, help text, and how to read it from a snapshot.
type Family = (&'static str, &'static str, fn(&RuleStats) -> u64);

/// The metric families, one per counter.
const FAMILIES: [Family; 3] = [
    (
        "bosun_rule_matched_total",
        "Messages a rule matched.",
        |s| s.matched,
    ),
    (
        "bosun_rule_actions_ok_total",
        "Rule actions that succeeded.",
        |s| s.actions_ok,
    ),
    (
        "bosun_rule_actions_failed_total",
        "Rule actions that failed after all retries.",
        |s| s.actions_failed,
    ),
];

/// Renders snapshots in the Prometheus text exposition format, one family per counter
/// with a `rule` label.
pub fn render_prometheus(stats: &[RuleStats]) -> String {
    let mut out = String::new();
    for (name, help, read) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for s in stats {
            let _ = writeln!(out, "{name}{{rule=\"{}\"}} {}", escape(&s.rule), read(s));
        }
    }
    out
}

/// Escapes a label value (`\`, `"` and newlines), as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_labels() {
        let stats = [RuleStats {
            rule: "hot\"x".into(),
            matched: 3,
            actions_ok: 2,
            actions_failed: 1,
        }];
        let text = render_prometheus(&stats);
        assert!(text.contains("# TYPE bosun_rule_matched_total counter\n"));
        assert!(text.contains("bosun_rule_matched_total{rule=\"hot\\\"x\"} 3\n"));
        assert!(text.contains("bosun_rule_actions_ok_total{rule=\"hot\\\"x\"} 2\n"));
        assert!(text.contains("bosun_rule_actions_failed_total{rule=\"hot\\\"x\"} 1\n"));
    }
}
