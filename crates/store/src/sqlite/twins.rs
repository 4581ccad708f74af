//! [`TwinStore`] over the `twins` and `delivered_desired` tables.
//!
//! A twin's version is its ETag: `save_twin` is a compare-and-set on it, checked and
//! written inside one `BEGIN IMMEDIATE` transaction so that two writers holding the same
//! version cannot both succeed, whether they share this store or use separate
//! connections to the same file.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::error::{insert_error, sql_u64, stored_u64, Context};
use super::{sql_limit, write_transaction, SqliteStore};
use crate::model::StoredTwin;
use crate::traits::{StoreError, TwinStore};

impl TwinStore for SqliteStore {
    fn twin(&self, device_id: &str) -> Result<StoredTwin, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached("SELECT device_id, json, version FROM twins WHERE device_id = ?1")
            .context("preparing twin read")?;
        let mut rows = select.query([device_id]).context("reading twin")?;
        match rows.next().context("reading twin")? {
            Some(row) => read_twin(row),
            None => Err(StoreError::NotFound),
        }
    }

    /// Besides the trait's contract: `NotFound` when the device does not exist, since
    /// a twin cannot outlive (or predate) its device.
    fn save_twin(&self, device_id: &str, json: &str, expected: u64) -> Result<u64, StoreError> {
        let mut conn = self.lock()?;
        let tx = write_transaction(&mut conn)?;
        let found = stored_version(&tx, device_id)?;
        if found != expected {
            return Err(StoreError::Conflict { expected, found });
        }
        let next = expected
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("twin version exhausted".into()))?;
        write_twin(&tx, device_id, json, next)?;
        tx.commit().context("committing twin")?;
        Ok(next)
    }

    fn scan_twins(&self, after: Option<&str>, limit: usize) -> Result<Vec<StoredTwin>, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached(
                "SELECT device_id, json, version FROM twins
                 WHERE (?1 IS NULL OR device_id > ?1) ORDER BY device_id LIMIT ?2",
            )
            .context("preparing twin scan")?;
        let mut rows = select
            .query(params![after, sql_limit(limit)])
            .context("scanning twins")?;
        let mut twins = Vec::new();
        while let Some(row) = rows.next().context("scanning twins")? {
            twins.push(read_twin(row)?);
        }
        Ok(twins)
    }

    fn delivered_desired(&self, device_id: &str) -> Result<Option<(String, u64)>, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached("SELECT json, version FROM delivered_desired WHERE device_id = ?1")
            .context("preparing delivered desired read")?;
        let stored: Option<(String, i64)> = select
            .query_row([device_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .context("reading delivered desired")?;
        stored
            .map(|(json, version)| Ok((json, stored_u64(version, "delivered desired version")?)))
            .transpose()
    }

    /// Besides the trait's contract: `NotFound` when the device does not exist.
    fn set_delivered_desired(
        &self,
        device_id: &str,
        json: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let mut upsert = conn
            .prepare_cached(
                "INSERT INTO delivered_desired (device_id, json, version) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device_id) DO UPDATE SET json = excluded.json,
                                                       version = excluded.version",
            )
            .context("preparing delivered desired write")?;
        upsert
            .execute(params![
                device_id,
                json,
                sql_u64(version, "delivered desired version")?
            ])
            .map_err(|e| insert_error("writing delivered desired", e))?;
        Ok(())
    }
}

/// The twin's stored version inside `tx`, 0 when it has none (the trait's "nothing
/// stored yet").
fn stored_version(tx: &Transaction<'_>, device_id: &str) -> Result<u64, StoreError> {
    let mut select = tx
        .prepare_cached("SELECT version FROM twins WHERE device_id = ?1")
        .context("preparing twin version read")?;
    let version: Option<i64> = select
        .query_row([device_id], |row| row.get(0))
        .optional()
        .context("reading twin version")?;
    version.map_or(Ok(0), |v| stored_u64(v, "twin version"))
}

/// Inserts or replaces the twin at `version`; the caller has checked the old version in
/// the same transaction.
fn write_twin(
    tx: &Transaction<'_>,
    device_id: &str,
    json: &str,
    version: u64,
) -> Result<(), StoreError> {
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO twins (device_id, json, version) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id) DO UPDATE SET json = excluded.json,
                                                   version = excluded.version",
        )
        .context("preparing twin write")?;
    upsert
        .execute(params![device_id, json, sql_u64(version, "twin version")?])
        .map_err(|e| insert_error("writing twin", e))?;
    Ok(())
}

/// One `twins` row selected as `device_id, json, version`.
fn read_twin(row: &Row<'_>) -> Result<StoredTwin, StoreError> {
    const WHAT: &str = "reading twin row";
    Ok(StoredTwin {
        device_id: row.get(0).context(WHAT)?,
        json: row.get(1).context(WHAT)?,
        version: stored_u64(row.get(2).context(WHAT)?, "twin version")?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sqlite::registry::tests::store_with;
    use crate::sqlite::SqliteOptions;
    use crate::traits::Registry;

    #[test]
    fn a_device_without_a_twin_is_not_found() {
        let store = store_with(&["d1"]);
        assert!(matches!(store.twin("d1"), Err(StoreError::NotFound)));
        assert!(matches!(store.twin("nobody"), Err(StoreError::NotFound)));
    }

    #[test]
    fn first_save_expects_zero_and_each_save_bumps_the_version() {
        let store = store_with(&["d1"]);
        assert_eq!(store.save_twin("d1", "{\"a\":1}", 0).expect("create"), 1);
        assert_eq!(store.save_twin("d1", "{\"a\":2}", 1).expect("update"), 2);
        let twin = store.twin("d1").expect("read");
        assert_eq!(
            twin,
            StoredTwin {
                device_id: "d1".into(),
                json: "{\"a\":2}".into(),
                version: 2
            }
        );
    }

    #[test]
    fn creating_over_an_existing_twin_conflicts() {
        let store = store_with(&["d1"]);
        store.save_twin("d1", "{}", 0).expect("create");
        store.save_twin("d1", "{}", 1).expect("update");
        assert!(matches!(
            store.save_twin("d1", "{\"lost\":true}", 0),
            Err(StoreError::Conflict {
                expected: 0,
                found: 2
            })
        ));
        assert_eq!(store.twin("d1").expect("read").json, "{}");
    }

    #[test]
    fn a_stale_version_conflicts_and_writes_nothing() {
        let store = store_with(&["d1"]);
        store.save_twin("d1", "{\"v\":1}", 0).expect("create");
        store.save_twin("d1", "{\"v\":2}", 1).expect("update");
        assert!(matches!(
            store.save_twin("d1", "{\"v\":\"stale\"}", 1),
            Err(StoreError::Conflict {
                expected: 1,
                found: 2
            })
        ));
        assert!(matches!(
            store.save_twin("d1", "{}", 7),
            Err(StoreError::Conflict {
                expected: 7,
                found: 2
            })
        ));
        assert_eq!(store.twin("d1").expect("read").json, "{\"v\":2}");
    }

    #[test]
    fn updating_a_missing_twin_conflicts_with_zero() {
        let store = store_with(&["d1"]);
        assert!(matches!(
            store.save_twin("d1", "{}", 3),
            Err(StoreError::Conflict {
                expected: 3,
                found: 0
            })
        ));
    }

    #[test]
    fn saving_a_twin_for_an_unknown_device_is_not_found() {
        let store = store_with(&[]);
        assert!(matches!(
            store.save_twin("ghost", "{}", 0),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn scan_pages_twins_by_device_id() {
        let store = store_with(&["a", "b", "c", "d"]);
        for id in ["d", "b", "a"] {
            store.save_twin(id, "{}", 0).expect("save");
        }
        let ids =
            |twins: Vec<StoredTwin>| twins.into_iter().map(|t| t.device_id).collect::<Vec<_>>();
        assert_eq!(ids(store.scan_twins(None, 2).expect("scan")), ["a", "b"]);
        assert_eq!(ids(store.scan_twins(Some("b"), 2).expect("scan")), ["d"]);
        assert_eq!(
            ids(store.scan_twins(Some("d"), 2).expect("scan")),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(store.scan_twins(None, 0).expect("scan")),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(store.scan_twins(None, usize::MAX).expect("scan")),
            ["a", "b", "d"]
        );
    }

    #[test]
    fn delivered_desired_is_none_until_set_then_replaced() {
        let store = store_with(&["d1"]);
        assert_eq!(store.delivered_desired("d1").expect("read"), None);
        store
            .set_delivered_desired("d1", "{\"rate\":1}", 4)
            .expect("set");
        store
            .set_delivered_desired("d1", "{\"rate\":2}", 5)
            .expect("replace");
        assert_eq!(
            store.delivered_desired("d1").expect("read"),
            Some(("{\"rate\":2}".to_owned(), 5))
        );
        assert_eq!(store.delivered_desired("unknown").expect("read"), None);
    }

    #[test]
    fn delivered_desired_for_an_unknown_device_is_not_found() {
        let store = store_with(&[]);
        assert!(matches!(
            store.set_delivered_desired("ghost", "{}", 1),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn deleting_the_device_deletes_twin_and_delivered_desired() {
        let store = store_with(&["d1"]);
        store.save_twin("d1", "{}", 0).expect("save");
        store.set_delivered_desired("d1", "{}", 1).expect("set");
        store.delete_device("d1").expect("delete");
        store
            .create_device(&super::super::registry::tests::device("d1"))
            .expect("recreate");
        assert!(matches!(store.twin("d1"), Err(StoreError::NotFound)));
        assert_eq!(store.delivered_desired("d1").expect("read"), None);
    }

    /// Reads the counter the concurrency tests keep in the twin as `{"n":<count>}`.
    fn counter(json: &str) -> u64 {
        json.trim_start_matches("{\"n\":")
            .trim_end_matches('}')
            .parse()
            .expect("counter json")
    }

    /// 8 threads each add 1 fifty times by read, compare-and-set, retry on conflict.
    /// Every increment must land: `stores` hands each thread its store, shared or not.
    fn hammer(stores: impl Fn(usize) -> Arc<SqliteStore>) {
        const THREADS: usize = 8;
        const INCREMENTS: u64 = 50;
        let setup = stores(0);
        setup
            .create_device(&super::super::registry::tests::device("d1"))
            .expect("create");
        setup.save_twin("d1", "{\"n\":0}", 0).expect("init");
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let store = stores(i);
                std::thread::spawn(move || {
                    for _ in 0..INCREMENTS {
                        loop {
                            let twin = store.twin("d1").expect("read");
                            let next = format!("{{\"n\":{}}}", counter(&twin.json) + 1);
                            match store.save_twin("d1", &next, twin.version) {
                                Ok(_) => break,
                                Err(StoreError::Conflict { .. }) => continue,
                                Err(e) => panic!("save failed: {e}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker");
        }
        let twin = setup.twin("d1").expect("read");
        let total = THREADS as u64 * INCREMENTS;
        assert_eq!(counter(&twin.json), total);
        assert_eq!(twin.version, total + 1);
    }

    #[test]
    fn concurrent_cas_increments_on_one_store_never_lose_an_update() {
        let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
        hammer(|_| Arc::clone(&store));
    }

    #[test]
    fn concurrent_cas_increments_across_connections_never_lose_an_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bosun.db");
        // Separate connections to one file: only SQLite's locking keeps them apart.
        let options = SqliteOptions {
            synchronous_full: false,
            ..SqliteOptions::default()
        };
        let stores: Vec<_> = (0..8)
            .map(|_| Arc::new(SqliteStore::open(&path, options).expect("open")))
            .collect();
        hammer(|i| Arc::clone(&stores[i]));
    }
}
