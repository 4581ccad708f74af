//! Recursive-descent parser from tokens to a [`Query`].
//!
//! ```text
//! query   := SELECT select FROM source [WHERE or] end
//! source  := word (one identifier without dots, e.g. `devices`, `telemetry`)
//! select  := '*' | COUNT '(' ')' [AS word] | path (',' path)*
//! or      := and (OR and)*
//! and     := unary (AND unary)*
//! unary   := NOT unary | '(' or ')' | IS_DEFINED '(' path ')' | path IN list | path op literal
//! list    := '[' [literal (',' literal)*] ']' | '(' [literal (',' literal)*] ')'
//! literal := string | number | TRUE | FALSE | NULL
//! ```
//! Recursion happens only at `NOT` and `(`, each counted against [`MAX_NESTING`].

use super::ast::{Cond, Literal, Path};
use super::lexer::{tokenize, Tok, Token};
use super::{Query, QueryError, Select, Source, DEFAULT_COUNT_ALIAS, MAX_NESTING};

/// Words that cannot be used as a path, so that `WHERE AND = 1` reads as a mistake.
const RESERVED: [&str; 8] = ["SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "AS"];

/// Parses a whole query; with `expected`, the source must be that name (any case), and a
/// different one is reported where it stands, before anything after it.
pub(super) fn parse_query(text: &str, expected: Option<&str>) -> Result<Query, QueryError> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        next: 0,
        end: text.len(),
        nesting: 0,
    };
    parser.keyword("SELECT")?;
    let select = parser.select()?;
    parser.keyword("FROM")?;
    let source = parser.source(expected)?;
    let condition = if parser.take_keyword("WHERE") {
        Some(parser.or()?)
    } else {
        None
    };
    match parser.peek() {
        None => Ok(Query {
            select,
            source,
            condition,
        }),
        Some(_) => Err(parser.error("expected end of query")),
    }
}

/// Cursor over the tokens.
struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Input length, the position of errors at the end.
    end: usize,
    /// Current depth of `NOT`/parentheses.
    nesting: usize,
}

impl Parser {
    /// The next token.
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    /// Consumes and returns the next token.
    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    /// An error at the next token (or the end), naming what was found.
    fn error(&self, expected: &str) -> QueryError {
        match self.peek() {
            Some(token) => QueryError::new(
                token.start,
                format!("{expected}, found {}", describe(&token.tok)),
            ),
            None => QueryError::new(self.end, format!("{expected}, found end of query")),
        }
    }

    /// Is the next token the keyword `kw` (any case)?
    fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(kw))
    }

    /// Consumes keyword `kw` if it is next.
    fn take_keyword(&mut self, kw: &str) -> bool {
        let found = self.at_keyword(kw);
        if found {
            self.next += 1;
        }
        found
    }

    /// Requires keyword `kw`.
    fn keyword(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.take_keyword(kw) {
            return Ok(());
        }
        Err(self.error(&format!("expected {kw}")))
    }

    /// Consumes `tok` if it is next.
    fn take(&mut self, tok: &Tok) -> bool {
        let found = self.peek().is_some_and(|t| t.tok == *tok);
        if found {
            self.next += 1;
        }
        found
    }

    /// Requires `tok`, described as `what` in the error.
    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), QueryError> {
        if self.take(tok) {
            return Ok(());
        }
        Err(self.error(&format!("expected {what}")))
    }

    /// Parses the select list.
    fn select(&mut self) -> Result<Select, QueryError> {
        if self.take(&Tok::Star) {
            return Ok(Select::All);
        }
        let count_follows = matches!(
            self.tokens.get(self.next + 1),
            Some(Token {
                tok: Tok::LParen,
                ..
            })
        );
        if count_follows && self.take_keyword("COUNT") {
            self.expect(&Tok::LParen, "'('")?;
            self.expect(&Tok::RParen, "')'")?;
            let alias = if self.take_keyword("AS") {
                self.alias()?
            } else {
                DEFAULT_COUNT_ALIAS.to_owned()
            };
            return Ok(Select::Count(alias));
        }
        let mut paths = vec![self.path()?];
        while self.take(&Tok::Comma) {
            paths.push(self.path()?);
        }
        Ok(Select::Paths(paths))
    }

    /// Parses the name after `COUNT() AS`: one word without dots.
    fn alias(&mut self) -> Result<String, QueryError> {
        match self.peek() {
            Some(Token {
                tok: Tok::Word(w), ..
            }) if !w.contains('.') && !is_reserved(w) => {
                let alias = w.clone();
                self.next += 1;
                Ok(alias)
            }
            _ => Err(self.error("expected a name for the count")),
        }
    }

    /// Parses the name after `FROM`: one word without dots, not a keyword, and
    /// `expected` if given.
    fn source(&mut self, expected: Option<&str>) -> Result<Source, QueryError> {
        let wanted = |w: &str| expected.is_none_or(|e| w.eq_ignore_ascii_case(e));
        match self.peek() {
            Some(Token {
                tok: Tok::Word(w),
                start,
            }) if !w.contains('.') && !is_reserved(w) && wanted(w) => {
                let source = Source {
                    name: w.clone(),
                    position: *start,
                };
                self.next += 1;
                Ok(source)
            }
            _ => Err(match expected {
                Some(name) => self.error(&format!("expected {name}")),
                None => self.error("expected a source name such as devices"),
            }),
        }
    }

    /// Parses a dotted path.
    fn path(&mut self) -> Result<Path, QueryError> {
        let (text, start) = match self.peek() {
            Some(Token {
                tok: Tok::Word(w),
                start,
            }) if !is_reserved(w) => (w.clone(), *start),
            _ => return Err(self.error("expected a path")),
        };
        let mut segments = Vec::new();
        let mut offset = start;
        for segment in text.split('.') {
            if segment.is_empty() {
                return Err(QueryError::new(offset, "empty path segment"));
            }
            segments.push(segment.to_owned());
            offset += segment.len() + 1;
        }
        self.next += 1;
        Ok(Path { text, segments })
    }

    /// `or := and (OR and)*`
    fn or(&mut self) -> Result<Cond, QueryError> {
        let mut any = vec![self.and()?];
        while self.take_keyword("OR") {
            any.push(self.and()?);
        }
        Ok(single_or(any, Cond::Or))
    }

    /// `and := unary (AND unary)*`
    fn and(&mut self) -> Result<Cond, QueryError> {
        let mut all = vec![self.unary()?];
        while self.take_keyword("AND") {
            all.push(self.unary()?);
        }
        Ok(single_or(all, Cond::And))
    }

    /// Parses `NOT`, a parenthesized condition, `IS_DEFINED` or a path test.
    fn unary(&mut self) -> Result<Cond, QueryError> {
        if self.at_keyword("NOT") || self.peek().is_some_and(|t| t.tok == Tok::LParen) {
            return self.nested();
        }
        if self.take_keyword("IS_DEFINED") {
            self.expect(&Tok::LParen, "'(' after IS_DEFINED")?;
            let path = self.path()?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(Cond::Defined(path));
        }
        let path = self.path()?;
        if self.take_keyword("IN") {
            return Ok(Cond::In(path, self.list()?));
        }
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Op(op)) => {
                let op = *op;
                self.next += 1;
                Ok(Cond::Compare(path, op, self.literal()?))
            }
            _ => Err(self.error("expected a comparison operator or IN")),
        }
    }

    /// Parses `NOT unary` or `( or )` one nesting level deeper.
    fn nested(&mut self) -> Result<Cond, QueryError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.error(&format!("nesting deeper than {MAX_NESTING} levels")));
        }
        self.nesting += 1;
        let cond = if self.take_keyword("NOT") {
            self.unary().map(|c| Cond::Not(Box::new(c)))
        } else {
            self.next += 1;
            self.or()
                .and_then(|c| self.expect(&Tok::RParen, "')'").map(|()| c))
        };
        self.nesting -= 1;
        cond
    }

    /// Parses `[a, b]` or `(a, b)`.
    fn list(&mut self) -> Result<Vec<Literal>, QueryError> {
        let close = match self.peek().map(|t| &t.tok) {
            Some(Tok::LBracket) => Tok::RBracket,
            Some(Tok::LParen) => Tok::RParen,
            _ => return Err(self.error("expected '[' or '(' after IN")),
        };
        self.next += 1;
        let mut items = Vec::new();
        if self.take(&close) {
            return Ok(items);
        }
        loop {
            items.push(self.literal()?);
            if self.take(&close) {
                return Ok(items);
            }
            self.expect(&Tok::Comma, "',' or the end of the list")?;
        }
    }

    /// Parses a literal.
    fn literal(&mut self) -> Result<Literal, QueryError> {
        let literal = match self.peek().map(|t| &t.tok) {
            Some(Tok::Str(s)) => Literal::Str(s.clone()),
            Some(Tok::Num(n)) => Literal::Num(*n),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return Err(self.error("expected a string, number, true, false or null")),
        };
        self.advance();
        Ok(literal)
    }
}

/// The only condition of a one-element chain, else the chain built by `wrap`.
fn single_or(mut conds: Vec<Cond>, wrap: fn(Vec<Cond>) -> Cond) -> Cond {
    if conds.len() == 1 {
        if let Some(only) = conds.pop() {
            return only;
        }
    }
    wrap(conds)
}

/// Is `word` a keyword that cannot be a path?
fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|kw| word.eq_ignore_ascii_case(kw))
}

/// A token as shown in error messages.
fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) => format!("'{w}'"),
        Tok::Str(_) => "a string".to_owned(),
        Tok::Num(_) => "a number".to_owned(),
        Tok::Star => "'*'".to_owned(),
        Tok::Comma => "','".to_owned(),
        Tok::LParen => "'('".to_owned(),
        Tok::RParen => "')'".to_owned(),
        Tok::LBracket => "'['".to_owned(),
        Tok::RBracket => "']'".to_owned(),
        Tok::Op(_) => "an operator".to_owned(),
    }
}
