//! Turning rusqlite errors into [`StoreError`]s.
//!
//! Most failures are the database's problem and become `Backend` with a note of what
//! was being done, so a log line says "inserting C2D message: disk I/O error" rather
//! than just "disk I/O error". Constraint violations on inserts are the caller's
//! problem and get their own variants.

use std::fmt::Display;

use rusqlite::ffi;

use crate::traits::StoreError;

/// Adds "what we were doing" to a rusqlite error while converting it.
pub(super) trait Context<T> {
    /// Maps the error to `StoreError::Backend("{what}: {error}")`.
    fn context(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn context(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| backend(what, e))
    }
}

/// A backend error with context.
pub(super) fn backend(what: &str, error: impl Display) -> StoreError {
    StoreError::Backend(format!("{what}: {error}"))
}

/// Maps an insert's failure: a taken primary key or unique id is `AlreadyExists`, a
/// missing parent device (foreign key) is `NotFound`, anything else is the backend's.
pub(super) fn insert_error(what: &str, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error().map(|e| e.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE) => {
            StoreError::AlreadyExists
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound,
        _ => backend(what, error),
    }
}

/// Reads a stored non-negative integer (a version) back as `u64`; a negative value can
/// only come from outside bosun and is reported, not wrapped.
pub(super) fn stored_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| backend(what, format_args!("negative value {value}")))
}

/// Converts a version for storage; versions past `i64::MAX` cannot be stored.
pub(super) fn sql_u64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| backend(what, format_args!("{value} is too large to store")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_the_operation() {
        let failed: rusqlite::Result<()> = Err(rusqlite::Error::InvalidQuery);
        assert!(matches!(
            failed.context("reading device"),
            Err(StoreError::Backend(message)) if message.starts_with("reading device: ")
        ));
    }

    #[test]
    fn version_conversions_reject_out_of_range_values() {
        assert_eq!(stored_u64(5, "v").ok(), Some(5));
        assert!(matches!(stored_u64(-1, "v"), Err(StoreError::Backend(_))));
        assert_eq!(sql_u64(5, "v").ok(), Some(5));
        assert!(matches!(
            sql_u64(u64::MAX, "v"),
            Err(StoreError::Backend(_))
        ));
    }
}
