//! What a parsed query is, and how a condition is decided for one twin document.
//!
//! Logic is two-valued: a comparison whose path is missing, or whose value has a different
//! JSON type than the literal, is simply false, for every operator including `!=`. So
//! `tags.site != 'a'` does not match twins without a site, while `NOT tags.site = 'a'`
//! does. Strings compare by code point, numbers as `f64`; booleans and `null` support only
//! `=` and `!=`.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::lexer::CmpOp;

/// A dotted path into the twin document, e.g. `properties.reported.mode`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Path {
    /// The path as written, used as the key in projections.
    pub(super) text: String,
    /// Its segments, never empty.
    pub(super) segments: Vec<String>,
}

impl Path {
    /// The value at this path, if every segment exists.
    pub(super) fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        match doc {
            Value::Object(object) => self.lookup_in(object),
            _ => None,
        }
    }

    /// The value at this path in an object document, if every segment exists. Numeric
    /// segments index arrays (`top.0.feature`).
    pub(super) fn lookup_in<'a>(&self, doc: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        rest.iter()
            .try_fold(doc.get(first.as_str())?, |value, segment| {
                step(value, segment)
            })
    }
}

/// One segment down from `value`: a key of an object or an index into an array.
fn step<'a>(value: &'a Value, segment: &str) -> Option<&'a Value> {
    match value {
        Value::Object(object) => object.get(segment),
        Value::Array(items) if segment.bytes().all(|b| b.is_ascii_digit()) => {
            items.get(segment.parse::<usize>().ok()?)
        }
        _ => None,
    }
}

/// A literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    /// `'text'` or `"text"`.
    Str(String),
    /// A number.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// A `WHERE` condition. `AND`/`OR` chains are flat lists, so the tree is only as deep as
/// the parentheses and `NOT`s written, which the parser bounds.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cond {
    /// `path op literal`
    Compare(Path, CmpOp, Literal),
    /// `path IN [literal, ...]`
    In(Path, Vec<Literal>),
    /// `IS_DEFINED(path)`
    Defined(Path),
    /// `NOT cond`
    Not(Box<Cond>),
    /// `a AND b AND ...`
    And(Vec<Cond>),
    /// `a OR b OR ...`
    Or(Vec<Cond>),
}

impl Cond {
    /// Decides the condition for one document.
    pub(super) fn holds(&self, doc: &Map<String, Value>) -> bool {
        match self {
            Cond::Compare(path, op, literal) => path
                .lookup_in(doc)
                .is_some_and(|value| compare(value, *op, literal)),
            Cond::In(path, literals) => path
                .lookup_in(doc)
                .is_some_and(|value| literals.iter().any(|l| compare(value, CmpOp::Eq, l))),
            Cond::Defined(path) => path.lookup_in(doc).is_some(),
            Cond::Not(inner) => !inner.holds(doc),
            Cond::And(all) => all.iter().all(|c| c.holds(doc)),
            Cond::Or(any) => any.iter().any(|c| c.holds(doc)),
        }
    }
}

/// Compares a document value with a literal; mismatched types are false.
fn compare(value: &Value, op: CmpOp, literal: &Literal) -> bool {
    let ordering = match (value, literal) {
        (Value::String(s), Literal::Str(l)) => Some(s.as_str().cmp(l.as_str())),
        (Value::Number(n), Literal::Num(l)) => n.as_f64().and_then(|n| n.partial_cmp(l)),
        (Value::Bool(b), Literal::Bool(l)) => return equality(op, b == l),
        (Value::Null, Literal::Null) => return equality(op, true),
        _ => None,
    };
    ordering.is_some_and(|ordering| op_holds(op, ordering))
}

/// `=`/`!=` for types without an order; other operators are false.
fn equality(op: CmpOp, equal: bool) -> bool {
    match op {
        CmpOp::Eq => equal,
        CmpOp::Ne => !equal,
        _ => false,
    }
}

/// Whether `value op literal` holds given how `value` compares to `literal`.
fn op_holds(op: CmpOp, ordering: Ordering) -> bool {
    match op {
        CmpOp::Eq => ordering.is_eq(),
        CmpOp::Ne => ordering.is_ne(),
        CmpOp::Lt => ordering.is_lt(),
        CmpOp::Le => ordering.is_le(),
        CmpOp::Gt => ordering.is_gt(),
        CmpOp::Ge => ordering.is_ge(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compares_same_types_only() {
        assert!(compare(&json!(2), CmpOp::Gt, &Literal::Num(1.5)));
        assert!(compare(&json!("b"), CmpOp::Ge, &Literal::Str("a".into())));
        assert!(!compare(&json!("1"), CmpOp::Eq, &Literal::Num(1.0)));
        assert!(!compare(&json!("1"), CmpOp::Ne, &Literal::Num(1.0)));
        assert!(compare(&json!(true), CmpOp::Ne, &Literal::Bool(false)));
        assert!(!compare(&json!(true), CmpOp::Gt, &Literal::Bool(false)));
        assert!(compare(&json!(null), CmpOp::Eq, &Literal::Null));
        assert!(!compare(&json!({}), CmpOp::Ne, &Literal::Null));
    }
}
