//! The CWRU bearing records next to the repository (`../shared/data/cwru`), listed
//! from their `manifest.csv`. Shared by the device and analytics CWRU tests (the
//! analytics test includes this file by path), which skip when the data is absent.

use std::path::{Path, PathBuf};

/// Where the data set lives, relative to this crate.
const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/cwru");

/// One manifest row: the columns the tests use.
pub(crate) struct Entry {
    /// The `.f32` file name.
    pub(crate) file: String,
    /// `normal`, `inner_race`, `ball` or `outer_race_6`.
    pub(crate) label: String,
    /// Shaft speed in revolutions per minute.
    pub(crate) rpm: f32,
    /// Samples per second.
    pub(crate) sample_rate_hz: f32,
}

/// The data directory and its manifest rows, or `None` (with a note) when the data
/// set is not next to the repository.
pub(crate) fn entries() -> Option<(PathBuf, Vec<Entry>)> {
    let dir = Path::new(DATA_DIR).to_path_buf();
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.csv")) else {
        println!("note: {DATA_DIR} not found; skipping the CWRU tests (they need ../shared next to the repository)");
        return None;
    };
    let entries = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            // The columns used come before the quoted `source_file`, so a plain split works.
            let cols: Vec<&str> = line.split(',').collect();
            Entry {
                file: cols[0].to_owned(),
                label: cols[1].to_owned(),
                rpm: cols[4].parse().expect("rpm"),
                sample_rate_hz: cols[5].parse().expect("sample_rate_hz"),
            }
        })
        .collect();
    Some((dir, entries))
}
