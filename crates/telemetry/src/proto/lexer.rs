//! `.proto` text → tokens: identifiers, integer and float literals, strings (escapes
//! resolved), one-character symbols. Comments (`//`, `/* */`) and whitespace vanish.
//!
//! The whole file is tokenized up front; its size is bounded by the caller, so the
//! token list is too. Every token keeps its position for error messages.

use super::error::{Located, Pos, Result};
use super::MAX_IDENT;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// `[A-Za-z_][A-Za-z0-9_]*`, keywords included.
    Ident(String),
    /// A non-negative integer literal (decimal, `0x` hex or `0` octal).
    Int(u64),
    /// A float literal (`1.5`, `1e3`, `.5`).
    Float(f64),
    /// A quoted string with its escapes resolved; adjacent strings are not yet joined.
    Str(Vec<u8>),
    /// Any other single printable character: `{ } ; = . , < > [ ] ( ) - + :`.
    Symbol(char),
    /// The end of the input.
    Eof,
}

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) pos: Pos,
}

/// Splits `text` into tokens, ending with [`Kind::Eof`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>> {
    refuse_nul(text)?;
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        at: 0,
        pos: Pos { line: 1, column: 1 },
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blank()?;
        let pos = lexer.pos;
        let Some(c) = lexer.peek(0) else {
            tokens.push(Token {
                kind: Kind::Eof,
                pos,
            });
            return Ok(tokens);
        };
        let kind = if c.is_ascii_alphabetic() || c == '_' {
            let ident = lexer.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
            if ident.len() > MAX_IDENT {
                return Err(Located::new(
                    pos,
                    format!("identifier longer than {MAX_IDENT} characters"),
                ));
            }
            Kind::Ident(ident)
        } else if c.is_ascii_digit()
            || (c == '.' && lexer.peek(1).is_some_and(|d| d.is_ascii_digit()))
        {
            lexer.number(pos)?
        } else if c == '"' || c == '\'' {
            lexer.string(pos)?
        } else if c.is_ascii_punctuation() {
            lexer.bump();
            Kind::Symbol(c)
        } else {
            return Err(Located::new(pos, format!("unexpected character {c:?}")));
        };
        tokens.push(Token { kind, pos });
    }
}

/// protoc stops at a NUL byte wherever it is (comments and strings included), so a
/// file with one is refused rather than read differently.
fn refuse_nul(text: &str) -> Result<()> {
    let Some(at) = text.find('\0') else {
        return Ok(());
    };
    let before = text.get(..at).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    let pos = Pos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    };
    Err(Located::new(pos, "invalid control character (NUL) in text"))
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    pos: Pos,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.at += 1;
        if c == '\n' {
            self.pos.line = self.pos.line.saturating_add(1);
            self.pos.column = 1;
        } else {
            self.pos.column = self.pos.column.saturating_add(1);
        }
        Some(c)
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek(0).filter(|&c| keep(c)) {
            out.push(c);
            self.bump();
        }
        out
    }

    /// Skips whitespace and comments; an unterminated block comment is an error.
    fn skip_blank(&mut self) -> Result<()> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'), _) => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos;
                    self.bump();
                    self.bump();
                    loop {
                        match (self.peek(0), self.peek(1)) {
                            (Some('*'), Some('/')) => break,
                            (Some('/'), Some('*')) => return Err(Located::new(
                                self.pos,
                                "\"/*\" inside a block comment; block comments cannot be nested",
                            )),
                            (None, _) => {
                                return Err(Located::new(start, "block comment is never closed"))
                            }
                            _ => {
                                self.bump();
                            }
                        }
                    }
                    self.bump();
                    self.bump();
                }
                _ => return Ok(()),
            }
        }
    }

    /// An integer or float literal. A letter right after a number is an error, as in
    /// protoc (`1foo`).
    fn number(&mut self, pos: Pos) -> Result<Kind> {
        let is_hex = self.peek(0) == Some('0') && matches!(self.peek(1), Some('x' | 'X'));
        let kind = if is_hex {
            self.bump();
            self.bump();
            let digits = self.take_while(|c| c.is_ascii_hexdigit());
            if digits.is_empty() {
                return Err(Located::new(pos, "\"0x\" must be followed by hex digits"));
            }
            Kind::Int(u64::from_str_radix(&digits, 16).map_err(|_| out_of_range(pos))?)
        } else {
            let mut text = self.take_while(|c| c.is_ascii_digit());
            let mut float = false;
            if self.peek(0) == Some('.') {
                float = true;
                text.push('.');
                self.bump();
                text.push_str(&self.take_while(|c| c.is_ascii_digit()));
            }
            if matches!(self.peek(0), Some('e' | 'E')) {
                float = true;
                text.push('e');
                self.bump();
                if let Some(sign) = self.peek(0).filter(|c| *c == '+' || *c == '-') {
                    text.push(sign);
                    self.bump();
                }
                let exponent = self.take_while(|c| c.is_ascii_digit());
                if exponent.is_empty() {
                    return Err(Located::new(pos, "\"e\" must be followed by an exponent"));
                }
                text.push_str(&exponent);
            }
            integer_or_float(&text, float, pos)?
        };
        if self
            .peek(0)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(Located::new(
                pos,
                "need space between number and identifier",
            ));
        }
        Ok(kind)
    }

    /// A quoted string; escapes as in protoc (`\n`, `\xHH`, octal, `\uXXXX`, …). A line
    /// break inside the quotes is an error.
    fn string(&mut self, pos: Pos) -> Result<Kind> {
        let quote = self.bump();
        let mut out = Vec::new();
        loop {
            let here = self.pos;
            match self.bump() {
                None | Some('\n') => {
                    return Err(Located::new(pos, "string literal is never closed"))
                }
                Some(c) if Some(c) == quote => return Ok(Kind::Str(out)),
                Some('\\') => self.escape(here, &mut out)?,
                Some(c) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }

    fn escape(&mut self, pos: Pos, out: &mut Vec<u8>) -> Result<()> {
        let bad = || Located::new(pos, "invalid escape sequence in string literal");
        let c = self.bump().ok_or_else(bad)?;
        let byte = match c {
            'a' => 0x07,
            'b' => 0x08,
            'f' => 0x0c,
            'n' => b'\n',
            'r' => b'\r',
            't' => b'\t',
            'v' => 0x0b,
            '\\' | '\'' | '"' | '?' => c as u8,
            'x' | 'X' => self.digits(16, 2).ok_or_else(bad)? as u8,
            '0'..='7' => {
                let mut value = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek(0).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            self.bump();
                        }
                        None => break,
                    }
                }
                u8::try_from(value).map_err(|_| bad())?
            }
            'u' | 'U' => {
                let n = if c == 'u' { 4 } else { 8 };
                let code = self.digits(16, n).ok_or_else(bad)?;
                let ch = char::from_u32(code).ok_or_else(bad)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err(bad()),
        };
        out.push(byte);
        Ok(())
    }

    /// Up to `max` digits of `radix` (at least one; exactly `max` for `\u`).
    fn digits(&mut self, radix: u32, max: usize) -> Option<u32> {
        let mut value: u32 = 0;
        let mut n = 0;
        while n < max {
            let Some(d) = self.peek(0).and_then(|c| c.to_digit(radix)) else {
                break;
            };
            value = value.checked_mul(radix)?.checked_add(d)?;
            self.bump();
            n += 1;
        }
        let exact = radix != 16 || max == 2 || n == max;
        (n > 0 && exact).then_some(value)
    }
}

fn out_of_range(pos: Pos) -> Located {
    Located::new(pos, "integer literal is out of range")
}

fn integer_or_float(text: &str, float: bool, pos: Pos) -> Result<Kind> {
    if float {
        let value: f64 = text
            .parse()
            .map_err(|_| Located::new(pos, "invalid float literal"))?;
        return Ok(Kind::Float(value));
    }
    let (digits, radix) = match text.strip_prefix('0') {
        Some(rest) if !rest.is_empty() => (rest, 8),
        _ => (text, 10),
    };
    if radix == 8 && digits.contains(['8', '9']) {
        return Err(Located::new(pos, "invalid octal literal"));
    }
    u64::from_str_radix(digits, radix)
        .map(Kind::Int)
        .map_err(|_| out_of_range(pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        tokenize(text)
            .map(|t| t.into_iter().map(|t| t.kind).collect())
            .unwrap_or_default()
    }

    #[test]
    fn literals_and_comments() {
        let got = kinds("a_1 // x\n/* y */ 0x1F 017 9 1.5 .5 2e3 'a\\n\\x41\\101' -");
        assert_eq!(
            got,
            vec![
                Kind::Ident("a_1".into()),
                Kind::Int(31),
                Kind::Int(15),
                Kind::Int(9),
                Kind::Float(1.5),
                Kind::Float(0.5),
                Kind::Float(2000.0),
                Kind::Str(b"a\nAA".to_vec()),
                Kind::Symbol('-'),
                Kind::Eof,
            ]
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = tokenize("x\n  /* open").err();
        assert_eq!(e.map(|e| e.pos), Some(Pos { line: 2, column: 3 }));
        assert!(tokenize("\"no end").is_err());
        assert!(tokenize("99999999999999999999").is_err());
        assert!(tokenize("1foo").is_err());
        assert!(tokenize("08").is_err());
        assert!(tokenize("'\\q'").is_err());
        assert!(tokenize("é").is_err());
        // Only ASCII whitespace separates tokens, and a NUL is refused even in a
        // comment, as protoc does.
        assert!(tokenize("message\u{a0}M").is_err());
        let nul = tokenize("x\n// a\0b").err();
        assert_eq!(nul.map(|e| e.pos), Some(Pos { line: 2, column: 5 }));
        assert!(tokenize("\x0b\x0c x").is_ok());
    }
}
