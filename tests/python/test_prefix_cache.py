"""Automatic prefix caching on the default model: a hit never changes the output (bitwise,
against the same engine with caching off), ``num_cached_tokens`` is exactly what the rule
predicts, salts isolate, and everything that exists (multi-turn chat, n > 1, beam search,
preemption under a small pool, prompt logprobs, reset) keeps working with it.

Expected values are never hard-coded: a run is compared with the uncached run, and the number
of cached tokens with what the block rule gives on the actual token ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DEFAULT_LLM_KV_TOKENS, DEFAULT_LLM_MAX_MODEL_LEN, NUM_THREADS

from cadence import LLM, SamplingParams
from cadence.sampling_params import BeamSearchParams

BLOCK_SIZE = 16
GREEDY = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
_TEXT = (Path(__file__).parent.parent / "data" / "perplexity_text.txt").read_text()
SYSTEM = "You are a careful assistant. Use this background:\n" + _TEXT[:900] + "\n\n"
QUESTIONS = [
    "Question: what is the main subject?",
    "Question: summarize the first sentence.",
    "Question: name one place mentioned.",
    "Question: what happened next?",
]


def _llm(model_path: str, enable_prefix_caching: bool, kv_tokens: int = DEFAULT_LLM_KV_TOKENS):
    from cadence import _core

    config = _core.load_gguf_model_config(model_path)
    config.finalize()
    kv_bytes_per_token = 2 * config.num_layers * config.num_kv_heads * config.head_dim * 4
    return LLM(
        model=model_path,
        max_model_len=DEFAULT_LLM_MAX_MODEL_LEN,
        kv_cache_memory_bytes=kv_tokens * kv_bytes_per_token,
        kv_cache_dtype="float32",
        num_threads=NUM_THREADS,
        enable_prefix_caching=enable_prefix_caching,
    )


@pytest.fixture(scope="module")
def cached(default_model_path: str) -> LLM:
    return _llm(default_model_path, True)


@pytest.fixture(scope="module")
def uncached(default_model_path: str) -> LLM:
    return _llm(default_model_path, False)


@pytest.fixture
def fresh(cached: LLM) -> LLM:
    """The caching engine with an empty cache."""
    cached.reset_prefix_cache()
    return cached


def _tokens(outputs) -> list[list[int]]:
    return [list(output.outputs[0].token_ids) for output in outputs]


def _expected_hit(prompt_ids: list[int], cached_ids: list[int]) -> int:
    """Tokens a prompt finds cached when the cache holds the full blocks of ``cached_ids``:
    whole blocks of the common prefix, leaving at least the last prompt token to compute."""
    common = 0
    for ours, theirs in zip(prompt_ids, cached_ids, strict=False):
        if ours != theirs:
            break
        common += 1
    return min(common // BLOCK_SIZE, (len(prompt_ids) - 1) // BLOCK_SIZE) * BLOCK_SIZE


def _assert_idle(llm: LLM) -> None:
    core = llm.llm_engine.core
    core.check_invariants()
    stats = core.stats()
    assert not core.has_unfinished_requests()
    assert stats.num_free_blocks == stats.num_total_blocks


def test_shared_system_prompt_hits_and_keeps_greedy_output(fresh: LLM, uncached: LLM) -> None:
    prompts = [SYSTEM + question for question in QUESTIONS]
    expected = uncached.generate(prompts, GREEDY, use_tqdm=False)
    [first] = fresh.generate(prompts[0], GREEDY, use_tqdm=False)
    assert first.num_cached_tokens == 0
    rest = fresh.generate(prompts[1:], GREEDY, use_tqdm=False)
    assert _tokens([first, *rest]) == _tokens(expected)
    # The first request's computed tokens: its prompt and all outputs but the last.
    computed = list(first.prompt_token_ids) + list(first.outputs[0].token_ids)[:-1]
    for output in rest:
        hit = _expected_hit(list(output.prompt_token_ids), computed)
        assert hit >= 10 * BLOCK_SIZE, "the shared system prompt spans many blocks"
        assert output.num_cached_tokens == hit
    for output in expected:
        assert output.num_cached_tokens == 0
    _assert_idle(fresh)


def test_multi_turn_chat_reuses_the_history(fresh: LLM, uncached: LLM) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=24)
    conversation = [{"role": "system", "content": SYSTEM}]
    for turn, question in enumerate(QUESTIONS[:3]):
        conversation.append({"role": "user", "content": question})
        [ours] = fresh.chat(conversation, params, use_tqdm=False)
        [reference] = uncached.chat(conversation, params, use_tqdm=False)
        assert list(ours.outputs[0].token_ids) == list(reference.outputs[0].token_ids)
        assert reference.num_cached_tokens == 0
        if turn > 0:  # everything up to the new user message was computed last turn
            assert ours.num_cached_tokens >= len(ours.prompt_token_ids) - 48
        conversation.append({"role": "assistant", "content": ours.outputs[0].text})
    _assert_idle(fresh)


def test_seeded_n_sampling_is_unchanged_by_hits(fresh: LLM, uncached: LLM) -> None:
    params = SamplingParams(n=3, temperature=0.9, top_p=0.95, seed=11, max_tokens=16)
    prompts = [SYSTEM + question for question in QUESTIONS[:2]]
    fresh.generate(prompts[0], GREEDY, use_tqdm=False)  # caches the system prompt
    ours = fresh.generate(prompts, params, use_tqdm=False)
    reference = uncached.generate(prompts, params, use_tqdm=False)
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine.num_cached_tokens > 0
        assert [list(c.token_ids) for c in mine.outputs] == [
            list(c.token_ids) for c in theirs.outputs
        ]
    _assert_idle(fresh)


def test_beam_search_is_unchanged_by_hits_and_caches_its_beams(fresh: LLM, uncached: LLM) -> None:
    # 24 tokens: at least one block past the prompt is full whatever the prompt length.
    params = BeamSearchParams(beam_width=3, max_tokens=24, ignore_eos=True)
    prompts = [{"prompt": SYSTEM + question} for question in QUESTIONS[:2]]
    fresh.generate(prompts[0]["prompt"], GREEDY, use_tqdm=False)
    ours = fresh.beam_search(prompts, params)
    reference = uncached.beam_search(prompts, params)
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine.num_cached_tokens > 0 and theirs.num_cached_tokens == 0
        assert [s.tokens for s in mine.sequences] == [s.tokens for s in theirs.sequences]
    # The best beam's blocks stayed cached: a prompt continuing it hits beyond the prompt.
    best = list(ours[0].sequences[0].tokens)
    prompt_ids = fresh.get_tokenizer().encode(prompts[0]["prompt"])
    [again] = fresh.generate({"prompt_token_ids": prompt_ids + best}, GREEDY, use_tqdm=False)
    assert again.num_cached_tokens > len(prompt_ids) // BLOCK_SIZE * BLOCK_SIZE
    _assert_idle(fresh)


def test_preemption_under_a_small_pool_keeps_output(default_model_path: str, uncached: LLM) -> None:
    small = _llm(default_model_path, True, kv_tokens=640)
    prompts = [SYSTEM + question for question in QUESTIONS]
    params = SamplingParams(temperature=0.0, max_tokens=64, ignore_eos=True)
    expected = _tokens(uncached.generate(prompts, params, use_tqdm=False))
    small.generate(prompts[0], GREEDY, use_tqdm=False)
    outputs = small.generate(prompts * 2, params, use_tqdm=False)
    stats = small.llm_engine.core.stats()
    assert stats.num_preemptions > 0, "the pool was meant to overflow"
    assert stats.prefix_cache_hits > 0
    assert _tokens(outputs) == expected * 2
    _assert_idle(small)


def test_prompt_logprobs_are_computed_not_skipped(fresh: LLM, uncached: LLM) -> None:
    prompt = SYSTEM + QUESTIONS[0]
    fresh.generate(prompt, GREEDY, use_tqdm=False)
    params = SamplingParams(temperature=0.0, max_tokens=4, prompt_logprobs=2)
    [ours] = fresh.generate(prompt, params, use_tqdm=False)
    [reference] = uncached.generate(prompt, params, use_tqdm=False)
    assert ours.num_cached_tokens == 0
    assert ours.prompt_logprobs == reference.prompt_logprobs
    assert list(ours.outputs[0].token_ids) == list(reference.outputs[0].token_ids)


def test_different_salts_do_not_share(fresh: LLM) -> None:
    prompt = SYSTEM + QUESTIONS[0]
    fresh.generate({"prompt": prompt, "cache_salt": "tenant-a"}, GREEDY, use_tqdm=False)
    [other] = fresh.generate({"prompt": prompt, "cache_salt": "tenant-b"}, GREEDY, use_tqdm=False)
    [unsalted] = fresh.generate(prompt, GREEDY, use_tqdm=False)
    [same] = fresh.generate({"prompt": prompt, "cache_salt": "tenant-a"}, GREEDY, use_tqdm=False)
    assert other.num_cached_tokens == 0
    assert unsalted.num_cached_tokens == 0
    assert same.num_cached_tokens > 0
    assert _tokens([other]) == _tokens([unsalted]) == _tokens([same])


def test_cache_salt_must_be_a_string(fresh: LLM) -> None:
    with pytest.raises(ValueError, match="cache_salt"):
        fresh.generate({"prompt": "hi", "cache_salt": 5}, GREEDY, use_tqdm=False)
    _assert_idle(fresh)


def test_reset_and_counters(fresh: LLM) -> None:
    prompt = SYSTEM + QUESTIONS[1]
    before = fresh.llm_engine.core.stats()
    [first] = fresh.generate(prompt, GREEDY, use_tqdm=False)
    [second] = fresh.generate(prompt, GREEDY, use_tqdm=False)
    num_prompt = len(first.prompt_token_ids)
    assert second.num_cached_tokens == (num_prompt - 1) // BLOCK_SIZE * BLOCK_SIZE
    after = fresh.llm_engine.core.stats()
    assert after.prefix_cache_queries - before.prefix_cache_queries == 2 * num_prompt
    assert after.prefix_cache_hits - before.prefix_cache_hits == second.num_cached_tokens
    assert after.num_cached_blocks > 0
    assert fresh.reset_prefix_cache() is True
    assert fresh.llm_engine.core.stats().num_cached_blocks == 0
    [third] = fresh.generate(prompt, GREEDY, use_tqdm=False)
    assert third.num_cached_tokens == 0
    assert _tokens([first]) == _tokens([second]) == _tokens([third])


def test_caching_off_never_hits(uncached: LLM) -> None:
    prompt = SYSTEM + QUESTIONS[2]
    outputs = uncached.generate([prompt, prompt], GREEDY, use_tqdm=False)
    outputs += uncached.generate(prompt, GREEDY, use_tqdm=False)
    assert [output.num_cached_tokens for output in outputs] == [0, 0, 0]
    stats = uncached.llm_engine.core.stats()
    assert stats.num_cached_blocks == 0 and stats.prefix_cache_queries == 0


def test_enable_prefix_caching_must_be_a_bool(default_model_path: str) -> None:
    with pytest.raises(ValueError, match="enable_prefix_caching"):
        LLM(model=default_model_path, enable_prefix_caching="yes")
