//! Over-the-air updates on the device: the desired twin property `firmware` in,
//! progress in the reported `firmware` out, A/B slots (simulated as files) in between.
//!
//! - `record`: the boot record and every transition of an update (pure; the state
//!   machine).
//! - `slots`: the slot files and `boot.json`, written atomically.
//! - `http`: a minimal HTTP/1.1 `GET` with `Range`, over the hub's TLS.
//! - `task`: one update carried out (checks, delay, resumable verified download,
//!   switch), as a tokio task.
//! - this file: [`OtaOptions`] and the [`Updater`] the agent loop drives (desired
//!   property, health confirmation and its deadline, reboots).
//!
//! A "reboot" restarts the agent's session (new MQTT connection, new version reported);
//! the boot record decides at each boot whether the image is on trial. An image on
//! trial confirms its health when the twin GET of its first connection is answered; if
//! that does not happen within [`OtaOptions::health_deadline`] (or within
//! [`record::MAX_BOOT_ATTEMPTS`] boots, counting a kill -9 as one) the previous slot
//! boots again and the update is reported `failed`. docs/ota.md has the whole design.

pub mod http;
pub mod record;
pub mod slots;
mod task;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ota::{DesiredFirmware, PublicKey, ReportedFirmware, Version};
use rustls::ClientConfig;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::http::HttpError;
use self::record::{BootKind, BootRecord, Plan};
use self::slots::Slots;
use crate::Error;

/// Default time a new image has to confirm its health.
pub const DEFAULT_HEALTH_DEADLINE: Duration = Duration::from_secs(60);
/// Default HTTPS port of the hub's API (where images are downloaded).
pub const DEFAULT_HTTPS_PORT: u16 = 8443;
/// Updater events queued for the agent loop (progress beyond it is dropped).
const EVENT_QUEUE: usize = 64;

/// How the agent installs updates. `Options::ota = None` turns updates off (the agent
/// then only reports its version).
#[derive(Debug, Clone)]
pub struct OtaOptions {
    /// The publisher key(s) pinned at manufacture: only images they signed install.
    pub trusted: Vec<PublicKey>,
    /// Directory of `slot-a.bin`, `slot-b.bin` and `boot.json`.
    pub slot_dir: PathBuf,
    /// This device's hardware id (a manifest must list it).
    pub hardware: String,
    /// The hub's HTTPS API, `host:port`, for image URLs that are paths; `None`: the
    /// host of `--hub` on [`DEFAULT_HTTPS_PORT`].
    pub server: Option<String>,
    /// How long a new image has to confirm its health before it is rolled back.
    pub health_deadline: Duration,
    /// fsync slot files and `boot.json` (default); a simulator may turn it off, as it
    /// does `Options::buffer_sync`.
    pub sync: bool,
}

impl OtaOptions {
    /// Options trusting `key`, with slots in `slot_dir`, for hardware `hardware`.
    pub fn new(key: PublicKey, slot_dir: PathBuf, hardware: &str) -> OtaOptions {
        OtaOptions {
            trusted: vec![key],
            slot_dir,
            hardware: hardware.to_owned(),
            server: None,
            health_deadline: DEFAULT_HEALTH_DEADLINE,
            sync: true,
        }
    }

    /// Reads the pinned key from a PEM file (`--firmware-key`).
    pub fn read_key(path: &std::path::Path) -> Result<PublicKey, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        PublicKey::from_pem(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }
}

/// Where images come from and how to reach it.
#[derive(Clone)]
pub(crate) struct Download {
    /// `host:port` for URLs that are paths.
    server: String,
    /// The hub's TLS trust (the MQTT link's).
    tls: Arc<ClientConfig>,
    /// Local address to connect from (`Options::source_address`), so a simulator's
    /// downloads spread over 127.0.0.x as its MQTT connections do.
    bind: Option<std::net::IpAddr>,
}

/// A URL split for a request.
pub(crate) struct Target {
    /// `host:port` to connect to (and the `Host` header).
    authority: String,
    /// The host part, for the certificate check.
    host: String,
    /// Path and query.
    path: String,
}

impl Download {
    /// Splits `url`: a path on the hub's HTTPS API, or an absolute `https://` URL.
    fn target(&self, url: &str) -> Result<Target, HttpError> {
        let (authority, path) = match url.strip_prefix("https://") {
            Some(rest) => match rest.find('/') {
                Some(i) => (
                    rest.get(..i).unwrap_or_default(),
                    rest.get(i..).unwrap_or("/"),
                ),
                None => (rest, "/"),
            },
            None if url.starts_with('/') => (self.server.as_str(), url),
            None => {
                return Err(HttpError::Malformed(format!(
                    "image URL {:?} is neither a path nor https://",
                    url.chars().take(100).collect::<String>()
                )))
            }
        };
        let bad = |c: char| c.is_ascii_control() || c == ' ';
        if authority.is_empty() || authority.contains(bad) || path.contains(bad) {
            return Err(HttpError::Malformed(
                "image URL has forbidden characters".into(),
            ));
        }
        Ok(Target {
            authority: authority.to_owned(),
            host: host_of(authority).to_owned(),
            path: path.to_owned(),
        })
    }
}

/// The host part of `host:port` (IPv6 literals in brackets lose them).
pub(crate) fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// What the update task tells the agent loop.
#[derive(Debug)]
pub(crate) enum Event {
    /// Report this in the twin.
    Report(ReportedFirmware),
    /// Reboot into the new slot.
    Reboot,
}

/// What the agent loop must do after an updater step.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Nothing more.
    Continue,
    /// Report this (the latest state).
    Report(ReportedFirmware),
    /// Restart the session: the active slot changed.
    Reboot,
}

/// The agent's side of updates: owns the boot record, the running update task and
/// the health deadline of a new image.
pub(crate) struct Updater {
    options: OtaOptions,
    factory: Version,
    slots: Slots,
    record: Arc<Mutex<BootRecord>>,
    download: Download,
    /// The desired `firmware` as last seen (patches are merged into it).
    desired: Value,
    /// The running update task and the image it is about.
    task: Option<(String, JoinHandle<()>)>,
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    /// When the image on trial must have confirmed its health.
    health_due: Option<Instant>,
    /// The image on trial is a simulated crash: it never connects.
    crashed: bool,
    /// The latest report, (re)sent at every connect.
    latest: Option<ReportedFirmware>,
}

impl Updater {
    /// Boots: reads (or creates) the boot record, counts a trial boot, and rolls back
    /// an image that used up its attempts. `firmware` is the factory version; downloads
    /// connect from `bind` when it is set.
    pub(crate) fn boot(
        options: OtaOptions,
        firmware: &str,
        tls: Option<Arc<ClientConfig>>,
        (hub, bind): (&str, Option<std::net::IpAddr>),
    ) -> Result<Updater, Error> {
        let factory = Version::parse(firmware)
            .map_err(|e| Error::Config(format!("--firmware {firmware:?}: {e}")))?;
        let tls = tls.ok_or_else(|| {
            Error::Config("firmware updates download over HTTPS: give --ca".into())
        })?;
        if options.trusted.is_empty() {
            return Err(Error::Config("firmware updates need a pinned key".into()));
        }
        let mut slots = Slots::open(&options.slot_dir).map_err(|e| Error::Config(e.to_string()))?;
        slots.set_sync(options.sync);
        let record = match slots.load() {
            Ok(Some(record)) => record,
            Ok(None) => BootRecord::factory(factory.clone()),
            Err(e) => {
                // A record that does not parse cannot say which slot is good; the
                // factory slot is the safe choice.
                tracing::error!(error = %e, "boot record unreadable; booting the factory image");
                BootRecord::factory(factory.clone())
            }
        };
        let server = options
            .server
            .clone()
            .unwrap_or_else(|| format!("{}:{DEFAULT_HTTPS_PORT}", host_of(hub)));
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let mut updater = Updater {
            options,
            factory,
            slots,
            record: Arc::new(Mutex::new(record)),
            download: Download { server, tls, bind },
            desired: Value::Null,
            task: None,
            events_tx,
            events_rx,
            health_due: None,
            crashed: false,
            latest: None,
        };
        updater.start_boot();
        Ok(updater)
    }

    /// One boot (the first, or after a reboot).
    fn start_boot(&mut self) {
        let (kind, active, latest) = self.persist(|r, factory| {
            r.boots = r.boots.saturating_add(1);
            let kind = r.boot(factory);
            (kind, r.active, r.after_reboot(factory))
        });
        self.latest = latest;
        self.crashed = false;
        self.health_due = None;
        match kind {
            BootKind::Confirmed => {}
            BootKind::RolledBack => {
                tracing::warn!(slot = ?active, "new image never confirmed its health; rolled back")
            }
            BootKind::Trial => {
                self.health_due = Some(Instant::now() + self.options.health_deadline);
                self.crashed = self.slots.crashes_on_boot(active);
                if self.crashed {
                    tracing::warn!(slot = ?active, "simulated firmware crash on boot: not connecting");
                }
            }
        }
    }

    /// After a reboot request: the next boot.
    pub(crate) fn reboot(&mut self) {
        self.stop_task();
        self.start_boot();
    }

    /// Stops the update task, if any, and drops what it queued: a report from a
    /// stopped update must not overwrite what follows it.
    fn stop_task(&mut self) {
        if let Some((_, task)) = self.task.take() {
            task.abort();
        }
        while self.events_rx.try_recv().is_ok() {}
    }

    fn persist<T>(&self, change: impl FnOnce(&mut BootRecord, &Version) -> T) -> T {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let out = change(&mut record, &self.factory);
        if let Err(e) = self.slots.save(&record) {
            tracing::error!(error = %e, "cannot write the boot record");
        }
        out
    }

    /// The running version.
    pub(crate) fn version(&self) -> String {
        let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        record.version(&self.factory).to_string()
    }

    /// Whether this boot "crashed" (a simulated bad image): the agent stays offline.
    pub(crate) fn crashed(&self) -> bool {
        self.crashed
    }

    /// The latest report (sent at every connect, in [`Updater::greeting`]).
    #[cfg(test)]
    pub(crate) fn latest(&self) -> Option<&ReportedFirmware> {
        self.latest.as_ref()
    }

    /// Boots so far, this one included.
    pub(crate) fn boots(&self) -> u64 {
        let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        record.boots
    }

    /// The reported `firmware` to send at every connect: the latest report again (a
    /// report lost with a connection or a process reaches the hub now) and the boot
    /// counter (the rollouts' reboot gate).
    pub(crate) fn greeting(&self) -> Value {
        let mut firmware = match &self.latest {
            Some(report) => report_json(report),
            None => json!({}),
        };
        firmware["boots"] = json!(self.boots());
        firmware
    }

    /// When the health deadline passes, if an image is on trial.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.health_due
    }

    /// The twin's desired `firmware`: the whole value (`full`, from a twin GET) or a
    /// patch to merge into the last one.
    pub(crate) fn on_desired(&mut self, value: &Value, full: bool) -> Step {
        if full {
            self.desired = value.clone();
        } else {
            merge(&mut self.desired, value);
        }
        self.evaluate()
    }

    /// Acts on the desired `firmware` as last seen.
    fn evaluate(&mut self) -> Step {
        if self.desired.is_null() {
            return Step::Continue;
        }
        let desired: DesiredFirmware = match serde_json::from_value(self.desired.clone()) {
            Ok(desired) => desired,
            Err(e) => {
                tracing::warn!(error = %e, "desired firmware does not parse; ignored");
                return Step::Continue;
            }
        };
        let plan = {
            let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
            record.plan(&desired.id, desired.roll_back)
        };
        match plan {
            Plan::Nothing => Step::Continue,
            Plan::Install => {
                if self
                    .task
                    .as_ref()
                    .is_some_and(|(id, t)| *id == desired.id && !t.is_finished())
                {
                    return Step::Continue;
                }
                self.start_task(desired);
                Step::Continue
            }
            Plan::RollBack => {
                tracing::warn!(image = desired.id, "the hub asked for a rollback");
                self.persist(|r, f| r.roll_back(f));
                Step::Reboot
            }
            Plan::ReportRolledBack => {
                self.stop_task();
                let report = self.persist(|r, f| r.rolled_back_without_install(f, &desired.id));
                self.latest = Some(report.clone());
                Step::Report(report)
            }
        }
    }

    fn start_task(&mut self, desired: DesiredFirmware) {
        self.stop_task();
        tracing::info!(image = desired.id, version = %desired.manifest.version, "update offered");
        let ctx = task::Context {
            slots: self.slots.clone(),
            record: self.record.clone(),
            factory: self.factory.clone(),
            hardware: self.options.hardware.clone(),
            trusted: self.options.trusted.clone(),
            download: self.download.clone(),
            events: self.events_tx.clone(),
        };
        let id = desired.id.clone();
        self.task = Some((id, tokio::spawn(task::install(ctx, desired))));
    }

    /// The twin answered on this boot's connection: an image on trial is healthy.
    /// Returns the `succeeded` report, then what an offer that waited for the trial to
    /// end leads to.
    pub(crate) fn on_healthy(&mut self) -> Vec<Step> {
        if self.health_due.take().is_none() {
            return Vec::new();
        }
        let Some(report) = self.persist(|r, f| r.confirm(f)) else {
            return Vec::new();
        };
        tracing::info!(version = %report.version, "new image confirmed healthy");
        self.latest = Some(report.clone());
        vec![Step::Report(report), self.evaluate()]
    }

    /// The health deadline passed (call when [`Updater::deadline`] is due): roll back.
    pub(crate) fn on_deadline(&mut self) -> Step {
        let Some(due) = self.health_due else {
            return Step::Continue;
        };
        if Instant::now() < due {
            return Step::Continue;
        }
        self.health_due = None;
        let reason = format!(
            "the new image did not confirm its health within {:?} (no hub connection and twin answer); rolled back",
            self.options.health_deadline
        );
        tracing::warn!(reason, "health check failed");
        if self.persist(|r, f| r.health_failed(f, reason)) {
            Step::Reboot
        } else {
            Step::Continue
        }
    }

    /// The next event from the update task (never, when there is none).
    pub(crate) async fn next_event(&mut self) -> Event {
        match self.events_rx.recv().await {
            Some(event) => event,
            None => std::future::pending().await,
        }
    }

    /// An event from the task: what the loop does with it.
    pub(crate) fn on_event(&mut self, event: Event) -> Step {
        match event {
            Event::Report(report) => {
                self.latest = Some(report.clone());
                Step::Report(report)
            }
            Event::Reboot => Step::Reboot,
        }
    }
}

/// The reported `firmware` document: every field present, `null` clearing a stale
/// `percent` or `reason` (reported properties are merged).
pub(crate) fn report_json(report: &ReportedFirmware) -> Value {
    json!({
        "version": report.version,
        "id": report.id,
        "state": report.state,
        "percent": report.percent,
        "reason": report.reason,
    })
}

/// JSON merge patch (RFC 7386) of `patch` into `target`.
fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(map) = target.as_object_mut() {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                merge(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
