//! [`CredentialStore`] over the `device_keys` table: one row per device that has
//! symmetric keys, removed with the device (`ON DELETE CASCADE`).

use rusqlite::params;

use super::error::{insert_error, Context};
use super::SqliteStore;
use crate::model::SymmetricKeys;
use crate::traits::{CredentialStore, StoreError};

impl CredentialStore for SqliteStore {
    fn set_keys(&self, device_id: &str, keys: &SymmetricKeys) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.prepare_cached(
            "INSERT INTO device_keys (device_id, primary_key, secondary_key) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id) DO UPDATE SET primary_key = ?2, secondary_key = ?3",
        )
        .context("preparing key write")?
        .execute(params![device_id, keys.primary, keys.secondary])
        // A missing device is a foreign-key failure: `NotFound`.
        .map_err(|e| insert_error("writing keys", e))?;
        Ok(())
    }

    fn keys(&self, device_id: &str) -> Result<SymmetricKeys, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached(
                "SELECT primary_key, secondary_key FROM device_keys WHERE device_id = ?1",
            )
            .context("preparing key read")?;
        let mut rows = select.query([device_id]).context("reading keys")?;
        match rows.next().context("reading keys")? {
            Some(row) => Ok(SymmetricKeys {
                primary: row.get(0).context("reading primary key")?,
                secondary: row.get(1).context("reading secondary key")?,
            }),
            None => Err(StoreError::NotFound),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sqlite::registry::tests::device;
    use crate::traits::Registry;

    fn keys(p: &str, s: &str) -> SymmetricKeys {
        SymmetricKeys {
            primary: p.into(),
            secondary: s.into(),
        }
    }

    #[test]
    fn keys_are_set_replaced_and_deleted_with_the_device() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert!(matches!(store.keys("d"), Err(StoreError::NotFound)));
        assert!(matches!(
            store.set_keys("d", &keys("a", "b")),
            Err(StoreError::NotFound)
        ));
        store.create_device(&device("d")).unwrap();
        assert!(matches!(store.keys("d"), Err(StoreError::NotFound)));
        store.set_keys("d", &keys("a", "b")).unwrap();
        assert_eq!(store.keys("d").unwrap(), keys("a", "b"));
        store.set_keys("d", &keys("a", "c")).unwrap();
        assert_eq!(store.keys("d").unwrap(), keys("a", "c"));
        store.delete_device("d").unwrap();
        assert!(matches!(store.keys("d"), Err(StoreError::NotFound)));
        // Re-created, the device does not inherit the old keys.
        store.create_device(&device("d")).unwrap();
        assert!(matches!(store.keys("d"), Err(StoreError::NotFound)));
    }

    #[test]
    fn debug_output_hides_keys() {
        assert!(!format!("{:?}", keys("secret-1", "secret-2")).contains("secret"));
    }
}
