#!/usr/bin/env bash
# Generates the cadence.v1 gRPC stubs into python/cadence/v1 (gitignored), for running from
# the source tree with PYTHONPATH=python. Installed builds generate them in CMake instead
# (cmake/grpc_python_stubs.cmake); both use grpcio-tools on protos/cadence/v1/*.proto.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=$(mktemp -d)
"$python" -m grpc_tools.protoc -I protos --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" protos/cadence/v1/*.proto
touch "$out/cadence/v1/__init__.py"
rm -rf python/cadence/v1
mv "$out/cadence/v1" python/cadence/v1
rm -rf "$out"
