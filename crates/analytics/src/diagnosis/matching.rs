//! Reading defect signatures off a squared envelope spectrum.
//!
//! A defect shows as a line at its rate and at a few harmonics; an inner-race line is
//! also amplitude-modulated by the shaft (the defect turns through the load zone), which
//! puts sidebands at ±1× shaft; a ball defect turns with the cage, giving ±FTF sidebands.
//! Each line is measured as its *strength*: the highest bin within the speed tolerance
//! divided by the median of the spectrum around it, so the result does not depend on
//! the signal's level or on the slope of the background.

/// A squared envelope spectrum and the width of its bins.
pub(crate) struct Ses<'a> {
    /// Power per bin from 0 Hz.
    pub(crate) power: &'a [f64],
    /// Bin width, Hz.
    pub(crate) bin_hz: f64,
}

/// One line looked for: where it was expected, where the peak was, how strong it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Line {
    /// Frequency of the highest bin in the search band, Hz.
    pub(crate) found_hz: f64,
    /// Peak power over the local median background.
    pub(crate) strength: f64,
}

impl Ses<'_> {
    /// The strongest local maximum within `f·(1 ± tol)` (at least ±1 bin), against the median of
    /// the bins within `f ± (background·f + 10 bins)`. `None` when `f` is out of range.
    pub(crate) fn line(&self, f: f64, tol: f64, background: f64) -> Option<Line> {
        if !(f.is_finite() && f > 0.0 && self.bin_hz > 0.0) {
            return None;
        }
        let reach = |half: f64| {
            let lo = ((f - half) / self.bin_hz).floor().max(1.0) as usize;
            let hi = ((f + half) / self.bin_hz).ceil() as usize;
            (lo, hi.min(self.power.len().saturating_sub(1)))
        };
        let (lo, hi) = reach(f * tol + self.bin_hz);
        // Only local maxima count: the rising flank of a neighbouring line (BPFO + 1×
        // shaft sits 2.4 % below the ball rate) is not a line at `f`.
        let at = |k: usize| self.power.get(k).copied().unwrap_or(0.0);
        let peak = (lo..=hi)
            .filter(|&k| at(k) >= at(k.wrapping_sub(1)) && at(k) >= at(k + 1))
            .map(|k| (k, at(k)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((lo, 0.0));
        self.power.get(lo..=hi)?;
        let (blo, bhi) = reach(f * background + 10.0 * self.bin_hz);
        let mut around: Vec<f64> = self.power.get(blo..=bhi)?.to_vec();
        around.sort_by(f64::total_cmp);
        let median = around.get(around.len() / 2).copied().unwrap_or(0.0);
        let strength = if median > 0.0 { peak.1 / median } else { 0.0 };
        Some(Line {
            found_hz: peak.0 as f64 * self.bin_hz,
            strength: if strength.is_finite() { strength } else { 0.0 },
        })
    }
}
