//! Envelope spectrum: the classic early detector of rolling-element bearing faults.
//!
//! Each time a ball strikes a spall it rings the structure's resonances (2–4 kHz on the
//! CWRU rig) for a millisecond or so. In the plain spectrum that energy is spread over
//! the resonance band and the defect rate is invisible next to shaft and gear lines; but
//! the *amplitude* of the resonance rises and falls at the defect rate. So we keep only
//! the resonance band, take the magnitude of its analytic signal (the envelope), and
//! look at the spectrum of that envelope, where the defect frequency shows as a line.
//!
//! Everything happens in the frequency domain and in place, in the buffer that already
//! holds the record's spectrum, so the envelope costs no RAM beyond it:
//! 1. band-pass: keep bins `k_lo..=k_hi`, drop everything else, including the negative
//!    frequencies — which is exactly what makes the signal analytic (Hilbert);
//! 2. shift the band down to bin 0 (a shift in frequency does not change a magnitude)
//!    and inverse-transform with `n/2` complex points, which samples the analytic signal
//!    at `fs/2`: still more than twice any defect harmonic we look at;
//! 3. magnitude of each complex sample, giving `n/2` real envelope samples;
//! 4. real FFT of the envelope, with bins `fs/n` wide as in the plain spectrum.
//!
//! The record was Hann-windowed before step 1, so the envelope comes out tapered by the
//! same window (decimated by two, which is again a periodic Hann) and needs no second
//! window before step 4.

use libm::sqrtf;

use crate::fft::{complex_in_place, real_in_place, Direction};
use crate::Error;

/// A frequency band in Hz, used for the resonance that the envelope demodulates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    /// Lower edge in Hz.
    pub low_hz: f32,
    /// Upper edge in Hz.
    pub high_hz: f32,
}

impl Band {
    /// 2–4 kHz: where the CWRU rig's bearing impacts ring (see the data set's README and
    /// Smith & Randall 2015). Other machines need their own band, ideally found from a
    /// spectral kurtosis survey of healthy and faulty recordings.
    pub const CWRU_RESONANCE: Self = Self {
        low_hz: 2000.0,
        high_hz: 4000.0,
    };

    /// First and last bin of the band for an `n`-point window at `sample_rate_hz`, or an
    /// error if the band holds no bin strictly between DC and Nyquist.
    pub(crate) const fn bins(
        &self,
        n: usize,
        sample_rate_hz: f32,
    ) -> Result<(usize, usize), Error> {
        let bin_hz = sample_rate_hz / n as f32;
        if !(self.low_hz.is_finite()
            && self.high_hz.is_finite()
            && bin_hz > 0.0
            && self.low_hz < self.high_hz)
        {
            return Err(Error::InvalidConfig(
                "envelope band must be finite with low < high",
            ));
        }
        if self.low_hz < 0.0 || self.high_hz > sample_rate_hz / 2.0 {
            return Err(Error::InvalidConfig(
                "envelope band must lie between 0 Hz and Nyquist",
            ));
        }
        // Both bounds are in [0, n/2] after the check above, so the casts are exact.
        let mut first = (self.low_hz / bin_hz) as usize;
        if (first as f32) * bin_hz < self.low_hz {
            first += 1;
        }
        if first == 0 {
            first = 1;
        }
        let mut last = (self.high_hz / bin_hz) as usize;
        if last > n / 2 - 1 {
            last = n / 2 - 1;
        }
        if first > last {
            return Err(Error::InvalidConfig(
                "envelope band is narrower than one bin",
            ));
        }
        Ok((first, last))
    }
}

/// Turns the packed spectrum of an `n`-point Hann-windowed record into the packed
/// spectrum of its envelope in `buf[..n/2]`, demodulating bins `first..=last`.
///
/// Envelope samples are scaled to the amplitude of the band-passed signal (g), so
/// [`crate::spectrum::PowerSpectrum`] over `buf[..n/2]` reads envelope band powers in g².
/// `buf[n/2..]` is left as scratch.
pub(crate) fn envelope_spectrum_in_place(
    buf: &mut [f32],
    first: usize,
    last: usize,
) -> Result<(), Error> {
    let n = buf.len();
    let m = n / 2;
    if first == 0 || first > last || last >= m {
        return Err(Error::InvalidConfig("envelope band outside the spectrum"));
    }
    // Steps 1–2: move bins first..=last down to 0.. (memmove: source is above target)
    // and zero the rest. Bin k sits at buf[2k..2k+2]; `first ≥ 1` keeps the packed DC
    // and Nyquist pair out of the band.
    let width = last - first + 1;
    buf.copy_within(2 * first..2 * (last + 1), 0);
    buf[2 * width..].fill(0.0);
    complex_in_place(buf, Direction::Inverse)?;
    // Step 3: |z| into buf[j]. Reading pair j (at 2j, 2j+1 ≥ j) before writing buf[j]
    // never overwrites a pair still to be read. The analytic signal of the band is
    // (2/n)·Σ X[k]e^{…}, hence the scale.
    let scale = 2.0 / n as f32;
    for j in 0..m {
        let (re, im) = (buf[2 * j], buf[2 * j + 1]);
        buf[j] = scale * sqrtf(re * re + im * im);
    }
    // Step 4.
    real_in_place(&mut buf[..m])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_bins_are_inside_the_spectrum() {
        assert_eq!(Band::CWRU_RESONANCE.bins(4096, 12_000.0), Ok((683, 1365)));
        assert_eq!(
            Band {
                low_hz: 0.0,
                high_hz: 6000.0
            }
            .bins(4096, 12_000.0),
            Ok((1, 2047))
        );
        assert!(Band {
            low_hz: 3000.0,
            high_hz: 7000.0
        }
        .bins(4096, 12_000.0)
        .is_err());
        assert!(Band {
            low_hz: 3001.0,
            high_hz: 3002.0
        }
        .bins(4096, 12_000.0)
        .is_err());
        assert_eq!(
            Band {
                low_hz: 3000.0,
                high_hz: 3001.0
            }
            .bins(4096, 12_000.0),
            Ok((1024, 1024))
        );
        assert!(Band {
            low_hz: f32::NAN,
            high_hz: 3001.0
        }
        .bins(4096, 12_000.0)
        .is_err());
        assert!(Band::CWRU_RESONANCE.bins(4096, 0.0).is_err());
    }

    #[test]
    fn refuses_bands_outside_the_buffer() {
        let mut buf = [0.0f32; 64];
        assert!(envelope_spectrum_in_place(&mut buf, 0, 10).is_err());
        assert!(envelope_spectrum_in_place(&mut buf, 10, 32).is_err());
        assert!(envelope_spectrum_in_place(&mut buf, 11, 10).is_err());
        assert!(envelope_spectrum_in_place(&mut buf, 1, 31).is_ok());
    }
}
