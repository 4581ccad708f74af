//! The runtime: one tokio task that owns the source, the offline buffer, the protocol
//! core and (when connected) the link, and moves time forward.
//!
//! Each turn of the loop: (re)connect if due; send what the window allows (capture
//! chunks first, then buffered feature messages, oldest first); then wait for the
//! earliest of the next feature window, the next capture chunk, the next reconnect
//! attempt, the keep-alive deadline, a packet from the hub, or shutdown. Production
//! never depends on the connection: a feature message is written to the buffer whether
//! or not the hub is there, and leaves it on its PUBACK.
//!
//! Time: the device clock runs `speed` times faster than the wall clock. Intervals,
//! capture pacing and the synthetic fault's growth are in device time; keep-alive,
//! backoff and timeouts are in real time (the hub's clock does not accelerate).
//!
//! Layout: this file starts and stops the agent; `login` provisions (if asked) and says
//! how to connect; `agent` is the loop and its state.

mod agent;
mod login;

use std::future::Future;

use crate::backoff::Jitter;
use crate::buffer::OfflineBuffer;
use crate::identity::Identity;
use crate::link::{tls, Endpoint};
use crate::options::Options;
use crate::ota::Updater;
use crate::source::Source;
use crate::Error;

/// Runs the agent until `shutdown` completes (or a configuration error).
pub async fn run(
    options: Options,
    source: Box<dyn Source>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    options.validate()?;
    let client_cert = match &options.identity {
        Identity::Certificate { cert, key, .. } => Some((cert.as_path(), key.as_path())),
        _ => None,
    };
    let tls = match (&options.ca, client_cert) {
        (Some(ca), client) => Some(tls::client_config(ca, client)?),
        (None, Some(_)) => {
            return Err(Error::Config(
                "a client certificate needs TLS: give --ca".into(),
            ))
        }
        (None, None) => None,
    };
    let endpoint = Endpoint {
        address: options.hub.clone(),
        tls,
        bind: options.source_address,
    };
    let mut buffer = OfflineBuffer::open(&options.buffer_dir, options.buffer_limits)?;
    buffer.set_sync(options.buffer_sync);
    let updater = match &options.ota {
        Some(ota) => Some(Updater::boot(
            ota.clone(),
            &options.firmware,
            endpoint.tls.clone(),
            (&options.hub, endpoint.bind),
        )?),
        None => None,
    };
    tokio::pin!(shutdown);
    let mut jitter = Jitter::seeded(hash(&options.device_id));
    let login = tokio::select! {
        login = login::login(&options, &endpoint, &mut jitter) => login?,
        () = &mut shutdown => return Ok(()),
    };
    let mut agent = agent::Agent::new(options, endpoint, login, source, buffer, jitter, updater);
    // A reboot (the active firmware slot changed) is a new session of the same agent.
    while agent.run(shutdown.as_mut()).await? == agent::Exit::Reboot {
        agent.reboot().await;
    }
    Ok(())
}

/// FNV-1a: a stable seed from the device id.
pub(crate) fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs the agent on its own single-threaded runtime until Ctrl-C or SIGTERM: the entry
/// point of `bosun device run`.
pub fn run_blocking(options: Options) -> Result<(), Error> {
    let source = crate::source::parse_source(&options.source, hash(&options.device_id))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Config(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(run(options, source, shutdown_signal()))
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
