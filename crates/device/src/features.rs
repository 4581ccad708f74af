//! The feature record a device sends for each window: fixed-size, `Copy`, no heap.
//!
//! One [`Features`] replaces a window of raw samples (48 KiB for three axes of 4096
//! `f32`s) with about 170 bytes per axis, which is what makes continuous monitoring
//! affordable over MQTT on a metered link. The struct is the payload schema: its CBOR
//! form comes from the derive attributes below (arrays indexed by the `#[n(…)]` numbers,
//! so fields can be appended without breaking old decoders), and its Protobuf form is in
//! `proto/features.proto` and [`crate::encode::protobuf`].
//!
//! Units: accelerations in g, energies in g² (the mean-square contribution of a band;
//! see [`crate::spectrum`]), frequencies in Hz.

use minicbor::{CborLen, Decode, Encode};

/// Harmonics kept per defect frequency. Three is the usual diagnostic rule: a single
/// line can be anything, a harmonic series at a defect rate is a defect.
pub const HARMONICS: usize = 3;

/// Most axes one record carries: a triaxial accelerometer.
pub const MAX_AXES: usize = 3;

/// Band energies at the first [`HARMONICS`] harmonics of each bearing defect frequency
/// (index 0 is the fundamental).
#[derive(Clone, Copy, Debug, Default, PartialEq, Encode, Decode, CborLen)]
#[cbor(array)]
pub struct DefectBands {
    /// Outer-race defect (BPFO) harmonics, g².
    #[n(0)]
    pub bpfo: [f32; HARMONICS],
    /// Inner-race defect (BPFI) harmonics, g².
    #[n(1)]
    pub bpfi: [f32; HARMONICS],
    /// Ball spin (BSF, textbook definition) harmonics, g²; a ball defect's 2×BSF line
    /// is harmonic 2.
    #[n(2)]
    pub bsf: [f32; HARMONICS],
    /// Cage (FTF) harmonics, g².
    #[n(3)]
    pub ftf: [f32; HARMONICS],
}

/// Everything computed from one axis over one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Encode, Decode, CborLen)]
#[cbor(array)]
pub struct AxisFeatures {
    /// Mean of the raw samples (gravity, sensor offset), g.
    #[n(0)]
    pub mean: f32,
    /// RMS of the AC part, g: overall severity.
    #[n(1)]
    pub rms: f32,
    /// Largest deviation from the mean, g.
    #[n(2)]
    pub peak: f32,
    /// Peak / RMS: rises with impacts before RMS does.
    #[n(3)]
    pub crest: f32,
    /// Fourth standardised moment (3 for Gaussian noise): impulsiveness.
    #[n(4)]
    pub kurtosis: f32,
    /// Spectrum energy at 1× shaft speed, g²: imbalance.
    #[n(5)]
    pub shaft_1x: f32,
    /// Spectrum energy at 2× shaft speed, g²: misalignment, looseness.
    #[n(6)]
    pub shaft_2x: f32,
    /// Spectrum energy in the resonance band the envelope demodulates, g²: grows with
    /// any impacting, including ball faults whose envelope lines are weak.
    #[n(7)]
    pub resonance: f32,
    /// Defect-frequency band energies of the plain spectrum, g².
    #[n(8)]
    pub spectrum: DefectBands,
    /// Defect-frequency band energies of the envelope spectrum, g²: the early detector.
    #[n(9)]
    pub envelope: DefectBands,
}

/// One window's features for up to [`MAX_AXES`] axes, plus what is needed to interpret
/// them (rate, window, speed) without asking the device's configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Encode, Decode, CborLen)]
#[cbor(array)]
pub struct Features {
    /// Window counter, wrapping: lets the hub spot lost or reordered messages.
    #[n(0)]
    pub seq: u32,
    /// Sampling rate of the window, Hz.
    #[n(1)]
    pub sample_rate_hz: f32,
    /// Window length in samples (the bin width is `sample_rate_hz / window_len`).
    #[n(2)]
    pub window_len: u32,
    /// Shaft speed the defect frequencies were computed for, Hz.
    #[n(3)]
    pub shaft_hz: f32,
    /// Per-axis features by axis index (0 = x, 1 = y, 2 = z); `None` for an axis the
    /// device does not have. CWRU recordings are single-axis and fill only index 0.
    #[n(4)]
    pub axes: [Option<AxisFeatures>; MAX_AXES],
}

impl AxisFeatures {
    /// The scalar fields with their names, in record order: the names the hub stores
    /// and scores them under (`x.rms`, …), kept next to the struct so a field added
    /// here is named everywhere at once.
    pub fn scalars(&self) -> [(&'static str, f32); 8] {
        [
            ("mean", self.mean),
            ("rms", self.rms),
            ("peak", self.peak),
            ("crest", self.crest),
            ("kurtosis", self.kurtosis),
            ("shaft_1x", self.shaft_1x),
            ("shaft_2x", self.shaft_2x),
            ("resonance", self.resonance),
        ]
    }

    /// The two band records with their names (`spectrum`, `envelope`).
    pub fn bands(&self) -> [(&'static str, &DefectBands); 2] {
        [("spectrum", &self.spectrum), ("envelope", &self.envelope)]
    }
}

impl DefectBands {
    /// Each defect's harmonics with the defect's name (`bpfo`, `bpfi`, `bsf`, `ftf`).
    pub fn named(&self) -> [(&'static str, &[f32; HARMONICS]); 4] {
        [
            ("bpfo", &self.bpfo),
            ("bpfi", &self.bpfi),
            ("bsf", &self.bsf),
            ("ftf", &self.ftf),
        ]
    }
}
