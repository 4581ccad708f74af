//! `bosun serve`: wires the broker and the HTTP server together and runs until a signal.
//!
//! This module owns process lifecycle: settings in, logger up, data directory created,
//! listeners bound, the `listening …` contract lines printed, then shutdown in order
//! (broker first, so clients are told and the log is flushed; HTTP last, so metrics stay
//! scrapeable until the end). The broker and HTTP server own everything else.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use broker::metrics::Metrics;
use broker::Broker;

use crate::cli::ServeArgs;
use crate::config::{bosun_env, Settings};
use crate::http::HttpServer;
use crate::logging;

/// Exit code when a second signal cuts a graceful shutdown short.
const FORCED_EXIT_CODE: i32 = 1;

/// Runs `bosun serve` to completion; `Ok` means a clean, signalled shutdown.
pub(crate) fn run(args: &ServeArgs) -> Result<()> {
    let mut settings = Settings::load(args.config.as_deref(), &bosun_env()?)?;
    settings.apply_flags(args);
    let rust_log = std::env::var("RUST_LOG").ok();
    let directive = logging::filter_directive(
        args.log_level.as_deref(),
        rust_log.as_deref(),
        &settings.serve.log_level,
    );
    logging::init(settings.serve.log_format, &directive)?;
    let data_dir = &settings.serve.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(settings.serve.worker_threads))
        .enable_all()
        .thread_name("bosun")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(settings))
}

/// Worker threads for `configured` (0: half the CPUs, at least one).
///
/// The router is a single task and the durable log has its own thread, so extra
/// workers only spread connection encoding while adding wake-ups between threads;
/// measured on 2 cores, one worker serves QoS 0 fan-in with half the CPU per message.
fn worker_threads(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus / 2).max(1)
}

/// Starts both servers, waits for a signal, and stops them in order.
async fn serve(settings: Settings) -> Result<()> {
    // Before binding: a signal that arrives right after the `listening` lines must
    // already find our handler, not the default action (termination without cleanup).
    let mut signals = Signals::install()?;
    let metrics = Arc::new(Metrics::default());
    // The control plane's store and tokens first: the broker authenticates through them.
    let control = crate::control::open(&settings).context("cannot start the control plane")?;
    let mut broker_config = settings.broker_config();
    control.attach(&mut broker_config);
    let (broker, service, events) =
        Broker::start_with_service(broker_config, metrics, hub::service::broker_spec())
            .await
            .context("cannot start the MQTT broker")?;
    crate::trim::spawn(broker.metrics());
    let (api, pipeline) = match control.start(&settings, service, events) {
        Ok(started) => started,
        Err(e) => {
            broker.shutdown().await;
            return Err(e);
        }
    };
    let api_for_https = api.clone();
    let http = HttpServer::start(
        settings.serve.http,
        broker.metrics(),
        Some(api),
        pipeline.clone(),
    )
    .await;
    let http = match http {
        Ok(http) => http,
        Err(e) => {
            broker.shutdown().await;
            return Err(e.context("cannot start the HTTP server"));
        }
    };
    let https = match start_https(&settings, &broker, api_for_https, pipeline.clone()).await {
        Ok(https) => https,
        Err(e) => {
            broker.shutdown().await;
            http.shutdown().await;
            return Err(e.context("cannot start the HTTPS server"));
        }
    };
    announce(
        broker.local_addr(),
        broker.tls_local_addr(),
        https.as_ref().map(HttpServer::local_addr),
        http.local_addr(),
    )?;
    tracing::info!(
        mqtt = %broker.local_addr(),
        mqtts = ?broker.tls_local_addr(),
        https = ?https.as_ref().map(HttpServer::local_addr),
        http = %http.local_addr(),
        data_dir = %settings.serve.data_dir.display(),
        dev = settings.serve.dev,
        "bosun serving"
    );
    let signal = signals.next().await;
    tracing::info!(signal, "shutting down; a second signal exits immediately");
    tokio::spawn(async move {
        let signal = signals.next().await;
        eprintln!("bosun: second {signal}: exiting without finishing shutdown");
        std::process::exit(FORCED_EXIT_CODE);
    });
    broker.shutdown().await;
    if let Some(https) = https {
        https.shutdown().await;
    }
    http.shutdown().await;
    if let Some(pipeline) = pipeline {
        pipeline.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The HTTPS API (same routes as HTTP) with the MQTT TLS listener's certificate, when
/// TLS and HTTPS are on. The certificate is read after the broker made it, and re-read
/// when its files change (as the broker does for MQTT).
async fn start_https(
    settings: &Settings,
    broker: &Broker,
    api: axum::Router,
    pipeline: Option<pipeline::Pipeline>,
) -> Result<Option<HttpServer>> {
    let Some(addr) = settings.tls.https_listener() else {
        return Ok(None);
    };
    if broker.tls_local_addr().is_none() {
        return Ok(None);
    }
    let (cert, key) = settings.tls.identity_files(&settings.serve.data_dir);
    let tls = crate::http::TlsIdentity::load(&cert, &key)?;
    let server = HttpServer::start_tls(addr, tls, broker.metrics(), Some(api), pipeline).await?;
    Ok(Some(server))
}

/// Prints the contract lines tests and scripts wait for, then flushes: `mqtt`, then
/// `mqtts` unless TLS is off, `https` when it runs, then `http` last, so a reader that
/// has seen `http` has seen everything.
fn announce(
    mqtt: SocketAddr,
    mqtts: Option<SocketAddr>,
    https: Option<SocketAddr>,
    http: SocketAddr,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening mqtt {mqtt}")
        .and_then(|()| match mqtts {
            Some(addr) => writeln!(out, "listening mqtts {addr}"),
            None => Ok(()),
        })
        .and_then(|()| match https {
            Some(addr) => writeln!(out, "listening https {addr}"),
            None => Ok(()),
        })
        .and_then(|()| writeln!(out, "listening http {http}"))
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// The shutdown signals: SIGTERM (service managers, `kill`) and SIGINT (Ctrl-C).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers; from here on these signals no longer kill the process.
    fn install() -> Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
            let int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
            Ok(Signals { term, int })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
