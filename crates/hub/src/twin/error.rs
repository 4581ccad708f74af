//! Why a twin operation was refused. Every message starts with the JSON path at fault
//! (`properties.desired.a.b: key contains '.'`) so an operator can fix the request
//! without reading code.

/// What is wrong with one property name. Azure's rules, which keep names usable as query
/// paths and keep `$version`/`$metadata` unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// An empty name cannot be addressed in a query.
    #[error("key is empty")]
    Empty,
    /// Longer than [`super::Limits::max_key_len`] bytes (UTF-8).
    #[error("key is {len} bytes long (max {max})")]
    TooLong {
        /// Length of the key in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A forbidden character: `.` separates query paths, `$` marks reserved keys,
    /// a space would not parse in a query.
    #[error("key contains '{0}'")]
    Forbidden(char),
    /// A control character (U+0000–U+001F, U+007F–U+009F).
    #[error("key contains control character U+{0:04X}")]
    Control(u32),
}

/// Why a twin was not created, changed or loaded. On any error the twin is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    /// The device id is empty; a twin must belong to a device.
    #[error("deviceId: must not be empty")]
    EmptyDeviceId,
    /// A patch (or a part of one) that must be an object is something else.
    #[error("{path}: must be a JSON object")]
    NotAnObject {
        /// Where the non-object was found.
        path: String,
    },
    /// A property name breaks the naming rules.
    #[error("{path}: {problem}")]
    InvalidKey {
        /// The path of the offending key, the key included.
        path: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// Objects or arrays nested deeper than [`super::Limits::max_depth`] below the section.
    #[error("{path}: nested deeper than {max} levels")]
    TooDeep {
        /// The first value found too deep.
        path: String,
        /// The limit.
        max: usize,
    },
    /// The section would be larger than [`super::Limits::max_section_bytes`] once patched.
    #[error("{section}: {size} bytes after the patch (max {max})")]
    SectionTooLarge {
        /// `tags`, `properties.desired` or `properties.reported`.
        section: &'static str,
        /// Serialized size it would have had.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A service patch named something other than `tags` or `properties.desired`
    /// (reported properties belong to the device).
    #[error("{path}: not allowed in a service patch (only tags and properties.desired)")]
    NotPatchable {
        /// The offending member.
        path: String,
    },
    /// Stored twin text could not be read back.
    #[error("stored twin is unreadable: {0}")]
    Storage(#[from] serde_json::Error),
    /// Stored twin text has a format version this code does not know.
    #[error("stored twin has unknown format {0}")]
    UnknownFormat(u32),
}
