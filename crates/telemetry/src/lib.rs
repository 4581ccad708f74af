//! bosun's telemetry logic, free of IO so the pipeline service, the gateway and tests
//! share it:
//! - [`decode`]: JSON, CBOR and Protobuf payloads → one normalized message.
//! - [`rules`]: declarative rules (`SELECT … FROM telemetry WHERE …` plus ordered
//!   actions), parsed and evaluated over normalized messages.
//! - [`capture`]: raw sample chunks from a device reassembled into one capture.
//! - [`proto`]: `.proto` source text compiled to a descriptor set, for schemas
//!   registered at run time.
#![forbid(unsafe_code)]

pub mod capture;
pub mod decode;
pub mod proto;
pub mod rules;
