//! [`EnrollmentStore`] over the `enrollments` table: one row per individual or group
//! enrollment, keyed by kind and name.

use rusqlite::{params, Row};

use super::error::{backend, Context};
use super::SqliteStore;
use crate::model::{Enrollment, EnrollmentKind, X509Attestation};
use crate::traits::{EnrollmentStore, StoreError};

/// The columns every read selects, in the order [`read_enrollment`] expects.
const COLUMNS: &str = "kind, name, key, initial_twin, device_group, disabled, created_ms, \
    attestation, x509_ca, x509_serial";

/// The `attestation` column's values.
const SYMMETRIC_KEY: &str = "symmetricKey";
const X509: &str = "x509";

impl EnrollmentStore for SqliteStore {
    fn put_enrollment(&self, e: &Enrollment) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.prepare_cached(
            "INSERT INTO enrollments
                 (kind, name, key, initial_twin, device_group, disabled, created_ms,
                  attestation, x509_ca, x509_serial)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (kind, name) DO UPDATE SET key = ?3, initial_twin = ?4,
                 device_group = ?5, disabled = ?6, created_ms = ?7, attestation = ?8,
                 x509_ca = ?9, x509_serial = ?10",
        )
        .context("preparing enrollment write")?
        .execute(params![
            e.kind.as_str(),
            e.name,
            e.key,
            e.initial_twin,
            e.device_group,
            e.disabled,
            e.created_ms,
            if e.x509.is_some() {
                X509
            } else {
                SYMMETRIC_KEY
            },
            e.x509.as_ref().and_then(|x| x.ca.as_deref()),
            e.x509.as_ref().and_then(|x| x.serial.as_deref()),
        ])
        .context("writing enrollment")?;
        Ok(())
    }

    fn enrollment(&self, kind: EnrollmentKind, name: &str) -> Result<Enrollment, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM enrollments WHERE kind = ?1 AND name = ?2"
            ))
            .context("preparing enrollment read")?;
        let mut rows = select
            .query(params![kind.as_str(), name])
            .context("reading enrollment")?;
        match rows.next().context("reading enrollment")? {
            Some(row) => read_enrollment(row),
            None => Err(StoreError::NotFound),
        }
    }

    fn enrollments(&self, kind: Option<EnrollmentKind>) -> Result<Vec<Enrollment>, StoreError> {
        let conn = self.lock()?;
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM enrollments WHERE ?1 IS NULL OR kind = ?1
                 ORDER BY kind, name"
            ))
            .context("preparing enrollment list")?;
        let mut rows = select
            .query([kind.map(EnrollmentKind::as_str)])
            .context("listing enrollments")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().context("listing enrollments")? {
            out.push(read_enrollment(row)?);
        }
        Ok(out)
    }

    fn delete_enrollment(&self, kind: EnrollmentKind, name: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let deleted = conn
            .prepare_cached("DELETE FROM enrollments WHERE kind = ?1 AND name = ?2")
            .context("preparing enrollment delete")?
            .execute(params![kind.as_str(), name])
            .context("deleting enrollment")?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

fn read_enrollment(row: &Row<'_>) -> Result<Enrollment, StoreError> {
    let kind: String = row.get(0).context("reading enrollment kind")?;
    let kind = match kind.as_str() {
        "individual" => EnrollmentKind::Individual,
        "group" => EnrollmentKind::Group,
        other => {
            return Err(backend(
                "reading enrollment kind",
                format_args!("{other:?}"),
            ))
        }
    };
    let attestation: String = row.get(7).context("reading enrollment attestation")?;
    let x509 = match attestation.as_str() {
        SYMMETRIC_KEY => None,
        X509 => Some(X509Attestation {
            ca: row.get(8).context("reading enrollment CA")?,
            serial: row.get(9).context("reading enrollment serial")?,
        }),
        other => {
            return Err(backend(
                "reading enrollment attestation",
                format_args!("{other:?}"),
            ))
        }
    };
    Ok(Enrollment {
        kind,
        name: row.get(1).context("reading enrollment name")?,
        key: row.get(2).context("reading enrollment key")?,
        x509,
        initial_twin: row.get(3).context("reading enrollment twin")?,
        device_group: row.get(4).context("reading enrollment device group")?,
        disabled: row.get(5).context("reading enrollment flag")?,
        created_ms: row.get(6).context("reading enrollment time")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn enrollment(kind: EnrollmentKind, name: &str, key: &str) -> Enrollment {
        Enrollment {
            kind,
            name: name.into(),
            key: key.into(),
            x509: None,
            initial_twin: "{}".into(),
            device_group: Some("g".into()),
            disabled: false,
            created_ms: 1,
        }
    }

    #[test]
    fn enrollments_are_created_replaced_listed_and_deleted() {
        let store = SqliteStore::open_in_memory().unwrap();
        let group = EnrollmentKind::Group;
        let one = EnrollmentKind::Individual;
        store.put_enrollment(&enrollment(group, "b", "k1")).unwrap();
        store.put_enrollment(&enrollment(one, "b", "k2")).unwrap();
        let mut replaced = enrollment(group, "b", "k3");
        replaced.disabled = true;
        replaced.device_group = None;
        store.put_enrollment(&replaced).unwrap();
        assert_eq!(store.enrollment(group, "b").unwrap(), replaced);
        assert_eq!(store.enrollment(one, "b").unwrap().key, "k2");
        assert_eq!(store.enrollments(None).unwrap().len(), 2);
        assert_eq!(store.enrollments(Some(one)).unwrap().len(), 1);
        // An X.509 group by CA, then back to a key.
        let mut by_ca = enrollment(group, "c", "");
        by_ca.x509 = Some(X509Attestation {
            ca: Some("bosun".into()),
            serial: None,
        });
        store.put_enrollment(&by_ca).unwrap();
        assert_eq!(store.enrollment(group, "c").unwrap(), by_ca);
        let pinned = X509Attestation {
            ca: None,
            serial: Some("4a0b".into()),
        };
        by_ca.x509 = Some(pinned);
        store.put_enrollment(&by_ca).unwrap();
        assert_eq!(store.enrollment(group, "c").unwrap(), by_ca);
        by_ca.x509 = None;
        store.put_enrollment(&by_ca).unwrap();
        assert_eq!(store.enrollment(group, "c").unwrap().x509, None);
        store.delete_enrollment(group, "c").unwrap();
        store.delete_enrollment(group, "b").unwrap();
        assert!(matches!(
            store.enrollment(group, "b"),
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_enrollment(group, "b"),
            Err(StoreError::NotFound)
        ));
    }
}
