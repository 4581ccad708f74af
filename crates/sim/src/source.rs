//! The vibration source of a simulated device: the agent's synthetic motor, limited to
//! the scenario's axes and counting the feature windows the agent takes from it.
//!
//! Why count here: `agent::run` exposes no counter of what it published, and the
//! report needs the fleet's own count to compare with what the hub stored. The agent
//! reads a feature window as `start_burst` followed by one `fill` of `window` frames
//! (default 4096); a capture reads `start_burst` followed by `fill`s of the resampler's
//! 1024-frame blocks. So a `fill` right after `start_burst` that is not 1024 frames long
//! is a feature window. (A twin that sets `window: 1024` would make the two
//! indistinguishable; the simulator never does.) Every window the agent takes is
//! written to its offline buffer, so windows − records left in the buffer − evicted
//! records = messages the hub acknowledged.
//!
//! It also adds a DC bias of [`DC_BIAS_G`] to every axis, as a real MEMS
//! accelerometer's zero-g offset does. Without it the model's signal has a mean that
//! wanders around 0 with the window's phase, and the hub's anomaly model (which
//! compares values on a log-like scale) reads each sign flip of `x.mean` as a huge
//! deviation: in a 2,000-device run with an 8-message warm-up, 7 healthy motors raised
//! false alarms, every one led by `x.mean`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent::source::Frame;
use agent::Source;

/// Zero-g offset added to every axis, g.
pub const DC_BIAS_G: f32 = 0.1;

/// Frames per block the capture resampler reads (`agent::capture`).
const CAPTURE_BLOCK: usize = 1024;

/// A source that counts feature windows.
pub struct Counted {
    inner: Box<dyn Source>,
    axes: usize,
    /// This device's windows.
    windows: Arc<AtomicU64>,
    /// The fleet's windows.
    total: Arc<AtomicU64>,
    after_burst: bool,
}

impl Counted {
    /// Wraps `inner`, reporting at most `axes` axes, counting into `windows` (the
    /// device's) and `total` (the fleet's).
    pub fn new(
        inner: Box<dyn Source>,
        axes: usize,
        windows: Arc<AtomicU64>,
        total: Arc<AtomicU64>,
    ) -> Counted {
        Counted {
            inner,
            axes,
            windows,
            total,
            after_burst: false,
        }
    }
}

impl Source for Counted {
    fn rate_hz(&self) -> f32 {
        self.inner.rate_hz()
    }

    fn axes(&self) -> usize {
        self.inner.axes().min(self.axes).max(1)
    }

    fn shaft_hz(&self) -> f32 {
        self.inner.shaft_hz()
    }

    fn start_burst(&mut self, device_time: Duration) {
        self.after_burst = true;
        self.inner.start_burst(device_time);
    }

    fn fill(&mut self, frames: &mut [Frame]) -> Result<(), agent::Error> {
        if std::mem::take(&mut self.after_burst) && frames.len() != CAPTURE_BLOCK {
            self.windows.fetch_add(1, Ordering::Relaxed);
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.fill(frames)?;
        for frame in frames.iter_mut() {
            for value in frame.iter_mut() {
                *value += DC_BIAS_G;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_windows_not_capture_blocks() {
        let windows = Arc::new(AtomicU64::new(0));
        let motor = agent::parse_source("synthetic", 1).expect("source");
        let total = Arc::new(AtomicU64::new(0));
        let mut source = Counted::new(motor, 1, windows.clone(), total.clone());
        assert_eq!(source.axes(), 1);
        let mut window = vec![[0.0; 3]; 4096];
        let mut block = vec![[0.0; 3]; CAPTURE_BLOCK];
        source.start_burst(Duration::from_secs(1));
        source.fill(&mut window).expect("fill");
        source.start_burst(Duration::from_secs(2));
        source.fill(&mut block).expect("fill");
        source.fill(&mut block).expect("fill");
        source.fill(&mut window).expect("no burst before");
        let mean = window.iter().map(|f| f[0]).sum::<f32>() / window.len() as f32;
        assert!((mean - DC_BIAS_G).abs() < 0.02, "{mean}");
        assert_eq!(windows.load(Ordering::Relaxed), 1);
        assert_eq!(total.load(Ordering::Relaxed), 1);
    }
}
