//! The embedded default store: one SQLite file in the data directory.
//!
//! SQLite gives the control plane what the broker's append-only log does not need but
//! the registry does: random reads by id, ordered paging, and multi-row transactions
//! (a C2D completion removes a message *and* records its feedback, or neither).
//!
//! This module owns opening the file, the connection settings and the single shared
//! connection; the schema and its migrations live in `schema`, and each trait is
//! implemented in its own file:
//!
//! - `schema`: the ordered migration steps and `PRAGMA user_version` bookkeeping.
//! - `registry`: [`Registry`](crate::Registry) over `devices`.
//! - `twins`: [`TwinStore`](crate::TwinStore) over `twins` and `delivered_desired`.
//! - `c2d`: [`C2dStore`](crate::C2dStore) over `c2d_queue` and `feedback`.
//! - `groups`: [`GroupStore`](crate::GroupStore) over `device_groups`.
//! - `credentials`: [`CredentialStore`](crate::CredentialStore) over `device_keys`.
//! - `properties`: the text encoding of C2D application properties.
//! - `error`: rusqlite errors to [`StoreError`].
//!
//! One connection behind a mutex serialises the writers of one process; `BEGIN
//! IMMEDIATE` plus the busy timeout serialise writers across processes (an operator's
//! `bosun` CLI next to the server), so read-modify-write sequences never interleave.

mod c2d;
mod credentials;
mod enrollments;
mod error;
mod groups;
mod properties;
mod registry;
mod schema;
mod twins;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use self::error::Context;
use crate::traits::StoreError;

/// Statements the store prepares, with room to spare: a cache smaller than this would
/// re-parse SQL on every call once all code paths have run.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// How long a writer waits for another process's write lock before failing, unless
/// configured otherwise. Long enough to ride out a checkpoint or a CLI's short write.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Durability and contention settings, chosen by the operator per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// `true` (the default): every commit is synced to disk before it returns, so an
    /// acknowledged twin update or C2D enqueue survives power loss, not just a process
    /// crash. `false` trades that for fewer fsyncs (`synchronous=NORMAL` in WAL mode):
    /// the last commits may be lost when the machine loses power, never corrupted.
    pub synchronous_full: bool,
    /// How long to wait for a lock held by another connection before reporting a
    /// backend error instead of blocking forever.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: true,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
        }
    }
}

/// The control-plane store backed by SQLite; share it behind an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    /// The single connection. rusqlite connections are `Send` but not `Sync`; the
    /// mutex makes the store shareable and also makes this process's transactions
    /// strictly sequential.
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating file and parent directories if needed) the database at `path`
    /// and brings its schema up to date, so callers never see a half-migrated store.
    /// Refuses a database written by a newer bosun rather than guess at its schema.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let what = format!("opening {}", path.display());
        let conn = Connection::open(path).context(&what)?;
        let journal_mode = configure(&conn, options)?;
        require_wal(&journal_mode)?;
        Self::from_connection(conn)
    }

    /// A private, empty database that vanishes on drop: for tests and dry runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().context("opening in-memory database")?;
        // An in-memory database reports journal_mode=memory: there is no file to share
        // with readers, so WAL has nothing to offer.
        configure(&conn, SqliteOptions::default())?;
        Self::from_connection(conn)
    }

    /// The schema version of the open database, for diagnostics (`bosun doctor`) and to
    /// check that an upgrade migrated.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let conn = self.lock()?;
        schema::version(&conn)
    }

    /// The newest schema version this build knows; [`open`](Self::open) migrates every
    /// database to it.
    pub fn latest_schema_version() -> u32 {
        schema::latest()
    }

    /// Migrates and wraps a configured connection.
    fn from_connection(mut conn: Connection) -> Result<Self, StoreError> {
        schema::migrate(&mut conn, schema::MIGRATIONS)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The connection, or a backend error if a thread panicked while holding it (its
    /// transaction was rolled back when it unwound, but we do not guess further).
    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| {
            StoreError::Backend(
                "store connection unusable: a thread panicked while using it".into(),
            )
        })
    }
}

/// Applies the per-connection settings and returns the journal mode SQLite actually
/// chose. The busy timeout comes first so the others (which may need a lock) wait
/// instead of failing.
fn configure(conn: &Connection, options: SqliteOptions) -> Result<String, StoreError> {
    conn.busy_timeout(options.busy_timeout)
        .context("setting busy_timeout")?;
    let journal_mode = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .context("setting journal_mode=WAL")?;
    let synchronous = if options.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .context("setting synchronous")?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .context("enabling foreign keys")?;
    Ok(journal_mode)
}

/// WAL lets readers (API queries) proceed while a writer commits; SQLite silently keeps
/// the old journal mode when it cannot switch (e.g. on some network filesystems), so
/// check instead of assuming.
fn require_wal(journal_mode: &str) -> Result<(), StoreError> {
    if journal_mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "the database cannot use WAL journaling (it reports journal_mode={journal_mode}); \
             put the data directory on a local filesystem"
        )))
    }
}

/// Starts a write transaction that takes the write lock up front, so a read made inside
/// it (a version, a queue depth) cannot be invalidated before the write that depends on
/// it.
fn write_transaction(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .context("beginning write transaction")
}

/// SQLite integers are signed; a `usize` limit larger than `i64::MAX` means "no limit".
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::registry::tests::device;
    use crate::traits::{Registry, TwinStore};

    #[test]
    fn store_is_send_and_sync() {
        fn assert_store<T: crate::traits::Store>() {}
        assert_store::<SqliteStore>();
    }

    #[test]
    fn open_creates_parent_directories_and_uses_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/bosun.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
        assert!(path.exists());
        let conn = store.lock().expect("lock");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .expect("foreign_keys");
        assert_eq!(fk, 1);
    }

    #[test]
    fn synchronous_follows_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (full, expected) in [(true, 2), (false, 1)] {
            let options = SqliteOptions {
                synchronous_full: full,
                ..SqliteOptions::default()
            };
            let store =
                SqliteStore::open(&dir.path().join(format!("{full}.db")), options).expect("open");
            let conn = store.lock().expect("lock");
            let level: i64 = conn
                .pragma_query_value(None, "synchronous", |row| row.get(0))
                .expect("synchronous");
            assert_eq!(level, expected, "synchronous_full = {full}");
        }
    }

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bosun.db");
        {
            let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
            store.create_device(&device("d1")).expect("create");
            store.save_twin("d1", "{\"n\":1}", 0).expect("save");
        }
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
        assert_eq!(store.device("d1").expect("device"), device("d1"));
        assert_eq!(store.twin("d1").expect("twin").version, 1);
        assert_eq!(
            store.schema_version().expect("version"),
            SqliteStore::latest_schema_version()
        );
    }

    #[test]
    fn a_thread_panicking_with_the_lock_makes_later_calls_fail_not_panic() {
        let store = std::sync::Arc::new(SqliteStore::open_in_memory().expect("open"));
        let poisoner = std::sync::Arc::clone(&store);
        let joined = std::thread::spawn(move || {
            let _guard = poisoner.conn.lock();
            panic!("poison the store mutex on purpose");
        })
        .join();
        assert!(joined.is_err());
        assert!(matches!(
            store.device("d1"),
            Err(StoreError::Backend(message)) if message.contains("panicked")
        ));
    }

    #[test]
    fn limits_beyond_i64_saturate() {
        assert_eq!(sql_limit(usize::MAX), i64::MAX);
        assert_eq!(sql_limit(7), 7);
    }
}
