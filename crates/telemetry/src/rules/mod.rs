//! Declarative rules: a query (`SELECT … FROM telemetry WHERE …`) and the ordered actions
//! the pipeline runs for each message it matches.
//!
//! This module is pure: it parses and validates rule definitions, builds the documents
//! rules read, decides which rules match and what they project, renders templates and
//! computes webhook backoff. Carrying out actions (storing, publishing, calling webhooks,
//! sending C2D messages) is the pipeline's job; it reports outcomes back through
//! [`RuleSet::record_action`] so the counters here stay the one place rules are measured.
//!
//! Layout: `action` (what a rule does, and its validation), `document` (the documents
//! rules evaluate over), `message` (that document from a decoded message), `template` (`{deviceId}`-style placeholders), `backoff` (webhook
//! retry delays), `metrics` (per-rule counters and their Prometheus text), `default_rule`
//! (the anomaly rule that closes the loop), `set` (loading and evaluating rules).

mod action;
mod backoff;
mod default_rule;
mod document;
mod message;
mod metrics;
mod set;
mod template;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use action::{Action, ActionError, Severity, DEFAULT_BACKOFF_MS, DEFAULT_MAX_ATTEMPTS};
pub use backoff::{Backoff, MAX_BACKOFF_MS};
pub use default_rule::{default_anomaly_rule, with_default_rules, DEFAULT_ANOMALY_RULE};
pub use document::{anomaly_document, document, AnomalyInput, RESERVED_FIELDS, SYSTEM_FIELD};
pub use message::message_document;
pub use metrics::{render_prometheus, RuleStats};
pub use set::{Matched, RuleSet, Source};
pub use template::{check_template, render, render_topic, TemplateContext, TemplateError};

/// Longest rule name accepted; names become metric labels and topic segments.
pub const MAX_NAME_LEN: usize = 64;

/// One rule as written in the config file (`[[rules]]` with `[[rules.actions]]`) or sent
/// to the REST API. [`RuleSet::load`] validates it; until then it is only data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name: `[A-Za-z0-9_.-]`, at most [`MAX_NAME_LEN`] bytes, so it is safe in
    /// metric labels and topics.
    pub name: String,
    /// The query, e.g. `SELECT rms_x FROM telemetry WHERE tags.line = 'A' AND rms_x > 0.8`.
    pub sql: String,
    /// A disabled rule is loaded and validated but never matches.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// What to do for each match, in order.
    #[serde(default)]
    pub actions: Vec<Action>,
}

/// Rules are on unless the definition says otherwise.
fn enabled_default() -> bool {
    true
}

/// Why a rule definition was refused at load, always naming the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The name is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error("rule {name:?}: name must be 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 _ . -")]
    Name {
        /// The name as given.
        name: String,
    },
    /// Two rules share a name.
    #[error("rule {name:?} is defined twice")]
    Duplicate {
        /// The repeated name.
        name: String,
    },
    /// The query does not parse or is not usable as a rule.
    #[error("rule {rule:?}: sql column {column}: {message}")]
    Sql {
        /// The rule's name.
        rule: String,
        /// 1-based column (in characters) of the problem in the query text.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An action is invalid.
    #[error("rule {rule:?}: action {index} ({kind}): {error}")]
    Action {
        /// The rule's name.
        rule: String,
        /// 0-based position of the action in the rule.
        index: usize,
        /// The action's `type`.
        kind: &'static str,
        /// What is wrong.
        error: ActionError,
    },
}

/// Is `name` usable as a rule name?
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The 1-based character column of byte offset `position` in `text` (clamped to its end).
fn column(text: &str, position: usize) -> usize {
    let prefix = text.get(..position.min(text.len())).unwrap_or(text);
    prefix.chars().count() + 1
}
