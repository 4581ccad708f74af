//! `bosun dsp …`: offline vibration analytics on raw recordings.
//!
//! `dsp score` answers, for a recording: does it look like the healthy baseline, window
//! by window, and if not, which bearing part is the likely cause. It runs the device
//! SDK's feature extractor on every window (exactly what a device would send), the
//! hub's anomaly model (warmed up on the whole baseline) and the diagnosis on the raw
//! samples; see `crates/analytics` and docs/analytics.md. No server is involved.

use std::path::PathBuf;

use analytics::anomaly::{Assessment, ModelConfig};
use analytics::diagnosis::{BearingOrders, Diagnosis, DiagnosisConfig};
use analytics::record::{read_f32_file, Windowing};
use analytics::score::score_record;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};

/// `bosun dsp --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun dsp score --baseline normal.f32 --input test.f32 --sample-rate 12000 --rpm 1797
  bosun dsp score --baseline normal.f32 --input test.f32 --sample-rate 12000 --rpm 1750 \\
      --window 2048 --hop 512 --bearing 5.4152,3.5848,4.7135,0.39828

Files are headerless little-endian f32 samples, one channel (numpy: x.astype('<f4').tofile(p)).";

/// `bosun dsp score --help` epilogue.
const SCORE_EXAMPLES: &str = "\
Examples:
  bosun dsp score --baseline normal_0hp.f32 --input or007_6_0hp.f32 --sample-rate 12000 --rpm 1796
  bosun dsp score --baseline healthy.f32 --input now.f32 --sample-rate 25600 --rpm 1480 --window 4096

Output: one line per input window (index, score, state, top features), then
anomalous_windows=K/N, diagnosis=<inner_race|outer_race|ball|cage|none> and an evidence line.";

/// `bosun dsp …`.
#[derive(Debug, Args)]
pub(crate) struct DspArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: DspCommand,
}

/// The dsp verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum DspCommand {
    /// Score a recording against a healthy baseline and diagnose it.
    #[command(after_help = SCORE_EXAMPLES)]
    Score(ScoreArgs),
}

/// `dsp score`.
#[derive(Debug, Args)]
pub(crate) struct ScoreArgs {
    /// Healthy recording the model learns (every window is warm-up).
    #[arg(long, value_name = "FILE.f32")]
    pub(crate) baseline: PathBuf,
    /// Recording to score and diagnose.
    #[arg(long, value_name = "FILE.f32")]
    pub(crate) input: PathBuf,
    /// Sampling rate of both recordings, Hz.
    #[arg(long, value_name = "HZ")]
    pub(crate) sample_rate: f32,
    /// Shaft speed, revolutions per minute.
    #[arg(long, value_name = "RPM")]
    pub(crate) rpm: f32,
    /// Samples per window: a power of two from 64 to 8192.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub(crate) window: usize,
    /// Samples between window starts [default: window / 4].
    #[arg(long, value_name = "N")]
    pub(crate) hop: Option<usize>,
    /// Defect multipliers of shaft speed: BPFI,BPFO,BSF,FTF (BSF as CWRU counts it,
    /// twice the textbook ball spin) [default: the CWRU 6205].
    #[arg(long, value_name = "BPFI,BPFO,BSF,FTF")]
    pub(crate) bearing: Option<String>,
}

/// Runs `bosun dsp …`.
pub(crate) fn run(args: &DspArgs) -> Result<()> {
    match &args.command {
        DspCommand::Score(score) => run_score(score),
    }
}

/// `dsp score`.
fn run_score(args: &ScoreArgs) -> Result<()> {
    let orders = match &args.bearing {
        Some(text) => BearingOrders::parse(text)?,
        None => BearingOrders::CWRU_6205,
    };
    if !(args.rpm.is_finite() && args.rpm > 0.0) {
        anyhow::bail!("--rpm must be a positive number, got {}", args.rpm);
    }
    let windowing = Windowing {
        window: args.window,
        hop: args.hop.unwrap_or(args.window / 4),
        sample_rate_hz: args.sample_rate,
        shaft_hz: args.rpm / 60.0,
        bearing: orders.geometry(),
    };
    let baseline = read_f32_file(&args.baseline).context("reading --baseline")?;
    let input = read_f32_file(&args.input).context("reading --input")?;
    let diagnosis = DiagnosisConfig {
        orders,
        ..DiagnosisConfig::default()
    };
    let run = score_record(
        &baseline,
        &input,
        &windowing,
        &ModelConfig::default(),
        &diagnosis,
    )?;
    let mut out = String::new();
    for (index, a) in run.windows.iter().enumerate() {
        out.push_str(&window_line(index, a));
    }
    out.push_str(&format!(
        "anomalous_windows={}/{}\n",
        run.anomalous,
        run.windows.len()
    ));
    out.push_str(&format!("diagnosis={}\n", run.diagnosis.defect));
    out.push_str(&evidence_line(&run.diagnosis));
    super::emit(&out)
}

/// `index score state feature(z, ×ratio) …`.
fn window_line(index: usize, a: &Assessment) -> String {
    let top: Vec<String> = a
        .top
        .iter()
        .take(3)
        .map(|c| format!("{}(z={:+.1},x{:.3})", c.feature, c.z, c.ratio))
        .collect();
    format!(
        "{index:>5} {:>8.2} {:<10} {}\n",
        a.score,
        a.state.as_str(),
        top.join(" ")
    )
}

/// What supports the verdict, in one line.
fn evidence_line(d: &Diagnosis) -> String {
    let band = format!(
        "band {:.0}-{:.0} Hz (spectral kurtosis {:.1})",
        d.band_hz.0, d.band_hz.1, d.band_kurtosis
    );
    match d.best() {
        Some(e) => format!(
            "evidence: {} expected {:.1} Hz, found {:.1} Hz, {} harmonics over threshold, \
             strength {:.1}x background, score {:.2}{}; {band}\n",
            e.defect,
            e.expected_hz,
            e.found_hz,
            e.harmonics,
            e.strength,
            e.score,
            if d.defect == analytics::diagnosis::Defect::None {
                " (not enough for a verdict: a verdict needs both the least score and the \
                 fewest harmonics of the configuration)"
            } else {
                ""
            },
        ),
        None => format!("evidence: none; {band}\n"),
    }
}
