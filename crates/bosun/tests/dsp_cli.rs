//! `bosun dsp score` as users run it: real CWRU records in, the summary lines out, and
//! clear errors (exit 1, or 2 for usage) for bad input.
//!
//! The CWRU data live beside the repository (`../shared/data/cwru`); the tests that need
//! them print a note and pass when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/cwru");

fn bosun(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(args)
        .output()
        .expect("bosun runs")
}

fn data(file: &str) -> Option<PathBuf> {
    let path = Path::new(DATA_DIR).join(file);
    if path.is_file() {
        Some(path)
    } else {
        println!("note: {} not found; skipping", path.display());
        None
    }
}

/// Runs `dsp score` of `input` against the normal record and returns stdout's lines.
fn score(input: &Path, rpm: &str) -> Vec<String> {
    let Some(normal) = data("normal_0hp.f32") else {
        return Vec::new();
    };
    let out = bosun(&[
        "dsp",
        "score",
        "--baseline",
        normal.to_str().expect("utf-8"),
        "--input",
        input.to_str().expect("utf-8"),
        "--sample-rate",
        "12000",
        "--rpm",
        rpm,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `anomalous_windows=K/N` → (K, N).
fn anomalous(line: &str) -> (usize, usize) {
    let counts = line
        .strip_prefix("anomalous_windows=")
        .expect("summary line");
    let (k, n) = counts.split_once('/').expect("K/N");
    (k.parse().expect("K"), n.parse().expect("N"))
}

#[test]
fn scores_and_diagnoses_cwru_records() {
    for (file, rpm, want) in [
        ("ir007_0hp.f32", "1797", "diagnosis=inner_race"),
        ("or007_6_2hp.f32", "1750", "diagnosis=outer_race"),
    ] {
        let Some(input) = data(file) else { return };
        let lines = score(&input, rpm);
        let [.., windows, diagnosis, evidence] = &lines[..] else {
            panic!("too few lines: {lines:?}");
        };
        let (k, n) = anomalous(windows);
        assert!(n > 200 && k * 100 >= n * 95, "{file}: {windows}");
        assert_eq!(diagnosis, want, "{file}");
        assert!(evidence.starts_with("evidence: "), "{evidence}");
        // One line per window before the summary, each with index, score and state.
        assert_eq!(lines.len(), n + 3);
        let first: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(first.first(), Some(&"0"), "{}", lines[0]);
        assert!(first.get(1).and_then(|s| s.parse::<f64>().ok()).is_some());
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path.to_str().expect("utf-8").to_owned()
    };
    let samples = |xs: &[f32]| xs.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let sine: Vec<f32> = (0..20_000).map(|i| (i as f32 * 0.1).sin()).collect();
    let good = write("good.f32", &samples(&sine));
    let torn = write("torn.f32", &[0, 0, 128, 63, 0]);
    let mut with_nan = sine.clone();
    with_nan[77] = f32::NAN;
    let nan = write("nan.f32", &samples(&with_nan));
    let short = write("short.f32", &samples(&sine[..1000]));
    let missing = dir.path().join("missing.f32");
    let missing = missing.to_str().expect("utf-8");
    let run = |baseline: &str, input: &str, extra: &[&str]| {
        let mut args = vec![
            "dsp",
            "score",
            "--baseline",
            baseline,
            "--input",
            input,
            "--sample-rate",
            "12000",
            "--rpm",
            "1797",
        ];
        args.extend_from_slice(extra);
        bosun(&args)
    };
    for (case, out, needle) in [
        ("missing", run(&good, missing, &[]), "missing.f32"),
        ("torn", run(&torn, &good, &[]), "not a whole number"),
        ("nan", run(&good, &nan, &[]), "sample 77"),
        ("short", run(&good, &short, &[]), "too short"),
        (
            "bearing",
            run(&good, &good, &["--bearing", "1,2,x"]),
            "--bearing",
        ),
        ("window", run(&good, &good, &["--window", "1000"]), "window"),
        ("hop", run(&good, &good, &["--hop", "0"]), "hop"),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains("error:") && stderr.contains(needle),
            "{case}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
    }
    // Usage errors are clap's: exit 2.
    let out = bosun(&["dsp", "score", "--baseline", &good]);
    assert_eq!(out.status.code(), Some(2));
}
