//! Vibration sources: where samples come from.
//!
//! The agent reads a source in bursts: one feature window per interval, or a capture's
//! worth on command, so a source need not run between reads (a sensor driver can sleep).
//! [`Source`] is the seam for real sensors; [`cwru::CwruReplay`] replays the CWRU
//! recordings and [`synthetic::Motor`] models a motor with a growing bearing fault.
//! [`parse_source`] turns the CLI's `--source` text into one of the two.
//!
//! A frame is one sample per axis, always three slots wide; a source with fewer axes
//! leaves the rest at 0 and says so with [`Source::axes`].

pub mod cwru;
pub mod synthetic;

use std::time::Duration;

use crate::Error;

/// One sample per axis (x, y, z), in g.
pub type Frame = [f32; 3];

/// A vibration source: the live-input trait real sensors implement.
pub trait Source: Send {
    /// Sampling rate of the frames [`Source::fill`] produces, Hz.
    fn rate_hz(&self) -> f32;
    /// Axes with data (1–3); frames carry 0 in the others.
    fn axes(&self) -> usize;
    /// Current shaft speed, Hz (0 if unknown): the defect frequencies depend on it.
    fn shaft_hz(&self) -> f32;
    /// Called before each burst with the device clock (accelerated by `--speed`), so a
    /// model can place the burst in its own time. Sensors ignore it.
    fn start_burst(&mut self, _device_time: Duration) {}
    /// Fills `frames` with consecutive samples.
    fn fill(&mut self, frames: &mut [Frame]) -> Result<(), Error>;
}

/// Parses `--source`: `synthetic[:k=v,…]` (see [`synthetic::MotorSpec::parse`]) or
/// `cwru:FILE[,rpm=R]`. `seed` seeds the synthetic model's noise unless `seed=` is given
/// (the agent passes a hash of the device id).
pub fn parse_source(spec: &str, seed: u64) -> Result<Box<dyn Source>, Error> {
    let (kind, options) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "synthetic" => Ok(Box::new(synthetic::Motor::new(
            synthetic::MotorSpec::parse(options, seed)?,
        ))),
        "cwru" => Ok(Box::new(cwru::CwruReplay::open_spec(options)?)),
        other => Err(Error::Config(format!(
            "unknown source {other:?}: use synthetic[:…] or cwru:FILE"
        ))),
    }
}

/// Splits `k=v,k=v` options; an entry without `=` is returned with an empty value.
pub(crate) fn options(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(',')
        .filter(|o| !o.is_empty())
        .map(|o| o.split_once('=').unwrap_or((o, "")))
}

/// Parses a duration option: `120s`, `5m`, `2h`, `250ms` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .filter(|s| s.is_finite() && (0.0..=1e9).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Error::Config(format!("bad duration {text:?}: use e.g. 60s, 5m, 250ms")))
}

/// Parses a finite number option.
pub(crate) fn parse_number(name: &str, text: &str) -> Result<f32, Error> {
    text.trim()
        .parse::<f32>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| Error::Config(format!("{name}: {text:?} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120s").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5m").ok(), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("7").ok(), Some(Duration::from_secs(7)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sources_by_name() {
        assert!(parse_source("synthetic", 1).is_ok());
        assert!(parse_source("synthetic:fault=bpfo,onset=120s", 1).is_ok());
        assert!(parse_source("cwru:/nonexistent.f32", 1).is_err());
        assert!(parse_source("microphone", 1).is_err());
    }
}
