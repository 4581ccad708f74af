//! [`C2dStore`] over the `c2d_queue` and `feedback` tables.
//!
//! A message leaves the queue only together with its feedback record, in one
//! transaction: after a crash a message is either still queued (and will be delivered
//! or expire) or has exactly one outcome, never neither or both.

use rusqlite::{params, Row, Transaction};

use super::error::{backend, insert_error, Context};
use super::properties;
use super::{sql_limit, write_transaction, SqliteStore};
use crate::model::{C2dMessage, C2dOutcome, Feedback};
use crate::traits::{C2dStore, StoreError};

/// Columns in the order [`read_message`] expects.
const MESSAGE_COLUMNS: &str = "id, device_id, payload, properties, enqueued_ms, expires_ms";

impl C2dStore for SqliteStore {
    /// Besides the trait's contract: `NotFound` when the device does not exist, and
    /// `AlreadyExists` when a message with this id is queued.
    fn enqueue(&self, message: &C2dMessage, max_depth: usize) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = write_transaction(&mut conn)?;
        require_device(&tx, &message.device_id)?;
        let depth = queue_depth(&tx, &message.device_id)?;
        if depth >= max_depth {
            return Err(StoreError::QueueFull { depth });
        }
        insert_message(&tx, message)?;
        tx.commit().context("committing C2D enqueue")
    }

    /// An unknown device has an empty queue.
    fn queued(&self, device_id: &str, limit: usize) -> Result<Vec<C2dMessage>, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM c2d_queue WHERE device_id = ?1
                 ORDER BY seq LIMIT ?2"
            ))
            .context("preparing C2D queue read")?;
        let mut rows = select
            .query(params![device_id, sql_limit(limit)])
            .context("reading C2D queue")?;
        let mut messages = Vec::new();
        while let Some(row) = rows.next().context("reading C2D queue")? {
            messages.push(read_message(row)?);
        }
        Ok(messages)
    }

    fn complete(
        &self,
        message_id: &str,
        outcome: C2dOutcome,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = write_transaction(&mut conn)?;
        let device_id = {
            let mut delete = tx
                .prepare_cached("DELETE FROM c2d_queue WHERE id = ?1 RETURNING device_id")
                .context("preparing C2D completion")?;
            let mut rows = delete
                .query([message_id])
                .context("completing C2D message")?;
            match rows.next().context("completing C2D message")? {
                Some(row) => row.get::<_, String>(0).context("completing C2D message")?,
                None => return Err(StoreError::NotFound),
            }
        };
        insert_feedback(&tx, message_id, &device_id, outcome, at_ms)?;
        tx.commit().context("committing C2D completion")
    }

    /// Feedback records the time of this call as when the messages expired: that is
    /// when they stopped being deliverable as far as anyone could observe.
    fn expire(&self, now_ms: i64) -> Result<Vec<C2dMessage>, StoreError> {
        let mut conn = self.lock()?;
        let tx = write_transaction(&mut conn)?;
        let expired = expired_messages(&tx, now_ms)?;
        if expired.is_empty() {
            return Ok(expired);
        }
        // The same condition in the same transaction selects the same rows.
        tx.prepare_cached(
            "INSERT INTO feedback (message_id, device_id, outcome, at_ms)
             SELECT id, device_id, ?2, ?1 FROM c2d_queue WHERE expires_ms <= ?1 ORDER BY seq",
        )
        .and_then(|mut insert| insert.execute(params![now_ms, outcome_text(C2dOutcome::Expired)]))
        .context("recording C2D expiry feedback")?;
        tx.prepare_cached("DELETE FROM c2d_queue WHERE expires_ms <= ?1")
            .and_then(|mut delete| delete.execute([now_ms]))
            .context("removing expired C2D messages")?;
        tx.commit().context("committing C2D expiry")?;
        Ok(expired)
    }

    /// An unknown device has nothing to purge: `Ok(0)`.
    fn purge(&self, device_id: &str, at_ms: i64) -> Result<usize, StoreError> {
        let mut conn = self.lock()?;
        let tx = write_transaction(&mut conn)?;
        let purged = tx
            .prepare_cached(
                "INSERT INTO feedback (message_id, device_id, outcome, at_ms)
                 SELECT id, device_id, ?3, ?2 FROM c2d_queue WHERE device_id = ?1
                 ORDER BY seq",
            )
            .and_then(|mut insert| {
                insert.execute(params![device_id, at_ms, outcome_text(C2dOutcome::Purged)])
            })
            .context("recording C2D purge feedback")?;
        let removed = tx
            .prepare_cached("DELETE FROM c2d_queue WHERE device_id = ?1")
            .and_then(|mut delete| delete.execute([device_id]))
            .context("purging C2D queue")?;
        if removed != purged {
            // Cannot happen inside one write transaction; refuse to commit if it does.
            return Err(backend(
                "purging C2D queue",
                format_args!("removed {removed} messages but recorded {purged} outcomes"),
            ));
        }
        tx.commit().context("committing C2D purge")?;
        Ok(removed)
    }

    fn feedback(
        &self,
        device_id: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Feedback>, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached(
                "SELECT seq, message_id, device_id, outcome, at_ms FROM feedback
                 WHERE seq > ?1 AND (?2 IS NULL OR device_id = ?2) ORDER BY seq LIMIT ?3",
            )
            .context("preparing feedback read")?;
        let mut rows = select
            .query(params![after, device_id, sql_limit(limit)])
            .context("reading feedback")?;
        let mut records = Vec::new();
        while let Some(row) = rows.next().context("reading feedback")? {
            records.push(read_feedback(row)?);
        }
        Ok(records)
    }
}

/// `NotFound` unless the device exists, checked inside the caller's transaction.
fn require_device(tx: &Transaction<'_>, device_id: &str) -> Result<(), StoreError> {
    let exists = tx
        .prepare_cached("SELECT 1 FROM devices WHERE id = ?1")
        .and_then(|mut select| select.exists([device_id]))
        .context("checking device")?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Messages queued for the device, read in the transaction that may add one.
fn queue_depth(tx: &Transaction<'_>, device_id: &str) -> Result<usize, StoreError> {
    let depth: i64 = tx
        .prepare_cached("SELECT count(*) FROM c2d_queue WHERE device_id = ?1")
        .and_then(|mut count| count.query_row([device_id], |row| row.get(0)))
        .context("counting C2D queue")?;
    usize::try_from(depth).map_err(|_| backend("counting C2D queue", format_args!("{depth}")))
}

/// Appends one message; a queued message with the same id is `AlreadyExists`.
fn insert_message(tx: &Transaction<'_>, message: &C2dMessage) -> Result<(), StoreError> {
    let mut insert = tx
        .prepare_cached(&format!(
            "INSERT INTO c2d_queue ({MESSAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))
        .context("preparing C2D insert")?;
    insert
        .execute(params![
            message.id,
            message.device_id,
            message.payload,
            properties::encode(&message.properties),
            message.enqueued_ms,
            message.expires_ms,
        ])
        .map_err(|e| insert_error("inserting C2D message", e))?;
    Ok(())
}

/// Records one message's outcome.
fn insert_feedback(
    tx: &Transaction<'_>,
    message_id: &str,
    device_id: &str,
    outcome: C2dOutcome,
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO feedback (message_id, device_id, outcome, at_ms) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut insert| {
        insert.execute(params![message_id, device_id, outcome_text(outcome), at_ms])
    })
    .context("recording C2D feedback")?;
    Ok(())
}

/// Every message whose expiry is at or before `now_ms`, oldest first.
fn expired_messages(tx: &Transaction<'_>, now_ms: i64) -> Result<Vec<C2dMessage>, StoreError> {
    let mut select = tx
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM c2d_queue WHERE expires_ms <= ?1 ORDER BY seq"
        ))
        .context("preparing C2D expiry scan")?;
    let mut rows = select
        .query([now_ms])
        .context("finding expired C2D messages")?;
    let mut messages = Vec::new();
    while let Some(row) = rows.next().context("finding expired C2D messages")? {
        messages.push(read_message(row)?);
    }
    Ok(messages)
}

/// One `c2d_queue` row selected with [`MESSAGE_COLUMNS`].
fn read_message(row: &Row<'_>) -> Result<C2dMessage, StoreError> {
    const WHAT: &str = "reading C2D message row";
    let encoded: String = row.get(3).context(WHAT)?;
    Ok(C2dMessage {
        id: row.get(0).context(WHAT)?,
        device_id: row.get(1).context(WHAT)?,
        payload: row.get(2).context(WHAT)?,
        properties: properties::decode(&encoded)?,
        enqueued_ms: row.get(4).context(WHAT)?,
        expires_ms: row.get(5).context(WHAT)?,
    })
}

/// One `feedback` row selected as `seq, message_id, device_id, outcome, at_ms`.
fn read_feedback(row: &Row<'_>) -> Result<Feedback, StoreError> {
    const WHAT: &str = "reading feedback row";
    let outcome: String = row.get(3).context(WHAT)?;
    Ok(Feedback {
        seq: row.get(0).context(WHAT)?,
        message_id: row.get(1).context(WHAT)?,
        device_id: row.get(2).context(WHAT)?,
        outcome: parse_outcome(&outcome)?,
        at_ms: row.get(4).context(WHAT)?,
    })
}

/// The stored spelling of an outcome.
fn outcome_text(outcome: C2dOutcome) -> &'static str {
    match outcome {
        C2dOutcome::Delivered => "delivered",
        C2dOutcome::Expired => "expired",
        C2dOutcome::Purged => "purged",
    }
}

/// Reads a stored outcome; unknown text means the row was not written by this code.
fn parse_outcome(text: &str) -> Result<C2dOutcome, StoreError> {
    match text {
        "delivered" => Ok(C2dOutcome::Delivered),
        "expired" => Ok(C2dOutcome::Expired),
        "purged" => Ok(C2dOutcome::Purged),
        other => Err(backend(
            "reading C2D outcome",
            format_args!("unknown value {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sqlite::registry::tests::{device, store_with};
    use crate::sqlite::SqliteOptions;
    use crate::traits::{Registry, TwinStore};

    fn message(id: &str, device_id: &str, expires_ms: i64) -> C2dMessage {
        C2dMessage {
            id: id.into(),
            device_id: device_id.into(),
            payload: id.as_bytes().to_vec(),
            properties: vec![("k".into(), id.into())],
            enqueued_ms: 100,
            expires_ms,
        }
    }

    fn queued_ids(store: &SqliteStore, device_id: &str) -> Vec<String> {
        store
            .queued(device_id, usize::MAX)
            .expect("queued")
            .into_iter()
            .map(|m| m.id)
            .collect()
    }

    fn outcomes(store: &SqliteStore, device_id: Option<&str>) -> Vec<(String, C2dOutcome, i64)> {
        store
            .feedback(device_id, 0, usize::MAX)
            .expect("feedback")
            .into_iter()
            .map(|f| (f.message_id, f.outcome, f.at_ms))
            .collect()
    }

    #[test]
    fn enqueued_messages_come_back_whole_and_in_order() {
        let store = store_with(&["d1", "d2"]);
        let first = C2dMessage {
            id: "m1".into(),
            device_id: "d1".into(),
            payload: vec![0, 255, 10, 13],
            properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            enqueued_ms: 10,
            expires_ms: 20,
        };
        store.enqueue(&first, 10).expect("enqueue");
        store
            .enqueue(&message("m2", "d2", 99), 10)
            .expect("enqueue");
        store
            .enqueue(&message("m3", "d1", 99), 10)
            .expect("enqueue");
        let queued = store.queued("d1", 10).expect("queued");
        assert_eq!(queued, [first, message("m3", "d1", 99)]);
        assert_eq!(store.queued("d1", 1).expect("queued").len(), 1);
        assert_eq!(store.queued("d1", 0).expect("queued"), []);
        assert_eq!(store.queued("nobody", 10).expect("queued"), []);
    }

    #[test]
    fn empty_payload_and_properties_roundtrip() {
        let store = store_with(&["d1"]);
        let empty = C2dMessage {
            payload: Vec::new(),
            properties: Vec::new(),
            ..message("m1", "d1", 5)
        };
        store.enqueue(&empty, 1).expect("enqueue");
        assert_eq!(store.queued("d1", 1).expect("queued"), [empty]);
    }

    #[test]
    fn queued_includes_expired_messages() {
        let store = store_with(&["d1"]);
        store
            .enqueue(&message("old", "d1", 1), 10)
            .expect("enqueue");
        assert_eq!(queued_ids(&store, "d1"), ["old"]);
    }

    #[test]
    fn enqueue_refuses_a_full_queue() {
        let store = store_with(&["d1", "d2"]);
        store.enqueue(&message("m1", "d1", 9), 2).expect("1");
        store.enqueue(&message("m2", "d1", 9), 2).expect("2");
        assert!(matches!(
            store.enqueue(&message("m3", "d1", 9), 2),
            Err(StoreError::QueueFull { depth: 2 })
        ));
        // Depth is per device.
        store
            .enqueue(&message("m4", "d2", 9), 2)
            .expect("other device");
        assert!(matches!(
            store.enqueue(&message("m5", "d2", 9), 0),
            Err(StoreError::QueueFull { depth: 1 })
        ));
        // Completing one makes room.
        store
            .complete("m1", C2dOutcome::Delivered, 5)
            .expect("complete");
        store
            .enqueue(&message("m3", "d1", 9), 2)
            .expect("room again");
        assert_eq!(queued_ids(&store, "d1"), ["m2", "m3"]);
    }

    #[test]
    fn enqueue_for_an_unknown_device_is_not_found() {
        let store = store_with(&[]);
        assert!(matches!(
            store.enqueue(&message("m1", "ghost", 9), 10),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn enqueue_with_a_queued_id_is_already_exists() {
        let store = store_with(&["d1", "d2"]);
        store.enqueue(&message("m1", "d1", 9), 10).expect("enqueue");
        assert!(matches!(
            store.enqueue(&message("m1", "d2", 9), 10),
            Err(StoreError::AlreadyExists)
        ));
        assert_eq!(queued_ids(&store, "d2"), Vec::<String>::new());
    }

    #[test]
    fn complete_moves_a_message_to_feedback_once() {
        let store = store_with(&["d1"]);
        store.enqueue(&message("m1", "d1", 9), 10).expect("enqueue");
        store
            .complete("m1", C2dOutcome::Delivered, 42)
            .expect("complete");
        assert_eq!(queued_ids(&store, "d1"), Vec::<String>::new());
        assert!(matches!(
            store.complete("m1", C2dOutcome::Delivered, 43),
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            outcomes(&store, Some("d1")),
            [("m1".to_owned(), C2dOutcome::Delivered, 42)]
        );
    }

    #[test]
    fn completing_an_unknown_message_is_not_found_and_records_nothing() {
        let store = store_with(&["d1"]);
        assert!(matches!(
            store.complete("nope", C2dOutcome::Delivered, 1),
            Err(StoreError::NotFound)
        ));
        assert_eq!(outcomes(&store, None), []);
    }

    #[test]
    fn expire_completes_messages_due_at_or_before_now() {
        let store = store_with(&["d1", "d2"]);
        store.enqueue(&message("a", "d1", 10), 10).expect("a");
        store.enqueue(&message("b", "d2", 20), 10).expect("b");
        store.enqueue(&message("c", "d1", 21), 10).expect("c");
        store.enqueue(&message("d", "d1", 5), 10).expect("d");

        let expired = store.expire(20).expect("expire");
        let ids: Vec<_> = expired.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d"]);
        assert_eq!(expired[0], message("a", "d1", 10));
        assert_eq!(queued_ids(&store, "d1"), ["c"]);
        assert_eq!(queued_ids(&store, "d2"), Vec::<String>::new());
        assert_eq!(
            outcomes(&store, None),
            [
                ("a".to_owned(), C2dOutcome::Expired, 20),
                ("b".to_owned(), C2dOutcome::Expired, 20),
                ("d".to_owned(), C2dOutcome::Expired, 20),
            ]
        );
        assert_eq!(store.expire(20).expect("again"), []);
        assert_eq!(outcomes(&store, None).len(), 3);
    }

    #[test]
    fn purge_completes_one_devices_queue() {
        let store = store_with(&["d1", "d2"]);
        store.enqueue(&message("a", "d1", 9), 10).expect("a");
        store.enqueue(&message("b", "d2", 9), 10).expect("b");
        store.enqueue(&message("c", "d1", 9), 10).expect("c");
        assert_eq!(store.purge("d1", 7).expect("purge"), 2);
        assert_eq!(queued_ids(&store, "d1"), Vec::<String>::new());
        assert_eq!(queued_ids(&store, "d2"), ["b"]);
        assert_eq!(
            outcomes(&store, Some("d1")),
            [
                ("a".to_owned(), C2dOutcome::Purged, 7),
                ("c".to_owned(), C2dOutcome::Purged, 7),
            ]
        );
        assert_eq!(store.purge("d1", 8).expect("empty"), 0);
        assert_eq!(store.purge("ghost", 8).expect("unknown"), 0);
    }

    #[test]
    fn feedback_pages_by_seq_and_filters_by_device() {
        let store = store_with(&["d1", "d2"]);
        for (id, device_id) in [("a", "d1"), ("b", "d2"), ("c", "d1"), ("d", "d1")] {
            store
                .enqueue(&message(id, device_id, 9), 10)
                .expect("enqueue");
            store
                .complete(id, C2dOutcome::Delivered, 1)
                .expect("complete");
        }
        let all = store.feedback(None, 0, 10).expect("all");
        assert_eq!(all.len(), 4);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));

        let first = store.feedback(Some("d1"), 0, 2).expect("page 1");
        assert_eq!(
            first
                .iter()
                .map(|f| f.message_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        let after = first.last().expect("non-empty").seq;
        let second = store.feedback(Some("d1"), after, 2).expect("page 2");
        assert_eq!(
            second
                .iter()
                .map(|f| f.message_id.as_str())
                .collect::<Vec<_>>(),
            ["d"]
        );
        assert_eq!(second[0].device_id, "d1");
        let end = second[0].seq;
        assert_eq!(store.feedback(Some("d1"), end, 2).expect("end"), []);
        assert_eq!(store.feedback(None, 0, 0).expect("zero"), []);
        assert_eq!(store.feedback(Some("ghost"), 0, 10).expect("ghost"), []);
    }

    #[test]
    fn feedback_seq_is_not_reused_after_the_newest_rows_go() {
        let store = store_with(&["d1", "d2"]);
        store.enqueue(&message("a", "d1", 9), 10).expect("a");
        store.complete("a", C2dOutcome::Delivered, 1).expect("a");
        store.enqueue(&message("b", "d2", 9), 10).expect("b");
        store.complete("b", C2dOutcome::Delivered, 1).expect("b");
        let seen = store.feedback(None, 0, 10).expect("feedback");
        let last_seen = seen.last().expect("b").seq;
        store.delete_device("d2").expect("delete");
        store.enqueue(&message("c", "d1", 9), 10).expect("c");
        store.complete("c", C2dOutcome::Delivered, 1).expect("c");
        let new = store.feedback(None, last_seen, 10).expect("new");
        assert_eq!(new.len(), 1, "a reader past b must still see c");
        assert_eq!(new[0].message_id, "c");
    }

    #[test]
    fn deleting_a_device_deletes_its_queue_and_feedback() {
        let store = store_with(&["d1", "d2"]);
        store.enqueue(&message("q", "d1", 9), 10).expect("q");
        store.enqueue(&message("f", "d1", 9), 10).expect("f");
        store.complete("f", C2dOutcome::Delivered, 1).expect("f");
        store.enqueue(&message("keep", "d2", 9), 10).expect("keep");
        store.delete_device("d1").expect("delete");
        store.create_device(&device("d1")).expect("recreate");
        assert_eq!(queued_ids(&store, "d1"), Vec::<String>::new());
        assert_eq!(outcomes(&store, Some("d1")), []);
        assert_eq!(queued_ids(&store, "d2"), ["keep"]);
        // The deleted message's id is free again.
        store.enqueue(&message("q", "d1", 9), 10).expect("reuse id");
    }

    #[test]
    fn corrupt_outcome_text_is_a_backend_error() {
        let store = store_with(&["d1"]);
        store.enqueue(&message("m1", "d1", 9), 10).expect("enqueue");
        store
            .complete("m1", C2dOutcome::Delivered, 1)
            .expect("complete");
        store
            .lock()
            .expect("lock")
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 UPDATE feedback SET outcome = 'lost';
                 PRAGMA ignore_check_constraints = OFF;",
            )
            .expect("corrupt");
        assert!(matches!(
            store.feedback(None, 0, 10),
            Err(StoreError::Backend(m)) if m.contains("lost")
        ));
    }

    #[test]
    fn corrupt_properties_are_a_backend_error() {
        let store = store_with(&["d1"]);
        store.enqueue(&message("m1", "d1", 9), 10).expect("enqueue");
        store
            .lock()
            .expect("lock")
            .execute_batch("UPDATE c2d_queue SET properties = '99:x'")
            .expect("corrupt");
        assert!(matches!(
            store.queued("d1", 10),
            Err(StoreError::Backend(m)) if m.contains("properties")
        ));
    }

    #[test]
    fn outcome_spellings_roundtrip() {
        for outcome in [
            C2dOutcome::Delivered,
            C2dOutcome::Expired,
            C2dOutcome::Purged,
        ] {
            assert_eq!(
                parse_outcome(outcome_text(outcome)).expect("parse"),
                outcome
            );
        }
    }

    #[test]
    fn queue_twin_and_feedback_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/bosun.db");
        let pending = message("pending", "d1", 1_000);
        {
            let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
            store.create_device(&device("d1")).expect("device");
            store.save_twin("d1", "{\"n\":1}", 0).expect("twin");
            store
                .set_delivered_desired("d1", "{}", 3)
                .expect("delivered");
            store.enqueue(&pending, 10).expect("enqueue");
            store
                .enqueue(&message("done", "d1", 1_000), 10)
                .expect("enqueue");
            store
                .complete("done", C2dOutcome::Delivered, 5)
                .expect("complete");
        }
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
        assert_eq!(store.device("d1").expect("device"), device("d1"));
        assert_eq!(store.twin("d1").expect("twin").json, "{\"n\":1}");
        assert_eq!(
            store.delivered_desired("d1").expect("delivered"),
            Some(("{}".to_owned(), 3))
        );
        assert_eq!(store.queued("d1", 10).expect("queued"), [pending]);
        assert_eq!(
            outcomes(&store, Some("d1")),
            [("done".to_owned(), C2dOutcome::Delivered, 5)]
        );
    }

    proptest! {
        #[test]
        fn any_properties_survive_enqueue_and_queued(
            properties in proptest::collection::vec((any::<String>(), any::<String>()), 0..6),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let store = store_with(&["d1"]);
            let sent = C2dMessage {
                properties,
                payload,
                ..message("m1", "d1", 9)
            };
            store.enqueue(&sent, 1).expect("enqueue");
            prop_assert_eq!(store.queued("d1", 1).expect("queued"), vec![sent]);
        }
    }
}
