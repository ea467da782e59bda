//! Compiles `proto/keyplan/v1/*.proto` with protox (pure Rust, so no system `protoc` is
//! needed to build the workspace), keeps the encoded descriptor set for gRPC reflection, and
//! generates the prost messages and tonic clients and servers from it.

use std::path::PathBuf;

use protox::prost::Message as _;

/// The API's files, relative to the proto root.
const FILES: &[&str] = &[
    "keyplan/v1/types.proto",
    "keyplan/v1/events.proto",
    "keyplan/v1/commands.proto",
    "keyplan/v1/event_store.proto",
    "keyplan/v1/accounts.proto",
    "keyplan/v1/operations.proto",
    "keyplan/v1/timeline.proto",
    "keyplan/v1/compliance.proto",
    "keyplan/v1/activity.proto",
    "keyplan/v1/audit.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in FILES {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    // Source info is kept (protox::compile does so) so that the proto comments become both
    // the rustdoc of the generated code and the documentation served by reflection.
    let fds = protox::compile(FILES, [&proto_root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("keyplan_descriptor.bin"), fds.encode_to_vec())?;

    // Every generated client and server uses `keyplan_proto::codec::KeyplanCodec`, which
    // refuses undecodable messages with INVALID_ARGUMENT (tonic-prost's codec says INTERNAL).
    tonic_prost_build::configure()
        .codec_path("crate::codec::KeyplanCodec")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
