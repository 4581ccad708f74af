//! Multi-axis windowing: samples arrive one frame (one value per axis) at a time, and
//! every `N` frames the pipeline turns them into one [`Features`] record.
//!
//! The frames are analysed in place, so the whole state is `AXES × N` samples plus the
//! configuration (48 KiB for 3 × 4096) and there is no second work buffer. The price is
//! that samples arriving during [`Pipeline::compute`] have nowhere to go: a device that
//! must not lose them double-buffers at the driver (DMA) level, one that samples in
//! bursts simply starts the next window afterwards. A full pipeline refuses more samples
//! rather than overwrite or drop silently.

use crate::extractor::{analyze_in_place, Config};
use crate::features::{Features, MAX_AXES};
use crate::window::is_supported_window;
use crate::Error;

/// Result of a successful [`Pipeline::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// The window still needs this many frames.
    Partial {
        /// Frames still missing.
        missing: usize,
    },
    /// The window is full: call [`Pipeline::compute`].
    Ready,
}

/// The window was already full; the frame was not stored. Holds the rejected frame so
/// that the caller can keep it for the next window, as heapless' `push` does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Full<const AXES: usize>(pub [f32; AXES]);

/// Collects `N` frames of `AXES` axes and computes their features.
///
/// Both sizes are const generics (1 ≤ `AXES` ≤ [`MAX_AXES`]; `N` as for
/// [`crate::FeatureExtractor`]), so `size_of::<Pipeline<4096, 3>>()` is the whole RAM
/// cost and a bad size is a compile error:
/// ```compile_fail
/// use device::{BearingGeometry, Config, Pipeline};
/// let _ = Pipeline::<4096, 4>::new(Config::new(12_000.0, BearingGeometry::SKF_6205));
/// ```
#[derive(Clone, Debug)]
pub struct Pipeline<const N: usize, const AXES: usize> {
    /// Validated once in [`Self::new`].
    config: Config,
    /// One window per axis, filled up to `filled`.
    frames: [[f32; N]; AXES],
    /// Frames stored in the current window.
    filled: usize,
    /// Sequence number of the next [`Features`] record.
    seq: u32,
}

impl<const N: usize, const AXES: usize> Pipeline<N, AXES> {
    /// Post-monomorphisation check of both sizes.
    const SUPPORTED: () = assert!(
        is_supported_window(N) && AXES >= 1 && AXES <= MAX_AXES,
        "window length must be a power of two in 64..=8192 and axes in 1..=3"
    );

    /// Validates `config` for `N`-point windows. `const`, so that the pipeline can live
    /// in a `static` (a `Pipeline<4096, 3>` is too large for most MCU stacks).
    pub const fn new(config: Config) -> Result<Self, Error> {
        let () = Self::SUPPORTED;
        match config.validate(N) {
            Ok(()) => Ok(Self {
                config,
                frames: [[0.0; N]; AXES],
                filled: 0,
                seq: 0,
            }),
            Err(e) => Err(e),
        }
    }

    /// The configuration the pipeline was built with.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Stores one frame (one sample per axis).
    pub fn push(&mut self, frame: [f32; AXES]) -> Result<Fill, Full<AXES>> {
        if self.filled >= N {
            return Err(Full(frame));
        }
        for (axis, value) in self.frames.iter_mut().zip(frame) {
            if let Some(slot) = axis.get_mut(self.filled) {
                *slot = value;
            }
        }
        self.filled += 1;
        Ok(match N - self.filled {
            0 => Fill::Ready,
            missing => Fill::Partial { missing },
        })
    }

    /// Stores frames from an interleaved buffer (`x0 y0 z0 x1 y1 z1 …`, the usual layout of
    /// a triaxial sensor's FIFO) until the window is full, and returns how many values it
    /// consumed. A trailing partial frame is left unconsumed.
    pub fn push_interleaved(&mut self, values: &[f32]) -> usize {
        let mut consumed = 0;
        for chunk in values.chunks_exact(AXES) {
            if self.filled >= N {
                break;
            }
            for (axis, &value) in self.frames.iter_mut().zip(chunk) {
                if let Some(slot) = axis.get_mut(self.filled) {
                    *slot = value;
                }
            }
            self.filled += 1;
            consumed += AXES;
        }
        consumed
    }

    /// Whether [`Self::compute`] would analyse a full window.
    pub const fn is_ready(&self) -> bool {
        self.filled >= N
    }

    /// Analyses the full window at shaft speed `shaft_hz` (rpm / 60; 0 if unknown) and
    /// starts a new one. Axes beyond `AXES` are `None` in the result.
    ///
    /// Fails with [`Error::NotReady`] if the window is not full (and keeps it). Any other
    /// error also discards the window, whose buffers are scratch by then; the sequence
    /// number advances either way, so the hub sees the gap.
    pub fn compute(&mut self, shaft_hz: f32) -> Result<Features, Error> {
        if self.filled < N {
            return Err(Error::NotReady {
                missing: N - self.filled,
            });
        }
        self.filled = 0;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut features = Features {
            seq,
            sample_rate_hz: self.config.sample_rate_hz,
            window_len: N as u32,
            shaft_hz,
            axes: [None; MAX_AXES],
        };
        for (slot, frame) in features.axes.iter_mut().zip(self.frames.iter_mut()) {
            *slot = Some(analyze_in_place(frame, &self.config, shaft_hz)?);
        }
        Ok(features)
    }
}
