//! Benchmarks live in `benches/`: `cargo bench -p mesh-benches`. Every load benchmark compares
//! against the bare-hyper baseline measured in the same run; see BENCHMARKS.md.
