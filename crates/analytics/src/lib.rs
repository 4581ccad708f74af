//! bosun analytics: is a machine behaving differently, and which bearing part is failing.
//!
//! Devices send one `device::Features` record per window (see `crates/device`). The hub
//! feeds each record, named by [`feature_vector`], to a per-device [`anomaly::Model`],
//! which learns a healthy baseline and then scores every message, with an alarm state
//! that has hysteresis and an explanation of which features moved. When raw samples are
//! available (captures, recorded data), [`diagnosis::diagnose`] names the most likely
//! defect — inner race, outer race, ball, cage or none — with its evidence.
//! [`score::score_record`] runs both offline, as `bosun dsp score` does.
//!
//! Nothing here does I/O except [`record::read_f32_file`], and no input makes it panic.
//!
//! Layout:
//! - [`anomaly`]: the streaming model (`Model`, `ModelConfig`, `Assessment`).
//! - [`features`]: names for the fields of a device record ([`feature_vector`]).
//! - [`diagnosis`]: pre-whitening, band selection, envelope spectrum, defect matching.
//! - [`record`]: raw `f32` files and their windows through the device extractor.
//! - [`score`]: baseline + input → per-window assessments and a diagnosis.
//! - [`Error`]: why input was refused.

pub mod anomaly;
pub mod diagnosis;
mod error;
pub mod features;
pub mod record;
pub mod score;

pub use error::Error;
pub use features::feature_vector;
