//! Starts the control plane: the SQLite store in the data directory, the hub task fed
//! by the broker's service events, and the REST API over both.

use std::sync::Arc;

use anyhow::{Context, Result};
use broker::service::{ServiceEvent, ServiceHandle};
use hub::service::{Hub, HubConfig};
use store::sqlite::SqliteOptions;
use store::SqliteStore;
use tokio::sync::mpsc;

use crate::config::Settings;

/// File of the control-plane database inside the data directory.
const DATABASE: &str = "control.db";

/// Opens the store, starts the hub and returns the API's routes.
pub(crate) fn start(
    settings: &Settings,
    service: ServiceHandle,
    events: mpsc::Receiver<ServiceEvent>,
) -> Result<axum::Router> {
    let data_dir = &settings.serve.data_dir;
    let path = data_dir.join(DATABASE);
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .with_context(|| format!("cannot open {}", path.display()))?;
    let config = HubConfig {
        auto_register: settings.serve.dev,
        ..HubConfig::default()
    };
    let hub = Hub::start(Arc::new(store), service, events, config);
    let (tokens, created) = api::Tokens::open_or_init(data_dir)
        .with_context(|| format!("cannot read API tokens in {}", data_dir.display()))?;
    if created.is_some() {
        tracing::info!(
            file = %data_dir.join("admin.token").display(),
            "created the first admin API token"
        );
    }
    Ok(api::router(api::ApiState {
        hub,
        tokens: Arc::new(tokens),
    }))
}
