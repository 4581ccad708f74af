//! Which client ids are registered devices, kept in memory.
//!
//! Every MQTT connect and disconnect asks "is this a device?" before recording presence.
//! Asking the store costs a blocking-pool round trip and a SQLite read per connect,
//! which in a connect storm of plain MQTT clients (the broker serves those too) was the
//! largest cost left on the connect path. The set is filled from the registry at start
//! and kept current by the hub's own create and delete paths, the only writers of the
//! registry while the hub runs. Its cost is one small string per registered device.

use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};

use store::{DeviceFilter, Store, StoreError};

/// Registered device ids.
pub(super) struct KnownDevices {
    ids: RwLock<HashSet<Box<str>>>,
    /// False when the registry could not be read at start: then every client may be a
    /// device and the store decides, as before this set existed.
    complete: bool,
}

/// Ids read per registry page while loading.
const PAGE: usize = 1_000;

impl KnownDevices {
    /// Every device in the registry.
    pub(super) fn load(store: &dyn Store) -> Result<KnownDevices, StoreError> {
        let mut ids = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list_devices(&DeviceFilter::default(), after.as_deref(), PAGE)?;
            ids.extend(page.items.into_iter().map(|d| d.id.into_boxed_str()));
            match page.continuation {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(KnownDevices {
            ids: RwLock::new(ids),
            complete: true,
        })
    }

    /// A set that knows nothing, so that every client is looked up in the store.
    pub(super) fn unknown() -> KnownDevices {
        KnownDevices {
            ids: RwLock::default(),
            complete: false,
        }
    }

    /// False only when `id` is certainly not a registered device.
    pub(super) fn may_be_device(&self, id: &str) -> bool {
        !self.complete
            || self
                .ids
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(id)
    }

    /// Records a device the registry now holds.
    pub(super) fn insert(&self, id: &str) {
        self.ids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.into());
    }

    /// Forgets a device the registry no longer holds.
    pub(super) fn remove(&self, id: &str) {
        self.ids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}
