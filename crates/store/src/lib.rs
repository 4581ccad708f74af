//! Control-plane persistence for bosun: the device registry, twin documents, the
//! cloud-to-device queue and its feedback records.
//!
//! The domain (`hub`) talks to storage only through the narrow traits in [`traits`], so
//! a second backend (PostgreSQL for scale-out) is a new implementation, not a rewrite.
//! Documents are stored as opaque JSON text with a version: what a twin means is the
//! hub's business, keeping them consistent and durable is this crate's.
//!
//! - [`model`]: the records the traits read and write.
//! - [`traits`]: `Registry`, `TwinStore`, `C2dStore`, `GroupStore`, `CredentialStore`,
//!   and `Store` (all five).
//! - [`sqlite`]: the embedded default (WAL, migrations at open).
#![forbid(unsafe_code)]

pub mod model;
pub mod sqlite;
pub mod traits;

pub use model::*;
pub use sqlite::{SqliteOptions, SqliteStore};
pub use traits::{
    C2dStore, CredentialStore, EnrollmentStore, GroupStore, Registry, Store, StoreError, TwinStore,
};
