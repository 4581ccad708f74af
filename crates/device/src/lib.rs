//! bosun device SDK: vibration features computed at the edge.
//!
//! A motor's bearing tells its state through vibration, but 12,000 samples a second per
//! axis are too much to send from every machine. This crate reduces each window of
//! samples to a few hundred bytes of features — time-domain statistics, energy at the
//! shaft speed and at the bearing's defect frequencies, and the same from the envelope
//! spectrum, the classic early detector of bearing faults — and encodes them as CBOR or
//! Protobuf for an MQTT publish. It does no I/O: the agent samples, publishes and
//! schedules; the hub decodes with the same [`encode`] functions.
//!
//! The pipeline is `no_std` and never allocates: buffers are const-generic arrays sized
//! by the window length, so `size_of` is the RAM bill. The `std` feature (on by default)
//! only adds conveniences for hosts. No input makes it panic: bad configurations, bad
//! samples and bad payloads are errors.
//!
//! Layout, in the order a window flows through it:
//! - [`pipeline`]: collects frames of 1–3 axes into `N`-sample windows ([`Pipeline`]).
//! - [`extractor`]: one axis, one window → [`AxisFeatures`] ([`FeatureExtractor`],
//!   [`Config`]).
//! - [`stats`]: mean, RMS, peak, crest factor, kurtosis.
//! - [`window`]: the Hann window and the supported window lengths.
//! - [`fft`]: in-place radix-2 real and complex FFTs.
//! - [`spectrum`]: band energies (g²) from a spectrum, band tolerances.
//! - [`bearing`]: bearing geometry → BPFO, BPFI, BSF, FTF.
//! - [`envelope`]: band-pass, Hilbert, magnitude and spectrum of the envelope, in place.
//! - [`features`]: the fixed-size [`Features`] record.
//! - [`encode`]: its CBOR and Protobuf encoders and decoders.
//! - [`raw`]: little-endian `f32` sample records (the CWRU copy, raw captures).
//! - [`Error`]: why a window could not be analysed.
//!
//! A single-axis device at 12 kHz with the CWRU bearing, one window:
//! ```
//! use device::{encode::cbor, BearingGeometry, Config, Fill, Pipeline};
//!
//! // In firmware this lives in a `static`; 16 KiB is too much for most stacks.
//! let mut pipeline = Box::new(Pipeline::<4096, 1>::new(Config::new(12_000.0, BearingGeometry::SKF_6205))?);
//! let mut t = 0.0f32;
//! while let Ok(Fill::Partial { .. }) = pipeline.push([(t * 0.1).sin()]) {
//!     t += 1.0;
//! }
//! let features = pipeline.compute(1797.0 / 60.0)?;
//! let mut payload = [0u8; cbor::MAX_LEN];
//! let len = cbor::encode(&features, &mut payload)?;
//! assert_eq!(cbor::decode(&payload[..len])?, features);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod bearing;
pub mod encode;
pub mod envelope;
mod error;
pub mod extractor;
pub mod features;
pub mod fft;
pub mod pipeline;
pub mod raw;
pub mod spectrum;
pub mod stats;
mod trig;
pub mod window;

pub use bearing::{BearingGeometry, DefectFrequencies};
pub use envelope::Band;
pub use error::Error;
pub use extractor::{analyze_in_place, Config, FeatureExtractor};
pub use features::{AxisFeatures, DefectBands, Features, HARMONICS, MAX_AXES};
pub use pipeline::{Fill, Full, Pipeline};
pub use spectrum::BandTolerance;
pub use window::{MAX_WINDOW, MIN_WINDOW};
