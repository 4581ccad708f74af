//! Protobuf schemas registered at run time, and which devices send what.
//!
//! A schema arrives as a descriptor set (what `protoc --descriptor_set_out` writes) or
//! as `.proto` source text, which `telemetry::proto` compiles to one. Either is checked
//! by loading it, then kept as `schemas/set-N.pb`; the sources of a `.proto` schema are
//! kept beside it as `schemas/set-N.proto.json` (`{"name.proto": "text", …}`), so what
//! the operator wrote survives too, and a set whose `.pb` is missing is compiled again
//! from it at start. Device → content type assignments live in `schemas/devices.json`.
//! At start all are loaded again, so a registered schema is as durable as the
//! registry. `prost-reflect` decodes against the descriptors (see
//! `telemetry::decode::schema`); nothing is generated or rebuilt.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use telemetry::decode::{Format, SchemaRegistry};
use telemetry::proto::ProtoError;

use crate::files::write_atomically;
use crate::Pipeline;

/// Suffix of the file holding a `.proto` schema's sources.
const SOURCES: &str = ".proto.json";

/// The schema directory.
pub(crate) struct SchemaFiles {
    dir: PathBuf,
}

/// Why a schema or an assignment was refused.
#[derive(Debug, thiserror::Error)]
pub enum SchemaProblem {
    /// The descriptor set does not load.
    #[error("descriptor set refused: {0}")]
    Invalid(String),
    /// The `.proto` source does not compile (the error names file, line and column).
    #[error("{0}")]
    Proto(#[from] ProtoError),
    /// The content type is not one bosun decodes.
    #[error("content type {0:?} is not one bosun decodes (JSON, CBOR, the bosun feature formats, or application/x-protobuf; messageType=…)")]
    ContentType(String),
    /// A Protobuf message type no registered schema defines.
    #[error("no registered schema defines message type {0}")]
    UnknownMessage(String),
    /// Reading or writing the files.
    #[error("schema files: {0}")]
    Io(#[from] io::Error),
}

impl SchemaFiles {
    pub(crate) fn open(dir: &Path) -> io::Result<SchemaFiles> {
        fs::create_dir_all(dir)?;
        Ok(SchemaFiles {
            dir: dir.to_path_buf(),
        })
    }

    /// The registry as saved; files that no longer load are logged and skipped.
    pub(crate) fn load(&self) -> io::Result<SchemaRegistry> {
        let mut registry = SchemaRegistry::new();
        for (path, bytes) in self.saved_sets()? {
            if registry.register_descriptor_set(&bytes).is_err() {
                tracing::warn!(file = %path.display(), "skipping a schema file that does not load");
            }
        }
        for (device, content_type) in self.devices()? {
            match Format::from_content_type(&content_type) {
                Some(format) => registry.set_device(device, format),
                None => tracing::warn!(device, content_type, "skipping an unknown content type"),
            }
        }
        Ok(registry)
    }

    /// Every saved set in registration order with its descriptor bytes: the `.pb`, or
    /// for a `.proto` schema without one, its sources compiled again.
    fn saved_sets(&self) -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
        let mut stems: BTreeMap<u64, PathBuf> = BTreeMap::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if let Some(n) = set_number(&path) {
                stems
                    .entry(n)
                    .or_insert_with(|| self.dir.join(format!("set-{n:06}")));
            }
        }
        let mut sets = Vec::new();
        for stem in stems.into_values() {
            let pb = stem.with_extension("pb");
            let sources = PathBuf::from(format!("{}{SOURCES}", stem.display()));
            match fs::read(&pb) {
                Ok(bytes) => sets.push((pb, bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => match compile_saved(&sources) {
                    Ok(bytes) => sets.push((sources, bytes)),
                    Err(e) => {
                        tracing::warn!(file = %sources.display(), error = %e, "skipping schema sources that do not compile")
                    }
                },
                Err(e) => return Err(e),
            }
        }
        Ok(sets)
    }

    /// The number the next set is saved under: one past the highest so far.
    fn next_set(&self) -> io::Result<u64> {
        let mut next = 0;
        for entry in fs::read_dir(&self.dir)? {
            if let Some(n) = set_number(&entry?.path()) {
                next = next.max(n + 1);
            }
        }
        Ok(next)
    }

    /// Registers `bytes` in `registry` and, if it loads, keeps the file.
    pub(crate) fn add_set(
        &self,
        registry: &mut SchemaRegistry,
        bytes: &[u8],
    ) -> Result<Vec<String>, SchemaProblem> {
        let names = registry
            .register_descriptor_set(bytes)
            .map_err(|e| SchemaProblem::Invalid(e.to_string()))?;
        let n = self.next_set()?;
        write_atomically(&self.dir.join(format!("set-{n:06}.pb")), bytes)?;
        Ok(names)
    }

    /// Compiles `.proto` sources (file name → text), registers the result in
    /// `registry` and, if it loads, keeps the sources and the compiled set.
    pub(crate) fn add_proto(
        &self,
        registry: &mut SchemaRegistry,
        files: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, SchemaProblem> {
        let bytes = telemetry::proto::compile_to_bytes(files)?;
        let names = registry
            .register_descriptor_set(&bytes)
            .map_err(|e| SchemaProblem::Invalid(e.to_string()))?;
        let n = self.next_set()?;
        let sources = serde_json::to_vec_pretty(files).map_err(io::Error::other)?;
        write_atomically(&self.dir.join(format!("set-{n:06}{SOURCES}")), &sources)?;
        write_atomically(&self.dir.join(format!("set-{n:06}.pb")), &bytes)?;
        Ok(names)
    }

    /// Assigns `content_type` to `device` (or removes the assignment with `None`).
    pub(crate) fn assign(
        &self,
        registry: &mut SchemaRegistry,
        device: &str,
        content_type: Option<&str>,
    ) -> Result<(), SchemaProblem> {
        let mut devices = self.devices()?;
        match content_type {
            Some(ct) => {
                let format = Format::from_content_type(ct)
                    .ok_or_else(|| SchemaProblem::ContentType(ct.to_string()))?;
                if let Format::Protobuf(Some(name)) = &format {
                    if registry.message(name).is_none() {
                        return Err(SchemaProblem::UnknownMessage(name.clone()));
                    }
                }
                registry.set_device(device, format);
                devices.insert(device.to_string(), ct.to_string());
            }
            None => {
                registry.remove_device(device);
                devices.remove(device);
            }
        }
        let json = serde_json::to_vec_pretty(&devices).map_err(io::Error::other)?;
        write_atomically(&self.dir.join("devices.json"), &json)?;
        Ok(())
    }

    fn devices(&self) -> io::Result<BTreeMap<String, String>> {
        match fs::read(self.dir.join("devices.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }
}

/// `N` of `set-N.pb` or `set-N.proto.json`.
fn set_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("set-")?;
    let digits = rest
        .strip_suffix(".pb")
        .or_else(|| rest.strip_suffix(SOURCES))?;
    digits.parse().ok()
}

/// Saved `.proto` sources compiled again.
fn compile_saved(path: &Path) -> Result<Vec<u8>, SchemaProblem> {
    let text = fs::read(path)?;
    let files: BTreeMap<String, String> =
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(telemetry::proto::compile_to_bytes(&files)?)
}

impl Pipeline {
    /// Registers Protobuf types written as `.proto` source (file name as imports name
    /// it → text); the message types they define, fully named. A source that does not
    /// compile is refused with the file, line and column of the problem.
    pub fn register_proto(
        &self,
        files: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, SchemaProblem> {
        self.inner
            .change_schemas(|schema_files, registry| schema_files.add_proto(registry, files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READING: &str = "syntax = \"proto3\"; package acme; message Reading { double temp = 1; }";

    fn files(text: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("acme/reading.proto".to_owned(), text.to_owned())])
    }

    #[test]
    fn proto_sources_are_kept_and_reload_even_without_their_set() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let schemas = SchemaFiles::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let mut registry = SchemaRegistry::new();
        let names = schemas.add_proto(&mut registry, &files(READING));
        assert_eq!(names.ok(), Some(vec!["acme.Reading".to_owned()]));
        let bad = schemas.add_proto(
            &mut registry,
            &files("syntax = \"proto3\";\nmessage M { Nope n = 1; }"),
        );
        let text = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(text, "acme/reading.proto: line 2:13: unknown type `Nope`");
        assert!(dir.path().join("set-000000.proto.json").is_file());

        // Without the compiled set, the sources are compiled again at start.
        fs::remove_file(dir.path().join("set-000000.pb")).unwrap_or_else(|e| panic!("{e}"));
        let loaded = schemas.load().unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.message("acme.Reading").is_some());
        // And the next set does not overwrite them.
        assert_eq!(schemas.next_set().ok(), Some(1));
    }
}
