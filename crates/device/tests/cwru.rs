//! The pipeline on real bearing data: the CWRU drive-end records in `shared/data/cwru`.
//!
//! The data live next to the repository (`../shared` from its root), not in it, so these
//! tests print a note and pass when the directory is missing (a clone without `shared/`).
//! CWRU records are single-axis (one drive-end accelerometer): each is fed to a
//! one-axis pipeline, window after window (4096 samples, 0.34 s). Shaft speeds come from
//! the manifest's `rpm` column. Run with `--nocapture` to see the table of features.
//!
//! Data: Case Western Reserve University Bearing Data Center,
//! <https://engineering.case.edu/bearingdatacenter>.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use device::{AxisFeatures, BearingGeometry, Config, Pipeline};

mod support {
    pub(crate) mod cwru;
}
use support::cwru;

const N: usize = 4096;

/// One manifest row and the features of each of its windows.
struct Record {
    file: String,
    label: String,
    rpm: f32,
    windows: Vec<AxisFeatures>,
}

impl Record {
    /// Mean over windows of one feature.
    fn mean(&self, feature: impl Fn(&AxisFeatures) -> f32) -> f32 {
        self.windows.iter().map(&feature).sum::<f32>() / self.windows.len() as f32
    }

    fn min(&self, feature: impl Fn(&AxisFeatures) -> f32) -> f32 {
        self.windows
            .iter()
            .map(feature)
            .fold(f32::INFINITY, f32::min)
    }

    fn max(&self, feature: impl Fn(&AxisFeatures) -> f32) -> f32 {
        self.windows.iter().map(feature).fold(0.0, f32::max)
    }
}

fn env_bpfi(a: &AxisFeatures) -> f32 {
    a.envelope.bpfi[0]
}
fn env_bpfo(a: &AxisFeatures) -> f32 {
    a.envelope.bpfo[0]
}
fn spec_bpfi(a: &AxisFeatures) -> f32 {
    a.spectrum.bpfi[0]
}
fn spec_bpfo(a: &AxisFeatures) -> f32 {
    a.spectrum.bpfo[0]
}

/// Every record, analysed once per test binary; `None` without the data.
fn records() -> Option<&'static [Record]> {
    static RECORDS: OnceLock<Option<Vec<Record>>> = OnceLock::new();
    RECORDS
        .get_or_init(|| {
            let (dir, entries) = cwru::entries()?;
            let records = load(&dir, entries);
            print_table(&records);
            Some(records)
        })
        .as_deref()
}

fn load(dir: &Path, entries: Vec<cwru::Entry>) -> Vec<Record> {
    entries
        .into_iter()
        .map(|e| {
            let windows = analyse(&dir.join(&e.file), e.sample_rate_hz, e.rpm / 60.0);
            Record {
                file: e.file,
                label: e.label,
                rpm: e.rpm,
                windows,
            }
        })
        .collect()
}

fn analyse(path: &PathBuf, rate: f32, shaft_hz: f32) -> Vec<AxisFeatures> {
    let samples = device::raw::read_f32_le(path).expect("record is readable");
    let config = Config::new(rate, BearingGeometry::SKF_6205);
    let mut pipeline = Box::new(Pipeline::<N, 1>::new(config).expect("valid config"));
    samples
        .chunks_exact(N)
        .map(|chunk| {
            pipeline.push_interleaved(chunk);
            let f = pipeline.compute(shaft_hz).expect("CWRU samples are finite");
            f.axes[0].expect("axis 0 is present")
        })
        .collect()
}

fn print_table(records: &[Record]) {
    println!(
        "{:<16} {:<12} {:>5} {:>3} {:>7} {:>6} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "file",
        "label",
        "rpm",
        "win",
        "rms_g",
        "kurt",
        "res_g2",
        "spec_bpfi",
        "spec_bpfo",
        "env_bpfi",
        "env_bpfo"
    );
    for r in records {
        println!(
            "{:<16} {:<12} {:>5} {:>3} {:>7.4} {:>6.2} {:>9.3e} {:>10.3e} {:>10.3e} {:>10.3e} {:>10.3e}",
            r.file,
            r.label,
            r.rpm,
            r.windows.len(),
            r.mean(|a| a.rms),
            r.mean(|a| a.kurtosis),
            r.mean(|a| a.resonance),
            r.mean(spec_bpfi),
            r.mean(spec_bpfo),
            r.mean(env_bpfi),
            r.mean(env_bpfo),
        );
    }
}

fn with_label<'a>(records: &'a [Record], label: &'a str) -> impl Iterator<Item = &'a Record> {
    records.iter().filter(move |r| r.label == label)
}

fn normal(records: &[Record]) -> &Record {
    with_label(records, "normal")
        .next()
        .expect("manifest has a normal record")
}

#[test]
fn bpfi_energy_is_higher_on_inner_race_faults_than_on_normal() {
    let Some(records) = records() else { return };
    let healthy = normal(records);
    let mut count = 0;
    for r in with_label(records, "inner_race") {
        let env = r.mean(env_bpfi) / healthy.mean(env_bpfi);
        let spec = r.mean(spec_bpfi) / healthy.mean(spec_bpfi);
        let worst = r.min(env_bpfi) / healthy.max(env_bpfi);
        println!("{}: BPFI vs normal: envelope ×{env:.0} (worst window vs best normal ×{worst:.0}), spectrum ×{spec:.2}", r.file);
        assert!(env > 100.0, "{}: envelope BPFI only ×{env}", r.file);
        // Every single window of the fault is above every window of the healthy bearing.
        assert!(
            worst > 10.0,
            "{}: a window is close to normal (×{worst})",
            r.file
        );
        // The plain spectrum barely separates them: a machine line sits next to BPFI.
        assert!(spec > 1.0, "{}: spectrum BPFI ×{spec}", r.file);
        count += 1;
    }
    assert_eq!(count, 4, "four inner-race records");
}

#[test]
fn bpfo_energy_is_higher_on_outer_race_faults_than_on_normal() {
    let Some(records) = records() else { return };
    let healthy = normal(records);
    let mut count = 0;
    for r in with_label(records, "outer_race_6") {
        let env = r.mean(env_bpfo) / healthy.mean(env_bpfo);
        let spec = r.mean(spec_bpfo) / healthy.mean(spec_bpfo);
        let worst = r.min(env_bpfo) / healthy.max(env_bpfo);
        println!("{}: BPFO vs normal: envelope ×{env:.0} (worst window vs best normal ×{worst:.0}), spectrum ×{spec:.1}", r.file);
        assert!(env > 100.0, "{}: envelope BPFO only ×{env}", r.file);
        assert!(
            worst > 10.0,
            "{}: a window is close to normal (×{worst})",
            r.file
        );
        assert!(spec > 10.0, "{}: spectrum BPFO ×{spec}", r.file);
        count += 1;
    }
    assert_eq!(count, 4, "four outer-race records");
}

/// Level-independent diagnosis: within one record, the envelope line of the damaged part
/// beats the other race's, so the features say *which* race, not only "louder".
#[test]
fn envelope_names_the_damaged_race() {
    let Some(records) = records() else { return };
    for r in records
        .iter()
        .filter(|r| r.label == "inner_race" || r.label == "outer_race_6")
    {
        let (own, other) = match r.label.as_str() {
            "inner_race" => (r.mean(env_bpfi), r.mean(env_bpfo)),
            _ => (r.mean(env_bpfo), r.mean(env_bpfi)),
        };
        println!(
            "{}: own race / other race in the envelope: ×{:.1}",
            r.file,
            own / other
        );
        assert!(own > 3.0 * other, "{}: ×{}", r.file, own / other);
    }
}

/// Ball faults show weak envelope lines (as the data set's README warns) but raise the
/// resonance band and the RMS.
#[test]
fn ball_faults_raise_resonance_energy_and_rms() {
    let Some(records) = records() else { return };
    let healthy = normal(records);
    for r in with_label(records, "ball") {
        let res = r.mean(|a| a.resonance) / healthy.mean(|a| a.resonance);
        let rms = r.mean(|a| a.rms) / healthy.mean(|a| a.rms);
        println!(
            "{}: resonance band ×{res:.1}, RMS ×{rms:.2} vs normal",
            r.file
        );
        assert!(
            res > 10.0 && rms > 1.3,
            "{}: resonance ×{res}, rms ×{rms}",
            r.file
        );
    }
}
