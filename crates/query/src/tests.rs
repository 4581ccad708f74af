//! Tests of the query language as a whole: parsing, matching, projection, limits.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn doc() -> Value {
    json!({
        "deviceId": "dev1",
        "status": "enabled",
        "connectionState": "connected",
        "tags": {"site": "berlin", "floor": 3, "vip": true, "note": null},
        "properties": {
            "desired": {"fan": 2, "$version": 4},
            "reported": {"mode": "eco", "temp": 21.5, "$version": 9},
        },
    })
}

fn matches(text: &str) -> Result<bool, QueryError> {
    Ok(parse(text)?.matches(&doc()))
}

#[test]
fn select_star_without_where_matches_everything() -> Result<(), QueryError> {
    let query = parse("SELECT * FROM devices")?;
    assert!(query.matches(&json!({})));
    assert_eq!(query.project(&doc()), doc());
    assert!(!query.is_count());
    Ok(())
}

#[test]
fn comparisons() -> Result<(), QueryError> {
    let cases = [
        ("tags.site = 'berlin'", true),
        ("tags.site = \"berlin\"", true),
        ("tags.site != 'paris'", true),
        ("tags.site <> 'berlin'", false),
        ("tags.floor >= 3", true),
        ("tags.floor > 3", false),
        ("tags.floor < 3.5", true),
        ("properties.reported.temp <= 21.5", true),
        ("properties.desired.$version = 4", true),
        ("tags.vip = true", true),
        ("tags.vip != false", true),
        ("tags.vip > false", false),
        ("tags.note = null", true),
        ("tags.floor = '3'", false),
        ("tags.floor != '3'", false),
        ("tags.missing != 'x'", false),
        ("status = 'enabled' AND connectionState = 'connected'", true),
    ];
    for (cond, expected) in cases {
        assert_eq!(
            matches(&format!("SELECT * FROM devices WHERE {cond}"))?,
            expected,
            "{cond}"
        );
    }
    Ok(())
}

#[test]
fn logic_in_and_is_defined() -> Result<(), QueryError> {
    let cases = [
        ("tags.site IN ['paris', 'berlin']", true),
        ("tags.site IN ('paris')", false),
        ("tags.site IN []", false),
        ("tags.floor IN [1, 2, 3]", true),
        ("IS_DEFINED(properties.reported.mode)", true),
        ("is_defined(tags.nothing)", false),
        ("NOT IS_DEFINED(tags.nothing)", true),
        ("NOT tags.missing = 'x'", true),
        (
            "tags.site = 'x' OR tags.floor = 3 AND tags.vip = true",
            true,
        ),
        (
            "(tags.site = 'x' OR tags.floor = 3) AND tags.vip = false",
            false,
        ),
        ("not (tags.site = 'x' or tags.site = 'y')", true),
        ("NOT NOT tags.vip = true", true),
    ];
    for (cond, expected) in cases {
        assert_eq!(
            matches(&format!("select * from Devices where {cond}"))?,
            expected,
            "{cond}"
        );
    }
    Ok(())
}

#[test]
fn projects_paths_by_full_name() -> Result<(), QueryError> {
    let query =
        parse("SELECT deviceId, tags.site, properties.reported.mode, tags.absent FROM devices")?;
    let expected =
        json!({"deviceId": "dev1", "tags.site": "berlin", "properties.reported.mode": "eco"});
    assert_eq!(query.project(&doc()), expected);
    Ok(())
}

#[test]
fn count_queries() -> Result<(), QueryError> {
    let query = parse("SELECT COUNT() FROM devices WHERE tags.floor = 3")?;
    assert!(query.is_count() && query.matches(&doc()));
    assert_eq!(query.count_alias(), "numberOfDevices");
    assert_eq!(query.count_result(2), json!({"numberOfDevices": 2}));
    let query = parse("select count() as total from devices")?;
    assert_eq!(query.count_alias(), "total");
    assert_eq!(query.project(&doc()), json!({}));
    // `count` without parentheses is an ordinary path.
    assert!(!parse("SELECT count FROM devices")?.is_count());
    Ok(())
}

#[test]
fn errors_point_at_the_problem() {
    let cases = [
        ("", 0, "expected SELECT, found end of query"),
        (
            "SELECT * FROM tags.x",
            14,
            "expected a source name such as devices, found 'tags.x'",
        ),
        (
            "SELECT * FROM",
            13,
            "expected a source name such as devices, found end of query",
        ),
        (
            "SELECT * FROM devices WHERE tags.site =",
            39,
            "expected a string, number, true, false or null, found end of query",
        ),
        (
            "SELECT * FROM devices WHERE tags.site 'x'",
            38,
            "expected a comparison operator or IN, found a string",
        ),
        (
            "SELECT * FROM devices WHERE (a = 1",
            34,
            "expected ')', found end of query",
        ),
        (
            "SELECT * FROM devices WHERE a..b = 1",
            30,
            "empty path segment",
        ),
        (
            "SELECT * FROM devices WHERE AND = 1",
            28,
            "expected a path, found 'AND'",
        ),
        (
            "SELECT * FROM devices x",
            22,
            "expected end of query, found 'x'",
        ),
        (
            "SELECT a, FROM devices",
            10,
            "expected a path, found 'FROM'",
        ),
        (
            "SELECT COUNT() AS FROM devices",
            18,
            "expected a name for the count, found 'FROM'",
        ),
        (
            "SELECT * FROM devices WHERE a IN ['x' 'y']",
            38,
            "expected ',' or the end of the list, found a string",
        ),
    ];
    for (text, position, message) in cases {
        let err = parse(text).map(|_| ());
        assert_eq!(err, Err(QueryError::new(position, message)), "{text}");
    }
}

#[test]
fn any_source_parses_and_callers_choose() -> Result<(), QueryError> {
    let query = parse("SELECT rms_x FROM Telemetry WHERE rms_x > 0.8")?;
    assert_eq!(query.source(), "Telemetry");
    assert_eq!(query.source_position(), 18);
    assert!(query.expect_source(&["telemetry", "anomalies"]).is_ok());
    assert!(parse_from("select * from DEVICES", "devices").is_ok());
    let err = parse_from("SELECT * FROM modules", "devices").map(|_| ());
    assert_eq!(
        err,
        Err(QueryError::new(14, "expected devices, found 'modules'"))
    );
    // The source is checked where it stands, as when `devices` was part of the grammar.
    let cases = [
        (
            "SELECT * FROM modules WHERE (",
            "expected devices, found 'modules'",
        ),
        ("SELECT * FROM 12", "expected devices, found a number"),
        ("SELECT * FROM tags.x", "expected devices, found 'tags.x'"),
        (
            "SELECT * FROM WHERE a = 1",
            "expected devices, found 'WHERE'",
        ),
    ];
    for (text, message) in cases {
        let err = parse_from(text, "devices").map(|_| ());
        assert_eq!(err, Err(QueryError::new(14, message)), "{text}");
    }
    let err = query.expect_source(&["devices"]).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("at 18: expected devices, found 'Telemetry'".to_owned())
    );
    Ok(())
}

#[test]
fn numeric_segments_index_arrays_and_dollar_segments_are_keys() -> Result<(), QueryError> {
    let doc = json!({
        "top": [{"feature": "rms_x", "z": 4.5}, {"feature": "crest_x", "z": 3.1}],
        "env": {"bpfi": [0.1, 0.7], "0": "key"},
        "$system": {"contentType": "application/json"},
    });
    let cases = [
        ("top.0.feature = 'rms_x'", true),
        ("top.1.z > 3", true),
        ("top.2.z > 3", false),
        ("env.bpfi.1 >= 0.7", true),
        ("env.0 = 'key'", true),
        ("env.bpfi.x = 1", false),
        ("$system.contentType = 'application/json'", true),
    ];
    for (cond, expected) in cases {
        let query = parse(&format!("SELECT * FROM telemetry WHERE {cond}"))?;
        assert_eq!(query.matches(&doc), expected, "{cond}");
    }
    let query = parse("SELECT top.0.feature, env.bpfi.1, nothing FROM telemetry")?;
    let Value::Object(object) = doc else {
        return Ok(());
    };
    let expected = json!({"top.0.feature": "rms_x", "env.bpfi.1": 0.7});
    assert_eq!(Value::Object(query.project_paths(&object)), expected);
    assert_eq!(
        query.selected_paths().collect::<Vec<_>>(),
        ["top.0.feature", "env.bpfi.1", "nothing"]
    );
    assert!(!query.selects_all() && query.matches(&json!([1])));
    Ok(())
}

#[test]
fn display_names_the_position() {
    let err = parse("SELECT * FROM devices WHERE tags.site =")
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("at 39: expected a string, number, true, false or null, found end of query".to_owned())
    );
}

#[test]
fn limits_length_and_nesting() {
    let long = format!(
        "SELECT * FROM devices WHERE a = '{}'",
        "x".repeat(MAX_QUERY_LEN)
    );
    assert_eq!(
        parse(&long).map(|_| ()).map_err(|e| e.position),
        Err(MAX_QUERY_LEN)
    );
    let ok = format!(
        "SELECT * FROM devices WHERE {}a = 1{}",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert!(parse(&ok).is_ok());
    let deep = format!(
        "SELECT * FROM devices WHERE {}a = 1",
        "NOT ".repeat(MAX_NESTING + 1)
    );
    assert!(parse(&deep).is_err_and(|e| e.message.contains("nesting")));
    let very_deep = format!("SELECT * FROM devices WHERE {}", "(".repeat(5000));
    assert!(parse(&very_deep).is_err());
}

#[test]
fn long_flat_chains_do_not_recurse() -> Result<(), QueryError> {
    let chain = vec!["tags.floor = 3"; 400].join(" AND ");
    assert!(matches(&format!("SELECT * FROM devices WHERE {chain}"))?);
    Ok(())
}

/// Fragments that often form valid queries, so generated text reaches the parser's depths.
fn query_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("SELECT ".to_owned()),
        Just("* FROM devices ".to_owned()),
        Just("FROM telemetry ".to_owned()),
        Just("top.0.z $system.x ".to_owned()),
        Just("WHERE ".to_owned()),
        Just("tags.a ".to_owned()),
        Just("= 1 ".to_owned()),
        Just("IN ['x', 2] ".to_owned()),
        Just("AND ".to_owned()),
        Just("OR ".to_owned()),
        Just("NOT ".to_owned()),
        Just("( ".to_owned()),
        Just(") ".to_owned()),
        Just("IS_DEFINED(x) ".to_owned()),
        Just("COUNT() AS n ".to_owned()),
        Just("'unterminated".to_owned()),
        "\\PC{0,3}",
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn never_panics_and_errors_point_into_the_input(text in "\\PC{0,64}|[ -~]{0,64}") {
        if let Err(err) = parse(&text) {
            prop_assert!(err.position <= text.len());
            prop_assert!(text.is_char_boundary(err.position));
        }
    }

    #[test]
    fn query_like_text_never_panics(text in query_like()) {
        if let Err(err) = parse_from(&text, "devices") {
            prop_assert!(err.position <= text.len());
        }
        match parse(&text) {
            Ok(query) => { query.matches(&doc()); query.project(&doc()); }
            Err(err) => {
                prop_assert!(err.position <= text.len());
                prop_assert!(text.is_char_boundary(err.position));
            }
        }
    }

    #[test]
    fn generated_conditions_parse(
        path in "[a-z][a-z0-9_]{0,5}(\\.[a-z$][a-z0-9]{0,4}){0,3}",
        op in prop::sample::select(vec!["=", "!=", "<>", "<", "<=", ">", ">="]),
        literal in prop_oneof![
            "[a-z ]{0,5}".prop_map(|s| format!("'{s}'")),
            any::<i32>().prop_map(|n| n.to_string()),
            Just("true".to_owned()),
            Just("null".to_owned()),
        ],
    ) {
        prop_assume!(!["select", "from", "where", "and", "or", "not", "in", "as"].contains(&path.as_str()));
        let text = format!("SELECT * FROM devices WHERE NOT ({path} {op} {literal})");
        prop_assert!(parse(&text).is_ok(), "{}", text);
    }
}
