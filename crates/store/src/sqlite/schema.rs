//! The schema, as an ordered list of migration steps.
//!
//! `PRAGMA user_version` holds how many steps a database has applied. At open, each
//! missing step runs in its own write transaction together with the bump of
//! `user_version`, so a crash mid-migration leaves the database at the previous
//! version, never between two. Steps are append-only: a released step is never edited,
//! a change is a new step.
//!
//! Enum columns are lower-case text (`enabled`, `connected`, `delivered`) guarded by
//! `CHECK`s, so the file stays readable with the `sqlite3` shell. Every table hanging
//! off a device references it `ON DELETE CASCADE`, so deleting a device is one
//! statement that cannot leave orphans.

use rusqlite::Connection;

use super::error::{backend, Context};
use crate::traits::StoreError;

/// The migration steps; step `i` takes a database from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "
    CREATE TABLE devices (
        id                    TEXT PRIMARY KEY NOT NULL,
        status                TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
        auth_kind             TEXT NOT NULL,
        grp                   TEXT,
        created_ms            INTEGER NOT NULL,
        last_activity_ms      INTEGER,
        connection            TEXT NOT NULL
                              CHECK (connection IN ('connected', 'disconnected')),
        connection_reason     TEXT,
        connection_changed_ms INTEGER
    );
    -- Listing a group pages by id within it.
    CREATE INDEX devices_grp ON devices (grp, id);

    CREATE TABLE twins (
        device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        json      TEXT NOT NULL,
        version   INTEGER NOT NULL CHECK (version > 0)
    );

    CREATE TABLE delivered_desired (
        device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        json      TEXT NOT NULL,
        version   INTEGER NOT NULL CHECK (version >= 0)
    );

    -- AUTOINCREMENT: seq never goes backwards, even after the newest rows are
    -- deleted, so it is a stable FIFO order.
    CREATE TABLE c2d_queue (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,
        device_id   TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        payload     BLOB NOT NULL,
        -- Length-prefixed strings, see properties.rs.
        properties  TEXT NOT NULL,
        enqueued_ms INTEGER NOT NULL,
        expires_ms  INTEGER NOT NULL
    );
    CREATE INDEX c2d_queue_device ON c2d_queue (device_id, seq);
    CREATE INDEX c2d_queue_expiry ON c2d_queue (expires_ms);

    -- AUTOINCREMENT: readers page with seq > after, so a seq must never be reused.
    CREATE TABLE feedback (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL,
        device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        outcome    TEXT NOT NULL CHECK (outcome IN ('delivered', 'expired', 'purged')),
        at_ms      INTEGER NOT NULL
    );
    CREATE INDEX feedback_device ON feedback (device_id, seq);
    ",
    // 2: device groups defined by a query condition over twins.
    "
    CREATE TABLE device_groups (
        name       TEXT PRIMARY KEY NOT NULL,
        condition  TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    ",
    // 3: symmetric keys of devices that authenticate with SAS tokens (base64 text).
    "
    CREATE TABLE device_keys (
        device_id     TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        primary_key   TEXT NOT NULL,
        secondary_key TEXT NOT NULL
    );
    ",
    // 4: provisioning enrollments, individual and group.
    // `key` is base64 text; `initial_twin` is JSON `{"tags": …, "desired": …}`.
    "
    CREATE TABLE enrollments (
        kind         TEXT NOT NULL CHECK (kind IN ('individual', 'group')),
        name         TEXT NOT NULL,
        key          TEXT NOT NULL,
        initial_twin TEXT NOT NULL,
        device_group TEXT,
        disabled     INTEGER NOT NULL CHECK (disabled IN (0, 1)),
        created_ms   INTEGER NOT NULL,
        PRIMARY KEY (kind, name)
    );
    ",
    // 5: X.509 enrollments. `attestation` says what `key` means: a symmetric key, or
    // nothing ('x509', `key` empty) and the device presents a certificate signed by
    // the registered CA `x509_ca` (required for a group), optionally pinned to one
    // certificate serial (lower-case hex) for an individual enrollment.
    "
    ALTER TABLE enrollments ADD COLUMN attestation TEXT NOT NULL DEFAULT 'symmetricKey'
        CHECK (attestation IN ('symmetricKey', 'x509'));
    ALTER TABLE enrollments ADD COLUMN x509_ca TEXT;
    ALTER TABLE enrollments ADD COLUMN x509_serial TEXT;
    ",
];

/// The version a fully migrated database has.
pub(super) fn latest() -> u32 {
    // The list is a short literal; it cannot outgrow u32.
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// The database's schema version.
pub(super) fn version(conn: &Connection) -> Result<u32, StoreError> {
    let raw: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .context("reading user_version")?;
    u32::try_from(raw).map_err(|_| backend("reading user_version", format_args!("invalid {raw}")))
}

/// Applies the steps the database lacks, one transaction each. The version is re-read
/// inside each transaction, so two processes opening a fresh file at once apply every
/// step exactly once.
pub(super) fn migrate(conn: &mut Connection, steps: &[&str]) -> Result<(), StoreError> {
    loop {
        let tx = super::write_transaction(conn)?;
        let current = version(&tx)?;
        let Some(step) = pending_step(current, steps)? else {
            // Up to date; the transaction only read.
            return tx.commit().context("finishing schema check");
        };
        let next = current + 1;
        tx.execute_batch(step)
            .context(&format!("migrating schema to version {next}"))?;
        // PRAGMA takes no bound parameters; `next` is an integer we computed.
        tx.execute_batch(&format!("PRAGMA user_version = {next}"))
            .context("recording schema version")?;
        tx.commit()
            .context(&format!("committing schema version {next}"))?;
    }
}

/// The step after version `current`, `None` when there is none, or an error when the
/// database is newer than `steps`: its extra tables or columns may carry meaning this
/// build would silently ignore or break.
fn pending_step<'a>(current: u32, steps: &[&'a str]) -> Result<Option<&'a str>, StoreError> {
    let known = steps.len();
    let applied = usize::try_from(current).unwrap_or(usize::MAX);
    if applied > known {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current} but this bosun knows only up to \
             {known}: it was written by a newer bosun; upgrade bosun or use another data \
             directory"
        )));
    }
    Ok(steps.get(applied).copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{SqliteOptions, SqliteStore};

    const STEPS: &[&str] = &["CREATE TABLE a (x);", "CREATE TABLE b (y);"];

    fn table_exists(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .expect("query sqlite_schema")
            == 1
    }

    #[test]
    fn a_fresh_database_gets_every_table() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn, MIGRATIONS).expect("migrate");
        assert_eq!(version(&conn).expect("version"), latest());
        for table in [
            "devices",
            "twins",
            "delivered_desired",
            "c2d_queue",
            "feedback",
            "device_groups",
            "device_keys",
        ] {
            assert!(table_exists(&conn, table), "{table}");
        }
    }

    #[test]
    fn only_missing_steps_run() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn, &STEPS[..1]).expect("first step");
        assert_eq!(version(&conn).expect("version"), 1);
        assert!(!table_exists(&conn, "b"));
        // Re-running step 1 would fail (table a exists), so success shows it was skipped.
        migrate(&mut conn, STEPS).expect("second step");
        assert_eq!(version(&conn).expect("version"), 2);
        assert!(table_exists(&conn, "b"));
        migrate(&mut conn, STEPS).expect("nothing to do");
        assert_eq!(version(&conn).expect("version"), 2);
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        let steps = ["CREATE TABLE a (x);", "CREATE TABLE b (y); NOT SQL AT ALL;"];
        let result = migrate(&mut conn, &steps);
        assert!(
            matches!(&result, Err(StoreError::Backend(m)) if m.contains("version 2")),
            "{result:?}"
        );
        assert_eq!(version(&conn).expect("version"), 1);
        assert!(!table_exists(&conn, "b"));
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bosun.db");
        drop(SqliteStore::open(&path, SqliteOptions::default()).expect("create"));
        let newer = latest() + 1;
        Connection::open(&path)
            .expect("raw open")
            .execute_batch(&format!("PRAGMA user_version = {newer}"))
            .expect("bump version");
        let result = SqliteStore::open(&path, SqliteOptions::default());
        assert!(
            matches!(&result, Err(StoreError::Backend(m)) if m.contains("newer bosun")),
            "{result:?}"
        );
    }

    #[test]
    fn reopening_keeps_the_version_and_runs_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bosun.db");
        let first = SqliteStore::open(&path, SqliteOptions::default()).expect("create");
        assert_eq!(first.schema_version().expect("version"), latest());
        drop(first);
        let again = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
        assert_eq!(again.schema_version().expect("version"), latest());
    }
}
