//! Why `.proto` source text was refused: a message that says where.
//!
//! An operator registers a schema over the API or the CLI and reads the answer on a
//! terminal, so every refusal names the file, the 1-based line and column, and what
//! protoc would have complained about ("line 7:12: unknown type `Featurs`").

use std::fmt;

/// A 1-based position in one source file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}:{}", self.line, self.column)
    }
}

/// Why a set of `.proto` files does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {pos}: {message}")]
pub struct ProtoError {
    /// The file (as named in the request) the problem is in.
    pub file: String,
    /// Where in that file; `line 0:0` for problems of the request as a whole.
    pub pos: Pos,
    /// What is wrong, in protoc's terms.
    pub message: String,
}

/// An error not yet tied to a file: the lexer, parser and checker work on one file and
/// the driver adds its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

impl Located {
    /// An error at `pos`.
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Located {
        Located {
            pos,
            message: message.into(),
        }
    }

    /// The error as seen from outside: in `file`.
    pub(crate) fn in_file(self, file: &str) -> ProtoError {
        ProtoError {
            file: file.to_owned(),
            pos: self.pos,
            message: self.message,
        }
    }
}

/// Shorthand for results of the per-file stages.
pub(crate) type Result<T> = std::result::Result<T, Located>;
