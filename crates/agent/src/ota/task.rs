//! One update, carried out: checks, start delay, the resumable download into the
//! inactive slot through `ota::ImageVerifier`, the switch. A tokio task per update,
//! started and aborted by the [`super::Updater`]; every step that must survive a
//! kill -9 is a [`super::record`] transition written to `boot.json` before the next.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ota::{check_update, DesiredFirmware, ImageVerifier, PublicKey, ReportedFirmware, UpdateState};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::http::{self, Fetched, HttpError};
use super::record::BootRecord;
use super::slots::Slots;
use super::{Download, Event};

/// Longest start delay honoured, whatever the hub says.
const MAX_START_DELAY: Duration = Duration::from_secs(3600);
/// Download attempts in a row that bring no new byte before giving up (an attempt
/// that makes progress resets the count, so a flaky link still gets there).
const MAX_ATTEMPTS: u32 = 8;
/// Longest pause between attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// When to report download progress: at the first bytes, then every 10 % or after a
/// second with some progress, so a fast link does not flood the twin and a slow one
/// still shows movement.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    last: Option<(u8, Instant)>,
}

impl Throttle {
    /// Whether `percent` at `now` is worth a report (and remembers it if so).
    pub(super) fn due(&mut self, percent: u8, now: Instant) -> bool {
        let due = match self.last {
            None => true,
            Some((p, at)) => {
                percent >= p.saturating_add(10)
                    || (percent != p && now.duration_since(at) >= Duration::from_secs(1))
            }
        };
        if due {
            self.last = Some((percent, now));
        }
        due
    }
}

/// What the task needs from the agent.
pub(crate) struct Context {
    /// The slots on disk.
    pub(crate) slots: Slots,
    /// The shared record (also changed by the agent loop: confirm, health).
    pub(crate) record: Arc<Mutex<BootRecord>>,
    /// The factory version (for an empty active slot).
    pub(crate) factory: ota::Version,
    /// This device's hardware id.
    pub(crate) hardware: String,
    /// The pinned publisher keys.
    pub(crate) trusted: Vec<PublicKey>,
    /// Where and how to download.
    pub(crate) download: Download,
    /// Reports and the reboot request go here.
    pub(crate) events: mpsc::Sender<Event>,
}

impl Context {
    /// Applies `change` to the record and writes it; a failed write is logged (the
    /// next write retries it).
    fn persist<T>(&self, change: impl FnOnce(&mut BootRecord) -> T) -> T {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let out = change(&mut record);
        if let Err(e) = self.slots.save(&record) {
            tracing::error!(error = %e, "cannot write the boot record");
        }
        out
    }

    async fn send(&self, report: ReportedFirmware) {
        let _ = self.events.send(Event::Report(report)).await;
    }

    async fn report(&self, id: &str, state: UpdateState, percent: Option<u8>) {
        let mut report = {
            let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
            record.report(&self.factory, id, state)
        };
        report.percent = percent;
        self.send(report).await;
    }

    async fn fail(&self, id: &str, reason: String) {
        tracing::warn!(image = id, reason, "update refused");
        let report = self.persist(|r| r.refuse(&self.factory, id, reason));
        self.send(report).await;
    }
}

/// Runs one update of `desired` to its end (a reboot request or `failed`).
pub(crate) async fn install(ctx: Context, desired: DesiredFirmware) {
    let id = desired.id.clone();
    if let Err(reason) = check(&ctx, &desired) {
        return ctx.fail(&id, reason).await;
    }
    let delay = Duration::from_millis(desired.start_delay_ms).min(MAX_START_DELAY);
    tokio::time::sleep(delay).await;
    let (slot, resume) = ctx.persist(|r| r.start_download(&id));
    let (file, len) = match ctx.slots.open_for_write(slot, resume) {
        Ok(opened) => opened,
        Err(e) => {
            return ctx
                .fail(&id, format!("cannot write the inactive slot: {e}"))
                .await
        }
    };
    let mut writer = SlotWriter::new(file, desired.manifest.clone());
    if let Err(reason) = writer.refeed(len) {
        return ctx.fail(&id, reason).await;
    }
    if let Err(reason) = download(&ctx, &desired, &mut writer).await {
        return ctx.fail(&id, reason).await;
    }
    ctx.report(&id, UpdateState::Verifying, None).await;
    let SlotWriter { file, verifier, .. } = writer;
    if let Err(e) = ctx.slots.sync_slot(&file) {
        return ctx
            .fail(&id, format!("cannot sync the inactive slot: {e}"))
            .await;
    }
    if let Err(refusal) = verifier.finish(&ctx.trusted) {
        return ctx.fail(&id, refusal.to_string()).await;
    }
    // The bytes are in the inactive slot and synced: "installing" is the switch.
    ctx.report(&id, UpdateState::Installing, None).await;
    let version = desired.manifest.version.clone();
    let report = ctx.persist(|r| r.switch(&ctx.factory, &id, version));
    tracing::info!(image = id, slot = ?slot, "image installed; rebooting into it");
    ctx.send(report).await;
    let _ = ctx.events.send(Event::Reboot).await;
}

/// Before any byte: the id names the manifest's image, the manifest is signed by the
/// pinned key, and this device may install it.
fn check(ctx: &Context, desired: &DesiredFirmware) -> Result<(), String> {
    if desired.id != desired.manifest.sha256.to_hex() {
        return Err("the desired image id is not the manifest's SHA-256".into());
    }
    desired
        .manifest
        .verify_signature(&ctx.trusted)
        .map_err(|r| r.to_string())?;
    let current = {
        let record = ctx.record.lock().unwrap_or_else(|p| p.into_inner());
        record.version(&ctx.factory)
    };
    check_update(&desired.manifest, &current, &ctx.hardware).map_err(|r| r.to_string())
}

/// The inactive slot's file and the verifier fed with exactly its bytes.
struct SlotWriter {
    file: File,
    verifier: ImageVerifier,
    manifest: ota::Manifest,
}

impl SlotWriter {
    fn new(file: File, manifest: ota::Manifest) -> SlotWriter {
        SlotWriter {
            file,
            verifier: ImageVerifier::new(manifest.clone()),
            manifest,
        }
    }

    /// Feeds the `len` bytes already in the slot (a resumed download) to the verifier;
    /// more than the image's size means the slot holds something else: start over.
    fn refeed(&mut self, len: u64) -> Result<(), String> {
        if len > self.manifest.size {
            return self.restart();
        }
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| format!("cannot read the inactive slot: {e}"))?;
        let mut block = vec![0u8; 64 * 1024];
        let mut reader = (&self.file).take(len);
        loop {
            let n = reader
                .read(&mut block)
                .map_err(|e| format!("cannot read the inactive slot: {e}"))?;
            if n == 0 {
                break;
            }
            self.verifier
                .update(block.get(..n).unwrap_or_default())
                .map_err(|r| r.to_string())?;
        }
        if len > 0 {
            tracing::info!(bytes = len, "resuming the download");
        }
        Ok(())
    }

    /// Empties the slot and the verifier (the server sent the whole image again).
    fn restart(&mut self) -> Result<(), String> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(|e| format!("cannot write the inactive slot: {e}"))?;
        self.verifier = ImageVerifier::new(self.manifest.clone());
        Ok(())
    }

    /// Appends a piece of the image: verified (length) and written.
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.verifier.update(bytes).map_err(|r| r.to_string())?;
        self.file
            .write_all(bytes)
            .map_err(|e| format!("cannot write the inactive slot: {e}"))
    }
}

/// Downloads the rest of the image, resuming after drops; `Ok` when the server has
/// nothing more (complete or not: the verifier judges).
async fn download(
    ctx: &Context,
    desired: &DesiredFirmware,
    writer: &mut SlotWriter,
) -> Result<(), String> {
    let mut throttle = Throttle::default();
    let mut attempt = 0u32;
    let mut progress_at = writer.verifier.received();
    loop {
        let offset = writer.verifier.received();
        if offset > progress_at {
            (attempt, progress_at) = (0, offset);
        }
        attempt += 1;
        if offset >= writer.manifest.size && offset > 0 {
            return Ok(());
        }
        ctx.report(
            &desired.id,
            UpdateState::Downloading,
            Some(writer.verifier.percent()),
        )
        .await;
        match fetch(ctx, desired, writer, offset, &mut throttle).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(refusal)) => return Err(refusal),
            Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                let delay =
                    (Duration::from_millis(250) * 2u32.pow(attempt.min(8))).min(MAX_RETRY_DELAY);
                tracing::warn!(error = %e, retry_in = ?delay, received = writer.verifier.received(), "download interrupted");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(format!("download failed: {e}")),
        }
    }
}

/// One request: connect, TLS, GET from `offset`, write what arrives.
async fn fetch(
    ctx: &Context,
    desired: &DesiredFirmware,
    writer: &mut SlotWriter,
    offset: u64,
    throttle: &mut Throttle,
) -> Result<Result<(), String>, HttpError> {
    let target = ctx.download.target(&desired.url)?;
    // The MQTT link's connect: from the agent's source address when it has one.
    let endpoint = crate::link::Endpoint {
        address: target.authority.clone(),
        tls: None,
        bind: ctx.download.bind,
    };
    let tcp = tokio::time::timeout(http::IO_TIMEOUT, crate::link::connect_tcp(&endpoint))
        .await
        .map_err(|_| HttpError::Io("connect timed out".into()))?
        .map_err(|e| HttpError::Io(e.to_string()))?;
    let name = crate::link::tls::server_name(&target.host)
        .map_err(|e| HttpError::Malformed(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(ctx.download.tls.clone());
    let mut tls = tokio::time::timeout(http::IO_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| HttpError::Io("TLS handshake timed out".into()))?
        .map_err(|e| HttpError::Io(format!("TLS: {e}")))?;
    // The server may ignore `Range` and send the whole image: start the slot over.
    let restart = std::sync::atomic::AtomicBool::new(false);
    let outcome = http::get(
        &mut tls,
        &target.authority,
        &target.path,
        offset,
        |start| {
            restart.store(start != offset, std::sync::atomic::Ordering::Relaxed);
            Ok::<(), String>(())
        },
        |bytes| {
            if restart.swap(false, std::sync::atomic::Ordering::Relaxed) {
                writer.restart()?;
            }
            writer.write(bytes)?;
            let percent = writer.verifier.percent();
            if throttle.due(percent, Instant::now()) {
                // Progress is best effort: a full queue drops it, never the download.
                let mut report = {
                    let record = ctx.record.lock().unwrap_or_else(|p| p.into_inner());
                    record.report(&ctx.factory, &desired.id, UpdateState::Downloading)
                };
                report.percent = Some(percent);
                let _ = ctx.events.try_send(Event::Report(report));
            }
            Ok(())
        },
    )
    .await?;
    match outcome {
        Ok(Fetched::Body { .. } | Fetched::NothingLeft) => Ok(Ok(())),
        Err(refusal) => Ok(Err(refusal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_reports_every_ten_percent_or_second() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert!(t.due(0, t0));
        assert!(!t.due(5, t0));
        assert!(t.due(10, t0));
        assert!(!t.due(11, t0 + Duration::from_millis(500)));
        assert!(t.due(12, t0 + Duration::from_secs(2)));
        assert!(
            !t.due(12, t0 + Duration::from_secs(9)),
            "no progress, no report"
        );
    }
}
