//! The rule that closes the loop out of the box: when a device enters the anomalous
//! state, switch it to alarm mode, ask it for a raw capture (see [`crate::capture`]) and
//! alert operators with the score and the features that explain it.
//!
//! The user's configuration wins: a rule named [`DEFAULT_ANOMALY_RULE`] replaces this one
//! (with `enabled = false` it switches it off).

use serde_json::{json, Map, Value};

use super::action::{Action, Severity};
use super::Rule;

/// The default rule's name; define a rule with this name to replace or disable it.
pub const DEFAULT_ANOMALY_RULE: &str = "anomaly-closed-loop";

/// The built-in anomaly rule.
pub fn default_anomaly_rule() -> Rule {
    Rule {
        name: DEFAULT_ANOMALY_RULE.to_owned(),
        sql: "SELECT * FROM anomalies WHERE transition = 'entered'".to_owned(),
        enabled: true,
        actions: vec![
            Action::PatchDesired {
                patch: object(json!({"mode": "alarm"})),
            },
            Action::C2d {
                payload: json!({"cmd": "capture", "rate_hz": 10_000, "seconds": 30}),
                properties: Default::default(),
            },
            Action::Alert {
                severity: Severity::Critical,
                message: "anomaly on {deviceId}: score {score}, state {state}; top features \
                          {top.0.feature} (z {top.0.z}), {top.1.feature} (z {top.1.z}), \
                          {top.2.feature} (z {top.2.z})"
                    .to_owned(),
            },
        ],
    }
}

/// The user's rules plus the default anomaly rule, unless the user defined a rule of the
/// same name (which then replaces it, or disables it with `enabled = false`).
pub fn with_default_rules(mut rules: Vec<Rule>) -> Vec<Rule> {
    if !rules.iter().any(|r| r.name == DEFAULT_ANOMALY_RULE) {
        rules.push(default_anomaly_rule());
    }
    rules
}

/// The members of a JSON object literal.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
