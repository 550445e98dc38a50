"""The step-time breakdown (CADENCE_PROFILE=1): off by default (nothing timed), and when on
every phase and kernel family that ran has time, the kernels fit inside the forward pass, and
profiling changes no output."""

from __future__ import annotations

import pytest
from conftest import NUM_THREADS

from cadence import LLM, SamplingParams

PARAMS = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
PROMPTS = ["The capital of France is", "Once upon a time"]


def _llm(path: str, monkeypatch: pytest.MonkeyPatch, profile: str | None) -> LLM:
    if profile is None:
        monkeypatch.delenv("CADENCE_PROFILE", raising=False)
    else:
        monkeypatch.setenv("CADENCE_PROFILE", profile)
    return LLM(model=path, num_threads=NUM_THREADS)


def _tokens(outputs) -> list[list[int]]:
    return [list(output.outputs[0].token_ids) for output in outputs]


def test_profile_is_off_by_default(tiny_models, monkeypatch) -> None:
    llm = _llm(tiny_models["llama_gqa"].path, monkeypatch, None)
    llm.generate(PROMPTS, PARAMS, use_tqdm=False)
    profile = llm.llm_engine.step_profile()
    assert profile["steps"] == 0
    assert profile["forward"] == profile["sampling"] == profile["output"] == 0.0
    assert set(profile["kernels"].values()) == {0.0}


def test_profile_times_every_phase_and_kernel_family(tiny_models, monkeypatch) -> None:
    path = tiny_models["llama_gqa"].path
    plain = _llm(path, monkeypatch, "0")
    profiled = _llm(path, monkeypatch, "1")
    expected = _tokens(plain.generate(PROMPTS, PARAMS, use_tqdm=False))
    assert _tokens(profiled.generate(PROMPTS, PARAMS, use_tqdm=False)) == expected
    profile = profiled.llm_engine.step_profile()
    assert profile["steps"] == 8  # both prompts prefill in step 1, then 7 decode steps
    for phase in ("schedule", "batch", "forward", "sampling", "output"):
        assert profile[phase] > 0.0, phase
    kernels = profile["kernels"]
    assert set(kernels) == {
        "embedding",
        "gemm",
        "lm_head",
        "attention",
        "norm",
        "rope",
        "activation",
        "residual",
    }
    for family, seconds in kernels.items():
        assert seconds > 0.0, family
    assert sum(kernels.values()) <= profile["forward"]
    profiled.llm_engine.reset_step_profile()
    assert profiled.llm_engine.step_profile()["steps"] == 0
