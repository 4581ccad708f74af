//! Text templates in rule actions: `{deviceId}`, `{rule}` and `{field.path}` (any dotted
//! path into the message document, numeric segments indexing arrays: `{top.0.feature}`).
//! `{{` and `}}` stand for literal braces.
//!
//! Templates are checked once at load ([`check_template`]); rendering never fails and
//! never panics, whatever the template or the document: a malformed placeholder is copied
//! as written, a path the document lacks renders as nothing, strings render without
//! quotes and other values as compact JSON.

use serde_json::{Map, Value};

use super::action::check_topic_name;

/// What a placeholder may refer to while rendering.
#[derive(Debug, Clone, Copy)]
pub struct TemplateContext<'a> {
    /// The device the message came from (`{deviceId}`).
    pub device_id: &'a str,
    /// The rule's name (`{rule}`).
    pub rule: &'a str,
    /// The message document (`{field.path}`).
    pub doc: &'a Map<String, Value>,
}

/// Why a template was refused; positions are byte offsets in the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}`.
    #[error("at {position}: '{{' is never closed (write '{{{{' for a literal brace)")]
    Unclosed {
        /// Where the `{` is.
        position: usize,
    },
    /// `{}` names nothing.
    #[error("at {position}: empty placeholder")]
    Empty {
        /// Where the `{` is.
        position: usize,
    },
    /// A `}` that closes nothing.
    #[error("at {position}: stray '}}' (write '}}}}' for a literal brace)")]
    Stray {
        /// Where the `}` is.
        position: usize,
    },
    /// A rendered topic is not a valid topic name.
    #[error("rendered topic {topic:?}: {reason}")]
    Topic {
        /// The rendered text.
        topic: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// One piece of a template.
enum Piece<'t> {
    /// Copied as is.
    Text(&'t str),
    /// A placeholder's name.
    Field(&'t str),
}

/// Splits a template into pieces, or says where it is malformed.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(at) = rest.find(['{', '}']) {
        let (text, tail) = rest.split_at(at);
        out.push(Piece::Text(text));
        let position = offset + at;
        let consumed = if let Some(after) = tail.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = after;
            2
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = after;
            2
        } else if let Some(after) = tail.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or(TemplateError::Unclosed { position })?;
            let name = after.get(..end).unwrap_or_default();
            if name.trim().is_empty() {
                return Err(TemplateError::Empty { position });
            }
            if name.contains('{') {
                return Err(TemplateError::Unclosed { position });
            }
            out.push(Piece::Field(name.trim()));
            rest = after.get(end + 1..).unwrap_or_default();
            end + 2
        } else {
            return Err(TemplateError::Stray { position });
        };
        offset = position + consumed;
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Checks a template's braces and placeholders.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    pieces(template).map(|_| ())
}

/// Renders a template. A template that fails [`check_template`] is returned as written,
/// since rules are checked at load and this keeps rendering total.
pub fn render(template: &str, ctx: &TemplateContext<'_>) -> String {
    render_with(template, ctx, |value| value)
}

/// Renders a republish topic. Placeholder values have `/`, `+`, `#` and NUL replaced by
/// `_`, so a device id or field cannot add topic levels or wildcards; the result must
/// still be a valid topic name (not empty, short enough).
pub fn render_topic(template: &str, ctx: &TemplateContext<'_>) -> Result<String, TemplateError> {
    let topic = render_with(template, ctx, |value| {
        value.replace(['/', '+', '#', '\0'], "_")
    });
    match check_topic_name(&topic) {
        Ok(()) => Ok(topic),
        Err(reason) => Err(TemplateError::Topic { topic, reason }),
    }
}

/// Renders with each placeholder's value passed through `escape`.
fn render_with(
    template: &str,
    ctx: &TemplateContext<'_>,
    escape: impl Fn(String) -> String,
) -> String {
    let Ok(pieces) = pieces(template) else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Field(name) => out.push_str(&escape(field(name, ctx))),
        }
    }
    out
}

/// A placeholder's value as text.
fn field(name: &str, ctx: &TemplateContext<'_>) -> String {
    match name {
        "deviceId" => ctx.device_id.to_owned(),
        "rule" => ctx.rule.to_owned(),
        path => match lookup(ctx.doc, path) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        },
    }
}

/// The value at a dotted path; numeric segments index arrays.
pub(super) fn lookup<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let first = doc.get(segments.next()?)?;
    segments.try_fold(first, |value, segment| match value {
        Value::Object(object) => object.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn doc() -> Map<String, Value> {
        let Value::Object(doc) = json!({
            "rms_x": 0.93,
            "tags": {"line": "A/1"},
            "top": [{"feature": "rms_x", "z": 4.2}],
            "note": "a+b",
        }) else {
            return Map::new();
        };
        doc
    }

    fn ctx(doc: &Map<String, Value>) -> TemplateContext<'_> {
        TemplateContext {
            device_id: "pump#7",
            rule: "hot",
            doc,
        }
    }

    #[test]
    fn renders_placeholders_and_escapes() {
        let doc = doc();
        let text = "{rule} on {deviceId}: rms {rms_x}, top {top.0.feature} z={top.0.z} \
                    line {tags.line} {missing}|{{literal}}";
        assert_eq!(
            render(text, &ctx(&doc)),
            "hot on pump#7: rms 0.93, top rms_x z=4.2 line A/1 |{literal}"
        );
        assert_eq!(render("{tags}", &ctx(&doc)), r#"{"line":"A/1"}"#);
        assert_eq!(render("bad {x", &ctx(&doc)), "bad {x");
    }

    #[test]
    fn topics_cannot_gain_levels_or_wildcards() {
        let doc = doc();
        let topic = render_topic("alerts/{deviceId}/{tags.line}/{note}", &ctx(&doc));
        assert_eq!(topic, Ok("alerts/pump_7/A_1/a_b".to_owned()));
        assert!(matches!(
            render_topic("{missing}", &ctx(&doc)),
            Err(TemplateError::Topic { .. })
        ));
    }

    #[test]
    fn malformed_templates_say_where() {
        assert_eq!(check_template("a {b} {{ }}"), Ok(()));
        assert_eq!(
            check_template("ab {c"),
            Err(TemplateError::Unclosed { position: 3 })
        );
        assert_eq!(
            check_template("{x} {}"),
            Err(TemplateError::Empty { position: 4 })
        );
        assert_eq!(
            check_template("é }"),
            Err(TemplateError::Stray { position: 3 })
        );
        assert_eq!(
            check_template("{a{b}"),
            Err(TemplateError::Unclosed { position: 0 })
        );
    }

    proptest! {
        #[test]
        fn rendering_never_panics(template in "[{}a-z.0-9 ]{0,40}|\\PC{0,40}") {
            let doc = doc();
            let _ = check_template(&template);
            let _ = render(&template, &ctx(&doc));
            let _ = render_topic(&template, &ctx(&doc));
        }
    }
}
