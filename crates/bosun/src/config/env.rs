//! The environment layer: `BOSUN_SECTION__KEY=value` variables as configuration.
//!
//! Owns the naming rule and the typing of values: each string is parsed as the type of
//! the default it overrides (integer, boolean, string, comma-separated list), so
//! `BOSUN_MQTT__MAX_INFLIGHT=lots` fails naming the variable rather than somewhere deep
//! in deserialization. Merging and the final typed check are the parent module's.

use anyhow::{anyhow, bail, Context, Result};
use toml::{Table, Value};

use super::from_table;

/// Environment variables starting with this (and containing [`ENV_SEPARATOR`]) are settings.
pub(crate) const ENV_PREFIX: &str = "BOSUN_";
/// Separates the section from the key in a variable name: `BOSUN_MQTT__MAX_INFLIGHT`.
pub(crate) const ENV_SEPARATOR: &str = "__";

/// The `BOSUN_*__*` variables of this process. A non-UTF-8 value is an error naming it.
pub(crate) fn bosun_env() -> Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| is_setting_var(n)) else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| anyhow!("environment variable {name} is not valid UTF-8"))?;
        vars.push((name.to_owned(), value));
    }
    vars.sort();
    Ok(vars)
}

/// Whether `name` addresses a setting (`BOSUN_SECTION__KEY`); other `BOSUN_*` are ignored.
pub(super) fn is_setting_var(name: &str) -> bool {
    name.strip_prefix(ENV_PREFIX)
        .is_some_and(|rest| rest.contains(ENV_SEPARATOR))
}

/// Sets `section.key` in `table` from the variable `name=raw`, typed like its default.
pub(super) fn apply_env_var(
    table: &mut Table,
    defaults: &Table,
    name: &str,
    raw: &str,
) -> Result<()> {
    let Some((section, key)) = name
        .strip_prefix(ENV_PREFIX)
        .and_then(|rest| rest.split_once(ENV_SEPARATOR))
    else {
        return Ok(());
    };
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    let default = defaults
        .get(&section)
        .and_then(Value::as_table)
        .and_then(|keys| keys.get(&key))
        .ok_or_else(|| {
            anyhow!("environment variable {name}: there is no configuration key {section}.{key}")
        })?;
    let value =
        parse_like(default, raw).with_context(|| format!("environment variable {name}={raw:?}"))?;
    let entry = table
        .entry(section.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    let keys = entry
        .as_table_mut()
        .ok_or_else(|| anyhow!("configuration key {section} must be a table"))?;
    keys.insert(key, value);
    from_table(table.clone()).with_context(|| format!("environment variable {name}={raw:?}"))?;
    Ok(())
}

/// Parses an environment string as a TOML value of the same type as `default`.
fn parse_like(default: &Value, raw: &str) -> Result<Value> {
    let text = raw.trim();
    match default {
        Value::Integer(_) => text
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| anyhow!("expected an integer")),
        Value::Float(_) => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Float)
            .ok_or_else(|| anyhow!("expected a number")),
        Value::Boolean(_) => match text.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Boolean(true)),
            "false" | "0" => Ok(Value::Boolean(false)),
            _ => bail!("expected true or false"),
        },
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        // Lists of names (tls.subject_alt_names): comma-separated, blanks dropped.
        Value::Array(_) => Ok(Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        )),
        other => bail!("cannot set a {} from the environment", other.type_str()),
    }
}
