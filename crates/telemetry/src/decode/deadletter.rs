//! Dead letters: the messages that could not be decoded, kept so that someone can see
//! why and fix the device or register its schema.
//!
//! A [`DeadLetter`] is one JSON line (payload in base64, cut to a bound so that a flood
//! of large bad payloads cannot fill the disk). [`DeadLetterLog`] appends them to a file
//! and, when the file would pass its size bound, renames it to `<path>.1` (replacing
//! the previous one) and starts afresh, so the log never holds more than twice the bound.
//! The IO is tiny and synchronous; an async caller should run it on a blocking thread.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DecodeError, Input};

/// Default bound on the payload bytes kept in a dead letter.
pub const DEFAULT_PAYLOAD_BYTES: usize = 4096;

/// Default size at which [`DeadLetterLog`] rotates its file.
pub const DEFAULT_LOG_BYTES: u64 = 8 * 1024 * 1024;

/// A message that could not be decoded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The device that sent it.
    pub device_id: String,
    /// When the hub received it (ms since the Unix epoch).
    pub received_ms: i64,
    /// [`DecodeError::reason`]: what a counter or a filter groups by.
    pub reason: String,
    /// The error's human message.
    pub detail: String,
    /// The content type the device gave (MQTT property or `$.ct`), if any.
    pub content_type: Option<String>,
    /// Length of the whole payload, which may be more than `payload` holds.
    pub payload_len: usize,
    /// The start of the payload (base64 in JSON).
    #[serde(with = "base64::serde")]
    pub payload: Vec<u8>,
}

impl DeadLetter {
    /// The dead letter for `input` refused with `error`, keeping at most
    /// `max_payload` bytes of the payload.
    pub fn new(input: &Input<'_>, error: &DecodeError, max_payload: usize) -> Self {
        let content_type = input.content_type.map(str::to_owned).or_else(|| {
            input
                .properties
                .iter()
                .find(|(k, _)| k == "$.ct")
                .map(|(_, v)| v.clone())
        });
        let kept = input.payload.get(..max_payload).unwrap_or(input.payload);
        Self {
            device_id: input.device_id.to_owned(),
            received_ms: input.received_ms,
            reason: error.reason().to_owned(),
            detail: error.to_string(),
            content_type,
            payload_len: input.payload.len(),
            payload: kept.to_vec(),
        }
    }

    /// One line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        // Serializing plain strings and numbers cannot fail; an empty object stands in
        // rather than a panic if it ever did.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Parses a line written by [`DeadLetter::to_json_line`].
    pub fn from_json_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// An append-only file of dead letters, one JSON line each, rotated at a size bound.
#[derive(Debug)]
pub struct DeadLetterLog {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    /// Size past which the file is rotated to `<path>.1`.
    max_bytes: u64,
}

impl DeadLetterLog {
    /// Opens (creating if needed) the log at `path`, rotating at [`DEFAULT_LOG_BYTES`].
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::with_max_bytes(path, DEFAULT_LOG_BYTES)
    }

    /// Opens the log at `path`, rotating when a line would take it past `max_bytes`.
    pub fn with_max_bytes(path: impl AsRef<Path>, max_bytes: u64) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            file,
            size,
            max_bytes,
        })
    }

    /// Appends one dead letter (one `write` of the whole line, so a crash leaves at most
    /// one torn last line, which [`DeadLetterLog::read_recent`] skips).
    pub fn append(&mut self, letter: &DeadLetter) -> io::Result<()> {
        let mut line = letter.to_json_line();
        line.push('\n');
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.size += len;
        Ok(())
    }

    /// The last `n` dead letters, oldest first, from the current file and the rotated
    /// one; lines that do not parse are skipped.
    pub fn read_recent(&self, n: usize) -> io::Result<Vec<DeadLetter>> {
        let mut letters = read_file(&self.path)?;
        if letters.len() < n {
            let mut older = read_file(&rotated(&self.path))?;
            older.append(&mut letters);
            letters = older;
        }
        let skip = letters.len().saturating_sub(n);
        Ok(letters.split_off(skip))
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        fs::rename(&self.path, rotated(&self.path))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// `<path>.1`.
fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Every parseable dead letter of one file; a missing file holds none.
fn read_file(path: &Path) -> io::Result<Vec<DeadLetter>> {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| DeadLetter::from_json_line(line).ok())
        .collect())
}

/// Base64 (RFC 4648 §4, standard alphabet, padded) for payload bytes in JSON. A few
/// lines here rather than a dependency; the hub has its own copy, which this crate
/// cannot depend on.
pub(crate) mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Encodes with `=` padding.
    pub(crate) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    let sextet = (n >> (18 - 6 * i)) & 0x3f;
                    out.push(char::from(ALPHABET[sextet as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Decodes padded or unpadded base64; `None` on any character outside the alphabet.
    pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
        let digits = text.trim_end_matches('=').as_bytes();
        let mut out = Vec::with_capacity(digits.len() * 3 / 4);
        let mut acc = 0u32;
        let mut bits = 0;
        for &c in digits {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Some(out)
    }

    /// `#[serde(with = …)]` glue: bytes as a base64 string.
    pub(crate) mod serde {
        use serde::{de::Error, Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&super::encode(bytes))
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            let text = String::deserialize(d)?;
            super::decode(&text).ok_or_else(|| D::Error::custom("invalid base64"))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn letter(i: i64) -> DeadLetter {
        DeadLetter {
            device_id: format!("dev-{i}"),
            received_ms: i,
            reason: "invalid_json".into(),
            detail: "invalid JSON at line 1, column 1: expected value".into(),
            content_type: Some("application/json".into()),
            payload_len: 3,
            payload: vec![0xff, 0, b'{'],
        }
    }

    #[test]
    fn base64_known_values() {
        assert_eq!(base64::encode(b""), "");
        assert_eq!(base64::encode(b"f"), "Zg==");
        assert_eq!(base64::encode(b"fo"), "Zm8=");
        assert_eq!(base64::encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64::decode("Zm9vYg=="), Some(b"foob".to_vec()));
        assert_eq!(base64::decode("Zm9v!"), None);
    }

    #[test]
    fn new_truncates_and_takes_the_topic_content_type() {
        let props = vec![("$.ct".to_owned(), "application/cbor".to_owned())];
        let input = Input {
            device_id: "d1",
            group: None,
            properties: &props,
            content_type: None,
            payload: &[1, 2, 3, 4, 5],
            received_ms: 7,
        };
        let l = DeadLetter::new(&input, &DecodeError::CborTruncated, 2);
        assert_eq!(l.payload, vec![1, 2]);
        assert_eq!(l.payload_len, 5);
        assert_eq!(l.reason, "cbor_truncated");
        assert_eq!(l.content_type.as_deref(), Some("application/cbor"));
        let line = l.to_json_line();
        assert!(line.contains("\"payload\":\"AQI=\""), "{line}");
        assert_eq!(DeadLetter::from_json_line(&line).ok(), Some(l));
    }

    #[test]
    fn log_appends_reads_and_rotates() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("bosun-dl-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let path = dir.join("dead.jsonl");
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(rotated(&path));
        let line_len = letter(0).to_json_line().len() as u64 + 1;
        let mut log = DeadLetterLog::with_max_bytes(&path, 3 * line_len)?;
        for i in 0..5 {
            log.append(&letter(i))?;
        }
        // 0,1,2 filled the first file; 3 rotated it to .1; 4 joined 3.
        let recent = log.read_recent(4)?;
        let ids: Vec<i64> = recent.iter().map(|l| l.received_ms).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(log.read_recent(1)?.len(), 1);
        // A torn line is skipped, and a reopened log carries on.
        fs::OpenOptions::new()
            .append(true)
            .open(&path)?
            .write_all(b"{\"device_id\":")?;
        let log = DeadLetterLog::open(&path)?;
        assert_eq!(log.read_recent(10)?.len(), 5);
        fs::remove_dir_all(&dir)
    }

    proptest! {
        #[test]
        fn base64_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(base64::decode(&base64::encode(&bytes)), Some(bytes));
        }
    }
}
