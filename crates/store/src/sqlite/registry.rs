//! [`Registry`] over the `devices` table.

use rusqlite::{params, Row};

use super::error::{backend, insert_error, Context};
use super::{sql_limit, SqliteStore};
use crate::model::{ConnectionState, Device, DeviceFilter, DeviceStatus, Page};
use crate::traits::{Registry, StoreError};

/// Columns in the order [`read_device`] expects.
const DEVICE_COLUMNS: &str = "id, status, auth_kind, grp, created_ms, last_activity_ms, \
                              connection, connection_reason, connection_changed_ms";

impl Registry for SqliteStore {
    fn create_device(&self, device: &Device) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let mut insert = conn
            .prepare_cached(&format!(
                "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))
            .context("preparing device insert")?;
        insert
            .execute(params![
                device.id,
                status_text(device.status),
                device.auth_kind,
                device.group,
                device.created_ms,
                device.last_activity_ms,
                connection_text(device.connection),
                device.connection_reason,
                device.connection_changed_ms,
            ])
            .map_err(|e| insert_error("inserting device", e))?;
        Ok(())
    }

    fn device(&self, id: &str) -> Result<Device, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
            ))
            .context("preparing device read")?;
        let mut rows = select.query([id]).context("reading device")?;
        match rows.next().context("reading device")? {
            Some(row) => read_device(row),
            None => Err(StoreError::NotFound),
        }
    }

    fn update_device(&self, device: &Device) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let mut update = conn
            .prepare_cached(
                "UPDATE devices SET status = ?2, auth_kind = ?3, grp = ?4 WHERE id = ?1",
            )
            .context("preparing device update")?;
        let changed = update
            .execute(params![
                device.id,
                status_text(device.status),
                device.auth_kind,
                device.group,
            ])
            .context("updating device")?;
        found_if_changed(changed)
    }

    fn delete_device(&self, id: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        // Twin, delivered desired state, queue and feedback go with it (ON DELETE
        // CASCADE), in this one statement's implicit transaction.
        let mut delete = conn
            .prepare_cached("DELETE FROM devices WHERE id = ?1")
            .context("preparing device delete")?;
        let changed = delete.execute([id]).context("deleting device")?;
        found_if_changed(changed)
    }

    fn list_devices(
        &self,
        filter: &DeviceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Device>, StoreError> {
        let conn = self.lock()?;
        // NULL parameters switch a condition off, so one cached statement serves every
        // filter combination.
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices
                 WHERE (?1 IS NULL OR id > ?1)
                   AND (?2 IS NULL OR status = ?2)
                   AND (?3 IS NULL OR connection = ?3)
                   AND (?4 IS NULL OR grp = ?4)
                 ORDER BY id LIMIT ?5"
            ))
            .context("preparing device listing")?;
        // One row more than asked tells whether a next page exists without a count.
        let mut rows = select
            .query(params![
                after,
                filter.status.map(status_text),
                filter.connection.map(connection_text),
                filter.group,
                sql_limit(limit).saturating_add(1),
            ])
            .context("listing devices")?;
        let mut items = Vec::new();
        let mut more = false;
        while let Some(row) = rows.next().context("listing devices")? {
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(read_device(row)?);
        }
        let continuation = more.then(|| continuation_after(&items, after));
        Ok(Page {
            items,
            continuation,
        })
    }

    fn set_connection(
        &self,
        id: &str,
        state: ConnectionState,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let mut update = conn
            .prepare_cached(
                "UPDATE devices
                 SET connection = ?2, connection_reason = ?3, connection_changed_ms = ?4,
                     last_activity_ms = max(coalesce(last_activity_ms, ?4), ?4)
                 WHERE id = ?1",
            )
            .context("preparing connection update")?;
        let changed = update
            .execute(params![id, connection_text(state), reason, at_ms])
            .context("updating connection state")?;
        found_if_changed(changed)
    }

    fn touch(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        let conn = self.lock()?;
        // Activity only moves forward: reports from different connection tasks can
        // arrive out of order, and a late one must not hide newer activity.
        let mut update = conn
            .prepare_cached(
                "UPDATE devices SET last_activity_ms = max(coalesce(last_activity_ms, ?2), ?2)
                 WHERE id = ?1",
            )
            .context("preparing activity update")?;
        let changed = update
            .execute(params![id, at_ms])
            .context("recording activity")?;
        found_if_changed(changed)
    }
}

/// Where the next page starts: after the last item, or (for a zero limit) where this
/// page started, so the caller is never told the listing ended while devices remain.
fn continuation_after(items: &[Device], after: Option<&str>) -> String {
    match items.last() {
        Some(last) => last.id.clone(),
        None => after.unwrap_or_default().to_owned(),
    }
}

/// `NotFound` when an update or delete by id touched no row.
fn found_if_changed(changed: usize) -> Result<(), StoreError> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// One `devices` row selected with [`DEVICE_COLUMNS`].
fn read_device(row: &Row<'_>) -> Result<Device, StoreError> {
    const WHAT: &str = "reading device row";
    let status: String = row.get(1).context(WHAT)?;
    let connection: String = row.get(6).context(WHAT)?;
    Ok(Device {
        id: row.get(0).context(WHAT)?,
        status: parse_status(&status)?,
        auth_kind: row.get(2).context(WHAT)?,
        group: row.get(3).context(WHAT)?,
        created_ms: row.get(4).context(WHAT)?,
        last_activity_ms: row.get(5).context(WHAT)?,
        connection: parse_connection(&connection)?,
        connection_reason: row.get(7).context(WHAT)?,
        connection_changed_ms: row.get(8).context(WHAT)?,
    })
}

/// The stored spelling of a status.
fn status_text(status: DeviceStatus) -> &'static str {
    match status {
        DeviceStatus::Enabled => "enabled",
        DeviceStatus::Disabled => "disabled",
    }
}

/// Reads a stored status; unknown text means the row was not written by this code.
fn parse_status(text: &str) -> Result<DeviceStatus, StoreError> {
    match text {
        "enabled" => Ok(DeviceStatus::Enabled),
        "disabled" => Ok(DeviceStatus::Disabled),
        other => Err(backend(
            "reading device status",
            format_args!("unknown value {other:?}"),
        )),
    }
}

/// The stored spelling of a connection state.
fn connection_text(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Connected => "connected",
        ConnectionState::Disconnected => "disconnected",
    }
}

/// Reads a stored connection state; unknown text means the row was not written by
/// this code.
fn parse_connection(text: &str) -> Result<ConnectionState, StoreError> {
    match text {
        "connected" => Ok(ConnectionState::Connected),
        "disconnected" => Ok(ConnectionState::Disconnected),
        other => Err(backend(
            "reading device connection state",
            format_args!("unknown value {other:?}"),
        )),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A plain enabled, never-connected device.
    pub(in crate::sqlite) fn device(id: &str) -> Device {
        Device {
            id: id.into(),
            status: DeviceStatus::Enabled,
            auth_kind: "sas".into(),
            group: None,
            created_ms: 1_000,
            last_activity_ms: None,
            connection: ConnectionState::Disconnected,
            connection_reason: None,
            connection_changed_ms: None,
        }
    }

    /// A store holding devices with these ids.
    pub(in crate::sqlite) fn store_with(ids: &[&str]) -> SqliteStore {
        let store = SqliteStore::open_in_memory().expect("open");
        for id in ids {
            store.create_device(&device(id)).expect("create");
        }
        store
    }

    fn ids(page: &Page<Device>) -> Vec<&str> {
        page.items.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn create_then_read_returns_every_field() {
        let store = store_with(&[]);
        let full = Device {
            id: "d1".into(),
            status: DeviceStatus::Disabled,
            auth_kind: "x509".into(),
            group: Some("line-3".into()),
            created_ms: 5,
            last_activity_ms: Some(6),
            connection: ConnectionState::Connected,
            connection_reason: Some("connected".into()),
            connection_changed_ms: Some(7),
        };
        store.create_device(&full).expect("create");
        assert_eq!(store.device("d1").expect("read"), full);
    }

    #[test]
    fn creating_a_taken_id_is_already_exists() {
        let store = store_with(&["d1"]);
        assert!(matches!(
            store.create_device(&device("d1")),
            Err(StoreError::AlreadyExists)
        ));
    }

    #[test]
    fn reading_an_unknown_device_is_not_found() {
        let store = store_with(&["d1"]);
        assert!(matches!(store.device("d2"), Err(StoreError::NotFound)));
    }

    #[test]
    fn update_replaces_status_auth_and_group_only() {
        let store = store_with(&["d1"]);
        store
            .set_connection("d1", ConnectionState::Connected, "connected", 50)
            .expect("connect");
        let mut changed = device("d1");
        changed.status = DeviceStatus::Disabled;
        changed.auth_kind = "x509".into();
        changed.group = Some("g".into());
        changed.created_ms = 99;
        changed.connection = ConnectionState::Disconnected;
        store.update_device(&changed).expect("update");

        let stored = store.device("d1").expect("read");
        assert_eq!(stored.status, DeviceStatus::Disabled);
        assert_eq!(stored.auth_kind, "x509");
        assert_eq!(stored.group.as_deref(), Some("g"));
        assert_eq!(stored.created_ms, 1_000, "creation time is not replaced");
        assert_eq!(
            stored.connection,
            ConnectionState::Connected,
            "nor the connection"
        );

        changed.group = None;
        store.update_device(&changed).expect("clear group");
        assert_eq!(store.device("d1").expect("read").group, None);
    }

    #[test]
    fn updating_an_unknown_device_is_not_found() {
        let store = store_with(&[]);
        assert!(matches!(
            store.update_device(&device("d1")),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn delete_removes_the_device_once() {
        let store = store_with(&["d1", "d2"]);
        store.delete_device("d1").expect("delete");
        assert!(matches!(store.device("d1"), Err(StoreError::NotFound)));
        assert!(matches!(
            store.delete_device("d1"),
            Err(StoreError::NotFound)
        ));
        assert!(store.device("d2").is_ok());
    }

    #[test]
    fn listing_pages_by_id_with_continuations() {
        let store = store_with(&["c", "a", "e", "b", "d"]);
        let all = DeviceFilter::default();
        let first = store.list_devices(&all, None, 2).expect("page 1");
        assert_eq!(ids(&first), ["a", "b"]);
        assert_eq!(first.continuation.as_deref(), Some("b"));
        let second = store
            .list_devices(&all, first.continuation.as_deref(), 2)
            .expect("page 2");
        assert_eq!(ids(&second), ["c", "d"]);
        let last = store
            .list_devices(&all, second.continuation.as_deref(), 2)
            .expect("page 3");
        assert_eq!(ids(&last), ["e"]);
        assert_eq!(last.continuation, None);
    }

    #[test]
    fn an_exactly_full_last_page_has_no_continuation() {
        let store = store_with(&["a", "b"]);
        let page = store
            .list_devices(&DeviceFilter::default(), None, 2)
            .expect("list");
        assert_eq!(ids(&page), ["a", "b"]);
        assert_eq!(page.continuation, None);
    }

    #[test]
    fn an_empty_registry_lists_nothing() {
        let store = store_with(&[]);
        let page = store
            .list_devices(&DeviceFilter::default(), None, 10)
            .expect("list");
        assert_eq!(page.items, []);
        assert_eq!(page.continuation, None);
    }

    #[test]
    fn a_zero_limit_does_not_claim_the_end() {
        let store = store_with(&["a", "b"]);
        let all = DeviceFilter::default();
        let page = store.list_devices(&all, Some("a"), 0).expect("list");
        assert_eq!(page.items, []);
        assert_eq!(page.continuation.as_deref(), Some("a"));
        let page = store.list_devices(&all, Some("b"), 0).expect("list");
        assert_eq!(page.continuation, None);
    }

    #[test]
    fn a_huge_limit_lists_everything() {
        let store = store_with(&["a", "b"]);
        let page = store
            .list_devices(&DeviceFilter::default(), None, usize::MAX)
            .expect("list");
        assert_eq!(ids(&page), ["a", "b"]);
        assert_eq!(page.continuation, None);
    }

    #[test]
    fn filters_combine() {
        let store = store_with(&[]);
        for (id, status, group, connected) in [
            ("a", DeviceStatus::Enabled, Some("g1"), true),
            ("b", DeviceStatus::Disabled, Some("g1"), false),
            ("c", DeviceStatus::Enabled, Some("g2"), true),
            ("d", DeviceStatus::Enabled, None, false),
            ("e", DeviceStatus::Enabled, Some("g1"), false),
        ] {
            let mut d = device(id);
            d.status = status;
            d.group = group.map(Into::into);
            store.create_device(&d).expect("create");
            if connected {
                store
                    .set_connection(id, ConnectionState::Connected, "connected", 1)
                    .expect("connect");
            }
        }
        let list = |filter: DeviceFilter| {
            let page = store.list_devices(&filter, None, 10).expect("list");
            page.items.into_iter().map(|d| d.id).collect::<Vec<_>>()
        };
        assert_eq!(
            list(DeviceFilter {
                group: Some("g1".into()),
                ..DeviceFilter::default()
            }),
            ["a", "b", "e"]
        );
        assert_eq!(
            list(DeviceFilter {
                status: Some(DeviceStatus::Enabled),
                group: Some("g1".into()),
                ..DeviceFilter::default()
            }),
            ["a", "e"]
        );
        assert_eq!(
            list(DeviceFilter {
                status: Some(DeviceStatus::Enabled),
                connection: Some(ConnectionState::Disconnected),
                group: None,
            }),
            ["d", "e"]
        );
        assert_eq!(
            list(DeviceFilter {
                status: Some(DeviceStatus::Disabled),
                connection: Some(ConnectionState::Connected),
                group: None,
            }),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_filtered_listing_pages_over_matches_only() {
        let store = store_with(&[]);
        for (id, group) in [("a", "g"), ("b", "x"), ("c", "g"), ("d", "x"), ("e", "g")] {
            let mut d = device(id);
            d.group = Some(group.into());
            store.create_device(&d).expect("create");
        }
        let in_g = DeviceFilter {
            group: Some("g".into()),
            ..DeviceFilter::default()
        };
        let first = store.list_devices(&in_g, None, 2).expect("page 1");
        assert_eq!(ids(&first), ["a", "c"]);
        let second = store
            .list_devices(&in_g, first.continuation.as_deref(), 2)
            .expect("page 2");
        assert_eq!(ids(&second), ["e"]);
        assert_eq!(second.continuation, None);
    }

    #[test]
    fn set_connection_records_state_reason_time_and_activity() {
        let store = store_with(&["d1"]);
        store
            .set_connection("d1", ConnectionState::Connected, "connected", 10)
            .expect("connect");
        store
            .set_connection(
                "d1",
                ConnectionState::Disconnected,
                "keep-alive timeout",
                20,
            )
            .expect("disconnect");
        let d = store.device("d1").expect("read");
        assert_eq!(d.connection, ConnectionState::Disconnected);
        assert_eq!(d.connection_reason.as_deref(), Some("keep-alive timeout"));
        assert_eq!(d.connection_changed_ms, Some(20));
        assert_eq!(d.last_activity_ms, Some(20));
    }

    #[test]
    fn set_connection_on_an_unknown_device_is_not_found() {
        let store = store_with(&[]);
        assert!(matches!(
            store.set_connection("d1", ConnectionState::Connected, "connected", 1),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn touch_records_activity_and_never_moves_it_back() {
        let store = store_with(&["d1"]);
        store.touch("d1", 30).expect("touch");
        assert_eq!(store.device("d1").expect("read").last_activity_ms, Some(30));
        store.touch("d1", 20).expect("late touch");
        assert_eq!(store.device("d1").expect("read").last_activity_ms, Some(30));
        store
            .set_connection("d1", ConnectionState::Connected, "connected", 25)
            .expect("connect");
        let d = store.device("d1").expect("read");
        assert_eq!(d.last_activity_ms, Some(30));
        assert_eq!(d.connection_changed_ms, Some(25));
    }

    #[test]
    fn touching_an_unknown_device_is_not_found() {
        let store = store_with(&[]);
        assert!(matches!(store.touch("d1", 1), Err(StoreError::NotFound)));
    }

    #[test]
    fn corrupt_enum_text_is_a_backend_error() {
        let store = store_with(&["d1", "d2"]);
        {
            let conn = store.lock().expect("lock");
            conn.execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 UPDATE devices SET status = 'maybe' WHERE id = 'd1';
                 UPDATE devices SET connection = 'sort of' WHERE id = 'd2';
                 PRAGMA ignore_check_constraints = OFF;",
            )
            .expect("corrupt rows");
        }
        assert!(matches!(
            store.device("d1"),
            Err(StoreError::Backend(m)) if m.contains("maybe")
        ));
        assert!(matches!(
            store.device("d2"),
            Err(StoreError::Backend(m)) if m.contains("sort of")
        ));
        assert!(matches!(
            store.list_devices(&DeviceFilter::default(), None, 10),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn enum_spellings_roundtrip() {
        for status in [DeviceStatus::Enabled, DeviceStatus::Disabled] {
            assert_eq!(parse_status(status_text(status)).expect("parse"), status);
        }
        for state in [ConnectionState::Connected, ConnectionState::Disconnected] {
            assert_eq!(
                parse_connection(connection_text(state)).expect("parse"),
                state
            );
        }
    }
}
