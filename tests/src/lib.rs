//! Whole-system tests live in `tests/tests/`: the control plane over real loopback sockets with a
//! stock Envoy and a stock grpcio client as peers. Run them with `scripts/test.sh`, which prepares
//! the peers.
