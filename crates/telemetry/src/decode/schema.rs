//! Schemas registered at run time: Protobuf message types, and which format a device (or
//! a device group) sends when its messages carry no content type.
//!
//! Protobuf types come from a `FileDescriptorSet` (what `protoc --descriptor_set_out`
//! or `buf build -o` writes, or what [`crate::proto::compile`] makes of `.proto` source
//! text), so a new device type needs no rebuild of bosun.

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, MessageDescriptor};

use super::Format;

/// Why a descriptor set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid FileDescriptorSet: {0}")]
pub struct SchemaError(String);

/// Registered Protobuf types and per-device / per-group formats. The pipeline owns one,
/// fills it from configuration, and hands it to the [`Decoder`](super::Decoder).
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    pool: DescriptorPool,
    devices: HashMap<String, Format>,
    groups: HashMap<String, Format>,
}

impl SchemaRegistry {
    /// An empty registry: no Protobuf types, no device formats.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every file of an encoded `FileDescriptorSet` and returns the full names of
    /// the message types it defines. Files already registered under the same name must
    /// be identical. On error nothing is added.
    pub fn register_descriptor_set(&mut self, bytes: &[u8]) -> Result<Vec<String>, SchemaError> {
        let mut pool = self.pool.clone();
        pool.decode_file_descriptor_set(bytes)
            .map_err(|e| SchemaError(e.to_string()))?;
        let before: Vec<String> = self
            .pool
            .all_messages()
            .map(|m| m.full_name().to_owned())
            .collect();
        let added = pool
            .all_messages()
            .map(|m| m.full_name().to_owned())
            .filter(|name| !before.contains(name))
            .collect();
        self.pool = pool;
        Ok(added)
    }

    /// The registered message type `full_name` (`pkg.Msg`; a leading `.` is accepted).
    pub fn message(&self, full_name: &str) -> Option<MessageDescriptor> {
        self.pool
            .get_message_by_name(full_name.strip_prefix('.').unwrap_or(full_name))
    }

    /// Declares the format device `device_id` sends when a message says nothing.
    pub fn set_device(&mut self, device_id: impl Into<String>, format: Format) {
        self.devices.insert(device_id.into(), format);
    }

    /// Forgets device `device_id`'s format (its group's applies again).
    pub fn remove_device(&mut self, device_id: &str) {
        self.devices.remove(device_id);
    }

    /// Declares the format of every device in `group` that has none of its own.
    pub fn set_group(&mut self, group: impl Into<String>, format: Format) {
        self.groups.insert(group.into(), format);
    }

    /// The format registered for a device: its own, else its group's.
    pub fn lookup(&self, device_id: &str, group: Option<&str>) -> Option<&Format> {
        self.devices
            .get(device_id)
            .or_else(|| group.and_then(|g| self.groups.get(g)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_format_wins_over_group() {
        let mut r = SchemaRegistry::new();
        r.set_group("pumps", Format::Cbor);
        r.set_device("d1", Format::FeaturesProtobuf);
        assert_eq!(
            r.lookup("d1", Some("pumps")),
            Some(&Format::FeaturesProtobuf)
        );
        assert_eq!(r.lookup("d2", Some("pumps")), Some(&Format::Cbor));
        assert_eq!(r.lookup("d2", None), None);
        r.remove_device("d1");
        assert_eq!(r.lookup("d1", Some("pumps")), Some(&Format::Cbor));
    }

    #[test]
    fn garbage_descriptor_sets_are_refused() {
        let mut r = SchemaRegistry::new();
        assert!(r.register_descriptor_set(&[0x0a, 0x05, 0x01]).is_err());
        assert!(r.message("acme.Reading").is_none());
    }
}
