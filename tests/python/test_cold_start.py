"""Cold start: `cadence generate` on the default model, as a person runs it from a shell, in a
fresh process whose peak RSS (its VmHWM) must stay under a bound.

What the bound allows: the weights as the engine keeps them (the GGUF's Q4_1/Q8_0 blocks,
~94 MiB) plus 104 MiB for everything else: the interpreter and its imports (transformers for
the tokenizer class, ~40 MiB), the tokenizer (~20 MiB), the KV pages and activations a 16-token
request touches, the logits, and what loading holds for a moment (one tensor's codes; the
loader returns freed heap to the OS per tensor). Measured: 177-181 MiB in all, ~85 MiB besides
the weights. llama.cpp on the same file: llama-simple peaks at 126 MiB, llama-completion at
308 MiB; the issue's target is 1.5x llama.cpp's, 189 MiB against llama-simple
(benchmarks/bench_cold_start.py compares them, and wall time, side by side).
Dequantizing to fp32 (513 MiB of weights), keeping a second copy of the weights, or committing
the whole KV cache up front (GiBs) would each break the bound. Wall time is not asserted here
(timing stays out of pass/fail tests); the benchmark reports it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

PROMPT = "Hello, my name is"
OTHER_BYTES = 104 << 20


# `cadence generate ...` (what the console script runs: cadence.cli.main), then the process's
# own peak RSS (VmHWM) on stderr. Measured inside the child on purpose: a child's ru_maxrss
# starts from its parent's RSS at fork (vfork shares it until exec), so a pytest process that
# holds models would be measured instead of the command.
_GENERATE_AND_REPORT_PEAK = """
import sys
from cadence.cli import main

code = main(sys.argv[1:])
sys.stdout.flush()
with open("/proc/self/status") as status:
    peak = next(line for line in status if line.startswith("VmHWM:"))
print("peak_rss_bytes", int(peak.split()[1]) * 1024, file=sys.stderr)
sys.exit(code)
"""


def _run_generate(model_path: str) -> tuple[str, str, int]:
    """(stdout, stderr, peak RSS bytes) of one `cadence generate` process."""
    arguments = [PROMPT, "--model", model_path, "--max-tokens", "16", "--temperature", "0"]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _GENERATE_AND_REPORT_PEAK,
            "generate",
            *arguments,
            "--num-threads",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"cadence generate exited {result.returncode}:\n{result.stderr}"
    peak = re.search(r"^peak_rss_bytes (\d+)$", result.stderr, re.MULTILINE)
    assert peak is not None, result.stderr
    return result.stdout, result.stderr, int(peak.group(1))


def test_cadence_generate_peak_rss_is_the_quantized_weights_plus_a_bound(
    default_model_path: str,
) -> None:
    stdout, stderr, peak = _run_generate(default_model_path)
    assert stdout.startswith(PROMPT) and len(stdout) > len(PROMPT) + 8
    # The start-up summary: the GGUF's blocks are kept ("native"), and their size in MiB.
    summary = re.search(r"weights=native \((\d+) MiB\)", stderr)
    assert summary is not None, stderr
    weight_bytes = int(summary.group(1)) << 20
    assert weight_bytes <= 1.1 * os.path.getsize(default_model_path)
    print(f"\ncadence generate: peak RSS {peak / 2**20:.0f} MiB, weights {weight_bytes >> 20} MiB")
    assert peak <= weight_bytes + OTHER_BYTES, (
        f"peak RSS {peak / 2**20:.0f} MiB > weights {weight_bytes / 2**20:.0f} MiB + "
        f"{OTHER_BYTES >> 20} MiB"
    )
