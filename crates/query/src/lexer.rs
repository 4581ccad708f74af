//! Splits query text into tokens, each with the byte offset where it starts, so every
//! later error can point into the input.
//!
//! Words are identifiers, keywords and dotted paths in one token (`properties.reported.x`);
//! the parser decides which. Only ASCII is meaningful outside string literals.

use super::QueryError;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Identifier, keyword or dotted path, as written.
    Word(String),
    /// A quoted string, escapes resolved.
    Str(String),
    /// A number literal.
    Num(f64),
    /// `*`
    Star,
    /// `,`
    Comma,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// A comparison operator.
    Op(CmpOp),
}

/// A token and the byte offset of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    /// The token.
    pub(super) tok: Tok,
    /// Byte offset in the query text.
    pub(super) start: usize,
}

/// Splits `text` into tokens.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut lexer = Lexer { text, pos: 0 };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push(token);
    }
    Ok(tokens)
}

/// Cursor over the query text.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    /// The character at the cursor.
    fn peek(&self) -> Option<char> {
        self.text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    /// The character after the one at the cursor.
    fn peek_second(&self) -> Option<char> {
        self.text
            .get(self.pos..)
            .and_then(|rest| rest.chars().nth(1))
    }

    /// Moves past `c`.
    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    /// Reads the next token, or `None` at the end.
    fn next_token(&mut self) -> Result<Option<Token>, QueryError> {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.bump(c);
        }
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let tok = match c {
            '\'' | '"' => self.string(c)?,
            '0'..='9' => self.number()?,
            '-' if self.peek_second().is_some_and(|d| d.is_ascii_digit()) => self.number()?,
            c if is_word_start(c) => self.word(),
            _ => self.punctuation(c)?,
        };
        Ok(Some(Token { tok, start }))
    }

    /// Reads a one- or two-character symbol.
    fn punctuation(&mut self, c: char) -> Result<Tok, QueryError> {
        let second = self.peek_second();
        let (tok, len) = match (c, second) {
            ('*', _) => (Tok::Star, 1),
            (',', _) => (Tok::Comma, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('=', _) => (Tok::Op(CmpOp::Eq), 1),
            ('!', Some('=')) | ('<', Some('>')) => (Tok::Op(CmpOp::Ne), 2),
            ('<', Some('=')) => (Tok::Op(CmpOp::Le), 2),
            ('>', Some('=')) => (Tok::Op(CmpOp::Ge), 2),
            ('<', _) => (Tok::Op(CmpOp::Lt), 1),
            ('>', _) => (Tok::Op(CmpOp::Gt), 1),
            _ => {
                return Err(QueryError::new(
                    self.pos,
                    format!("unexpected character {c:?}"),
                ))
            }
        };
        self.pos += len;
        Ok(tok)
    }

    /// Reads an identifier, keyword or dotted path.
    fn word(&mut self) -> Tok {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|&c| is_word_char(c)) {
            self.bump(c);
        }
        Tok::Word(
            self.text
                .get(start..self.pos)
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// Reads `-?digits(.digits)?([eE][+-]?digits)?`.
    fn number(&mut self) -> Result<Tok, QueryError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        self.digits();
        if self.peek() == Some('.') && self.peek_second().is_some_and(|d| d.is_ascii_digit()) {
            self.pos += 1;
            self.digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|d| d.is_ascii_digit()) {
                return Err(QueryError::new(self.pos, "expected digits in the exponent"));
            }
            self.digits();
        }
        let text = self.text.get(start..self.pos).unwrap_or_default();
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Tok::Num(n)),
            _ => Err(QueryError::new(
                start,
                format!("number {text} is out of range"),
            )),
        }
    }

    /// Skips ASCII digits.
    fn digits(&mut self) {
        while self.peek().is_some_and(|d| d.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// Reads a string quoted with `quote`; backslash escapes `\\ \' \" \/ \n \r \t`.
    fn string(&mut self, quote: char) -> Result<Tok, QueryError> {
        let start = self.pos;
        self.bump(quote);
        let mut value = String::new();
        loop {
            let at = self.pos;
            let Some(c) = self.peek() else {
                return Err(QueryError::new(start, "unterminated string"));
            };
            self.bump(c);
            match c {
                c if c == quote => return Ok(Tok::Str(value)),
                '\\' => value.push(self.escape(at)?),
                c => value.push(c),
            }
        }
    }

    /// Reads the character after a backslash found at `at`.
    fn escape(&mut self, at: usize) -> Result<char, QueryError> {
        let c = self
            .peek()
            .ok_or_else(|| QueryError::new(at, "unterminated string"))?;
        self.bump(c);
        match c {
            '\\' | '\'' | '"' | '/' => Ok(c),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            _ => Err(QueryError::new(at, format!("unknown escape \\{c}"))),
        }
    }
}

/// Can `c` start a word? (Not a digit: those start numbers.)
fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

/// Can `c` continue a word? Dots join path segments; `-` is allowed because there is no
/// arithmetic to confuse it with.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Result<Vec<Tok>, QueryError> {
        Ok(tokenize(text)?.into_iter().map(|t| t.tok).collect())
    }

    #[test]
    fn splits_words_operators_and_literals() {
        let expected = vec![
            Tok::Word("tags.site".into()),
            Tok::Op(CmpOp::Ne),
            Tok::Str("it's".into()),
            Tok::Op(CmpOp::Le),
            Tok::Num(-1.5e3),
            Tok::Op(CmpOp::Ne),
            Tok::Str("x\"".into()),
        ];
        assert_eq!(
            toks(r#"tags.site <> 'it\'s' <= -1.5e3 != "x\"""#),
            Ok(expected)
        );
    }

    #[test]
    fn records_byte_offsets() -> Result<(), QueryError> {
        let starts: Vec<usize> = tokenize("a  = 'é' , b")?.iter().map(|t| t.start).collect();
        assert_eq!(starts, vec![0, 3, 5, 10, 12]);
        Ok(())
    }

    #[test]
    fn reports_positions_of_errors() {
        assert_eq!(toks("a = 'abc").map_err(|e| e.position), Err(4));
        assert_eq!(toks("a = 'a\\q'").map_err(|e| e.position), Err(6));
        assert_eq!(toks("a ; b").map_err(|e| e.position), Err(2));
        assert_eq!(toks("a = 1e").map_err(|e| e.position), Err(6));
        assert_eq!(toks("a = 1e999").map_err(|e| e.position), Err(4));
        assert_eq!(toks("a = ü").map_err(|e| e.position), Err(4));
    }
}
