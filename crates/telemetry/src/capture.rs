//! Raw-capture reassembly: after an anomaly the device streams a raw capture (typically
//! 10 kHz × 30 s of `f32` samples) as ordinary telemetry messages, in chunks, and the
//! pipeline puts them back together here.
//!
//! # Chunk convention
//!
//! Each chunk is one device-to-cloud message with:
//!
//! | what                          | value                                                 |
//! |-------------------------------|-------------------------------------------------------|
//! | content type                  | `application/vnd.bosun.capture+f32` ([`CONTENT_TYPE`]) |
//! | property `capture-id`         | chosen by the device (the C2D message id, a counter), 1 to 128 bytes, the same on every chunk |
//! | property `chunk`              | 0-based sequence number                               |
//! | property `chunks`             | total number of chunks, the same on every chunk       |
//! | property `rate-hz`            | sample rate in Hz (integer), the same on every chunk  |
//! | property `axes` (optional)    | channels per sample instant, 1 to 3 (default 1), the same on every chunk |
//! | payload                       | little-endian `f32` samples, no header (`device::raw`); with several axes, interleaved frames `x0 y0 z0 x1 y1 z1 …` |
//!
//! A chunk without `axes` is a 1-axis chunk, as every device sent before axes existed.
//! Every chunk but the last holds the same number of samples (frames); the last holds
//! at most that many. So a chunk's place in the capture follows from its sequence number, and a
//! missing chunk leaves a gap of known position.
//!
//! The pipeline sends messages whose content type passes [`is_capture`] here instead of
//! to the decoder, reading the header with [`ChunkHeader::from_properties`].
//!
//! # What the assembler does
//!
//! [`Assembler`] is pure (no clock, no IO): the pipeline feeds it chunks with the current
//! time, and calls [`Assembler::finish`] for captures that went quiet
//! ([`Assembler::idle`] lists them). A capture completes when every chunk has arrived.
//! A finished capture reports missing chunks as ranges rather than papering over them:
//! its samples are the received ones in order, and the gaps are only recorded.
//!
//! Memory is bounded: at most [`Limits::max_open`] captures at once, each at most
//! [`Limits::max_samples`] samples. Bad chunks (wrong sizes, non-finite samples, a
//! sequence number past the total, a total or rate that contradicts earlier chunks, a
//! repeated chunk with different content) are refused with a [`CaptureError`] and change
//! nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::ops::Range;

/// Content type of capture chunks.
pub const CONTENT_TYPE: &str = "application/vnd.bosun.capture+f32";
/// Application property: the capture's id.
pub const PROP_CAPTURE_ID: &str = "capture-id";
/// Application property: the chunk's 0-based sequence number.
pub const PROP_CHUNK: &str = "chunk";
/// Application property: the number of chunks in the capture.
pub const PROP_CHUNKS: &str = "chunks";
/// Application property: the sample rate in Hz.
pub const PROP_RATE_HZ: &str = "rate-hz";
/// Application property: channels per sample instant (1–3, default 1).
pub const PROP_AXES: &str = "axes";
/// Most axes a capture may have.
pub const MAX_AXES: u8 = 3;
/// Longest capture id accepted, in bytes.
pub const MAX_CAPTURE_ID_LEN: usize = 128;

/// Is a message with this content type a capture chunk? (Parameters such as
/// `; charset=` are ignored, the type compares without regard to case.)
pub fn is_capture(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(CONTENT_TYPE))
}

/// The application properties of one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHeader {
    /// `capture-id`.
    pub capture_id: String,
    /// `chunk`: 0-based sequence number.
    pub seq: u32,
    /// `chunks`: how many chunks the capture has.
    pub total: u32,
    /// `rate-hz`: samples per second.
    pub rate_hz: u32,
    /// `axes`: interleaved channels, 1 to [`MAX_AXES`] (1 when the property is absent).
    pub axes: u8,
}

impl ChunkHeader {
    /// Reads the header from a message's application properties, looked up by name.
    pub fn from_properties<'p>(
        get: impl Fn(&str) -> Option<&'p str>,
    ) -> Result<ChunkHeader, CaptureError> {
        let capture_id =
            get(PROP_CAPTURE_ID).ok_or(CaptureError::MissingProperty(PROP_CAPTURE_ID))?;
        if capture_id.is_empty() || capture_id.len() > MAX_CAPTURE_ID_LEN {
            return Err(CaptureError::BadProperty(PROP_CAPTURE_ID));
        }
        let number = |name: &'static str| -> Result<u32, CaptureError> {
            get(name)
                .ok_or(CaptureError::MissingProperty(name))?
                .trim()
                .parse()
                .map_err(|_| CaptureError::BadProperty(name))
        };
        Ok(ChunkHeader {
            capture_id: capture_id.to_owned(),
            seq: number(PROP_CHUNK)?,
            total: number(PROP_CHUNKS)?,
            rate_hz: number(PROP_RATE_HZ)?,
            axes: match get(PROP_AXES) {
                None => 1,
                Some(text) => text
                    .trim()
                    .parse()
                    .ok()
                    .filter(|a| (1..=MAX_AXES).contains(a))
                    .ok_or(CaptureError::BadProperty(PROP_AXES))?,
            },
        })
    }

    /// The header as application properties, for senders (the device, the simulator);
    /// `axes` only when above 1, so 1-axis chunks look as they always did.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut props = vec![
            (PROP_CAPTURE_ID, self.capture_id.clone()),
            (PROP_CHUNK, self.seq.to_string()),
            (PROP_CHUNKS, self.total.to_string()),
            (PROP_RATE_HZ, self.rate_hz.to_string()),
        ];
        if self.axes > 1 {
            props.push((PROP_AXES, self.axes.to_string()));
        }
        props
    }
}

/// Why a chunk was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// A required application property is absent.
    #[error("property {0} is missing")]
    MissingProperty(&'static str),
    /// A property is not a valid value (not a number, empty id, too long, axes not 1–3).
    #[error("property {0} is invalid")]
    BadProperty(&'static str),
    /// `chunks` is zero or `rate-hz` is zero.
    #[error("chunks and rate-hz must be at least 1")]
    Zero,
    /// `chunk` is not below `chunks`.
    #[error("chunk {seq} is out of range for {total} chunks")]
    SeqOutOfRange {
        /// The sequence number.
        seq: u32,
        /// The total.
        total: u32,
    },
    /// The payload is empty, not whole frames of `f32`s, or its sample count breaks the
    /// equal-chunks convention.
    #[error("chunk {seq}: {reason}")]
    BadSize {
        /// The sequence number.
        seq: u32,
        /// What is wrong.
        reason: String,
    },
    /// A sample is NaN or infinite.
    #[error("chunk {seq}: sample {index} is not finite")]
    NonFinite {
        /// The sequence number.
        seq: u32,
        /// Index of the sample in the chunk.
        index: usize,
    },
    /// `chunks` or `rate-hz` differs from earlier chunks of the capture.
    #[error("chunk {seq}: {property} {found} contradicts {expected} from earlier chunks")]
    Conflict {
        /// The sequence number.
        seq: u32,
        /// Which property.
        property: &'static str,
        /// As earlier chunks said.
        expected: u32,
        /// As this chunk says.
        found: u32,
    },
    /// The chunk arrived before with different samples.
    #[error("chunk {seq} arrived twice with different samples")]
    DuplicateMismatch {
        /// The sequence number.
        seq: u32,
    },
    /// The capture would exceed [`Limits::max_samples`] or [`Limits::max_chunks`].
    #[error("capture exceeds the limit of {limit} {what}")]
    TooLarge {
        /// `samples` or `chunks`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A new capture would exceed [`Limits::max_open`].
    #[error("{0} captures are already open")]
    TooManyOpen(usize),
}

/// Bounds on what the assembler holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most samples in one capture, counting each axis' value (a 3-axis frame is 3).
    pub max_samples: usize,
    /// Most chunks in one capture.
    pub max_chunks: u32,
    /// Most captures assembled at once.
    pub max_open: usize,
}

impl Default for Limits {
    /// Room for 10 kHz × 40 s of 3 axes per capture (the default capture is 30 s), or
    /// 120 s of one axis; 8 at once: at most about 38 MiB of samples.
    fn default() -> Self {
        Limits {
            max_samples: 1_200_000,
            max_chunks: 65_536,
            max_open: 8,
        }
    }
}

/// What feeding a chunk did.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Stored; the capture is still incomplete.
    Accepted {
        /// Chunks held so far.
        received: u32,
        /// Chunks expected.
        total: u32,
    },
    /// The same chunk arrived before with the same samples; nothing changed.
    Duplicate,
    /// That was the last missing chunk: here is the whole capture.
    Complete(Capture),
}

/// A reassembled capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// `capture-id`.
    pub id: String,
    /// The device that sent it.
    pub device_id: String,
    /// Samples per second.
    pub rate_hz: u32,
    /// Chunks the device announced.
    pub chunks: u32,
    /// Interleaved channels per sample instant (1 to [`MAX_AXES`]).
    pub axes: u8,
    /// Frames (sample instants) per chunk (all but the last); `None` when no chunk but
    /// the last arrived.
    pub chunk_samples: Option<u32>,
    /// The received samples, in order, frames of `axes` values interleaved; missing
    /// chunks are not filled in.
    pub samples: Vec<f32>,
    /// Missing chunks, as ranges of sequence numbers; empty for a complete capture.
    pub missing: Vec<Range<u32>>,
}

/// What adding a chunk to a capture did.
enum Added {
    /// A chunk not seen before; more are expected.
    New,
    /// The same chunk again; nothing changed.
    Duplicate,
    /// The last missing chunk.
    Complete,
}

/// One capture being assembled.
#[derive(Debug)]
struct Partial {
    /// `chunks`, from the first chunk.
    total: u32,
    /// `rate-hz`, from the first chunk.
    rate_hz: u32,
    /// `axes`, from the first chunk.
    axes: u8,
    /// Values (frames × axes) per non-last chunk, once one has arrived.
    chunk_len: Option<usize>,
    /// Received chunks by sequence number.
    chunks: BTreeMap<u32, Vec<f32>>,
    /// Samples held.
    samples: usize,
    /// When the last chunk arrived, in the caller's milliseconds.
    last_ms: u64,
}

/// Reassembles captures from chunks; see the module documentation.
#[derive(Debug, Default)]
pub struct Assembler {
    /// Bounds.
    limits: Limits,
    /// Open captures by (device, capture id): ids are chosen by devices and so only
    /// unique per device.
    open: HashMap<(String, String), Partial>,
}

impl Assembler {
    /// An assembler with these limits.
    pub fn new(limits: Limits) -> Assembler {
        Assembler {
            limits,
            open: HashMap::new(),
        }
    }

    /// Feeds one chunk's header and payload; `now_ms` is any monotonic clock in
    /// milliseconds, used only by [`Assembler::idle`].
    pub fn feed(
        &mut self,
        device_id: &str,
        header: &ChunkHeader,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Progress, CaptureError> {
        let samples = self.check_chunk(header, payload)?;
        let key = (device_id.to_owned(), header.capture_id.clone());
        if !self.open.contains_key(&key) && self.open.len() >= self.limits.max_open {
            return Err(CaptureError::TooManyOpen(self.open.len()));
        }
        let partial = self.open.entry(key.clone()).or_insert_with(|| Partial {
            total: header.total,
            rate_hz: header.rate_hz,
            axes: header.axes,
            chunk_len: None,
            chunks: BTreeMap::new(),
            samples: 0,
            last_ms: now_ms,
        });
        let result = partial.add(header, samples, &self.limits, now_ms);
        if partial.chunks.is_empty() {
            // A refused first chunk leaves no trace.
            self.open.remove(&key);
        }
        match result? {
            Added::Complete => Ok(self
                .finish(&key.0, &key.1)
                .map_or(Progress::Duplicate, Progress::Complete)),
            Added::New => Ok(self.progress(&key)),
            Added::Duplicate => Ok(Progress::Duplicate),
        }
    }

    /// The progress of an open capture after a chunk that did not complete it.
    fn progress(&self, key: &(String, String)) -> Progress {
        match self.open.get(key) {
            Some(p) => Progress::Accepted {
                received: u32::try_from(p.chunks.len()).unwrap_or(u32::MAX),
                total: p.total,
            },
            None => Progress::Duplicate,
        }
    }

    /// Checks what a chunk says on its own and decodes its samples.
    fn check_chunk(&self, header: &ChunkHeader, payload: &[u8]) -> Result<Vec<f32>, CaptureError> {
        let seq = header.seq;
        if header.total == 0 || header.rate_hz == 0 {
            return Err(CaptureError::Zero);
        }
        if seq >= header.total {
            return Err(CaptureError::SeqOutOfRange {
                seq,
                total: header.total,
            });
        }
        if header.total > self.limits.max_chunks {
            return Err(too_large("chunks", self.limits.max_chunks as usize));
        }
        if header.axes == 0 || header.axes > MAX_AXES {
            return Err(CaptureError::BadProperty(PROP_AXES));
        }
        let frame = 4 * usize::from(header.axes);
        if payload.is_empty() || payload.len() % frame != 0 {
            let reason = match header.axes {
                1 => format!(
                    "{} bytes is not a whole number of f32 samples",
                    payload.len()
                ),
                axes => format!(
                    "{} bytes is not a whole number of {axes}-axis f32 frames",
                    payload.len()
                ),
            };
            return Err(CaptureError::BadSize { seq, reason });
        }
        if payload.len() / 4 > self.limits.max_samples {
            return Err(too_large("samples", self.limits.max_samples));
        }
        let samples: Vec<f32> = device::raw::samples_le(payload).collect();
        match samples.iter().position(|s| !s.is_finite()) {
            Some(index) => Err(CaptureError::NonFinite { seq, index }),
            None => Ok(samples),
        }
    }

    /// Ends an open capture (complete or not, e.g. because no chunk arrived for a while)
    /// and returns what arrived; `None` if no such capture is open.
    pub fn finish(&mut self, device_id: &str, capture_id: &str) -> Option<Capture> {
        let key = (device_id.to_owned(), capture_id.to_owned());
        let partial = self.open.remove(&key)?;
        Some(partial.into_capture(key.0, key.1))
    }

    /// Open captures whose last chunk arrived at least `idle_ms` before `now_ms`, as
    /// (device id, capture id): the pipeline finishes these.
    pub fn idle(&self, now_ms: u64, idle_ms: u64) -> Vec<(String, String)> {
        self.open
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.last_ms) >= idle_ms)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// How many captures are open, for a gauge.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Samples held across open captures, for a gauge.
    pub fn buffered_samples(&self) -> usize {
        self.open.values().map(|p| p.samples).sum()
    }
}

/// A [`CaptureError::TooLarge`].
fn too_large(what: &'static str, limit: usize) -> CaptureError {
    CaptureError::TooLarge { what, limit }
}

impl Partial {
    /// Adds a checked chunk. Refusals leave the capture as it was.
    fn add(
        &mut self,
        header: &ChunkHeader,
        samples: Vec<f32>,
        limits: &Limits,
        now_ms: u64,
    ) -> Result<Added, CaptureError> {
        let seq = header.seq;
        self.check_consistent(header)?;
        if let Some(existing) = self.chunks.get(&seq) {
            let same = existing.len() == samples.len()
                && existing
                    .iter()
                    .zip(&samples)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            return match same {
                true => Ok(Added::Duplicate),
                false => Err(CaptureError::DuplicateMismatch { seq }),
            };
        }
        let chunk_len = self.check_size(seq, samples.len(), limits)?;
        if self.samples + samples.len() > limits.max_samples {
            return Err(too_large("samples", limits.max_samples));
        }
        self.chunk_len = chunk_len;
        self.samples += samples.len();
        self.chunks.insert(seq, samples);
        self.last_ms = now_ms;
        match self.chunks.len() as u64 == u64::from(self.total) {
            true => Ok(Added::Complete),
            false => Ok(Added::New),
        }
    }

    /// The chunk's total and rate must agree with earlier chunks.
    fn check_consistent(&self, header: &ChunkHeader) -> Result<(), CaptureError> {
        let checks = [
            (PROP_CHUNKS, self.total, header.total),
            (PROP_RATE_HZ, self.rate_hz, header.rate_hz),
            (PROP_AXES, u32::from(self.axes), u32::from(header.axes)),
        ];
        for (property, expected, found) in checks {
            if expected != found {
                return Err(CaptureError::Conflict {
                    seq: header.seq,
                    property,
                    expected,
                    found,
                });
            }
        }
        Ok(())
    }

    /// Checks a new chunk's sample count against the equal-chunks convention and the
    /// capture's size limit; returns the chunk length known after it.
    fn check_size(
        &self,
        seq: u32,
        len: usize,
        limits: &Limits,
    ) -> Result<Option<usize>, CaptureError> {
        let last = self.total - 1;
        let bad = |reason: String| CaptureError::BadSize { seq, reason };
        let chunk_len = match (seq == last, self.chunk_len) {
            (false, Some(expected)) if len != expected => {
                return Err(bad(format!(
                    "{len} samples, earlier chunks have {expected}"
                )))
            }
            (false, _) => len,
            (true, Some(expected)) if len > expected => {
                return Err(bad(format!(
                    "last chunk has {len} samples, more than {expected}"
                )))
            }
            (true, known) => return Ok(known),
        };
        if let Some(last_chunk) = self.chunks.get(&last).filter(|c| c.len() > chunk_len) {
            let reason = format!(
                "{len} samples, fewer than the last chunk's {}",
                last_chunk.len()
            );
            return Err(bad(reason));
        }
        let most = (last as usize).saturating_mul(chunk_len).saturating_add(1);
        if most > limits.max_samples {
            return Err(too_large("samples", limits.max_samples));
        }
        Ok(Some(chunk_len))
    }

    /// The capture as received so far.
    fn into_capture(self, device_id: String, id: String) -> Capture {
        let missing = missing_ranges(self.total, self.chunks.keys().copied());
        let axes = self.axes.max(1);
        let chunk_samples = self
            .chunk_len
            .and_then(|n| u32::try_from(n / usize::from(axes)).ok());
        let samples = self.chunks.into_values().flatten().collect();
        Capture {
            id,
            device_id,
            rate_hz: self.rate_hz,
            chunks: self.total,
            axes,
            chunk_samples,
            samples,
            missing,
        }
    }
}

/// The ranges of `0..total` not in `present` (ascending).
fn missing_ranges(total: u32, present: impl Iterator<Item = u32>) -> Vec<Range<u32>> {
    let mut missing = Vec::new();
    let mut next = 0;
    for seq in present {
        if seq > next {
            missing.push(next..seq);
        }
        next = seq + 1;
    }
    if next < total {
        missing.push(next..total);
    }
    missing
}

impl Capture {
    /// Is every chunk here?
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// The received samples as headerless little-endian `f32` (the `device::raw` format).
    /// This format cannot show gaps: keep [`Capture::missing`] with it, or use
    /// [`Capture::to_csv`].
    pub fn to_f32_le(&self) -> Vec<u8> {
        self.samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    /// Frames (sample instants) received.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.axes.max(1))
    }

    /// The received samples of one axis (0-based), in order; empty past the last axis.
    pub fn axis(&self, axis: usize) -> Vec<f32> {
        axis_of(&self.samples, self.axes, axis)
    }

    /// The samples as CSV, `t_s,value` (1 axis) or `t_s,x,y[,z]`, one row per frame with
    /// its true time (seconds from the capture's first sample). Gaps stay visible: the
    /// time jumps over missing chunks, and a row with empty values marks where each gap
    /// starts, so plotting tools break the line there.
    pub fn to_csv(&self) -> String {
        let axes = usize::from(self.axes.max(1));
        let mut out = String::with_capacity(self.samples.len() * 20 + 16);
        out.push_str(csv_header(self.axes));
        let rate = f64::from(self.rate_hz.max(1));
        let chunk = self.chunk_len_for_times();
        let mut frames = self.samples.chunks_exact(axes);
        let mut gaps = self.missing.iter();
        let mut gap = gaps.next();
        let empty = ",".repeat(axes);
        let mut seq = 0;
        while seq < self.chunks {
            let start = u64::from(seq) * chunk;
            if let Some(range) = gap.filter(|g| g.start <= seq) {
                let _ = writeln!(out, "{:.6}{empty}", start as f64 / rate);
                seq = range.end.max(seq.saturating_add(1));
                gap = gaps.next();
                continue;
            }
            if gap.is_none() && frames.len() == 0 {
                break;
            }
            for (i, frame) in frames.by_ref().take(chunk as usize).enumerate() {
                let t = (start + i as u64) as f64 / rate;
                let _ = write!(out, "{t:.6}");
                for value in frame {
                    let _ = write!(out, ",{value}");
                }
                out.push('\n');
            }
            seq += 1;
        }
        out
    }

    /// Samples per chunk for computing times: the known chunk size, else (only the last
    /// chunk arrived) the received count, which is then the whole of what is placed.
    fn chunk_len_for_times(&self) -> u64 {
        match self.chunk_samples {
            Some(n) => u64::from(n),
            None => self.frames() as u64,
        }
        .max(1)
    }
}

/// The CSV header line for `axes` channels.
fn csv_header(axes: u8) -> &'static str {
    match axes {
        2 => "t_s,x,y\n",
        3 => "t_s,x,y,z\n",
        _ => "t_s,value\n",
    }
}

/// One axis (0-based) of interleaved `samples` with `axes` channels; empty past the last.
pub fn axis_of(samples: &[f32], axes: u8, axis: usize) -> Vec<f32> {
    let axes = usize::from(axes.max(1));
    if axis >= axes {
        return Vec::new();
    }
    samples.iter().skip(axis).step_by(axes).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(id: &str, seq: u32, total: u32) -> ChunkHeader {
        ChunkHeader {
            capture_id: id.into(),
            seq,
            total,
            rate_hz: 10,
            axes: 1,
        }
    }

    fn bytes(samples: &[f32]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    /// Chunk `seq` of a capture whose sample `i` is `i as f32`, `len` samples a chunk.
    fn chunk(seq: u32, len: usize, total_samples: usize) -> Vec<u8> {
        let start = seq as usize * len;
        let end = (start + len).min(total_samples);
        bytes(&(start..end).map(|i| i as f32).collect::<Vec<_>>())
    }

    #[test]
    fn reads_headers_and_content_types() {
        let props = [
            ("capture-id", "c1"),
            ("chunk", "2"),
            ("chunks", "5"),
            ("rate-hz", "10000"),
        ];
        let get = |name: &str| props.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let parsed = ChunkHeader::from_properties(get);
        let expected = ChunkHeader {
            capture_id: "c1".into(),
            seq: 2,
            total: 5,
            rate_hz: 10_000,
            axes: 1,
        };
        assert_eq!(parsed.as_ref(), Ok(&expected));
        let again = expected.properties();
        let get = |name: &str| {
            again
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(ChunkHeader::from_properties(get), Ok(expected));
        let missing = ChunkHeader::from_properties(|name| (name == "capture-id").then_some("x"));
        assert_eq!(missing, Err(CaptureError::MissingProperty("chunk")));
        let bad =
            ChunkHeader::from_properties(|name| Some(if name == "chunks" { "-1" } else { "1" }));
        assert_eq!(bad, Err(CaptureError::BadProperty("chunks")));
        assert!(is_capture("Application/vnd.bosun.capture+f32; x=y"));
        assert!(!is_capture("application/json"));
    }

    #[test]
    fn assembles_out_of_order_with_duplicates() {
        let mut asm = Assembler::default();
        let n = 10;
        let feed =
            |asm: &mut Assembler, seq| asm.feed("dev", &header("c", seq, 3), &chunk(seq, 4, n), 0);
        assert_eq!(
            feed(&mut asm, 2),
            Ok(Progress::Accepted {
                received: 1,
                total: 3
            })
        );
        assert_eq!(
            feed(&mut asm, 0),
            Ok(Progress::Accepted {
                received: 2,
                total: 3
            })
        );
        assert_eq!(feed(&mut asm, 0), Ok(Progress::Duplicate));
        assert_eq!(asm.buffered_samples(), 6);
        let Ok(Progress::Complete(capture)) = feed(&mut asm, 1) else {
            panic!("capture should be complete");
        };
        assert!(capture.is_complete());
        assert_eq!(
            capture.samples,
            (0..n).map(|i| i as f32).collect::<Vec<_>>()
        );
        assert_eq!(capture.chunk_samples, Some(4));
        assert_eq!(capture.to_f32_le(), chunk(0, n, n));
        assert_eq!(asm.open_count(), 0);
    }

    #[test]
    fn finish_reports_gaps_without_filling_them() {
        let mut asm = Assembler::default();
        for seq in [1, 4] {
            let result = asm.feed("dev", &header("c", seq, 6), &chunk(seq, 2, 11), 5);
            assert!(matches!(result, Ok(Progress::Accepted { .. })));
        }
        assert_eq!(asm.idle(1000, 1000), []);
        assert_eq!(asm.idle(1005, 1000), [("dev".to_owned(), "c".to_owned())]);
        let capture = asm.finish("dev", "c");
        assert_eq!(asm.finish("dev", "c"), None);
        let Some(capture) = capture else {
            panic!("capture should be open");
        };
        assert_eq!(capture.samples, [2.0, 3.0, 8.0, 9.0]);
        assert_eq!(capture.missing, [0..1, 2..4, 5..6]);
        let csv = capture.to_csv();
        let expected = "t_s,value\n0.000000,\n0.200000,2\n0.300000,3\n0.400000,\n\
                        0.800000,8\n0.900000,9\n1.000000,\n";
        assert_eq!(csv, expected);
    }

    #[test]
    fn refuses_bad_chunks_without_changing_anything() {
        let mut asm = Assembler::new(Limits {
            max_samples: 8,
            max_chunks: 4,
            max_open: 1,
        });
        let ok = chunk(0, 2, 8);
        assert!(asm.feed("d", &header("c", 0, 4), &ok, 0).is_ok());
        let cases: Vec<(ChunkHeader, Vec<u8>, CaptureError)> = vec![
            (
                header("c", 4, 4),
                ok.clone(),
                CaptureError::SeqOutOfRange { seq: 4, total: 4 },
            ),
            (header("c", 1, 0), ok.clone(), CaptureError::Zero),
            (header("c", 1, 5), ok.clone(), too_large("chunks", 4)),
            (
                header("c", 1, 3),
                ok.clone(),
                CaptureError::Conflict {
                    seq: 1,
                    property: "chunks",
                    expected: 4,
                    found: 3,
                },
            ),
            (
                ChunkHeader {
                    rate_hz: 11,
                    ..header("c", 1, 4)
                },
                ok.clone(),
                CaptureError::Conflict {
                    seq: 1,
                    property: "rate-hz",
                    expected: 10,
                    found: 11,
                },
            ),
            (
                header("c", 1, 4),
                vec![0; 7],
                CaptureError::BadSize {
                    seq: 1,
                    reason: "7 bytes is not a whole number of f32 samples".into(),
                },
            ),
            (
                header("c", 1, 4),
                vec![],
                CaptureError::BadSize {
                    seq: 1,
                    reason: "0 bytes is not a whole number of f32 samples".into(),
                },
            ),
            (
                header("c", 1, 4),
                bytes(&[1.0]),
                CaptureError::BadSize {
                    seq: 1,
                    reason: "1 samples, earlier chunks have 2".into(),
                },
            ),
            (
                header("c", 3, 4),
                bytes(&[1.0; 3]),
                CaptureError::BadSize {
                    seq: 3,
                    reason: "last chunk has 3 samples, more than 2".into(),
                },
            ),
            (
                header("c", 1, 4),
                bytes(&[1.0, f32::NAN]),
                CaptureError::NonFinite { seq: 1, index: 1 },
            ),
            (
                header("c", 0, 4),
                bytes(&[9.0, 9.0]),
                CaptureError::DuplicateMismatch { seq: 0 },
            ),
            (
                header("other", 0, 1),
                ok.clone(),
                CaptureError::TooManyOpen(1),
            ),
            (header("c", 1, 4), bytes(&[1.0; 9]), too_large("samples", 8)),
        ];
        for (h, payload, expected) in cases {
            assert_eq!(
                asm.feed("d", &h, &payload, 0),
                Err(expected.clone()),
                "{expected}"
            );
        }
        assert_eq!(asm.buffered_samples(), 2);
        let mut big = Assembler::new(Limits {
            max_samples: 5,
            ..Limits::default()
        });
        assert_eq!(
            big.feed("d", &header("c", 0, 3), &chunk(0, 3, 9), 0),
            Err(too_large("samples", 5))
        );
        assert_eq!(big.open_count(), 0);
    }

    #[test]
    fn three_axis_chunks_interleave_and_old_one_axis_chunks_still_read() {
        let props = [
            ("capture-id", "c"),
            ("chunk", "0"),
            ("chunks", "2"),
            ("rate-hz", "10"),
            ("axes", "3"),
        ];
        let get = |name: &str| props.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let h = ChunkHeader::from_properties(get).expect("valid");
        assert_eq!(h.axes, 3);
        assert_eq!(h.properties().last(), Some(&("axes", "3".to_owned())));
        assert_eq!(
            header("c", 0, 1).properties().len(),
            4,
            "1-axis chunks unchanged"
        );
        for bad in ["0", "4", "x"] {
            let get = |name: &str| if name == "axes" { Some(bad) } else { get(name) };
            assert_eq!(
                ChunkHeader::from_properties(get),
                Err(CaptureError::BadProperty("axes"))
            );
        }
        let mut asm = Assembler::default();
        // Two frames per chunk: chunk 0 = (0,1,2),(3,4,5); the last one frame (6,7,8).
        let h1 = ChunkHeader {
            seq: 1,
            ..h.clone()
        };
        let last = bytes(&[6.0, 7.0, 8.0]);
        assert!(matches!(
            asm.feed("d", &h1, &last, 0),
            Ok(Progress::Accepted { .. })
        ));
        let torn = asm.feed("d", &h, &bytes(&[0.0; 4]), 0);
        assert!(
            matches!(torn, Err(CaptureError::BadSize { seq: 0, .. })),
            "{torn:?}"
        );
        let one_axis = ChunkHeader {
            axes: 1,
            ..h.clone()
        };
        let conflict = asm.feed("d", &one_axis, &bytes(&[0.0; 6]), 0);
        assert!(matches!(
            conflict,
            Err(CaptureError::Conflict {
                property: "axes",
                ..
            })
        ));
        let first = bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let Ok(Progress::Complete(capture)) = asm.feed("d", &h, &first, 0) else {
            panic!("capture should be complete");
        };
        assert_eq!(
            (capture.axes, capture.frames(), capture.chunk_samples),
            (3, 3, Some(2))
        );
        assert_eq!(capture.axis(1), [1.0, 4.0, 7.0]);
        assert!(capture.axis(3).is_empty());
        assert_eq!(
            capture.to_csv(),
            "t_s,x,y,z\n0.000000,0,1,2\n0.100000,3,4,5\n0.200000,6,7,8\n"
        );
        let mut gap = capture;
        gap.samples.truncate(6);
        gap.missing = std::iter::once(1..2).collect();
        let csv = "t_s,x,y,z\n0.000000,0,1,2\n0.100000,3,4,5\n0.200000,,,\n";
        assert_eq!(gap.to_csv(), csv);
    }

    #[test]
    fn a_short_last_chunk_first_bounds_the_others() {
        let mut asm = Assembler::default();
        assert!(asm
            .feed("d", &header("c", 1, 2), &bytes(&[5.0, 6.0, 7.0]), 0)
            .is_ok());
        let err = asm.feed("d", &header("c", 0, 2), &bytes(&[1.0, 2.0]), 0);
        assert!(matches!(err, Err(CaptureError::BadSize { seq: 0, .. })));
        let Some(capture) = asm.finish("d", "c") else {
            panic!("capture should be open");
        };
        assert_eq!(capture.chunk_samples, None);
        assert_eq!(
            capture.to_csv(),
            "t_s,value\n0.000000,\n0.300000,5\n0.400000,6\n0.500000,7\n"
        );
    }

    proptest! {
        #[test]
        fn any_order_duplicates_and_drops(
            n in 1usize..120,
            len in 1usize..16,
            order in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let total = n.div_ceil(len) as u32;
            let mut asm = Assembler::default();
            let mut received = std::collections::BTreeSet::new();
            let mut completed = None;
            for index in order {
                let seq = index.index(total as usize) as u32;
                match asm.feed("d", &header("c", seq, total), &chunk(seq, len, n), 0) {
                    Ok(Progress::Complete(capture)) => { completed = Some(capture); break; }
                    Ok(_) => { received.insert(seq); }
                    Err(e) => prop_assert!(false, "refused: {e}"),
                }
            }
            let capture = match completed {
                Some(capture) => { received = (0..total).collect(); capture }
                None => match asm.finish("d", "c") {
                    Some(capture) => capture,
                    None => { prop_assert!(received.is_empty()); return Ok(()); }
                },
            };
            let expected: Vec<f32> = received.iter().flat_map(|&s| chunk(s, len, n)
                .chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<_>>()).collect();
            prop_assert_eq!(&capture.samples, &expected);
            let gaps: u32 = capture.missing.iter().map(|r| r.end - r.start).sum();
            prop_assert_eq!(gaps as usize, total as usize - received.len());
            prop_assert!(capture.missing.iter().all(|r| r.clone().all(|s| !received.contains(&s))));
            let rows = capture.to_csv().lines().count();
            prop_assert_eq!(rows, 1 + expected.len() + capture.missing.len());
        }

        #[test]
        fn arbitrary_chunks_never_panic(
            seq in any::<u32>(), total in any::<u32>(), rate in any::<u32>(),
            payload in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut asm = Assembler::new(Limits { max_samples: 64, max_chunks: 1 << 20, max_open: 2 });
            let h = ChunkHeader { capture_id: "c".into(), seq, total, rate_hz: rate, axes: (seq % 5) as u8 };
            let _ = asm.feed("d", &h, &payload, 0);
            if let Some(capture) = asm.finish("d", "c") {
                let _ = capture.to_csv();
            }
        }
    }
}
