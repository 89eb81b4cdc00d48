//! `mesh-proxy`: the standalone proxy for workloads that are not Rust — **not built yet**.
//!
//! It will put the same mesh-tower client and server stacks behind an outbound and an inbound
//! listener, fed by the same xDS client as the library. Until then this binary only says so and
//! exits with status 2, so nobody mistakes it for a working proxy.

fn main() {
    eprintln!("mesh-proxy is not built yet: use the library crates (see README.md)");
    std::process::exit(2);
}
