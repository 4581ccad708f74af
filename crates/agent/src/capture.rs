//! Raw captures: the samples streamed after a `capture` command, cut into chunks.
//!
//! The chunk convention is the hub's (`telemetry::capture`): content type
//! [`CONTENT_TYPE`], application properties `capture-id`, `chunk` (0-based), `chunks`
//! (total), `rate-hz`, `axes` (only when above 1), and a payload of little-endian
//! `f32` samples, interleaved frames `x y z` with several axes; every chunk but the last
//! holds [`CHUNK_SAMPLES`] values (whole frames: 1365 frames of 3 axes), so a chunk's
//! payload stays 16 KiB whatever the axes.
//!
//! **Axes.** A capture carries every axis its source has: three for the synthetic
//! motor, one (the drive-end channel) for a CWRU replay. A 1-axis capture's chunks are
//! exactly what they were before axes existed.
//!
//! **Rate.** Samples are resampled from the source's own rate to the requested one by
//! linear interpolation (12 kHz CWRU data at 10 kHz, for instance), and `rate-hz` is
//! the requested rate. There is no anti-alias filter: when downsampling, content above
//! the new Nyquist folds back. Ask for the source's rate to get its samples unchanged.

use std::collections::VecDeque;
use std::time::Duration;

use crate::command::CaptureRequest;
use crate::source::{Frame, Source};
use crate::Error;

/// Content type of capture chunks (the hub's `telemetry::capture::CONTENT_TYPE`).
pub const CONTENT_TYPE: &str = "application/vnd.bosun.capture+f32";
/// Values (frames × axes) per chunk but the last, at most (16 KiB of payload).
pub const CHUNK_SAMPLES: usize = 4096;
/// Longest capture id, bytes (the hub's limit).
pub const MAX_ID_LEN: usize = 128;
/// Frames read from the source at once while resampling.
const BLOCK: usize = 1024;

/// One chunk ready to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// 0-based sequence number.
    pub seq: u32,
    /// The samples, frames of the capture's axes interleaved.
    pub samples: Vec<f32>,
}

impl Chunk {
    /// The payload: little-endian `f32`s.
    pub fn payload(&self) -> Vec<u8> {
        self.samples.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// A capture in progress.
#[derive(Debug, Clone)]
pub struct Capture {
    id: String,
    rate_hz: u32,
    /// Interleaved axes (1–3).
    axes: usize,
    /// Frames per chunk but the last.
    chunk_frames: usize,
    /// Frames not yet cut into chunks.
    remaining: u64,
    chunks: u32,
    next_seq: u32,
    resampler: Resampler,
}

impl Capture {
    /// Plans a capture of `request` of the first `axes` axes (clamped to 1–3) of a
    /// source sampling at `source_rate_hz`; `id` is cut to [`MAX_ID_LEN`] bytes (at a
    /// character boundary) and must not be empty.
    pub fn new(
        id: &str,
        request: CaptureRequest,
        source_rate_hz: f32,
        axes: usize,
    ) -> Result<Capture, Error> {
        let id = cut(id, MAX_ID_LEN);
        if id.is_empty() {
            return Err(Error::Config("a capture needs an id".into()));
        }
        if !(source_rate_hz.is_finite() && source_rate_hz > 0.0) {
            return Err(Error::Source(format!("source rate {source_rate_hz} Hz")));
        }
        let axes = axes.clamp(1, 3);
        let chunk_frames = CHUNK_SAMPLES / axes;
        let samples = request.samples();
        let chunks = samples.div_ceil(chunk_frames as u64);
        Ok(Capture {
            id: id.to_owned(),
            rate_hz: request.rate_hz,
            axes,
            chunk_frames,
            remaining: samples,
            chunks: u32::try_from(chunks).map_err(|_| Error::Config("capture too long".into()))?,
            next_seq: 0,
            resampler: Resampler::new(f64::from(source_rate_hz) / f64::from(request.rate_hz)),
        })
    }

    /// The capture id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Total chunks.
    pub fn chunks(&self) -> u32 {
        self.chunks
    }

    /// Whether every chunk has been produced.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// Axes per frame.
    pub fn axes(&self) -> usize {
        self.axes
    }

    /// Device time one full chunk spans: the pace of a live capture.
    pub fn chunk_duration(&self) -> Duration {
        Duration::from_secs_f64(self.chunk_frames as f64 / f64::from(self.rate_hz.max(1)))
    }

    /// The next chunk, read from `source`; `None` when done.
    pub fn next_chunk(&mut self, source: &mut dyn Source) -> Result<Option<Chunk>, Error> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let frames = self.chunk_frames as u64;
        let n = usize::try_from(self.remaining.min(frames)).unwrap_or(self.chunk_frames);
        let mut samples = Vec::with_capacity(n * self.axes);
        self.resampler.produce(source, n, self.axes, &mut samples)?;
        self.remaining -= n as u64;
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(Some(Chunk { seq, samples }))
    }

    /// The application properties of chunk `seq` (`axes` only when above 1).
    pub fn properties(&self, seq: u32) -> Vec<(&'static str, String)> {
        let mut props = vec![
            ("capture-id", self.id.clone()),
            ("chunk", seq.to_string()),
            ("chunks", self.chunks.to_string()),
            ("rate-hz", self.rate_hz.to_string()),
        ];
        if self.axes > 1 {
            props.push(("axes", self.axes.to_string()));
        }
        props
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// Linear-interpolation resampler over the frames of a source.
#[derive(Debug, Clone)]
struct Resampler {
    /// Source frames per output frame.
    step: f64,
    /// Position of the next output frame, in source frames from `pending[0]`.
    position: f64,
    /// Source frames not yet passed.
    pending: VecDeque<Frame>,
    /// Read buffer.
    block: Vec<Frame>,
}

impl Resampler {
    fn new(step: f64) -> Resampler {
        Resampler {
            step,
            position: 0.0,
            pending: VecDeque::new(),
            block: vec![[0.0; 3]; BLOCK],
        }
    }

    /// Appends `n` output frames of the first `axes` axes to `out`, interleaved.
    fn produce(
        &mut self,
        source: &mut dyn Source,
        n: usize,
        axes: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), Error> {
        for _ in 0..n {
            let index = self.position.floor() as usize;
            while self.pending.len() < index + 2 {
                source.fill(&mut self.block)?;
                self.pending.extend(self.block.iter().copied());
            }
            let frac = (self.position - index as f64) as f32;
            let a = self.pending.get(index).copied().unwrap_or_default();
            let b = self.pending.get(index + 1).copied().unwrap_or_default();
            for (a, b) in a.iter().zip(&b).take(axes) {
                out.push(a + (b - a) * frac);
            }
            self.position += self.step;
        }
        let passed = (self.position.floor() as usize).min(self.pending.len());
        self.pending.drain(..passed);
        self.position -= passed as f64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::cwru::CwruReplay;

    fn ramp() -> CwruReplay {
        CwruReplay::from_samples((0..100_000).map(|i| i as f32).collect(), 1800.0).expect("ramp")
    }

    #[test]
    fn chunks_follow_the_convention() {
        let request = CaptureRequest {
            rate_hz: 10_000,
            seconds: 1,
        };
        let mut capture = Capture::new("m-1", request, 12_000.0, 1).expect("capture");
        assert_eq!(capture.chunks(), 3);
        let mut source = ramp();
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        while let Some(chunk) = capture.next_chunk(&mut source).expect("chunk") {
            assert_eq!(chunk.seq as usize, sizes.len());
            assert_eq!(chunk.payload().len(), 4 * chunk.samples.len());
            sizes.push(chunk.samples.len());
            all.extend(chunk.samples);
        }
        assert_eq!(sizes, [4096, 4096, 1808]);
        // 12 kHz ramp at 10 kHz: sample k sits at 1.2·k.
        for (k, x) in all.iter().enumerate().take(5000) {
            assert!((x - 1.2 * k as f32).abs() < 1e-2, "{k}: {x}");
        }
        let props = capture.properties(2);
        assert_eq!(props[0], ("capture-id", "m-1".to_owned()));
        assert_eq!(props[2], ("chunks", "3".to_owned()));
        assert_eq!(props[3], ("rate-hz", "10000".to_owned()));
        assert_eq!(props.len(), 4, "a 1-axis chunk names no axes");
    }

    #[test]
    fn a_three_axis_source_sends_interleaved_frames() {
        let request = CaptureRequest {
            rate_hz: 10_000,
            seconds: 1,
        };
        let spec = crate::source::synthetic::MotorSpec::default();
        let mut source = crate::source::synthetic::Motor::new(spec);
        let mut capture = Capture::new("m-3", request, source.rate_hz(), 3).expect("capture");
        assert_eq!((capture.axes(), capture.chunks()), (3, 8)); // 10,000 frames / 1365
        let chunk = capture
            .next_chunk(&mut source)
            .expect("chunk")
            .expect("some");
        assert_eq!(chunk.samples.len(), 1365 * 3);
        assert_eq!(chunk.payload().len(), 16_380);
        let y: Vec<f32> = chunk.samples.iter().skip(1).step_by(3).copied().collect();
        assert!(y.iter().any(|v| *v != 0.0), "axis y carries data");
        let props = capture.properties(0);
        assert_eq!(props.last(), Some(&("axes", "3".to_owned())));
    }

    #[test]
    fn same_rate_passes_samples_through_and_ids_are_cut() {
        let request = CaptureRequest {
            rate_hz: 12_000,
            seconds: 1,
        };
        let long = "é".repeat(100);
        let mut capture = Capture::new(&long, request, 12_000.0, 1).expect("capture");
        assert!(capture.id().len() <= MAX_ID_LEN);
        let chunk = capture
            .next_chunk(&mut ramp())
            .expect("chunk")
            .expect("some");
        assert_eq!(&chunk.samples[..4], &[0.0, 1.0, 2.0, 3.0]);
        assert!(Capture::new("", request, 12_000.0, 1).is_err());
    }
}
