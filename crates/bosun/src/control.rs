//! Starts the control plane: the SQLite store in the data directory, the API tokens,
//! MQTT authentication over both, the hub task fed by the broker's service events, the
//! data pipeline fed by the hub's telemetry, and the REST API.
//!
//! Two steps, because the broker needs the authenticator before it listens and the hub
//! needs the broker's service handle: [`open`] opens the store and the tokens and makes
//! the authenticator ([`ControlPlane::attach`] gives it to the broker's config), then
//! [`ControlPlane::start`] starts the hub once the broker runs.
//!
//! MQTT clients authenticate as one of two kinds ([`MqttAuth`]):
//! - **services** (applications reading telemetry or `$bosun/events/#`): user name
//!   `bosun-service`, password an API token; admin and operator tokens may publish and
//!   subscribe anywhere, read-only tokens may only subscribe;
//! - **devices**: everyone else, checked by the hub ([`hub::auth::DeviceAuth`]: SAS
//!   tokens, and the device ACL), including **provisioning clients** (user name
//!   `{id scope}/registrations/{registration id}/…`, confined to `$dps/registrations/…`).

use std::sync::Arc;

use anyhow::{Context, Result};
use broker::auth::{
    AuthFuture, Authenticator, Authorizer, Credentials, Identity, IdentityKind, Refusal,
};
use broker::service::{ServiceEvent, ServiceHandle};
use hub::auth::{DeviceAuth, ProvisioningAuth, Registrations};
use hub::service::{Hub, HubConfig};
use store::sqlite::SqliteOptions;
use store::SqliteStore;
use tokio::sync::mpsc;

use crate::config::Settings;

/// File of the control-plane database inside the data directory.
const DATABASE: &str = "control.db";
/// The MQTT user name with which applications present an API token as password.
pub(crate) const SERVICE_USERNAME: &str = "bosun-service";

/// The control plane, opened but not yet serving.
pub(crate) struct ControlPlane {
    store: Arc<SqliteStore>,
    tokens: Arc<api::Tokens>,
    auth: Arc<MqttAuth>,
    /// Provisioning clients the authenticator accepted, for the hub.
    registrations: Registrations,
}

/// Opens the store and the API tokens and builds MQTT authentication over them.
pub(crate) fn open(settings: &Settings) -> Result<ControlPlane> {
    let data_dir = &settings.serve.data_dir;
    let path = data_dir.join(DATABASE);
    let store = Arc::new(
        SqliteStore::open(&path, SqliteOptions::default())
            .with_context(|| format!("cannot open {}", path.display()))?,
    );
    let (tokens, created) = api::Tokens::open_or_init(data_dir)
        .with_context(|| format!("cannot read API tokens in {}", data_dir.display()))?;
    if created.is_some() {
        tracing::info!(
            file = %data_dir.join("admin.token").display(),
            "created the first admin API token"
        );
    }
    let tokens = Arc::new(tokens);
    let registrations = Registrations::default();
    let devices = DeviceAuth::new(
        store.clone(),
        settings.acl.device_acl()?,
        settings.serve.dev,
    )
    .with_provisioning(ProvisioningAuth {
        id_scope: settings.hub.id_scope.clone(),
        registrations: registrations.clone(),
    });
    let auth = Arc::new(MqttAuth {
        devices,
        tokens: tokens.clone(),
    });
    Ok(ControlPlane {
        store,
        tokens,
        auth,
        registrations,
    })
}

impl ControlPlane {
    /// Makes the broker authenticate and authorize clients through the control plane.
    pub(crate) fn attach(&self, config: &mut broker::Config) {
        config.authenticator = Some(self.auth.clone());
        config.authorizer = Some(self.auth.clone());
    }

    /// Starts the hub on the broker's service link, and the data pipeline on the hub's
    /// telemetry; returns the API's routes and the pipeline (for `/metrics` and
    /// shutdown).
    pub(crate) fn start(
        self,
        settings: &Settings,
        service: ServiceHandle,
        events: mpsc::Receiver<ServiceEvent>,
    ) -> Result<(axum::Router, Option<pipeline::Pipeline>)> {
        let pipeline = settings
            .pipeline
            .enabled
            .then(|| settings.pipeline.pipeline_config(&settings.serve.data_dir));
        let config = HubConfig {
            auto_register: settings.serve.dev,
            host_name: settings.hub.host_name.clone(),
            registrations: self.registrations,
            // The pipeline opens its store (after a crash: replays it) before it
            // subscribes; telemetry arriving meanwhile waits for it.
            telemetry_consumer: pipeline.as_ref().map(|c| c.handoff_capacity),
            ..HubConfig::default()
        };
        let hub = Hub::start(self.store, service, events, config);
        let data = if let Some(config) = pipeline {
            Some(
                pipeline::Pipeline::start(hub.clone(), config)
                    .context("cannot start the data pipeline")?,
            )
        } else {
            None
        };
        let firmware_dir = settings.serve.data_dir.join("firmware");
        let firmware = ota::FirmwareStore::open(&firmware_dir)
            .with_context(|| format!("cannot open {}", firmware_dir.display()))?;
        let state = api::ApiState {
            hub,
            tokens: self.tokens,
            data: data.clone(),
            firmware: Some(firmware),
            download_limit: settings.firmware.download_limit(),
        };
        if let Some(rollouts) = api::rollout_driver(&state) {
            tokio::spawn(rollouts);
        }
        let router = api::router(state);
        Ok((router, data))
    }
}

/// MQTT authentication for `bosun serve`: services by API token, devices by the hub.
struct MqttAuth {
    devices: DeviceAuth,
    tokens: Arc<api::Tokens>,
}

impl MqttAuth {
    async fn authenticate_service(&self, c: &Credentials<'_>) -> Result<Identity, Refusal> {
        let token = c.password.and_then(|p| std::str::from_utf8(p).ok());
        let Some(role) = token.and_then(|t| self.tokens.authenticate(t)) else {
            return Err(Refusal::bad_credentials("bad API token"));
        };
        // Under a device's client id a service would take over the device's session
        // and the hub would treat its requests as the device's.
        if self.devices.is_device(c.client_id).await {
            return Err(Refusal::not_authorized("client id belongs to a device"));
        }
        let may_publish = role >= api::Role::Operator;
        Ok(Identity::new(
            format!("{SERVICE_USERNAME}:{role}"),
            IdentityKind::Service { may_publish },
        ))
    }
}

impl Authenticator for MqttAuth {
    fn authenticate<'a>(&'a self, credentials: &'a Credentials<'a>) -> AuthFuture<'a> {
        if credentials.username == Some(SERVICE_USERNAME) {
            Box::pin(self.authenticate_service(credentials))
        } else {
            self.devices.authenticate(credentials)
        }
    }
}

impl Authorizer for MqttAuth {
    fn may_publish(&self, identity: &Identity, topic: &str) -> bool {
        // Devices get the device ACL, services and anonymous clients the built-in
        // policy by kind.
        self.devices.may_publish(identity, topic)
    }

    fn may_subscribe(&self, identity: &Identity, filter: &str) -> bool {
        self.devices.may_subscribe(identity, filter)
    }
}
