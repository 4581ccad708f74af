//! Segment files: immutable sets of sealed chunks and rollup blocks.
//!
//! ```text
//! "BSNTSEG1"  wal_upto:u64  supersedes:varint n × varint seq
//! series:  varint n × (str device, str field)
//! blocks:  varint n × (varint series, u8 kind, i64 min_ts, i64 max_ts, varint count, bytes)
//! crc32 of everything above: u32
//! ```
//!
//! Integers are little-endian, `str`/`bytes` are varint-length-prefixed. A segment is
//! written to a `.tmp` file, fsynced, renamed and the directory fsynced, so a crash
//! leaves either the whole file or none. `wal_upto` says every WAL file numbered below
//! it is contained; `supersedes` lists segments this one replaces (compaction,
//! expiry), so a crash between writing it and deleting them cannot double any data.
//! The whole file is checked on open; afterwards only the index stays in memory and
//! blocks are read on demand with positioned reads.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::codec::{put_bytes, put_varint, Reader};
use crate::error::Error;

const MAGIC: &[u8; 8] = b"BSNTSEG1";

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// A raw chunk.
    Raw,
    /// 1-minute rollup rows.
    Minute,
    /// 1-hour rollup rows.
    Hour,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Raw => 0,
            Kind::Minute => 1,
            Kind::Hour => 2,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        match code {
            0 => Some(Kind::Raw),
            1 => Some(Kind::Minute),
            2 => Some(Kind::Hour),
            _ => None,
        }
    }
}

/// A block's place and summary, kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    /// Global series id.
    pub(crate) series: u32,
    /// What it holds.
    pub(crate) kind: Kind,
    /// Earliest timestamp (or bucket start) in it.
    pub(crate) min_ts: i64,
    /// Latest timestamp (or bucket end − 1) in it.
    pub(crate) max_ts: i64,
    /// Points (raw) or rows (rollups).
    pub(crate) count: u64,
    offset: u64,
    /// Encoded size in bytes.
    pub(crate) len: usize,
}

/// A block about to be written.
#[derive(Debug, Clone)]
pub(crate) struct NewBlock {
    /// Global series id.
    pub(crate) series: u32,
    /// What it holds.
    pub(crate) kind: Kind,
    /// Earliest timestamp in it.
    pub(crate) min_ts: i64,
    /// Latest timestamp in it.
    pub(crate) max_ts: i64,
    /// Points or rows.
    pub(crate) count: u64,
    /// Encoded contents.
    pub(crate) bytes: Vec<u8>,
}

/// An open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Its number (from the file name).
    pub(crate) seq: u64,
    /// WAL files numbered below this are contained in it (or in older segments).
    pub(crate) wal_upto: u64,
    /// Segments it replaces.
    pub(crate) supersedes: Vec<u64>,
    /// Every block, in file order.
    pub(crate) blocks: Vec<BlockMeta>,
    /// Block indexes per series.
    by_series: HashMap<u32, Vec<usize>>,
    /// File size in bytes.
    pub(crate) size: u64,
    path: PathBuf,
    file: File,
}

/// The file name of segment `seq`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("seg-{seq:016}.seg")
}

/// The number in a segment file name, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".seg")?
        .parse()
        .ok()
}

impl Segment {
    /// Blocks of `series`.
    pub(crate) fn blocks_of(&self, series: u32) -> impl Iterator<Item = &BlockMeta> + '_ {
        self.by_series
            .get(&series)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.blocks.get(i))
    }

    /// Reads a block's bytes.
    pub(crate) fn read_block(&self, block: &BlockMeta) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; block.len];
        self.file
            .read_exact_at(&mut buf, block.offset)
            .map_err(Error::io("cannot read block of", &self.path))?;
        Ok(buf)
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a new segment durably and opens it. `name` gives a series' device and field.
    pub(crate) fn write(
        dir: &Path,
        seq: u64,
        wal_upto: u64,
        supersedes: &[u64],
        blocks: &[NewBlock],
        name: &dyn Fn(u32) -> (String, String),
    ) -> Result<Segment, Error> {
        let mut local: HashMap<u32, u64> = HashMap::new();
        let mut names = Vec::new();
        for b in blocks {
            local.entry(b.series).or_insert_with(|| {
                names.push(name(b.series));
                names.len() as u64 - 1
            });
        }
        let mut out = Vec::with_capacity(blocks.iter().map(|b| b.bytes.len() + 32).sum());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&wal_upto.to_le_bytes());
        put_varint(&mut out, supersedes.len() as u64);
        for &s in supersedes {
            put_varint(&mut out, s);
        }
        put_varint(&mut out, names.len() as u64);
        for (device, field) in &names {
            put_bytes(&mut out, device.as_bytes());
            put_bytes(&mut out, field.as_bytes());
        }
        put_varint(&mut out, blocks.len() as u64);
        for b in blocks {
            put_varint(&mut out, local.get(&b.series).copied().unwrap_or(0));
            out.push(b.kind.code());
            out.extend_from_slice(&b.min_ts.to_le_bytes());
            out.extend_from_slice(&b.max_ts.to_le_bytes());
            put_varint(&mut out, b.count);
            put_bytes(&mut out, &b.bytes);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        let path = dir.join(file_name(seq));
        write_durably(dir, &path, &out)?;
        let ids: HashMap<(String, String), u32> =
            blocks.iter().map(|b| (name(b.series), b.series)).collect();
        Segment::parse(seq, path, &out, &mut |d, f| {
            ids.get(&(d.to_owned(), f.to_owned())).copied().unwrap_or(0)
        })
    }

    /// Opens and checks a segment file; `resolve` maps a device and field to a global id.
    pub(crate) fn open(
        path: PathBuf,
        seq: u64,
        resolve: &mut dyn FnMut(&str, &str) -> u32,
    ) -> Result<Segment, Error> {
        let bytes = std::fs::read(&path).map_err(Error::io("cannot read", &path))?;
        Segment::parse(seq, path, &bytes, resolve)
    }

    fn parse(
        seq: u64,
        path: PathBuf,
        bytes: &[u8],
        resolve: &mut dyn FnMut(&str, &str) -> u32,
    ) -> Result<Segment, Error> {
        let corrupt = |why| Error::Corrupt {
            path: path.clone(),
            why,
        };
        let body_len = bytes
            .len()
            .checked_sub(4)
            .ok_or_else(|| corrupt("too short"))?;
        let (body, crc) = bytes.split_at(body_len);
        let crc: [u8; 4] = crc.try_into().map_err(|_| corrupt("too short"))?;
        if crc32fast::hash(body) != u32::from_le_bytes(crc) {
            return Err(corrupt("checksum mismatch"));
        }
        let parsed = parse_body(body, resolve).ok_or_else(|| corrupt("malformed"))?;
        let (wal_upto, supersedes, blocks) = parsed;
        let mut by_series: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, b) in blocks.iter().enumerate() {
            by_series.entry(b.series).or_default().push(i);
        }
        let file = File::open(&path).map_err(Error::io("cannot open", &path))?;
        Ok(Segment {
            seq,
            wal_upto,
            supersedes,
            blocks,
            by_series,
            size: bytes.len() as u64,
            path,
            file,
        })
    }
}

type Parsed = (u64, Vec<u64>, Vec<BlockMeta>);

fn parse_body(body: &[u8], resolve: &mut dyn FnMut(&str, &str) -> u32) -> Option<Parsed> {
    let mut r = Reader::new(body);
    if r.take(8)? != MAGIC {
        return None;
    }
    let wal_upto = r.u64()?;
    let n = r.len()?;
    let supersedes = (0..n).map(|_| r.varint()).collect::<Option<Vec<u64>>>()?;
    let n = r.len()?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let device = r.str()?;
        let field = r.str()?;
        ids.push(resolve(device, field));
    }
    let n = r.len()?;
    let mut blocks = Vec::with_capacity(n);
    for _ in 0..n {
        let series = *ids.get(usize::try_from(r.varint()?).ok()?)?;
        let kind = Kind::from_code(r.u8()?)?;
        let min_ts = r.i64()?;
        let max_ts = r.i64()?;
        let count = r.varint()?;
        let len = r.len()?;
        let offset = r.pos() as u64;
        r.take(len)?;
        blocks.push(BlockMeta {
            series,
            kind,
            min_ts,
            max_ts,
            count,
            offset,
            len,
        });
    }
    r.is_empty().then_some((wal_upto, supersedes, blocks))
}

/// Writes `bytes` to `path` via a fsynced temporary file and a rename, then fsyncs `dir`.
pub(crate) fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(Error::io("cannot create", &tmp))?;
    file.write_all(bytes)
        .map_err(Error::io("cannot write", &tmp))?;
    file.sync_all().map_err(Error::io("cannot fsync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("cannot rename to", path))?;
    sync_dir(dir)
}

/// Fsyncs a directory so renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("cannot fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn written_segments_reopen() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(Error::io("tempdir", Path::new("/tmp")))?;
        let blocks = vec![NewBlock {
            series: 7,
            kind: Kind::Raw,
            min_ts: 1,
            max_ts: 2,
            count: 2,
            bytes: vec![1, 2, 3],
        }];
        let name = |id: u32| (format!("dev{id}"), "f".to_owned());
        let seg = Segment::write(dir.path(), 3, 9, &[1, 2], &blocks, &name)?;
        assert_eq!(seg.read_block(&seg.blocks[0])?, vec![1, 2, 3]);
        let again = Segment::open(seg.path().to_owned(), 3, &mut |d, _| {
            if d == "dev7" {
                7
            } else {
                0
            }
        })?;
        assert_eq!(again.wal_upto, 9);
        assert_eq!(again.supersedes, vec![1, 2]);
        assert_eq!(again.blocks, seg.blocks);
        assert_eq!(again.blocks_of(7).count(), 1);
        Ok(())
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_body(&bytes, &mut |_, _| 0);
        }
    }
}
