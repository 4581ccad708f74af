//! [`GroupStore`] over the `device_groups` table.

use rusqlite::{params, Row};

use super::error::Context;
use super::SqliteStore;
use crate::model::Group;
use crate::traits::{GroupStore, StoreError};

impl GroupStore for SqliteStore {
    fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.prepare_cached(
            "INSERT INTO device_groups (name, condition, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET condition = ?2, created_ms = ?3",
        )
        .context("preparing group write")?
        .execute(params![group.name, group.condition, group.created_ms])
        .context("writing group")?;
        Ok(())
    }

    fn group(&self, name: &str) -> Result<Group, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached("SELECT name, condition, created_ms FROM device_groups WHERE name = ?1")
            .context("preparing group read")?;
        let mut rows = select.query([name]).context("reading group")?;
        match rows.next().context("reading group")? {
            Some(row) => read_group(row),
            None => Err(StoreError::NotFound),
        }
    }

    fn groups(&self) -> Result<Vec<Group>, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached("SELECT name, condition, created_ms FROM device_groups ORDER BY name")
            .context("preparing group list")?;
        let mut rows = select.query([]).context("listing groups")?;
        let mut groups = Vec::new();
        while let Some(row) = rows.next().context("listing groups")? {
            groups.push(read_group(row)?);
        }
        Ok(groups)
    }

    fn delete_group(&self, name: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let deleted = conn
            .prepare_cached("DELETE FROM device_groups WHERE name = ?1")
            .context("preparing group delete")?
            .execute([name])
            .context("deleting group")?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

fn read_group(row: &Row<'_>) -> Result<Group, StoreError> {
    Ok(Group {
        name: row.get(0).context("reading group name")?,
        condition: row.get(1).context("reading group condition")?,
        created_ms: row.get(2).context("reading group time")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn group(name: &str, condition: &str) -> Group {
        Group {
            name: name.into(),
            condition: condition.into(),
            created_ms: 1,
        }
    }

    #[test]
    fn groups_are_created_replaced_listed_and_deleted() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.put_group(&group("b", "tags.site = 'x'")).unwrap();
        store.put_group(&group("a", "status = 'enabled'")).unwrap();
        store.put_group(&group("b", "tags.site = 'y'")).unwrap();
        let names: Vec<String> = store
            .groups()
            .unwrap()
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(store.group("b").unwrap().condition, "tags.site = 'y'");
        store.delete_group("a").unwrap();
        assert!(matches!(store.group("a"), Err(StoreError::NotFound)));
        assert!(matches!(store.delete_group("a"), Err(StoreError::NotFound)));
    }
}
