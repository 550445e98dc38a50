"""``kv_cache_dtype``: the KV cache's element type ("auto", "float32", "bfloat16", "float16").

The kernel-level contract (a bf16 / fp16 cache gives bit for bit the fp32 attention over the
rounded K/V, on every ISA path) is tested in tests/cpp/test_attention_kernel.cc. Here: the
option end to end on the default model (validation, what "auto" resolves to, bytes per token,
batch invariance with a bf16 cache, and how close bf16 / fp16 KV stay to fp32 KV).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import NUM_THREADS, make_default_llm

from cadence import LLM, SamplingParams, _core
from cadence.cli import build_parser, llm_kwargs

NUM_NEW_TOKENS = 16
TOP_K_RULE = 5  # ARCHITECTURE.md: at the first mismatch each side's token is in the other's top-k

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "<|im_start|>user\nGive me three tips for staying focused while studying.<|im_end|>\n"
    "<|im_start|>assistant\n",
    "The old lighthouse stood at the edge of the cliff, its white paint peeling after decades "
    "of salt wind. Every evening the keeper climbed the ninety-seven steps, trimmed the wick, "
    "and wrote three lines in the logbook: the weather, the ships he had seen, and one thing he "
    "was grateful for.",
]


def _cpu_has_avx512_bf16() -> bool:
    """What kernels/isa.cc checks, read from /proc/cpuinfo (x86 Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {"avx512f", "avx512bw", "avx512vl", "avx512_bf16"} <= flags
    except OSError:
        pass
    return False


@pytest.fixture(scope="module")
def kv_llms(default_model_path: str, default_llm_fp32_kv: LLM) -> dict[str, LLM]:
    """The default model (fp32 weights) with each explicit KV cache type."""
    llms = {"float32": default_llm_fp32_kv}
    for dtype in ("bfloat16", "float16"):
        llms[dtype] = make_default_llm(default_model_path, dtype, dtype="float32")
        assert llms[dtype].llm_engine.core.kv_cache_dtype == dtype
    return llms


def _greedy(llm: LLM, prompts: list[str], logprobs: int | None = None):
    params = SamplingParams(
        temperature=0.0, max_tokens=NUM_NEW_TOKENS, ignore_eos=True, logprobs=logprobs
    )
    return [output.outputs[0] for output in llm.generate(prompts, params, use_tqdm=False)]


# --------------------------------------------------------------------------- the option


@pytest.mark.parametrize("bad", ["fp8", "bf16", "float", "", None, 2])
def test_bad_kv_cache_dtype_is_a_value_error(bad) -> None:
    with pytest.raises(ValueError, match="kv_cache_dtype must be one of auto, float32, bfloat16"):
        LLM(kv_cache_dtype=bad)


def test_core_validates_kv_cache_dtype(default_model_path: str) -> None:
    """The C++ side checks it too: EngineConfig.kv_cache_dtype is an enum and a name is parsed
    by its one parse function (cadence::InvalidParameter -> InvalidParameterError)."""
    from cadence.errors import InvalidParameterError

    config = _core.EngineConfig()
    config.model_path = default_model_path
    with pytest.raises(
        InvalidParameterError, match="kv_cache_dtype must be one of auto, float32"
    ) as info:
        config.kv_cache_dtype = "fp8"
    assert info.value.param == "kv_cache_dtype"
    assert config.kv_cache_dtype == _core.KvCacheDtype.auto  # unchanged


def test_auto_resolves_by_cpu_and_bytes_per_token_halve(tiny_models) -> None:
    """ "auto" is bf16 exactly where the CPU has AVX-512 BF16; bf16 / fp16 blocks take half the
    bytes of fp32 ones, both with an explicit cache size (twice the blocks) and with the default
    sizing (max_num_seqs full-length sequences: the same blocks in half the bytes)."""
    path = tiny_models["llama_gqa"].path
    expected_auto = "bfloat16" if _cpu_has_avx512_bf16() else "float32"
    auto = LLM(model=path, num_threads=NUM_THREADS, kv_cache_memory_bytes=1 << 20)
    assert auto.llm_engine.core.kv_cache_dtype == expected_auto
    assert str(auto.llm_engine.core.config.kv_cache_dtype) == expected_auto  # resolved in config
    del auto

    model = tiny_models["llama_gqa"].hf_model.config
    head_dim = model.hidden_size // model.num_attention_heads
    fp32_bytes_per_token = 2 * model.num_hidden_layers * model.num_key_value_heads * head_dim * 4
    block_size = 16
    fp32_block_bytes = block_size * fp32_bytes_per_token
    stats = {}
    for dtype in ("float32", "bfloat16", "float16"):
        for sizing in ("explicit", "default"):
            extra = {"kv_cache_memory_bytes": 40 * fp32_block_bytes} if sizing == "explicit" else {}
            llm = LLM(
                model=path,
                kv_cache_dtype=dtype,
                num_threads=NUM_THREADS,
                max_model_len=256,
                max_num_seqs=2,
                block_size=block_size,
                **extra,
            )
            core = llm.llm_engine.core
            assert core.kv_cache_dtype == dtype
            stats[dtype, sizing] = (core.kv_cache_bytes, core.stats().num_total_blocks)
            del llm
    assert stats["float32", "explicit"] == (40 * fp32_block_bytes, 40)
    # Default sizing: max_num_seqs = 2 sequences of 256 tokens = 32 blocks.
    assert stats["float32", "default"] == (32 * fp32_block_bytes, 32)
    for dtype in ("bfloat16", "float16"):
        assert stats[dtype, "explicit"] == (40 * fp32_block_bytes, 80)  # twice the tokens
        assert stats[dtype, "default"] == (32 * fp32_block_bytes // 2, 32)  # half the bytes


def test_cli_passes_kv_cache_dtype() -> None:
    args = build_parser().parse_args(["serve", "--kv-cache-dtype", "bfloat16"])
    assert llm_kwargs(args)["kv_cache_dtype"] == "bfloat16"
    args = build_parser().parse_args(["generate", "hello"])
    assert llm_kwargs(args)["kv_cache_dtype"] == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--kv-cache-dtype", "fp8"])


# --------------------------------------------------------------------------- numerics


def test_bf16_kv_greedy_is_batch_invariant_bitwise(kv_llms: dict[str, LLM]) -> None:
    """A prompt's greedy tokens and their logprobs (float for float) do not depend on what else
    is in the batch, with a bf16 cache as with fp32: rounding happens per element when K/V are
    written, and attention reads every row in a fixed order."""
    llm = kv_llms["bfloat16"]
    prompts = PROMPTS + [f"Tell me about topic number {i}." * (i + 1) for i in range(4)]
    batch = _greedy(llm, prompts, logprobs=2)
    for index, prompt in enumerate(prompts):
        [alone] = _greedy(llm, [prompt], logprobs=2)
        assert list(alone.token_ids) == list(batch[index].token_ids), f"prompt {index} differs"
        for position, (ours, theirs) in enumerate(
            zip(alone.logprobs, batch[index].logprobs, strict=True)
        ):
            got = {t: lp.logprob for t, lp in ours.items()}
            expected = {t: lp.logprob for t, lp in theirs.items()}
            assert got == expected, f"prompt {index}, token {position}: logprobs differ"
    core = llm.llm_engine.core
    core.check_invariants()
    assert core.stats().num_free_blocks == core.stats().num_total_blocks


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16_bit_kv_greedy_close_to_fp32_kv(kv_llms: dict[str, LLM], dtype: str) -> None:
    """Greedy tokens with a 2-byte cache against an fp32 cache (same fp32 weights): equal, or at
    the first mismatch each side's token is in the other's top-k (the contexts are equal up to
    there, so the two top-k lists are over the same prefix). The first two prompts (short ones
    whose margins are large) must agree on all 16 tokens."""
    reference = _greedy(kv_llms["float32"], PROMPTS, logprobs=TOP_K_RULE)
    ours = _greedy(kv_llms[dtype], PROMPTS, logprobs=TOP_K_RULE)
    for index, (a, b) in enumerate(zip(ours, reference, strict=True)):
        a_ids, b_ids = list(a.token_ids), list(b.token_ids)
        if index < 2:
            assert a_ids == b_ids, f"prompt {index}: {dtype} KV {a_ids} != fp32 KV {b_ids}"
            continue
        mismatch = next(
            (i for i, (x, y) in enumerate(zip(a_ids, b_ids, strict=True)) if x != y), None
        )
        if mismatch is None:
            continue
        assert a_ids[mismatch] in b.logprobs[mismatch], (
            f"prompt {index}, token {mismatch}: {dtype} KV's token not in fp32 top-{TOP_K_RULE}"
        )
        assert b_ids[mismatch] in a.logprobs[mismatch], (
            f"prompt {index}, token {mismatch}: fp32 KV's token not in {dtype} top-{TOP_K_RULE}"
        )


# Max |logit difference| of a 2-byte cache against fp32 KV on the default model (30 layers,
# |logits| up to ~30). Rounding K and V to bf16 (8 significant bits) perturbs every value by
# up to 2^-9 relative, fp16 (11 bits) by 2^-12, 8x less; the perturbation passes through 30
# layers, so the bound is measured rather than derived: the worst case over PROMPTS was 0.124
# (bf16) and 0.015 (fp16, the expected 8x less; mean 0.015 / 0.002), and the bounds leave 4x
# headroom, while reading wrong bytes (a wrong element size or offset) moves logits by whole
# units.
LOGITS_ATOL = {"bfloat16": 0.5, "float16": 0.06}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16_bit_kv_logits_close_to_fp32_kv(kv_llms: dict[str, LLM], dtype: str) -> None:
    for prompt in PROMPTS:
        ids = list(kv_llms["float32"].get_tokenizer().encode(prompt))
        expected = np.asarray(kv_llms["float32"].llm_engine.core.compute_prompt_logits(ids))
        actual = np.asarray(kv_llms[dtype].llm_engine.core.compute_prompt_logits(ids))
        diff = np.abs(actual - expected)
        assert np.isfinite(actual).all()
        assert diff.max() <= LOGITS_ATOL[dtype], f"{prompt[:30]!r}: max |diff| {diff.max():.3g}"
        # The argmax agrees at every position, except at a near-tie the tolerance cannot resolve.
        ours, theirs = actual.argmax(-1), expected.argmax(-1)
        for pos in np.nonzero(ours != theirs)[0]:
            gap = expected[pos, theirs[pos]] - expected[pos, ours[pos]]
            assert gap <= 2 * LOGITS_ATOL[dtype], f"{prompt[:30]!r}: argmax differs at {pos}"
        assert diff.max() > 0.0, "the logits did not move: is the cache really 16-bit?"
