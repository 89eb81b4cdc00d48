//! Example config and, with issue 8, the runnable demo services.
//!
//! `examples/config/` holds a bookinfo-style mesh for the directory source:
//! `cargo run -p control-plane --bin mesh-control-plane -- serve --config-dir examples/config`.
