//! `bosun-bench tls`: device identity under load, bosun against Mosquitto 2 in one run.
//!
//! Two workloads, each run `--repeat` times per broker with a fresh broker process
//! every time (alternating which broker goes first), reported as medians:
//!
//! 1. **Mutual-TLS handshakes** ([`handshakes`]): `--clients` clients, `--concurrency`
//!    at a time, each a new TCP connection, a full TLS handshake presenting its own
//!    device certificate (no resumption), MQTT CONNECT/CONNACK, DISCONNECT. bosun
//!    verifies against its device CA (devices registered with `authKind` `x509`);
//!    Mosquitto trusts the same CA (`require_certificate`, `use_identity_as_username`).
//! 2. **Connect storm** ([`storm`]): `--devices` devices connect over TLS and stay
//!    connected. On bosun each first provisions itself through DPS (symmetric-key
//!    enrollment group: connect, subscribe, register, poll until assigned,
//!    disconnect) and then connects as the device with a SAS token. Mosquitto has no
//!    provisioning; its devices connect once over TLS with the same user names and
//!    tokens, checked against a `password_file`.
//!
//! The load generator ([`conn`]) is the same rustls client (ring provider) for both;
//! both brokers present the same ECDSA P-256 server certificate ([`pki`]).

mod brokers;
mod conn;
mod pki;
mod token;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::hub::api::{self, Call};
use crate::peer::{Kind, Paths};
use crate::progress;
use crate::report::{median, num, Machine};
use brokers::{MosquittoAuth, Process};
use pki::Pki;

/// The enrollment group every storm device registers through.
const GROUP: &str = "bench";
/// Its key: base64 of 32 fixed bytes (a benchmark needs no secret).
const GROUP_KEY: &str = "YmVuY2gtZ3JvdXAta2V5LWJvc3VuLWJlbmNoLXRscyE=";
/// Longest a whole handshake run may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(300);
/// Longest a whole storm run may take.
const STORM_LIMIT: Duration = Duration::from_secs(900);
/// Pause between operation-status polls while the hub is still assigning.
const POLL_PAUSE: Duration = Duration::from_millis(10);

/// Options of `bosun-bench tls`.
#[derive(Debug, clap::Args)]
pub(crate) struct TlsArgs {
    /// The bosun binary.
    #[arg(long, default_value = "target/release/bosun")]
    bosun: PathBuf,
    /// The Mosquitto binary.
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    mosquitto: PathBuf,
    /// `mosquitto_passwd`, to hash the storm's password file.
    #[arg(long, default_value = "/usr/bin/mosquitto_passwd")]
    mosquitto_passwd: PathBuf,
    /// Which workload to run.
    #[arg(long, value_enum, default_value_t = Workload::All)]
    workload: Workload,
    /// Runs per workload and broker; the report shows medians.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Clients (handshakes) per handshake run.
    #[arg(long, default_value_t = 2_000)]
    clients: usize,
    /// Connections under way at once, in both workloads.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Devices in the connect storm.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Adds `set_tcp_nodelay true` to Mosquitto's configuration (default off, as in
    /// Mosquitto; see docs/benchmarks.md for what it changes).
    #[arg(long)]
    mosquitto_nodelay: bool,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks-tls-latest.md")]
    out: PathBuf,
}

/// `--workload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    All,
    Handshakes,
    Storm,
    /// The storm without provisioning: bosun's devices are created through the API
    /// beforehand, so both brokers see the same single TLS + SAS/password connect.
    Direct,
}

/// One measured run.
struct Run {
    workload: &'static str,
    kind: Kind,
    result: Result<Measured, String>,
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
struct Measured {
    /// Connections completed.
    count: usize,
    /// Wall time from the first connection to the last CONNACK.
    seconds: f64,
    /// Broker CPU (user + system) over the same interval.
    cpu_seconds: f64,
    /// Broker resident memory at the end (all storm devices connected).
    rss_mib: f64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds
    }
    fn cpu_ms_each(&self) -> f64 {
        self.cpu_seconds * 1000.0 / self.count as f64
    }
}

/// Everything prepared once per command.
struct Setup {
    paths: Paths,
    pki: Pki,
    /// Per-client configurations (each with its own certificate) for the handshakes.
    device_configs: Vec<Arc<rustls::ClientConfig>>,
    /// Without a client certificate, for the storm.
    anonymous: Arc<rustls::ClientConfig>,
    /// Mosquitto's hashed password file for the storm devices.
    password_file: PathBuf,
    /// User name and password of every storm device.
    storm_credentials: Arc<Vec<(String, String)>>,
    /// Every storm device's key (derived from the group key).
    storm_keys: Arc<Vec<String>>,
    /// Expiry of every token.
    expiry: u64,
    /// `[hub] host_name` and `[hub] id_scope` defaults.
    host: String,
    id_scope: String,
}

/// Client id of handshake client `i` (= certificate CN = device id).
fn handshake_id(i: usize) -> String {
    format!("tls-{i:05}")
}

/// Registration id (= device id) of storm device `i`.
fn storm_id(i: usize) -> String {
    format!("storm-{i:05}")
}

/// `bosun-bench tls`.
pub(crate) async fn run(args: TlsArgs) -> Result<()> {
    progress("bosun-bench tls starting");
    let paths = Paths {
        bosun: args.bosun.clone(),
        mosquitto: args.mosquitto.clone(),
    };
    for exe in [&paths.bosun, &paths.mosquitto, &args.mosquitto_passwd] {
        anyhow::ensure!(exe.exists(), "{} does not exist", exe.display());
    }
    let setup = prepare(&args, paths).await?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let machine = Machine::probe(&setup.paths);
    let repeat = args.repeat.max(1);
    let mut runs = Vec::new();
    let workloads: &[&'static str] = match args.workload {
        Workload::All => &["handshakes", "storm", "direct"],
        Workload::Handshakes => &["handshakes"],
        Workload::Storm => &["storm"],
        Workload::Direct => &["direct"],
    };
    for &workload in workloads {
        for rep in 0..repeat {
            let order = if rep % 2 == 0 {
                [Kind::Bosun, Kind::Mosquitto]
            } else {
                [Kind::Mosquitto, Kind::Bosun]
            };
            for kind in order {
                let label = format!("{workload} run {}/{repeat} {kind}", rep + 1);
                progress(&format!("{label}: starting"));
                let tag = format!("{workload}-{rep}-{kind}");
                let result = one_run(workload, kind, &setup, &args, &tag)
                    .await
                    .map_err(|e| format!("{e:#}"));
                match &result {
                    Ok(m) => progress(&format!(
                        "{label}: {} in {:.2} s = {}/s, broker CPU {:.3} ms each, RSS {:.0} MiB",
                        m.count,
                        m.seconds,
                        num(m.rate()),
                        m.cpu_ms_each(),
                        m.rss_mib
                    )),
                    Err(e) => progress(&format!("{label}: FAILED: {e}")),
                }
                runs.push(Run {
                    workload,
                    kind,
                    result,
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let markdown = render(&machine, &command, &args, &setup, &runs);
    print!("{markdown}");
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    progress(&format!("report written to {}", args.out.display()));
    let _ = std::fs::remove_dir_all(setup_dir());
    Ok(())
}

/// Where the certificates and the password file of this command live.
fn setup_dir() -> PathBuf {
    std::env::temp_dir().join(format!("bosun-bench-tls-{}-setup", std::process::id()))
}

/// Certificates, client configurations, tokens and Mosquitto's password file.
async fn prepare(args: &TlsArgs, paths: Paths) -> Result<Setup> {
    let dir = setup_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let pki = Pki::create(&dir)?;
    progress(&format!("issuing {} device certificates", args.clients));
    let device_configs = (0..args.clients)
        .map(|i| pki.device_config(&handshake_id(i)))
        .collect::<Result<Vec<_>>>()?;
    let anonymous = pki.anonymous_config()?;
    let host = hub::service::HubConfig::default().host_name;
    let id_scope = hub::auth::DEFAULT_ID_SCOPE.to_owned();
    let expiry = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs()
        + 2 * 24 * 3600;
    let storm_keys = (0..args.devices)
        .map(|i| token::derive_device_key(GROUP_KEY, &storm_id(i)))
        .collect::<Result<Vec<_>>>()?;
    let storm_credentials = storm_keys
        .iter()
        .enumerate()
        .map(|(i, key)| token::device_credentials(&host, &storm_id(i), key, expiry))
        .collect::<Result<Vec<_>>>()?;
    let password_file = dir.join("passwords");
    if args.workload != Workload::Handshakes {
        progress(&format!("hashing {} passwords for mosquitto", args.devices));
        let mut text = String::new();
        for (user, password) in &storm_credentials {
            let _ = writeln!(text, "{user}:{password}");
        }
        std::fs::write(&password_file, text).context("cannot write the password file")?;
        let status = tokio::time::timeout(
            Duration::from_secs(600),
            tokio::process::Command::new(&args.mosquitto_passwd)
                .arg("-U")
                .arg(&password_file)
                .status(),
        )
        .await
        .context("mosquitto_passwd -U took too long")?
        .context("cannot run mosquitto_passwd")?;
        anyhow::ensure!(status.success(), "mosquitto_passwd -U failed: {status}");
    }
    Ok(Setup {
        paths,
        pki,
        device_configs,
        anonymous,
        password_file,
        storm_credentials: Arc::new(storm_credentials),
        storm_keys: Arc::new(storm_keys),
        expiry,
        host,
        id_scope,
    })
}

/// One workload against one fresh broker, stopped afterwards (its directory kept on
/// failure).
async fn one_run(
    workload: &str,
    kind: Kind,
    setup: &Setup,
    args: &TlsArgs,
    tag: &str,
) -> Result<Measured> {
    let dir = brokers::fresh_dir(tag)?;
    let handshakes = workload == "handshakes";
    let mut process = match kind {
        Kind::Bosun => {
            if handshakes {
                setup.pki.install_ca(&dir.join("data"))?;
            }
            Process::bosun(&setup.paths.bosun, &dir, &setup.pki).await
        }
        Kind::Mosquitto => {
            let auth = if handshakes {
                MosquittoAuth::ClientCert
            } else {
                MosquittoAuth::PasswordFile
            };
            Process::mosquitto(
                &setup.paths.mosquitto,
                &dir,
                &setup.pki,
                auth,
                &setup.password_file,
                args.mosquitto_nodelay,
            )
            .await
        }
    }
    .with_context(|| format!("cannot start {kind} (log in {})", dir.display()))?;
    let (limit, result) = if handshakes {
        let work = handshakes_run(&mut process, setup, args);
        (
            HANDSHAKE_LIMIT,
            tokio::time::timeout(HANDSHAKE_LIMIT, work).await,
        )
    } else {
        let work = storm(&mut process, setup, args, workload == "storm");
        (STORM_LIMIT, tokio::time::timeout(STORM_LIMIT, work).await)
    };
    let result = result.unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {limit:?}")));
    let stopped = process.stop(result.is_err()).await;
    let measured = result?;
    stopped?;
    Ok(measured)
}

/// Runs `count` jobs with at most `concurrency` at once; `job(i)` is job `i`. Fails on
/// the first failed job. Prints progress every 5 s.
async fn pool<F, Fut>(count: usize, concurrency: usize, label: &str, job: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let (next, done, job) = (Arc::clone(&next), Arc::clone(&done), Arc::clone(&job));
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                job(i).await.with_context(|| format!("connection {i}"))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(result) => result.context("worker panicked")??,
                None => return Ok(()),
            },
            _ = ticker.tick() => {
                progress(&format!("{label}: {}/{count}", done.load(Ordering::Relaxed)));
            }
        }
    }
}

/// Workload 1: full mutual-TLS handshakes + CONNECT/CONNACK + DISCONNECT.
async fn handshakes_run(process: &mut Process, setup: &Setup, args: &TlsArgs) -> Result<Measured> {
    let count = args.clients;
    if let Some(api) = &process.api {
        // Devices with authKind x509 so that bosun accepts their CONNECT.
        api::batch(
            api,
            16,
            count,
            Duration::from_secs(120),
            "registering x509 devices",
            |i| Call {
                method: "POST",
                path: "/api/devices".to_owned(),
                body: format!(
                    "{{\"deviceId\":\"{}\",\"authKind\":\"x509\"}}",
                    handshake_id(i)
                ),
                expect: 201,
            },
            api::any_body,
        )
        .await?;
    }
    let addr = process.mqtts;
    let configs = Arc::new(setup.device_configs.clone());
    let cpu0 = process.cpu_seconds()?;
    let start = Instant::now();
    pool(count, args.concurrency, "handshakes", move |i| {
        let config = configs.get(i).cloned();
        async move {
            let config = config.context("no client configuration")?;
            let connect = conn::connect_packet(&handshake_id(i), None, None);
            let session = conn::open(addr, conn::source_ip(i), config, connect).await?;
            session.disconnect().await
        }
    })
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = process.cpu_seconds()? - cpu0;
    process.check_alive()?;
    Ok(Measured {
        count,
        seconds,
        cpu_seconds,
        rss_mib: process.rss_mib()?,
    })
}

/// Workload 2: the connect storm, devices staying connected until the end.
/// With `provision` false, bosun's devices are created through the API (untimed) and
/// connect directly, like Mosquitto's.
async fn storm(
    process: &mut Process,
    setup: &Setup,
    args: &TlsArgs,
    provision: bool,
) -> Result<Measured> {
    let count = args.devices;
    if let (Some(api), false) = (&process.api, provision) {
        let keys = Arc::clone(&setup.storm_keys);
        api::batch(
            api,
            16,
            count,
            Duration::from_secs(300),
            "registering SAS devices",
            move |i| Call {
                method: "POST",
                path: "/api/devices".to_owned(),
                body: serde_json::json!({
                    "deviceId": storm_id(i),
                    "authKind": "sas",
                    "symmetricKey": keys.get(i).cloned().unwrap_or_default(),
                })
                .to_string(),
                expect: 201,
            },
            api::any_body,
        )
        .await?;
    } else if let Some(api) = &process.api {
        let mut client = api.client();
        let body = format!("{{\"key\":\"{GROUP_KEY}\"}}");
        let path = format!("/api/enrollments/groups/{GROUP}");
        let answer = client.send("PUT", &path, Some(&body)).await?;
        if !matches!(answer.status, 200 | 201) {
            bail!(
                "PUT {path} answered {}: {}",
                answer.status,
                answer.excerpt()
            );
        }
    }
    let addr = process.mqtts;
    let held = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let ctx = Arc::new(StormContext {
        addr,
        config: Arc::clone(&setup.anonymous),
        credentials: Arc::clone(&setup.storm_credentials),
        host: setup.host.clone(),
        id_scope: setup.id_scope.clone(),
        expiry: setup.expiry,
        provision: provision && process.kind == Kind::Bosun,
        held: Arc::clone(&held),
    });
    let cpu0 = process.cpu_seconds()?;
    let start = Instant::now();
    pool(count, args.concurrency, "storm", move |i| {
        let ctx = Arc::clone(&ctx);
        async move { ctx.device(i).await }
    })
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = process.cpu_seconds()? - cpu0;
    process.check_alive()?;
    let rss_mib = process.rss_mib()?;
    let connected = held.lock().map(|h| h.len()).unwrap_or(0);
    anyhow::ensure!(
        connected == count,
        "only {connected} of {count} devices connected"
    );
    // Closing 10,000 sockets here, before the broker is killed.
    if let Ok(mut held) = held.lock() {
        held.clear();
    }
    Ok(Measured {
        count,
        seconds,
        cpu_seconds,
        rss_mib,
    })
}

/// What every storm device shares.
struct StormContext {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    credentials: Arc<Vec<(String, String)>>,
    host: String,
    id_scope: String,
    expiry: u64,
    /// Provision through DPS first (bosun) or just connect (Mosquitto).
    provision: bool,
    /// The connected devices' sockets, held open until the run ends.
    held: Arc<Mutex<Vec<tokio::net::TcpStream>>>,
}

impl StormContext {
    /// Device `i`: (provision, then) connect as the device and stay connected.
    async fn device(&self, i: usize) -> Result<()> {
        let id = storm_id(i);
        let source = conn::source_ip(i);
        let (user, password) = if self.provision {
            let key = token::derive_device_key(GROUP_KEY, &id)?;
            let device_id = self.provision(&id, &key, source).await?;
            anyhow::ensure!(
                device_id == id,
                "assigned device id {device_id}, expected {id}"
            );
            token::device_credentials(&self.host, &device_id, &key, self.expiry)?
        } else {
            self.credentials
                .get(i)
                .cloned()
                .context("no credentials for the device")?
        };
        let connect = conn::connect_packet(&id, Some(user), Some(password));
        let session = conn::open(self.addr, source, Arc::clone(&self.config), connect).await?;
        let tcp = session.into_tcp();
        self.held
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned lock"))?
            .push(tcp);
        Ok(())
    }

    /// The DPS registration of `registration_id`: returns the assigned device id.
    async fn provision(
        &self,
        registration_id: &str,
        key: &str,
        source: std::net::IpAddr,
    ) -> Result<String> {
        let (user, password) =
            token::provisioning_credentials(&self.id_scope, registration_id, key, self.expiry)?;
        let connect = conn::connect_packet(registration_id, Some(user), Some(password));
        let mut session = conn::open(self.addr, source, Arc::clone(&self.config), connect)
            .await
            .context("provisioning connect")?;
        session.subscribe("$dps/registrations/res/#").await?;
        let body = serde_json::json!({ "registrationId": registration_id }).to_string();
        session
            .publish(
                "$dps/registrations/PUT/iotdps-register/?$rid=1",
                body.into_bytes(),
            )
            .await?;
        let deadline = Instant::now() + conn::STEP;
        let mut rid = 1u32;
        loop {
            let answer = session.next_publish().await?;
            let (status, body) = dps_answer(&answer.topic, &answer.payload)?;
            match status {
                200 => {
                    let device = body
                        .pointer("/registrationState/deviceId")
                        .and_then(Value::as_str)
                        .context("assigned without a deviceId")?
                        .to_owned();
                    session.disconnect().await?;
                    return Ok(device);
                }
                202 => {
                    let operation = body
                        .get("operationId")
                        .and_then(Value::as_str)
                        .context("202 without an operationId")?
                        .to_owned();
                    if Instant::now() > deadline {
                        bail!("still assigning after {:?}", conn::STEP);
                    }
                    // The first poll goes out at once; later ones after a short pause
                    // (the hub's retry-after of 1 s is not honoured: this measures the
                    // server, not a device SDK's patience).
                    if rid > 1 {
                        tokio::time::sleep(POLL_PAUSE).await;
                    }
                    rid += 1;
                    let topic = format!(
                        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={operation}"
                    );
                    session.publish(&topic, Vec::new()).await?;
                }
                other => bail!("DPS answered {other}: {body}"),
            }
        }
    }
}

/// The status and JSON body of a DPS answer on `$dps/registrations/res/{status}/?…`.
fn dps_answer(topic: &str, payload: &[u8]) -> Result<(u16, Value)> {
    let status = topic
        .strip_prefix("$dps/registrations/res/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("unexpected answer topic {topic:?}"))?;
    let body = serde_json::from_slice(payload).unwrap_or(Value::Null);
    Ok((status, body))
}

/// Medians of one workload for one broker.
fn medians(runs: &[Run], workload: &str, kind: Kind) -> Option<(Measured, usize)> {
    let ok: Vec<Measured> = runs
        .iter()
        .filter(|r| r.workload == workload && r.kind == kind)
        .filter_map(|r| r.result.as_ref().ok().copied())
        .collect();
    let pick = |f: fn(&Measured) -> f64| median(&ok.iter().map(f).collect::<Vec<_>>());
    Some((
        Measured {
            count: ok.first()?.count,
            seconds: pick(|m| m.seconds)?,
            cpu_seconds: pick(|m| m.cpu_seconds)?,
            rss_mib: pick(|m| m.rss_mib)?,
        },
        ok.len(),
    ))
}

/// The Markdown report: configuration, medians with ratios, every run.
fn render(machine: &Machine, command: &str, args: &TlsArgs, setup: &Setup, runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# bosun-bench tls: latest run\n");
    let _ = writeln!(out, "Command: `{command}`\n");
    let _ = writeln!(
        out,
        "Machine: {} logical CPUs, {}, Linux {}; {}; {}; {}.\n",
        machine.nproc, machine.cpu, machine.kernel, machine.bosun, machine.mosquitto, machine.date
    );
    let _ = writeln!(
        out,
        "Load generator: this process, rustls 0.23 (ring), TLS 1.3, no session resumption, \
         {} connections under way at once, source addresses 127.0.0.2–201. Both brokers \
         present the same ECDSA P-256 server certificate. Medians of {} runs, a fresh \
         broker process per run.\n",
        args.concurrency,
        args.repeat.max(1)
    );
    let _ = writeln!(out, "## Medians\n");
    let _ = writeln!(
        out,
        "| workload | metric | bosun | Mosquitto | bosun/Mosquitto |\n|---|---|---:|---:|---:|"
    );
    for (workload, title) in [
        ("handshakes", "mutual-TLS handshake + CONNECT"),
        ("storm", "connect storm (bosun: + DPS provisioning)"),
        ("direct", "connect storm, devices pre-registered"),
    ] {
        let (Some((b, _)), Some((m, _))) = (
            medians(runs, workload, Kind::Bosun),
            medians(runs, workload, Kind::Mosquitto),
        ) else {
            continue;
        };
        let rows: [(&str, f64, f64); 4] = if workload == "handshakes" {
            [
                (
                    "handshakes/s",
                    b.count as f64 / b.seconds,
                    m.count as f64 / m.seconds,
                ),
                ("seconds", b.seconds, m.seconds),
                (
                    "broker CPU ms per handshake",
                    b.cpu_ms_each(),
                    m.cpu_ms_each(),
                ),
                ("broker RSS MiB after", b.rss_mib, m.rss_mib),
            ]
        } else {
            [
                ("total seconds", b.seconds, m.seconds),
                (
                    "devices/s",
                    b.count as f64 / b.seconds,
                    m.count as f64 / m.seconds,
                ),
                ("broker CPU ms per device", b.cpu_ms_each(), m.cpu_ms_each()),
                ("broker RSS MiB, all connected", b.rss_mib, m.rss_mib),
            ]
        };
        for (metric, bv, mv) in rows {
            let _ = writeln!(
                out,
                "| {title} ({} clients) | {metric} | {} | {} | {:.2} |",
                b.count,
                num(bv),
                num(mv),
                bv / mv
            );
        }
    }
    let _ = writeln!(out, "\n## Every run\n");
    let _ = writeln!(
        out,
        "| workload | broker | connections | seconds | per second | broker CPU s | CPU ms each | RSS MiB |\n|---|---|---:|---:|---:|---:|---:|---:|"
    );
    for run in runs {
        match &run.result {
            Ok(m) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.2} | {} | {:.2} | {:.3} | {:.0} |",
                    run.workload,
                    run.kind,
                    m.count,
                    m.seconds,
                    num(m.rate()),
                    m.cpu_seconds,
                    m.cpu_ms_each(),
                    m.rss_mib
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | FAILED: {} | | | | | |",
                    run.workload,
                    run.kind,
                    e.replace('|', "/")
                );
            }
        }
    }
    let _ = writeln!(out, "\n## Configuration compared\n");
    let _ = writeln!(
        out,
        "bosun: `bosun serve --mqtt 127.0.0.1:0 --mqtts 127.0.0.1:0 --http 127.0.0.1:0 \
         --data-dir DIR` with `BOSUN_TLS__CERT_FILE`/`BOSUN_TLS__KEY_FILE` = the bench server \
         certificate, every other setting default (no `--dev`: authentication as in \
         production). Handshakes: `DIR/ca/` made by `broker::device_ca::init` (`bosun ca \
         init`), client certificates by `broker::device_ca::issue_device` (`bosun ca \
         issue-device`), {} devices created with `authKind` `x509` through the REST API \
         before the clock starts. Storm: enrollment group `{GROUP}` created through the \
         REST API; devices register with id scope `{}` and connect to host `{}`. Direct: the \
         same devices created beforehand with `authKind` `sas` and their derived keys \
         through the REST API (untimed), then connected like Mosquitto's.\n",
        args.clients, setup.id_scope, setup.host
    );
    let _ = writeln!(
        out,
        "Mosquitto, handshakes:\n\n```text\n{}```\n",
        brokers::mosquitto_conf(
            0,
            &setup.pki,
            MosquittoAuth::ClientCert,
            &setup.password_file,
            args.mosquitto_nodelay,
        )
        .replace("listener 0 ", "listener PORT ")
    );
    let _ = writeln!(out, "Mosquitto, storm and direct (password file of the {} devices' user names and SAS tokens, hashed by `mosquitto_passwd -U`):\n\n```text\n{}```", args.devices, brokers::mosquitto_conf(
        0,
        &setup.pki,
        MosquittoAuth::PasswordFile,
        &setup.password_file,
        args.mosquitto_nodelay
    ).replace("listener 0 ", "listener PORT "));
    out
}
