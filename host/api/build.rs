//! Compiles the control API's protobuf definition into Rust (client and server) with protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/hoist/control/v1/control.proto";
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure()
        // A secret's value must never reach a log line through `{:?}`: Debug is written by hand.
        .skip_debug([".hoist.control.v1.Secret"])
        .compile_protos(&[proto], &["proto"])?;
    Ok(())
}
