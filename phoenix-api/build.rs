//! Compiles the `phoenix.v1` protocol buffers into Rust with the protoc that the
//! `protoc-bin-vendored` crate ships, so building needs no system protoc.

use std::io;
use std::path::PathBuf;

const PROTOS: [&str; 3] = [
    "proto/phoenix/v1/common.proto",
    "proto/phoenix/v1/experiment.proto",
    "proto/phoenix/v1/pipeline.proto",
];

fn main() -> io::Result<()> {
    let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;
    // The well-known types (google/protobuf/timestamp.proto) ship beside the binary.
    let well_known = protoc_bin_vendored::include_path().map_err(io::Error::other)?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    // tonic-prost-build prints `cargo:rerun-if-changed` for every proto it compiles.
    let proto_root = PathBuf::from("proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(
            config,
            &PROTOS.map(PathBuf::from),
            &[proto_root, well_known],
        )
}
