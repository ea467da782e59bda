//! The gRPC API of Keyplan: the generated protobuf messages, clients and servers of package
//! `keyplan.v1` (from `proto/keyplan/v1/`), the encoded descriptor set for reflection, and the
//! conversions between the wire model and the domain model.
//!
//! The wire model mirrors the domain one to one, but is deliberately loose (strings for ids
//! and dates, `i32` for enums, every sub-message optional): [`convert`] is where wire values
//! are validated into domain values, so that the domain only ever sees well-formed types.

#![warn(missing_docs)]

/// Generated messages, enums, clients (`*_client`) and servers (`*_server`) of `keyplan.v1`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod pb {
    tonic::include_proto!("keyplan.v1");
}

pub mod codec;
pub mod convert;

pub use keyplan_domain::text::quote;

/// The encoded `google.protobuf.FileDescriptorSet` of the whole API (with imports and source
/// comments), for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/keyplan_descriptor.bin"));
