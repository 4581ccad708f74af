//! A validated set of rules: loading (every rule checked, names unique), evaluation of one
//! document against every enabled rule of its source, and the per-rule counters.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use query::Query;
use serde_json::{Map, Value};

use super::document::body_of;
use super::metrics::{render_prometheus, Counters, RuleStats};
use super::{column, valid_name, Rule, RuleError};

/// What a rule reads, named after `FROM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Device messages (`FROM telemetry`), documents from [`super::document`].
    Telemetry,
    /// Anomaly assessments (`FROM anomalies`), documents from
    /// [`super::anomaly_document`].
    Anomalies,
}

impl Source {
    /// Every source, as written after `FROM`.
    const NAMES: [&'static str; 2] = ["telemetry", "anomalies"];

    /// The name written after `FROM`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Telemetry => "telemetry",
            Source::Anomalies => "anomalies",
        }
    }

    /// The source called `name` (any case).
    fn from_name(name: &str) -> Option<Source> {
        [Source::Telemetry, Source::Anomalies]
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

/// A rule that passed validation, with its parsed query and counters.
#[derive(Debug)]
struct Compiled {
    /// The definition as loaded.
    rule: Rule,
    /// Its parsed `sql`.
    query: Query,
    /// Its `FROM`.
    source: Source,
    /// Its counters.
    counters: Counters,
}

/// One rule's match of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched<'a> {
    /// The rule's position in the set, for [`RuleSet::record_action`].
    pub index: usize,
    /// The rule, for its name and actions.
    pub rule: &'a Rule,
    /// The `SELECT`ed fields keyed as written (`rms_x`, `tags.line`), missing ones left
    /// out; for `SELECT *`, the document without its reserved members (the body).
    pub projection: Map<String, Value>,
}

impl Matched<'_> {
    /// What a `store` action stores: every number in the projection, nested objects and
    /// arrays flattened to dotted names (`envelope.bpfi.0`); booleans and text are not
    /// time series. Members come in name order (JSON objects keep members sorted).
    pub fn numeric_fields(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (name, value) in &self.projection {
            flatten_numbers(name.clone(), value, 0, &mut out);
        }
        out
    }

    /// The JSON body republish and webhook actions send, the same for both so consumers
    /// parse one shape: `{"rule": name, "deviceId": id, "data": projection}`.
    pub fn payload(&self, device_id: &str) -> Value {
        let mut body = Map::new();
        body.insert("rule".into(), Value::from(self.rule.name.as_str()));
        body.insert("deviceId".into(), Value::from(device_id));
        body.insert("data".into(), Value::Object(self.projection.clone()));
        Value::Object(body)
    }
}

/// Deepest nesting [`Matched::numeric_fields`] descends into; deeper numbers are skipped
/// rather than risking the stack on a hostile body.
const MAX_FLATTEN_DEPTH: usize = 16;

/// Appends the numbers in `value` under `name`, depth-first.
fn flatten_numbers(name: String, value: &Value, depth: usize, out: &mut Vec<(String, f64)>) {
    if depth > MAX_FLATTEN_DEPTH {
        return;
    }
    match value {
        Value::Number(n) => out.extend(n.as_f64().map(|n| (name, n))),
        Value::Object(members) => {
            for (key, member) in members {
                flatten_numbers(format!("{name}.{key}"), member, depth + 1, out);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten_numbers(format!("{name}.{index}"), item, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// The rules of one configuration, validated, ready to evaluate from many workers.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// In definition order, which is evaluation order.
    rules: Vec<Compiled>,
}

impl RuleSet {
    /// Validates every definition; the first problem refuses the whole set, so a typo
    /// never silently drops a rule.
    pub fn load(definitions: Vec<Rule>) -> Result<RuleSet, RuleError> {
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(definitions.len());
        for rule in definitions {
            let (query, source) = compile(&rule)?;
            if !names.insert(rule.name.clone()) {
                return Err(RuleError::Duplicate { name: rule.name });
            }
            rules.push(Compiled {
                rule,
                query,
                source,
                counters: Counters::default(),
            });
        }
        Ok(RuleSet { rules })
    }

    /// Checks one definition without loading it (the REST API's dry run).
    pub fn validate(rule: &Rule) -> Result<Source, RuleError> {
        compile(rule).map(|(_, source)| source)
    }

    /// Loads `definitions` as a replacement for this set, carrying the counters of rules
    /// that keep their name, so a config reload does not reset the metrics.
    pub fn reload(&self, definitions: Vec<Rule>) -> Result<RuleSet, RuleError> {
        let next = RuleSet::load(definitions)?;
        for new in &next.rules {
            if let Some(old) = self.rules.iter().find(|c| c.rule.name == new.rule.name) {
                let old = &old.counters;
                let pairs = [
                    (&new.counters.matched, &old.matched),
                    (&new.counters.actions_ok, &old.actions_ok),
                    (&new.counters.actions_failed, &old.actions_failed),
                ];
                for (to, from) in pairs {
                    to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
        }
        Ok(next)
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    /// How many rules (enabled or not) the set holds.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Does the set hold no rules?
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs every enabled rule of `source` over `doc`, counting matches. The pipeline runs
    /// each match's actions in order and reports each outcome with
    /// [`RuleSet::record_action`].
    pub fn evaluate(&self, source: Source, doc: &Map<String, Value>) -> Vec<Matched<'_>> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, c)| c.rule.enabled && c.source == source)
            .filter(|(_, c)| c.query.matches_object(doc))
            .map(|(index, c)| {
                c.counters.matched.fetch_add(1, Ordering::Relaxed);
                let projection = if c.query.selects_all() {
                    body_of(doc)
                } else {
                    c.query.project_paths(doc)
                };
                Matched {
                    index,
                    rule: &c.rule,
                    projection,
                }
            })
            .collect()
    }

    /// Counts one action outcome of rule `index` (from [`Matched::index`]); an unknown
    /// index is ignored.
    pub fn record_action(&self, index: usize, ok: bool) {
        if let Some(c) = self.rules.get(index) {
            let counter = if ok {
                &c.counters.actions_ok
            } else {
                &c.counters.actions_failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every rule's counters now.
    pub fn snapshot(&self) -> Vec<RuleStats> {
        self.rules
            .iter()
            .map(|c| c.counters.snapshot(&c.rule.name))
            .collect()
    }

    /// The counters in the Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        render_prometheus(&self.snapshot())
    }
}

/// Validates one rule: its name, its query (a known source, no `COUNT()`) and actions.
fn compile(rule: &Rule) -> Result<(Query, Source), RuleError> {
    if !valid_name(&rule.name) {
        return Err(RuleError::Name {
            name: rule.name.clone(),
        });
    }
    let sql_error = |position: usize, message: String| RuleError::Sql {
        rule: rule.name.clone(),
        column: column(&rule.sql, position),
        message,
    };
    let query = query::parse(&rule.sql).map_err(|e| sql_error(e.position, e.message))?;
    query
        .expect_source(&Source::NAMES)
        .map_err(|e| sql_error(e.position, e.message))?;
    let source = Source::from_name(query.source())
        .ok_or_else(|| sql_error(query.source_position(), "unknown source".into()))?;
    if query.is_count() {
        let at = rule.sql.to_ascii_lowercase().find("count").unwrap_or(0);
        return Err(sql_error(at, "COUNT() is not allowed in a rule".into()));
    }
    for (index, action) in rule.actions.iter().enumerate() {
        action.validate().map_err(|error| RuleError::Action {
            rule: rule.name.clone(),
            index,
            kind: action.kind(),
            error,
        })?;
    }
    Ok((query, source))
}
