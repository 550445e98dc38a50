"""The C++ example (examples/generate_tokens.cc) generates with the core alone, and its
greedy tokens equal the Python API's. scripts/test.sh builds it and sets
CADENCE_EXAMPLE_BIN; outside that script the test is skipped with the reason."""

from __future__ import annotations

import os
import subprocess

import pytest

from cadence import LLM, SamplingParams
from cadence.model_source import default_model_path

EXAMPLE_BIN = os.environ.get("CADENCE_EXAMPLE_BIN", "")


@pytest.mark.skipif(
    not os.path.isfile(EXAMPLE_BIN),
    reason="CADENCE_EXAMPLE_BIN is not set to the built example (scripts/test.sh sets it)",
)
def test_cpp_example_matches_python_greedy(default_llm: LLM):
    # Both native weights (the example sets weight_dtype "native") and kv_cache_dtype "auto".
    prompt_ids = default_llm.get_tokenizer().encode("The capital of France is")
    num_new_tokens = 12
    completed = subprocess.run(
        [EXAMPLE_BIN, default_model_path(), str(num_new_tokens), *map(str, prompt_ids)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    cpp_tokens = [int(t) for t in completed.stdout.split()]
    params = SamplingParams(temperature=0, max_tokens=num_new_tokens, ignore_eos=True)
    python_tokens = (
        default_llm.generate({"prompt_token_ids": prompt_ids}, params, use_tqdm=False)[0]
        .outputs[0]
        .token_ids
    )
    assert cpp_tokens == python_tokens


@pytest.mark.skipif(not os.path.isfile(EXAMPLE_BIN), reason="CADENCE_EXAMPLE_BIN is not set")
def test_cpp_example_reports_bad_model_path():
    completed = subprocess.run(
        [EXAMPLE_BIN, "/nonexistent/model.gguf", "4", "1"], capture_output=True, text=True
    )
    assert completed.returncode == 1
    assert "cannot open /nonexistent/model.gguf" in completed.stderr
