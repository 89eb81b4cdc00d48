# syntax=docker/dockerfile:1
#
# The mesh-control-plane image: a static (musl) binary on distroless, run as uid 65532.
#
# NOT BUILT OR TESTED HERE: the machine this was written on has no Docker daemon. The Helm chart
# (charts/mesh-control-plane) that deploys it was only rendered, linted and schema-validated
# offline (scripts/check_chart.py).
#
#   docker build -t mesh-control-plane:0.1.0 .
#
# The chart runs it as:
#   mesh-control-plane [--log-level info] [--log-json] serve --source kubernetes ...

FROM rust:1.95-bookworm AS builder

# musl-gcc for the C parts of dependencies (ring).
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*

# The image's toolchain is the pinned one (rust-toolchain.toml says 1.95.0); naming it here keeps
# rustup from fetching the toolchain file's extra components (rustfmt, clippy) for a release build.
ENV RUSTUP_TOOLCHAIN=1.95.0 \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    CC_x86_64_unknown_linux_musl=musl-gcc
RUN rustup target add x86_64-unknown-linux-musl

WORKDIR /src
# The whole workspace: cargo needs every member's manifest to resolve `-p control-plane`.
COPY . .

# Cache mounts keep the registry and the target folder between builds; the binary is copied out of
# the (cached, not layered) target folder in the same step, and refused if it is not static.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p control-plane --bin mesh-control-plane \
        --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/mesh-control-plane /mesh-control-plane \
 && ! ldd /mesh-control-plane 2>/dev/null | grep -q '=>'

FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=builder /mesh-control-plane /mesh-control-plane

# nonroot: uid/gid 65532, as the chart's securityContext expects.
USER 65532:65532
# 15010: gRPC (xDS + Istio CA service, TLS or plaintext); 15014: admin HTTP.
EXPOSE 15010 15014
ENTRYPOINT ["/mesh-control-plane"]
