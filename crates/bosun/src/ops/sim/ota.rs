//! `bosun sim` and firmware updates: the flags that make every simulated agent
//! OTA-capable (`--firmware-key`, `--hw`, `--firmware-server`, `--health-deadline`),
//! the firmware rows of the report, and ending a run early on SIGINT/SIGTERM (with
//! the report), so a rollout test can stop the fleet once its rollouts are done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use sim::server::HubProcess;
use sim::{FirmwareConfig, FirmwareCounts, FleetConfig, Plan};

use super::super::api::Api;

/// The OTA flags of `bosun sim`.
#[derive(Debug, Args)]
pub(crate) struct OtaArgs {
    /// Publisher public key (PEM) pinned into every simulated device: each one then
    /// installs the firmware updates that key signed (needs TLS: --ca).
    #[arg(long, value_name = "FILE")]
    pub(crate) firmware_key: Option<std::path::PathBuf>,
    /// Hardware id of the simulated devices (with --firmware-key).
    #[arg(long, value_name = "ID", default_value = sim::firmware::DEFAULT_HARDWARE, requires = "firmware_key")]
    pub(crate) hw: String,
    /// The hub's HTTPS listener, host:port, where images are downloaded [default: the
    /// host of --hub on 8443].
    #[arg(long, value_name = "HOST:PORT", requires = "firmware_key")]
    pub(crate) firmware_server: Option<String>,
    /// How long a new image has to confirm its health before a device rolls it back.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::parse_duration, requires = "firmware_key")]
    pub(crate) health_deadline: Duration,
    /// The version the simulated devices run from the factory (SemVer).
    #[arg(long, value_name = "VERSION", default_value = sim::firmware::DEFAULT_FACTORY, requires = "firmware_key")]
    pub(crate) firmware: String,
}

/// The fleet's OTA configuration, when `--firmware-key` is given. `tls`: whether the
/// devices connect with TLS (downloads are HTTPS with the same CA); `server`: the
/// HTTPS address of the hub the simulator started, unless `--firmware-server` says.
pub(crate) fn config(
    args: &OtaArgs,
    tls: bool,
    server: Option<String>,
) -> Result<Option<FirmwareConfig>> {
    let Some(key) = &args.firmware_key else {
        return Ok(None);
    };
    if !tls {
        bail!("--firmware-key: devices download firmware over HTTPS; give --ca (and a TLS --hub)");
    }
    let config = FirmwareConfig::new(
        key,
        &args.hw,
        args.firmware_server.clone().or(server),
        args.health_deadline,
    )?;
    Ok(Some(config.with_factory(&args.firmware)))
}

/// With a hub the simulator started with TLS (it does when the devices install
/// firmware): the devices connect to its MQTT/TLS listener, trust its CA, and download
/// from its HTTPS listener, whose address this returns.
pub(crate) fn use_own_hub(config: &mut FleetConfig, hub: Option<&HubProcess>) -> Option<String> {
    let hub = hub?;
    let listening = hub.listening();
    let (mqtts, https) = (listening.mqtts.clone()?, listening.https.clone()?);
    config.hub = mqtts;
    config.ca = Some(hub.data_dir().join("tls").join("ca.pem"));
    Some(https)
}

/// The firmware table of the report: what the fleet's twins say now.
pub(crate) fn report(api: &Api, plan: &Plan) -> Result<String> {
    let ids = plan.devices.iter().map(|d| d.id.as_str()).collect();
    let counts = FirmwareCounts::collect(api, &ids)?;
    Ok(counts.markdown())
}

/// Set when SIGINT or SIGTERM asked the run to end early.
#[derive(Clone, Debug, Default)]
pub(crate) struct StopRequest(Arc<AtomicBool>);

impl StopRequest {
    /// Whether a signal arrived.
    pub(crate) fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Handles SIGINT and SIGTERM from now on: the first ends the run early (the fleet
/// stops cleanly and the report is printed), a second exits at once (status 130).
pub(crate) fn stop_on_signal() -> Result<StopRequest> {
    let stop = StopRequest::default();
    let flag = stop.0.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sim-signals".into())
        .spawn(move || watch_signals(flag, ready_tx))
        .context("cannot start the signal thread")?;
    ready_rx
        .recv()
        .map_err(|_| anyhow!("the signal thread stopped"))?
        .map_err(|e| anyhow!("cannot handle signals: {e}"))?;
    Ok(stop)
}

/// The signal thread: registers the handlers, reports that, then waits.
fn watch_signals(flag: Arc<AtomicBool>, ready: std::sync::mpsc::Sender<Result<(), String>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    runtime.block_on(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let handlers = signal(SignalKind::terminate())
                .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
            let (mut term, mut int) = match handlers {
                Ok(both) => both,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            for count in 0.. {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if count > 0 {
                    std::process::exit(130);
                }
                eprintln!("signal: stopping the fleet (again to exit at once)");
                flag.store(true, Ordering::Relaxed);
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ready.send(Ok(()));
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
            }
        }
    });
}
