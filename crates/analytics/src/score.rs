//! The offline check: learn a healthy record, score another, diagnose it.
//!
//! This is what `bosun dsp score` runs and what the CWRU evaluation asserts on: every
//! window of the baseline record warms the model up (so the warm-up is the whole
//! baseline, whatever `ModelConfig::warmup` says), every window of the input is scored,
//! and the input's raw samples are diagnosed.

use crate::anomaly::{Assessment, Model, ModelConfig, State};
use crate::diagnosis::{diagnose, Diagnosis, DiagnosisConfig};
use crate::features::feature_vector;
use crate::record::Windowing;
use crate::Error;

/// Fewest baseline windows accepted: a variance needs at least two.
pub const MIN_BASELINE_WINDOWS: usize = 2;

/// The outcome of [`score_record`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRun {
    /// Windows learned from the baseline.
    pub baseline_windows: usize,
    /// One assessment per input window, in order.
    pub windows: Vec<Assessment>,
    /// Input windows whose state was anomalous.
    pub anomalous: usize,
    /// Diagnosis of the whole input record.
    pub diagnosis: Diagnosis,
}

/// Learns `baseline`, scores `input` window by window and diagnoses `input`.
pub fn score_record(
    baseline: &[f32],
    input: &[f32],
    windowing: &Windowing,
    model: &ModelConfig,
    diagnosis: &DiagnosisConfig,
) -> Result<ScoreRun, Error> {
    let learned = windowing.features(baseline)?;
    if learned.len() < MIN_BASELINE_WINDOWS {
        return Err(Error::TooShort {
            got: baseline.len(),
            need: windowing.window + windowing.hop,
        });
    }
    let tested = windowing.features(input)?;
    let verdict = diagnose(
        input,
        f64::from(windowing.sample_rate_hz),
        f64::from(windowing.shaft_hz),
        diagnosis,
    )?;
    let mut model = Model::new(ModelConfig {
        warmup: learned.len() as u64,
        ..model.clone()
    });
    for f in &learned {
        model.observe(&feature_vector(f));
    }
    let windows: Vec<Assessment> = tested
        .iter()
        .map(|f| model.observe(&feature_vector(f)))
        .collect();
    let anomalous = windows
        .iter()
        .filter(|a| a.state == State::Anomalous)
        .count();
    Ok(ScoreRun {
        baseline_windows: learned.len(),
        windows,
        anomalous,
        diagnosis: verdict,
    })
}
