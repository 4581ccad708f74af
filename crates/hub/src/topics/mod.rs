//! The MQTT topics of Azure IoT Hub and DPS that devices use, parsed (device to cloud) and
//! formatted (cloud to device), so the service matches on [`DeviceTopic`] instead of on
//! strings and devices built for Azure work unchanged.
//!
//! Layout: `parse` (incoming topics), `outgoing` (topics the hub publishes),
//! `property_bag` (the `k=v&...` encoding both use).

mod outgoing;
mod parse;
mod property_bag;

pub use outgoing::{c2d_topic, desired_patch, dps_response, method_request, twin_response};
pub use parse::parse;
pub use property_bag::{decode_property_bag, encode_property_bag};

/// A message a device published to one of the hub's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceTopic {
    /// `$iothub/twin/GET/?$rid=R`: the device asks for its twin.
    TwinGet {
        /// Request id, echoed in the response topic.
        rid: String,
    },
    /// `$iothub/twin/PATCH/properties/reported/?$rid=R`: a reported-properties patch.
    TwinPatchReported {
        /// Request id, echoed in the response topic.
        rid: String,
    },
    /// `$iothub/methods/res/{status}/?$rid=R`: the device's answer to a direct method.
    MethodResponse {
        /// Status the device chose.
        status: i32,
        /// The request id of the method call answered.
        rid: String,
    },
    /// `devices/{id}/messages/events/[property bag]`: telemetry.
    Telemetry {
        /// The device id in the topic (the broker checks it against the client).
        device_id: String,
        /// Application and system (`$.ct`, `$.ce`, ...) properties, decoded, in order.
        properties: Vec<(String, String)>,
    },
    /// `$dps/registrations/PUT/iotdps-register/?$rid=R`: a DPS registration request.
    DpsRegister {
        /// Request id, echoed in the response topic.
        rid: String,
    },
    /// `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=R&operationId=OP`.
    DpsPoll {
        /// Request id, echoed in the response topic.
        rid: String,
        /// The registration operation being polled.
        operation_id: String,
    },
}

/// Why a topic in the hub's namespaces is malformed; the broker refuses such publishes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// A required query parameter is absent or empty.
    #[error("missing {0} in the topic's query string")]
    MissingParameter(&'static str),
    /// The method response status is not a decimal `i32`.
    #[error("method response status {0:?} is not an integer")]
    BadStatus(String),
    /// `%` not followed by two hex digits, at this byte offset of the property bag.
    #[error("bad percent-encoding at byte {0} of the property bag")]
    BadPercentEncoding(usize),
    /// Percent-decoding produced bytes that are not UTF-8.
    #[error("percent-decoded property is not UTF-8")]
    InvalidUtf8,
    /// A property bag entry has no name (`=v`).
    #[error("property bag entry without a name")]
    EmptyPropertyName,
    /// `devices//messages/events`.
    #[error("empty device id in telemetry topic")]
    EmptyDeviceId,
    /// Under `$iothub/` or `$dps/`, but not a topic devices may publish to.
    #[error("not a device-to-cloud IoT Hub or DPS topic")]
    Unknown,
}
