//! One feature record per interval: read a window of frames from the source, run the
//! device crate's analysis on each axis, number the record.
//!
//! The device crate's `Pipeline` fixes the window length at compile time, which suits
//! firmware; here the twin can change the window (`window`), so the frames live in
//! heap buffers sized at run time and each axis goes through
//! [`device::analyze_in_place`], the same code the pipeline runs. Memory: 3 × 4 ×
//! `window` bytes for the axes plus 12 × `window` for the frames (240 KiB at 4096).

use device::{analyze_in_place, BearingGeometry, Config, Features, MAX_AXES};

use crate::source::{Frame, Source};
use crate::Error;

/// Makes [`Features`] from a source.
#[derive(Debug, Clone)]
pub struct FeatureMaker {
    /// Samples per axis per window.
    window: usize,
    /// Frames read from the source.
    frames: Vec<Frame>,
    /// One axis at a time, analysed in place.
    axis: Vec<f32>,
    /// Sequence number of the next record.
    seq: u32,
}

impl FeatureMaker {
    /// A maker for `window`-sample windows (a supported power of two).
    pub fn new(window: usize) -> FeatureMaker {
        FeatureMaker {
            window,
            frames: Vec::new(),
            axis: Vec::new(),
            seq: 0,
        }
    }

    /// Changes the window length for the next record.
    pub fn set_window(&mut self, window: usize) {
        self.window = window;
    }

    /// Continues numbering at `seq` (the agent resumes where its buffer left off).
    pub fn set_seq(&mut self, seq: u32) {
        self.seq = seq;
    }

    /// Reads one window from `source` and analyses it. The sequence number advances
    /// even when the analysis fails, so the hub sees the gap.
    pub fn compute(&mut self, source: &mut dyn Source) -> Result<Features, Error> {
        let config = Config::new(source.rate_hz(), BearingGeometry::SKF_6205);
        config.validate(self.window)?;
        self.frames.resize(self.window, [0.0; 3]);
        source.fill(&mut self.frames)?;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let shaft_hz = source.shaft_hz();
        let mut features = Features {
            seq,
            sample_rate_hz: config.sample_rate_hz,
            window_len: u32::try_from(self.window).unwrap_or(u32::MAX),
            shaft_hz,
            axes: [None; MAX_AXES],
        };
        let axes = source.axes().clamp(1, MAX_AXES);
        for (index, slot) in features.axes.iter_mut().enumerate().take(axes) {
            self.axis.clear();
            self.axis.extend(
                self.frames
                    .iter()
                    .map(|f| f.get(index).copied().unwrap_or(0.0)),
            );
            *slot = Some(analyze_in_place(&mut self.axis, &config, shaft_hz)?);
        }
        Ok(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::cwru::CwruReplay;

    #[test]
    fn one_axis_source_gives_one_axis_and_counts() {
        let tone: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.05).sin()).collect();
        let mut source = CwruReplay::from_samples(tone, 1800.0).expect("source");
        let mut maker = FeatureMaker::new(1024);
        maker.set_seq(41);
        let a = maker.compute(&mut source).expect("first");
        let b = maker.compute(&mut source).expect("second");
        assert_eq!((a.seq, b.seq), (41, 42));
        assert_eq!(a.window_len, 1024);
        assert!(a.axes[0].is_some() && a.axes[1].is_none());
        maker.set_window(1000);
        assert!(maker.compute(&mut source).is_err());
    }
}
