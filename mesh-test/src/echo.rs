//! The echo protocol used by the gRPC interop tests (`proto/echo.proto`).

/// Generated protobuf messages and tonic client/server for `mesh.test.echo.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("mesh.test.echo.v1");
}

/// The full gRPC path of the unary `Echo` method, as peers outside Rust call it.
pub const ECHO_METHOD: &str = "/mesh.test.echo.v1.Echo/Echo";
