#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up, lint and format checks, the C++ tests
# (ctest) with the C++ example, then the Python tests (unit, numerics vs HF transformers).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --dev
venv=.venv/bin

echo "== lint and format"
"$venv/ruff" check .
"$venv/ruff" format --check .
mapfile -t cpp_files < <(git ls-files -co --exclude-standard -- '*.h' '*.cc' '*.cu' '*.cuh')
"$venv/clang-format" --dry-run --Werror "${cpp_files[@]}"

echo "== C++ build (warnings are errors) and ctest"
"$venv/cmake" -S . -B build/ctest -G Ninja -DCMAKE_MAKE_PROGRAM="$PWD/$venv/ninja" \
  -DCADENCE_BUILD_TESTS=ON -DCADENCE_BUILD_EXAMPLES=ON -DCADENCE_WERROR=ON >/dev/null
"$venv/cmake" --build build/ctest -j "$(nproc)"
"$venv/ctest" --test-dir build/ctest --output-on-failure

echo "== Python tests"
CADENCE_EXAMPLE_BIN="$PWD/build/ctest/examples/generate_tokens" \
  "$venv/python" -m pytest tests/python -q -p no:cacheprovider
