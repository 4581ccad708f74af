//! Human output: aligned tables and `name: value` blocks.
//!
//! Cells can hold text the CLI did not write (device ids, payloads, reasons), so control
//! characters are replaced before they reach the terminal, and free-form values are
//! shortened to keep rows on one line. `--output json` bypasses all of this.

use serde_json::Value;

/// Separator between columns.
const GAP: &str = "  ";
/// Longest cell for free-form values (payloads, JSON) before it is shortened.
pub(crate) const MAX_FREE_CELL: usize = 48;

/// A table: a header row and data rows, rendered with aligned columns.
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// Column titles.
    headers: Vec<String>,
    /// Rows; a short row leaves its last columns empty.
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells are sanitized.
    pub(crate) fn push(&mut self, row: Vec<String>) {
        self.rows.push(row.iter().map(|c| sanitize(c)).collect());
    }

    /// The table as text, one line per row, no trailing spaces.
    pub(crate) fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                if i > 0 {
                    line.push_str(GAP);
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// A table of JSON objects: one column per member (in order of first appearance),
    /// nested values as shortened compact JSON.
    pub(crate) fn from_objects(items: &[Value]) -> Table {
        let mut headers: Vec<&str> = Vec::new();
        for item in items {
            if let Value::Object(map) = item {
                for key in map.keys() {
                    if !headers.contains(&key.as_str()) {
                        headers.push(key);
                    }
                }
            }
        }
        let mut table = Table::new(&headers);
        for item in items {
            table.push(
                headers
                    .iter()
                    .map(|h| shorten(&cell(item.get(*h).unwrap_or(&Value::Null)), MAX_FREE_CELL))
                    .collect(),
            );
        }
        table
    }
}

/// `name: value` lines with the values aligned.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (name, value) in pairs {
        let pad = width - name.chars().count();
        out.push_str(&format!(
            "{name}:{}{GAP}{}\n",
            " ".repeat(pad),
            sanitize(value)
        ));
    }
    out
}

/// A JSON value as cell text: strings bare, `null` as `-`, others as compact JSON.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The string member `name` of `value`, or `-`.
pub(crate) fn text(value: &Value, name: &str) -> String {
    cell(value.get(name).unwrap_or(&Value::Null))
}

/// At most `max` characters, the last one `…` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Replaces control characters (escape sequences, newlines) with `�`.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_align_without_trailing_spaces() {
        let mut table = Table::new(&["DEVICE", "STATUS", "GROUP"]);
        table.push(vec!["pump-1".into(), "enabled".into(), "-".into()]);
        table.push(vec!["ü".into(), "disabled".into()]);
        assert_eq!(
            table.render(),
            "DEVICE  STATUS    GROUP\n\
             pump-1  enabled   -\n\
             ü       disabled\n"
        );
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn objects_become_columns() {
        let items = [
            json!({"deviceId": "a", "n": 1}),
            json!({"deviceId": "b", "nested": {"x": [1, 2]}, "n": null}),
            json!("not an object"),
        ];
        assert_eq!(
            Table::from_objects(&items).render(),
            "deviceId  n  nested\n\
             a         1  -\n\
             b         -  {\"x\":[1,2]}\n\
             -         -  -\n"
        );
    }

    #[test]
    fn untrusted_text_is_defused_and_shortened() {
        let mut table = Table::new(&["X"]);
        table.push(vec!["a\u{1b}[31mred\nline".into()]);
        assert_eq!(table.render(), "X\na\u{fffd}[31mred\u{fffd}line\n");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abcd", 4), "abcd");
        assert_eq!(shorten("abc", 0), "…");
        assert_eq!(
            fields(&[("id", "d1".into()), ("status", "ok\r".into())]),
            "id:      d1\nstatus:  ok\u{fffd}\n"
        );
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("s")), "s");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(text(&json!({"a": "b"}), "a"), "b");
        assert_eq!(text(&json!({"a": "b"}), "z"), "-");
    }
}
