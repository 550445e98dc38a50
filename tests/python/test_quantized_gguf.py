"""dtype="auto" on the default GGUF against dtype="float32": perplexity and greedy tokens.

The default model is a Q4_1/Q8_0 GGUF. dtype="float32" dequantizes every block to fp32 at load
and computes in fp32, the path test_numerics.py checks against transformers. dtype="auto" keeps
the quantized blocks ("native") and multiplies them with int8-quantized activations (as
llama.cpp does), which saves memory and time but rounds every matmul's input. What these tests
pin down for the quantized path:

- quality: perplexity over the first 4096 tokens of tests/data/perplexity_text.txt (original
  prose, see tests/data/README.md), from prompt logprobs, within 1% (relative) of fp32;
- greedy decoding: for 32 new tokens on six prompts the two agree, or at the first mismatch
  each side's token is in the other's top-5 (the project's rule, test_numerics.TOP_K_RULE;
  exact equality, which test_numerics.py asks of fp32 against transformers, is too strict
  once activations are rounded);
- memory: the quantized weights are kept ("native") and take under a quarter of fp32's bytes.

Each engine is built once per module, used for everything, and freed before the next is built.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import NUM_THREADS, kv_bytes_per_token
from test_numerics import NUM_NEW_TOKENS, PROMPTS, TOP_K_RULE, _chat_prompt, _first_mismatch

from cadence.outputs import CompletionOutput

PERPLEXITY_TEXT = Path(__file__).resolve().parents[1] / "data" / "perplexity_text.txt"
PERPLEXITY_TOKENS = 4096
PERPLEXITY_RTOL = 0.01
# The prompt plus the one generated token; the KV cache holds that request alone (the greedy
# prompts below, ~600 tokens in all, fit in it too).
MAX_MODEL_LEN = PERPLEXITY_TOKENS + 1
KV_CACHE_TOKENS = PERPLEXITY_TOKENS + 64
DTYPES = ("float32", "auto")

# There is no list of six "foundation" prompts in the tests, so the six are the union of the
# two default-model prompt sets: test_numerics.PROMPTS (short, single_token, code, long, chat)
# and the chat-templated question of test_numerics.test_default_model_greedy_matches_hf_exactly
# (whose other three prompts are already in PROMPTS).
CHAT_QUESTION = "Give me three tips for staying focused while studying."
PROMPT_NAMES = (*PROMPTS, "chat_template")


@dataclass(frozen=True)
class DtypeRun:
    """What one engine computed, kept after the engine is freed."""

    weight_dtype: str
    weight_bytes: int
    perplexity: float
    perplexity_seconds: float
    greedy: dict[str, CompletionOutput]  # prompt name -> its 32 tokens, with top-5 logprobs


def perplexity(llm, token_ids: list[int]) -> float:
    """exp(-mean log p(token | the tokens before it)) over `token_ids`, from prompt logprobs
    (the first token has no context, so len(token_ids) - 1 predictions)."""
    from cadence import SamplingParams

    params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)
    [output] = llm.generate({"prompt_token_ids": token_ids}, params, use_tqdm=False)
    positions = output.prompt_logprobs
    assert positions is not None and len(positions) == len(token_ids)
    assert positions[0] is None
    # With prompt_logprobs=0 each entry holds just the actual token.
    logprobs = [
        entry[token].logprob for token, entry in zip(token_ids[1:], positions[1:], strict=True)
    ]
    return math.exp(-sum(logprobs) / len(logprobs))


def _prompts(llm) -> dict[str, list[int]]:
    texts = {**PROMPTS, "chat_template": _chat_prompt(llm, CHAT_QUESTION)}
    return {name: list(llm.get_tokenizer().encode(texts[name])) for name in PROMPT_NAMES}


def _run(model_path: str, dtype: str) -> DtypeRun:
    from cadence import LLM, SamplingParams, _core

    model_config = _core.load_gguf_model_config(model_path)
    model_config.finalize()
    llm = LLM(
        model=model_path,
        dtype=dtype,
        max_model_len=MAX_MODEL_LEN,
        kv_cache_memory_bytes=KV_CACHE_TOKENS * kv_bytes_per_token(model_config),
        num_threads=NUM_THREADS,
    )
    token_ids = list(llm.get_tokenizer().encode(PERPLEXITY_TEXT.read_text(encoding="utf-8")))
    assert len(token_ids) >= PERPLEXITY_TOKENS, f"{PERPLEXITY_TEXT.name} is too short"
    started = time.perf_counter()
    ppl = perplexity(llm, token_ids[:PERPLEXITY_TOKENS])
    seconds = time.perf_counter() - started

    prompts = _prompts(llm)
    params = SamplingParams(
        temperature=0.0, max_tokens=NUM_NEW_TOKENS, ignore_eos=True, logprobs=TOP_K_RULE
    )
    outputs = llm.generate(
        [{"prompt_token_ids": ids} for ids in prompts.values()], params, use_tqdm=False
    )
    run = DtypeRun(
        weight_dtype=str(llm.llm_engine.core.config.weight_dtype),
        weight_bytes=llm.llm_engine.core.weight_bytes,
        perplexity=ppl,
        perplexity_seconds=seconds,
        greedy={name: output.outputs[0] for name, output in zip(prompts, outputs, strict=True)},
    )
    del llm  # the engine's weights and KV cache go now, before the next engine is built
    gc.collect()
    return run


@pytest.fixture(scope="module")
def runs(default_model_path: str) -> dict[str, DtypeRun]:
    """dtype -> its run; one engine (~0.5 GiB of fp32 weights) alive at a time."""
    results = {dtype: _run(default_model_path, dtype) for dtype in DTYPES}
    for dtype, run in results.items():
        print(
            f"\ndtype={dtype}: weights {run.weight_dtype} ({run.weight_bytes / 2**20:.0f} MiB), "
            f"perplexity {run.perplexity:.4f} over {PERPLEXITY_TOKENS} tokens "
            f"({run.perplexity_seconds:.1f} s)"
        )
    return results


def test_perplexity_text_is_long_enough(gguf_tokenizer) -> None:
    text = PERPLEXITY_TEXT.read_text(encoding="utf-8")
    assert len(gguf_tokenizer.encode(text)) >= PERPLEXITY_TOKENS


def test_auto_perplexity_within_one_percent_of_float32(runs: dict[str, DtypeRun]) -> None:
    fp32, auto = runs["float32"], runs["auto"]
    # A sanity range for a 135M instruct model on plain prose: an off-by-one between the
    # logprobs and the tokens they score gives hundreds or more.
    assert 2.0 < fp32.perplexity < 50.0, f"fp32 perplexity {fp32.perplexity:.3f}"
    relative = abs(auto.perplexity - fp32.perplexity) / fp32.perplexity
    assert relative <= PERPLEXITY_RTOL, (
        f"perplexity auto {auto.perplexity:.4f} vs float32 {fp32.perplexity:.4f}: "
        f"{100 * relative:.2f}% apart (> {100 * PERPLEXITY_RTOL:g}%)"
    )
    # The quantized blocks are kept, so the comparison above was between two different
    # engines: Q4_1 is 5 bits a weight (4-bit codes, fp16 scale and min per 32) against 32.
    assert auto.weight_dtype == "native"
    assert auto.weight_bytes < fp32.weight_bytes / 4, (
        f"auto keeps weights as {auto.weight_dtype} but takes {auto.weight_bytes} bytes, "
        f"not under a quarter of fp32's {fp32.weight_bytes}"
    )


def _top_k(position: dict) -> set[int]:
    return {token for token, logprob in position.items() if logprob.rank <= TOP_K_RULE}


@pytest.mark.parametrize("prompt_name", PROMPT_NAMES)
def test_auto_greedy_agrees_with_float32(runs: dict[str, DtypeRun], prompt_name: str) -> None:
    """Equal, or at the first mismatch each side's token is in the other's top-5 at that
    position (same context on both sides up to there; after it the sequences diverge and are
    not compared)."""
    auto = runs["auto"].greedy[prompt_name]
    fp32 = runs["float32"].greedy[prompt_name]
    ours, theirs = list(auto.token_ids), list(fp32.token_ids)
    assert len(ours) == len(theirs) == NUM_NEW_TOKENS
    index = _first_mismatch(ours, theirs)
    agreed = NUM_NEW_TOKENS if index is None else index
    print(f"\n{prompt_name}: {agreed}/{NUM_NEW_TOKENS} leading greedy tokens agree")
    if index is None:
        return
    assert auto.logprobs is not None and fp32.logprobs is not None
    auto_top, fp32_top = _top_k(auto.logprobs[index]), _top_k(fp32.logprobs[index])
    context = f"first mismatch at new token {index}: auto {ours[index]}, float32 {theirs[index]}"
    assert ours[index] in fp32_top, f"{context}; auto's token not in float32's top-5 {fp32_top}"
    assert theirs[index] in auto_top, f"{context}; float32's token not in auto's top-5 {auto_top}"
