//! The `phoenix.v1` messages, clients and servers compiled from `proto/phoenix/v1/*.proto`.
#![allow(
    missing_docs,
    unused_qualifications,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic
)]

tonic::include_proto!("phoenix.v1");
