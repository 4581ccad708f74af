//! Rules as a whole: loading and its errors, evaluation over realistic documents, config
//! round trips, the default anomaly rule.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

fn rule(name: &str, sql: &str, actions: Vec<Action>) -> Rule {
    Rule {
        name: name.into(),
        sql: sql.into(),
        enabled: true,
        actions,
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A vibration message from line A, as the pipeline would build it.
fn message(rms_x: f64) -> Map<String, Value> {
    let body = object(json!({
        "rms_x": rms_x, "crest_x": 3.2, "kurtosis_x": 2.9, "ok": true,
        "envelope": {"bpfi": [0.12, 0.05]},
        "tags": "body field named tags is shadowed",
    }));
    let system = object(json!({
        "contentType": "application/json",
        "receivedTime": "2026-11-26T04:00:00Z",
    }));
    let properties = vec![("site".to_owned(), "berlin".to_owned())];
    document(
        "pump-7",
        body,
        object(json!({"line": "A", "floor": 2})),
        properties,
        system,
    )
}

#[test]
fn rule_sets_are_shared_across_workers() {
    fn shared<T: Send + Sync>() {}
    shared::<RuleSet>();
}

#[test]
fn document_puts_body_on_top_and_reserved_names_win() {
    let doc = message(0.5);
    assert_eq!(doc.get("rms_x"), Some(&json!(0.5)));
    assert_eq!(doc.get("deviceId"), Some(&json!("pump-7")));
    assert_eq!(doc.get("tags"), Some(&json!({"line": "A", "floor": 2})));
    assert_eq!(doc.get("properties"), Some(&json!({"site": "berlin"})));
    assert_eq!(
        doc.get("$system").and_then(|s| s.get("deviceId")),
        Some(&json!("pump-7"))
    );
}

#[test]
fn evaluates_conditions_and_projects_selected_fields() -> Result<(), RuleError> {
    let set = RuleSet::load(vec![
        rule(
            "hot",
            "SELECT rms_x, crest_x, missing FROM telemetry \
             WHERE tags.line = 'A' AND rms_x > 0.8",
            vec![Action::Store {}],
        ),
        rule("all", "SELECT * FROM telemetry", vec![Action::Store {}]),
        rule(
            "berlin-bpfi",
            "SELECT envelope.bpfi.0 FROM telemetry WHERE properties.site = 'berlin' \
             AND envelope.bpfi.0 > 0.1 AND $system.contentType = 'application/json'",
            vec![],
        ),
        rule(
            "absent",
            "SELECT * FROM telemetry WHERE nothing > 1",
            vec![],
        ),
        rule("anom", "SELECT * FROM anomalies", vec![]),
    ])?;
    let calm = set.evaluate(Source::Telemetry, &message(0.5));
    let names: Vec<_> = calm.iter().map(|m| m.rule.name.as_str()).collect();
    assert_eq!(names, ["all", "berlin-bpfi"]);

    let hot = set.evaluate(Source::Telemetry, &message(0.93));
    assert_eq!(hot.len(), 3);
    assert_eq!(
        Value::Object(hot[0].projection.clone()),
        json!({"rms_x": 0.93, "crest_x": 3.2})
    );
    // Projections are JSON objects, whose members come out sorted by name.
    let numbers = |m: &Matched<'_>| -> Vec<(String, f64)> { m.numeric_fields() };
    let named = |pairs: &[(&str, f64)]| -> Vec<(String, f64)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    assert_eq!(
        numbers(&hot[0]),
        named(&[("crest_x", 3.2), ("rms_x", 0.93)])
    );
    let body = &hot[1].projection;
    assert!(body.contains_key("envelope") && !body.contains_key("tags"));
    let all = [
        ("crest_x", 3.2),
        ("envelope.bpfi.0", 0.12),
        ("envelope.bpfi.1", 0.05),
        ("kurtosis_x", 2.9),
        ("rms_x", 0.93),
    ];
    assert_eq!(numbers(&hot[1]), named(&all));
    assert_eq!(
        Value::Object(hot[2].projection.clone()),
        json!({"envelope.bpfi.0": 0.12})
    );

    assert_eq!(
        hot[0].payload("pump-7"),
        json!({"rule": "hot", "deviceId": "pump-7", "data": {"rms_x": 0.93, "crest_x": 3.2}})
    );
    set.record_action(hot[0].index, true);
    set.record_action(hot[0].index, false);
    set.record_action(99, true);
    let stats = set.snapshot();
    assert_eq!(
        stats[0],
        RuleStats {
            rule: "hot".into(),
            matched: 1,
            actions_ok: 1,
            actions_failed: 1
        }
    );
    assert_eq!(stats[1].matched, 2);
    let text = set.render_prometheus();
    assert!(text.contains("bosun_rule_matched_total{rule=\"all\"} 2\n"));
    Ok(())
}

#[test]
fn disabled_rules_never_match_and_reload_keeps_counters() -> Result<(), RuleError> {
    let mut off = rule("off", "SELECT * FROM telemetry", vec![]);
    off.enabled = false;
    let set = RuleSet::load(vec![off, rule("on", "SELECT * FROM telemetry", vec![])])?;
    assert_eq!(set.evaluate(Source::Telemetry, &message(1.0)).len(), 1);
    let next = set.reload(vec![rule(
        "on",
        "SELECT * FROM telemetry WHERE x = 1",
        vec![],
    )])?;
    assert_eq!(next.snapshot()[0].matched, 1);
    assert_eq!(next.len(), 1);
    Ok(())
}

#[test]
fn load_errors_name_the_rule_and_column() {
    let cases: Vec<(Rule, &str)> = vec![
        (
            rule("bad-sql", "SELECT * FROM telemetry WHERE rms_x >", vec![]),
            "rule \"bad-sql\": sql column 38: expected a string, number, true, false or null, \
             found end of query",
        ),
        (
            rule("wrong-source", "SELECT * FROM devices", vec![]),
            "rule \"wrong-source\": sql column 15: expected telemetry or anomalies, found \
             'devices'",
        ),
        (
            rule("é", "SELECT * FROM telemetry", vec![]),
            "rule \"é\": name must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
        ),
        (
            rule("count", "select count() from telemetry", vec![]),
            "rule \"count\": sql column 8: COUNT() is not allowed in a rule",
        ),
        (
            rule(
                "unicode",
                "SELECT * FROM telemetry WHERE tags.é = 1",
                vec![],
            ),
            "rule \"unicode\": sql column 36: unexpected character 'é'",
        ),
        (
            rule(
                "hook",
                "SELECT * FROM telemetry",
                vec![
                    Action::Store {},
                    Action::Webhook {
                        url: "ftp://x".into(),
                        max_attempts: 5,
                        backoff_ms: 500,
                    },
                ],
            ),
            "rule \"hook\": action 1 (webhook): url \"ftp://x\": must start with http:// or \
             https://",
        ),
        (
            rule(
                "topic",
                "SELECT * FROM telemetry",
                vec![Action::Republish {
                    topic: "out/+/{deviceId}".into(),
                    qos: 1,
                }],
            ),
            "rule \"topic\": action 0 (republish): topic: wildcards '+' and '#' are not \
             allowed in a topic name",
        ),
    ];
    for (definition, expected) in cases {
        let err = RuleSet::load(vec![definition])
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(err, Err(expected.to_owned()));
    }
    let twice = vec![
        rule("a", "SELECT * FROM telemetry", vec![]),
        rule("a", "SELECT * FROM anomalies", vec![]),
    ];
    assert_eq!(
        RuleSet::load(twice).map(|_| ()),
        Err(RuleError::Duplicate { name: "a".into() })
    );
}

const CONFIG: &str = r#"
[[rules]]
name = "hot-bearing"
sql = "SELECT rms_x, crest_x FROM telemetry WHERE tags.line = 'A' AND rms_x > 0.8"

[[rules.actions]]
type = "store"

[[rules.actions]]
type = "republish"
topic = "alerts/{deviceId}/{rule}"
qos = 1

[[rules.actions]]
type = "webhook"
url = "https://hooks.example.com/bosun"

[[rules.actions]]
type = "c2d"
payload = { cmd = "capture", rate_hz = 10000 }
properties = { priority = "high" }

[[rules.actions]]
type = "method"
name = "slowDown"
payload = { rpm = 900 }
timeout_s = 10

[[rules.actions]]
type = "patch_desired"
patch = { mode = "alarm" }

[[rules.actions]]
type = "alert"
severity = "warning"
message = "{deviceId}: rms {rms_x}"

[[rules]]
name = "quiet"
sql = "SELECT * FROM anomalies"
enabled = false
"#;

/// The shape of a config file's rules section.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Config {
    rules: Vec<Rule>,
}

#[test]
fn toml_and_json_round_trip() -> Result<(), Box<dyn std::error::Error>> {
    let config: Config = toml::from_str(CONFIG)?;
    assert_eq!(config.rules.len(), 2);
    assert!(config.rules[0].enabled && !config.rules[1].enabled);
    assert_eq!(
        config.rules[0].actions[2],
        Action::Webhook {
            url: "https://hooks.example.com/bosun".into(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_ms: DEFAULT_BACKOFF_MS,
        }
    );
    assert_eq!(RuleSet::load(config.rules.clone())?.len(), 2);

    let again: Config = toml::from_str(&toml::to_string(&config)?)?;
    assert_eq!(again, config);
    let json = serde_json::to_string(&config)?;
    assert_eq!(serde_json::from_str::<Config>(&json)?, config);

    let default = with_default_rules(vec![]);
    let text = toml::to_string(&Config { rules: default })?;
    assert_eq!(
        toml::from_str::<Config>(&text)?.rules,
        [default_anomaly_rule()]
    );
    Ok(())
}

#[test]
fn unknown_action_types_and_fields_are_refused() {
    let bad = [
        r#"{"type":"explode"}"#,
        r#"{"type":"webhook","url":"http://h","retries":1}"#,
        r#"{"type":"store","fields":["x"]}"#,
        r#"{"type":"alert","severity":"fatal","message":"x"}"#,
        r#"{"url":"http://h"}"#,
    ];
    for text in bad {
        assert!(serde_json::from_str::<Action>(text).is_err(), "{text}");
    }
}

#[test]
fn default_rule_closes_the_loop_and_can_be_replaced() -> Result<(), RuleError> {
    let set = RuleSet::load(with_default_rules(vec![]))?;
    let top = vec![("rms_x".to_owned(), 5.1), ("kurtosis_x".to_owned(), 3.4)];
    let entered = AnomalyInput {
        score: 7.5,
        state: "anomalous",
        transition: "entered",
        top: &top,
    };
    let doc = anomaly_document("pump-7", &entered, object(json!({"line": "A"})));
    let matched = set.evaluate(Source::Anomalies, &doc);
    assert_eq!(matched.len(), 1);
    assert!(set.evaluate(Source::Telemetry, &doc).is_empty());
    let kinds: Vec<_> = matched[0].rule.actions.iter().map(Action::kind).collect();
    assert_eq!(kinds, ["patch_desired", "c2d", "alert"]);
    if let Some(Action::Alert { message, .. }) = matched[0].rule.actions.get(2) {
        let ctx = TemplateContext {
            device_id: "pump-7",
            rule: &matched[0].rule.name,
            doc: &doc,
        };
        assert_eq!(
            render(message, &ctx),
            "anomaly on pump-7: score 7.5, state anomalous; top features rms_x (z 5.1), \
             kurtosis_x (z 3.4),  (z )"
        );
    }
    let staying = AnomalyInput {
        transition: "none",
        ..entered
    };
    let doc = anomaly_document("pump-7", &staying, Map::new());
    assert!(set.evaluate(Source::Anomalies, &doc).is_empty());

    let mut off = default_anomaly_rule();
    off.enabled = false;
    let rules = with_default_rules(vec![off]);
    assert_eq!(rules.len(), 1);
    assert!(!rules[0].enabled);
    Ok(())
}

/// Fragments that often form rules, so generated text reaches deep into the parser.
fn rule_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("SELECT ".to_owned()),
        Just("* ".to_owned()),
        Just("rms_x, top.0.z ".to_owned()),
        Just("FROM telemetry ".to_owned()),
        Just("FROM anomalies ".to_owned()),
        Just("FROM ".to_owned()),
        Just("WHERE ".to_owned()),
        Just("tags.line = 'A' ".to_owned()),
        Just("AND ".to_owned()),
        Just("NOT ".to_owned()),
        Just("( ".to_owned()),
        Just(") ".to_owned()),
        Just("COUNT() ".to_owned()),
        "\\PC{0,3}",
    ];
    prop::collection::vec(fragment, 0..16).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn arbitrary_rule_text_never_panics(sql in prop_oneof![rule_like(), "\\PC{0,64}".boxed()]) {
        let definition = rule("p", &sql, vec![Action::Store {}]);
        match RuleSet::load(vec![definition]) {
            Ok(set) => {
                set.evaluate(Source::Telemetry, &message(0.9));
                set.evaluate(Source::Anomalies, &message(0.9));
            }
            Err(RuleError::Sql { column, .. }) => {
                prop_assert!(column >= 1 && column <= sql.chars().count() + 1);
            }
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }
}
