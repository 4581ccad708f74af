//! Protobuf schemas registered at run time, and which devices send what.
//!
//! A descriptor set (what `protoc --descriptor_set_out` writes) is checked by loading
//! it, then kept as `schemas/set-N.pb`; device → content type assignments live in
//! `schemas/devices.json`. At start both are loaded again, so a registered schema is
//! as durable as the registry. Nothing is compiled: `prost-reflect` decodes against the
//! descriptors (see `telemetry::decode::schema`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use telemetry::decode::{Format, SchemaRegistry};

use crate::files::write_atomically;

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
        let mut sets: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pb"))
            .collect();
        sets.sort();
        for path in sets {
            let loaded = fs::read(&path).map(|bytes| registry.register_descriptor_set(&bytes));
            if !matches!(loaded, Ok(Ok(_))) {
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

    /// Registers `bytes` in `registry` and, if it loads, keeps the file.
    pub(crate) fn add_set(
        &self,
        registry: &mut SchemaRegistry,
        bytes: &[u8],
    ) -> Result<Vec<String>, SchemaProblem> {
        let names = registry
            .register_descriptor_set(bytes)
            .map_err(|e| SchemaProblem::Invalid(e.to_string()))?;
        let n = fs::read_dir(&self.dir)?.count();
        write_atomically(&self.dir.join(format!("set-{n:06}.pb")), bytes)?;
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
