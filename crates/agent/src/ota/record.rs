//! The boot record (`boot.json`): which A/B slot is active, what each slot holds, an
//! unconfirmed boot in progress, a download in progress, and the last outcome. It is
//! the whole OTA state, so every step of an update is a pure transition on it (this
//! file) followed by one atomic write (`slots.rs`); a kill -9 at any point restarts
//! from the last written record.
//!
//! Pure: no files, no clock. The transitions here are the sans-IO state machine the
//! runtime drives (`task.rs`, `mod.rs`).

use ota::{ReportedFirmware, UpdateState, Version};
use serde::{Deserialize, Serialize};

/// Boot attempts an unconfirmed image gets: a boot that ends (crash, kill -9, power
/// loss) before health is confirmed counts, and past this many the previous slot
/// boots again, as U-Boot's `bootcount`/`bootlimit` does.
pub const MAX_BOOT_ATTEMPTS: u32 = 2;

/// One of the two firmware slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// `slot-a.bin`.
    A,
    /// `slot-b.bin`.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// The slot's image file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Slot::A => "slot-a.bin",
            Slot::B => "slot-b.bin",
        }
    }
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Its version.
    pub version: Version,
    /// Its id (SHA-256, hex); `None` for the factory image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A boot of a new image that has not confirmed its health yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// The slot to go back to.
    pub previous: Slot,
    /// Boots of the new image so far.
    pub attempts: u32,
}

/// A download in progress into the inactive slot (the slot file's length is how far
/// it got).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Download {
    /// The image being downloaded.
    pub id: String,
    /// Where it is being written (always the inactive slot).
    pub slot: Slot,
}

/// The whole OTA state of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// The slot that boots.
    pub active: Slot,
    /// What slot A holds.
    pub a: Option<Image>,
    /// What slot B holds.
    pub b: Option<Image>,
    /// An unconfirmed boot of `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    /// A download in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<Download>,
    /// The last thing to report (re-reported after a restart, so a report lost with
    /// the process still reaches the hub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<ReportedFirmware>,
    /// Boots so far (process starts and reboots), reported as `firmware.boots` so a
    /// rollout can compare how often updated devices restart (a crash loop).
    #[serde(default)]
    pub boots: u64,
}

/// What a boot does, decided by [`BootRecord::boot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootKind {
    /// A confirmed image: run normally.
    Confirmed,
    /// A new image on trial: confirm health before the deadline or roll back.
    Trial,
    /// The new image used up its attempts: the previous slot is active again and the
    /// update is reported failed.
    RolledBack,
}

/// What the device should do about a desired `firmware`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing (already done, or about another state); re-report `last` if any.
    Nothing,
    /// Download and install (resuming a download of the same image).
    Install,
    /// Go back to the previous slot (the running image is the one rolled back).
    RollBack,
    /// Not running it, and told to roll back: report `rolledBack` without a reboot.
    ReportRolledBack,
}

impl BootRecord {
    /// A device fresh from the factory: `version` in slot A, confirmed.
    pub fn factory(version: Version) -> BootRecord {
        BootRecord {
            active: Slot::A,
            a: Some(Image { version, id: None }),
            b: None,
            trial: None,
            download: None,
            last: None,
            boots: 0,
        }
    }

    /// What a slot holds.
    pub fn image(&self, slot: Slot) -> Option<&Image> {
        match slot {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
        }
    }

    fn set_image(&mut self, slot: Slot, image: Option<Image>) {
        match slot {
            Slot::A => self.a = image,
            Slot::B => self.b = image,
        }
    }

    /// The running image.
    pub fn running(&self) -> Option<&Image> {
        self.image(self.active)
    }

    /// The running version (`factory` when the active slot is somehow empty).
    pub fn version(&self, factory: &Version) -> Version {
        self.running()
            .map_or_else(|| factory.clone(), |i| i.version.clone())
    }

    /// A report about image `id` in `state`, at the running version.
    pub fn report(&self, factory: &Version, id: &str, state: UpdateState) -> ReportedFirmware {
        ReportedFirmware {
            version: self.version(factory),
            id: Some(id.to_owned()),
            state,
            percent: None,
            reason: None,
        }
    }

    /// A boot: counts an attempt of an image on trial, and rolls back once it has had
    /// [`MAX_BOOT_ATTEMPTS`].
    pub fn boot(&mut self, factory: &Version) -> BootKind {
        let Some(trial) = &mut self.trial else {
            return BootKind::Confirmed;
        };
        trial.attempts = trial.attempts.saturating_add(1);
        if trial.attempts <= MAX_BOOT_ATTEMPTS {
            return BootKind::Trial;
        }
        let reason = format!(
            "the new image did not confirm its health in {MAX_BOOT_ATTEMPTS} boots; back on the previous image"
        );
        self.fall_back(factory, UpdateState::Failed, Some(reason));
        BootKind::RolledBack
    }

    /// The image on trial confirmed its health: it stays.
    pub fn confirm(&mut self, factory: &Version) -> Option<ReportedFirmware> {
        self.trial.take()?;
        let id = self.running()?.id.clone()?;
        let report = self.report(factory, &id, UpdateState::Succeeded);
        self.last = Some(report.clone());
        Some(report)
    }

    /// The image on trial missed its health deadline: back to the previous slot,
    /// reported failed with `reason`. `false` when nothing was on trial.
    pub fn health_failed(&mut self, factory: &Version, reason: String) -> bool {
        if self.trial.is_none() {
            return false;
        }
        self.fall_back(factory, UpdateState::Failed, Some(reason));
        true
    }

    /// Makes the previous slot active again; `last` says why, about the image left.
    fn fall_back(&mut self, factory: &Version, state: UpdateState, reason: Option<String>) {
        let left = self.running().and_then(|i| i.id.clone());
        let previous = match self.trial.take() {
            Some(trial) => trial.previous,
            None => self.active.other(),
        };
        self.active = previous;
        if let Some(id) = left {
            let mut report = self.report(factory, &id, state);
            report.reason = reason;
            self.last = Some(report);
        }
    }

    /// What to do about desired image `id` (with `roll_back` set by the hub after a
    /// breach).
    pub fn plan(&self, id: &str, roll_back: bool) -> Plan {
        let running = self.running().and_then(|i| i.id.as_deref()) == Some(id);
        let last_state = self
            .last
            .as_ref()
            .filter(|l| l.id.as_deref() == Some(id))
            .map(|l| l.state);
        if roll_back {
            let previous_known = self.image(self.active.other()).is_some();
            return match last_state {
                Some(UpdateState::RolledBack | UpdateState::Failed) => Plan::Nothing,
                _ if running && previous_known => Plan::RollBack,
                _ if running => Plan::Nothing,
                _ => Plan::ReportRolledBack,
            };
        }
        match last_state {
            Some(
                UpdateState::Succeeded
                | UpdateState::Failed
                | UpdateState::RolledBack
                | UpdateState::Rebooting,
            ) => Plan::Nothing,
            _ if running => Plan::Nothing,
            // The inactive slot is the way back while an image is on trial: another
            // image waits until this one is confirmed or rolled back.
            _ if self.trial.is_some() => Plan::Nothing,
            _ => Plan::Install,
        }
    }

    /// Starts (or resumes) downloading `id`: the slot to write, and whether the bytes
    /// already in it belong to this image (resume) or must be discarded.
    pub fn start_download(&mut self, id: &str) -> (Slot, bool) {
        let slot = self.active.other();
        let resume = self
            .download
            .as_ref()
            .is_some_and(|d| d.id == id && d.slot == slot);
        self.download = Some(Download {
            id: id.to_owned(),
            slot,
        });
        if !resume {
            // The slot's old content is being overwritten.
            self.set_image(slot, None);
        }
        (slot, resume)
    }

    /// The download of `id` was refused (`reason`): forget it, report failed. The
    /// active slot is untouched.
    pub fn refuse(&mut self, factory: &Version, id: &str, reason: String) -> ReportedFirmware {
        self.download = None;
        let mut report = self.report(factory, id, UpdateState::Failed);
        report.reason = Some(reason);
        self.last = Some(report.clone());
        report
    }

    /// The verified image `id` (`version`) is in the inactive slot: make it active, on
    /// trial. Returns the `rebooting` report.
    pub fn switch(&mut self, factory: &Version, id: &str, version: Version) -> ReportedFirmware {
        let slot = self.active.other();
        self.download = None;
        self.set_image(
            slot,
            Some(Image {
                version,
                id: Some(id.to_owned()),
            }),
        );
        self.trial = Some(Trial {
            previous: self.active,
            attempts: 0,
        });
        // Reported before the reboot, at the version still running.
        let report = self.report(factory, id, UpdateState::Rebooting);
        self.active = slot;
        self.last = Some(report.clone());
        report
    }

    /// The hub asked to roll back image `id`, which runs: back to the previous slot,
    /// reported `rolledBack` after the reboot.
    pub fn roll_back(&mut self, factory: &Version) {
        self.fall_back(factory, UpdateState::RolledBack, None);
    }

    /// Told to roll back an image this device does not run: `rolledBack`, nothing else.
    pub fn rolled_back_without_install(&mut self, factory: &Version, id: &str) -> ReportedFirmware {
        if self.download.as_ref().is_some_and(|d| d.id == id) {
            self.download = None;
        }
        let report = self.report(factory, id, UpdateState::RolledBack);
        self.last = Some(report.clone());
        report
    }

    /// After a reboot: `last`, with the version now running (a `rebooting` report is
    /// not repeated; the health check decides what follows it).
    pub fn after_reboot(&mut self, factory: &Version) -> Option<ReportedFirmware> {
        let version = self.version(factory);
        let last = self.last.as_mut()?;
        last.version = version;
        (last.state != UpdateState::Rebooting).then(|| last.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    fn installed() -> BootRecord {
        let mut r = BootRecord::factory(v("1.0.0"));
        assert_eq!(r.plan("img2", false), Plan::Install);
        assert_eq!(r.start_download("img2"), (Slot::B, false));
        assert_eq!(r.start_download("img2"), (Slot::B, true), "resume");
        let report = r.switch(&v("1.0.0"), "img2", v("2.0.0"));
        assert_eq!(
            (report.state, report.version),
            (UpdateState::Rebooting, v("1.0.0"))
        );
        r
    }

    #[test]
    fn install_confirm_and_idempotence() {
        let f = v("1.0.0");
        let mut r = installed();
        assert_eq!(r.boot(&f), BootKind::Trial);
        assert_eq!(r.version(&f), v("2.0.0"));
        assert_eq!(r.after_reboot(&f), None, "rebooting is not repeated");
        assert_eq!(r.plan("img2", false), Plan::Nothing);
        assert_eq!(r.plan("img3", false), Plan::Nothing, "waits for the trial");
        let done = r.confirm(&f).expect("confirmed");
        assert_eq!(
            (done.state, done.version),
            (UpdateState::Succeeded, v("2.0.0"))
        );
        assert_eq!(r.boot(&f), BootKind::Confirmed);
        assert_eq!(r.plan("img2", false), Plan::Nothing);
        assert_eq!(r.plan("img3", false), Plan::Install);
        // The hub rolls it back: to slot A.
        assert_eq!(r.plan("img2", true), Plan::RollBack);
        r.roll_back(&f);
        assert_eq!((r.active, r.version(&f)), (Slot::A, v("1.0.0")));
        let last = r.after_reboot(&f).expect("last");
        assert_eq!(last.state, UpdateState::RolledBack);
        assert_eq!(r.plan("img2", true), Plan::Nothing);
    }

    #[test]
    fn unconfirmed_boots_roll_back() {
        let f = v("1.0.0");
        let mut r = installed();
        for _ in 0..MAX_BOOT_ATTEMPTS {
            assert_eq!(r.boot(&f), BootKind::Trial);
        }
        assert_eq!(r.boot(&f), BootKind::RolledBack);
        assert_eq!(r.active, Slot::A);
        let last = r.last.clone().expect("last");
        assert_eq!(last.state, UpdateState::Failed);
        assert!(last.reason.unwrap_or_default().contains("did not confirm"));
        assert_eq!(r.plan("img2", false), Plan::Nothing, "failed is final");
        assert_eq!(r.plan("img2", true), Plan::Nothing, "failed stays failed");
    }

    #[test]
    fn health_deadline_rolls_back() {
        let f = v("1.0.0");
        let mut r = installed();
        assert_eq!(r.boot(&f), BootKind::Trial);
        assert!(r.health_failed(&f, "no hub in 60 s".into()));
        assert!(!r.health_failed(&f, "again".into()));
        assert_eq!(r.active, Slot::A);
        assert_eq!(
            r.after_reboot(&f).and_then(|l| l.reason).as_deref(),
            Some("no hub in 60 s")
        );
    }

    #[test]
    fn refusal_leaves_the_active_slot() {
        let f = v("1.0.0");
        let mut r = BootRecord::factory(f.clone());
        r.start_download("bad");
        let report = r.refuse(&f, "bad", "tampered".into());
        assert_eq!(report.state, UpdateState::Failed);
        assert_eq!((r.active, r.download.clone()), (Slot::A, None));
        assert_eq!(r.plan("bad", false), Plan::Nothing);
        assert_eq!(r.plan("other", true), Plan::ReportRolledBack);
        let rb = r.rolled_back_without_install(&f, "other");
        assert_eq!(rb.state, UpdateState::RolledBack);
    }

    /// One step of an arbitrary update history.
    #[derive(Debug, Clone)]
    enum Op {
        Offer(u8, bool),
        Download(u8),
        Refuse(u8),
        Switch(u8),
        Boot,
        Confirm,
        HealthFailed,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..3, any::<bool>()).prop_map(|(i, r)| Op::Offer(i, r)),
            (0u8..3).prop_map(Op::Download),
            (0u8..3).prop_map(Op::Refuse),
            (0u8..3).prop_map(Op::Switch),
            Just(Op::Boot),
            Just(Op::Confirm),
            Just(Op::HealthFailed),
        ]
    }

    /// Applies one step as the runtime would (a switch only after that image's
    /// download, a rollback only when planned).
    fn apply(r: &mut BootRecord, f: &Version, op: Op) {
        match op {
            Op::Offer(i, roll_back) => {
                let id = format!("img{i}");
                match r.plan(&id, roll_back) {
                    Plan::RollBack => r.roll_back(f),
                    Plan::ReportRolledBack => {
                        r.rolled_back_without_install(f, &id);
                    }
                    Plan::Install | Plan::Nothing => {}
                }
            }
            Op::Download(i) => {
                let id = format!("img{i}");
                if r.plan(&id, false) == Plan::Install {
                    r.start_download(&id);
                }
            }
            Op::Refuse(i) => {
                r.refuse(f, &format!("img{i}"), "no".into());
            }
            Op::Switch(i) => {
                let id = format!("img{i}");
                if r.trial.is_none() && r.download.as_ref().is_some_and(|d| d.id == id) {
                    r.switch(f, &id, v(&format!("2.0.{i}")));
                }
            }
            Op::Boot => {
                r.boot(f);
            }
            Op::Confirm => {
                r.confirm(f);
            }
            Op::HealthFailed => {
                r.health_failed(f, "late".into());
            }
        }
    }

    proptest::proptest! {
        /// Whatever happens in whatever order, the active slot always holds an image,
        /// a trial's previous slot holds one too, and the record survives JSON.
        #[test]
        fn invariants_hold_for_any_history(ops in proptest::collection::vec(op(), 0..40)) {
            let f = v("1.0.0");
            let mut r = BootRecord::factory(f.clone());
            for op in ops {
                apply(&mut r, &f, op);
                proptest::prop_assert!(r.running().is_some(), "{:?}", r);
                if let Some(trial) = &r.trial {
                    proptest::prop_assert!(r.image(trial.previous).is_some(), "{:?}", r);
                    proptest::prop_assert!(trial.previous != r.active);
                }
                let text = serde_json::to_string(&r).expect("json");
                let back: BootRecord = serde_json::from_str(&text).expect("back");
                proptest::prop_assert_eq!(&back, &r);
            }
        }
    }

    #[test]
    fn record_round_trips_as_json() {
        let r = installed();
        let text = serde_json::to_string(&r).expect("json");
        let back: BootRecord = serde_json::from_str(&text).expect("back");
        assert_eq!(back, r);
    }
}
