//! Before the first connection: provision through DPS if the identity asks for it
//! (retrying with backoff), and decide the host, device id and key to connect with.

use crate::backoff::{Backoff, Jitter};
use crate::dps::Assignment;
use crate::identity::{derive_device_key, Identity};
use crate::link::Endpoint;
use crate::options::Options;
use crate::Error;

/// How the agent authenticates once provisioning (if any) is done.
#[derive(Clone)]
pub(super) struct Login {
    /// Host for SAS tokens.
    pub(super) host: String,
    /// Device id to connect as.
    pub(super) device_id: String,
    /// Device key; `None` = anonymous (or a client certificate).
    pub(super) key: Option<String>,
}

/// Provisions if the identity asks for it (retrying with backoff), and says how to log
/// in afterwards.
pub(super) async fn login(
    options: &Options,
    endpoint: &Endpoint,
    jitter: &mut Jitter,
) -> Result<Login, Error> {
    let host = options
        .host_name
        .clone()
        .unwrap_or_else(|| endpoint.host().to_owned());
    let device_id = options.device_id.clone();
    let (id_scope, key) = match &options.identity {
        Identity::Anonymous | Identity::Certificate { id_scope: None, .. } => {
            return Ok(Login {
                host,
                device_id,
                key: None,
            })
        }
        Identity::DeviceKey(key) => {
            return Ok(Login {
                host,
                device_id,
                key: Some(key.clone()),
            })
        }
        Identity::GroupKey {
            group_key,
            id_scope,
        } => (id_scope, Some(derive_device_key(group_key, &device_id)?)),
        Identity::Certificate {
            id_scope: Some(id_scope),
            ..
        } => (id_scope, None),
    };
    let mut backoff = Backoff::default();
    loop {
        match crate::dps::provision(endpoint, id_scope, &device_id, key.as_deref()).await {
            Ok(assignment) => {
                let Assignment {
                    assigned_hub,
                    device_id,
                } = &assignment;
                tracing::info!(hub = %assigned_hub, device = %device_id, "provisioned");
                return Ok(Login {
                    host: assignment.assigned_hub,
                    device_id: assignment.device_id,
                    key,
                });
            }
            Err(
                e @ (Error::Provisioning(_)
                | Error::Refused { .. }
                | Error::Config(_)
                | Error::Tls(_)),
            ) => return Err(e),
            Err(e) => {
                let delay = backoff.next_delay(jitter.next_u64());
                tracing::warn!(error = %e, retry_in = ?delay, "provisioning failed");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
