"""Output assembly in the Python engine: logprobs, prompt_logprobs, cumulative_logprob,
n > 1 grouping, truncate_prompt_tokens, detokenize=False. First with fake core outputs (the
assembly alone), then through the real engine."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from cadence import LLM, SamplingParams, _core
from cadence.engine.request_state import RequestState
from cadence.outputs import Logprob


def _entry(token_id: int, logprob: float, rank: int, top: list[tuple[int, float]]):
    return SimpleNamespace(
        token_id=token_id,
        logprob=logprob,
        rank=rank,
        top_token_ids=[t for t, _ in top],
        top_logprobs=[lp for _, lp in top],
    )


def _core_output(index: int, ids: list[int], finished: bool = False, **extra):
    fields = dict(
        request_id="r",
        sequence_index=index,
        new_token_ids=ids,
        new_logprobs=[],
        prompt_logprobs=[],
        finished=finished,
        finish_reason=_core.FinishReason.LENGTH if finished else _core.FinishReason.NONE,
        stop_token_id=-1,
        num_cached_tokens=0,
    )
    fields.update(extra)
    return SimpleNamespace(**fields)


def _decode(token_id: int) -> str:
    return f"<{token_id}>"


# --------------------------------------------------------------------------- assembly, fake core


def test_logprobs_hold_sampled_and_top_k_with_decoded_tokens(gguf_tokenizer) -> None:
    params = SamplingParams(logprobs=2, max_tokens=2, detokenize=True)
    state = RequestState("r", "p", [1, 2, 3], params, gguf_tokenizer)
    first = _entry(10, -1.5, 3, [(11, -0.5), (12, -1.0)])  # sampled outside the top 2
    second = _entry(11, -0.25, 1, [(11, -0.25), (13, -2.0)])  # sampled is the best
    state.on_core_output(_core_output(0, [10], new_logprobs=[first]), _decode)
    state.on_core_output(_core_output(0, [11], True, new_logprobs=[second]), _decode)
    completion = state.snapshot().outputs[0]
    assert completion.logprobs == [
        {10: Logprob(-1.5, 3, "<10>"), 11: Logprob(-0.5, 1, "<11>"), 12: Logprob(-1.0, 2, "<12>")},
        {11: Logprob(-0.25, 1, "<11>"), 13: Logprob(-2.0, 2, "<13>")},
    ]
    assert list(completion.logprobs[0]) == [10, 11, 12]  # sampled first, then best first
    assert completion.cumulative_logprob == pytest.approx(-1.75)


def test_no_logprobs_requested_means_none(gguf_tokenizer) -> None:
    state = RequestState("r", "p", [1, 2], SamplingParams(), gguf_tokenizer)
    state.on_core_output(_core_output(0, [10], True), _decode)
    output = state.snapshot()
    assert output.outputs[0].logprobs is None
    assert output.outputs[0].cumulative_logprob is None
    assert output.prompt_logprobs is None
    assert output.num_cached_tokens == 0


def test_prompt_logprobs_start_with_none(gguf_tokenizer) -> None:
    params = SamplingParams(prompt_logprobs=1)
    state = RequestState("r", "p", [5, 6, 7], params, gguf_tokenizer)
    prompt = [_entry(6, -3.0, 4, [(9, -0.1)]), _entry(7, -0.2, 1, [(7, -0.2)])]
    state.on_core_output(_core_output(0, [10], prompt_logprobs=prompt), _decode)
    state.on_core_output(_core_output(0, [11], True), _decode)
    assert state.snapshot().prompt_logprobs == [
        None,
        {6: Logprob(-3.0, 4, "<6>"), 9: Logprob(-0.1, 1, "<9>")},
        {7: Logprob(-0.2, 1, "<7>")},
    ]


def test_n_sequences_are_grouped_and_finish_together(gguf_tokenizer) -> None:
    params = SamplingParams(n=3, max_tokens=2)
    state = RequestState("r", "p", [1, 2], params, gguf_tokenizer)
    state.on_core_output(_core_output(1, [100]), _decode)
    state.on_core_output(_core_output(0, [200], True), _decode)
    output = state.snapshot()
    assert [o.index for o in output.outputs] == [0, 1, 2]
    assert [o.token_ids for o in output.outputs] == [[200], [100], []]
    assert output.outputs[0].finished() and not output.finished
    state.on_core_output(_core_output(1, [101], True), _decode)
    state.on_core_output(_core_output(2, [300, 301], True), _decode)
    assert state.snapshot().finished and state.is_core_finished


def test_stop_string_finishes_one_of_n_and_ignores_its_later_tokens(gguf_tokenizer) -> None:
    hello = gguf_tokenizer.encode(" hello", add_special_tokens=False)
    world = gguf_tokenizer.encode(" world", add_special_tokens=False)
    params = SamplingParams(n=2, stop="wor", max_tokens=16)
    state = RequestState("r", "p", [1, 2], params, gguf_tokenizer)
    state.on_core_output(_core_output(0, hello), _decode)
    state.on_core_output(_core_output(0, world), _decode)
    state.on_core_output(_core_output(1, hello), _decode)
    first = state.snapshot().outputs[0]
    assert first.text == " hello " and first.finish_reason == "stop" and first.stop_reason == "wor"
    state.on_core_output(_core_output(0, hello), _decode)  # sent before the abort took effect
    assert state.snapshot().outputs[0].token_ids == hello + world
    assert not state.is_finished and not state.is_core_finished


def test_detokenize_false_keeps_text_empty(gguf_tokenizer) -> None:
    params = SamplingParams(detokenize=False, logprobs=0)
    state = RequestState("r", "p", [1, 2], params, gguf_tokenizer)
    entry = _entry(10, -1.0, 2, [])
    state.on_core_output(_core_output(0, [10], True, new_logprobs=[entry]), lambda _: None)
    completion = state.snapshot().outputs[0]
    assert completion.text == "" and completion.token_ids == [10]
    assert completion.logprobs == [{10: Logprob(-1.0, 2, None)}]


# --------------------------------------------------------------------------- the real engine

PROMPT = "The capital of France is"


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_greedy_logprobs_through_the_engine(default_llm: LLM) -> None:
    params = SamplingParams(temperature=0, max_tokens=5, logprobs=3, ignore_eos=True)
    completion = default_llm.generate(PROMPT, params, use_tqdm=False)[0].outputs[0]
    assert completion.logprobs is not None and len(completion.logprobs) == 5
    total = 0.0
    tokenizer = default_llm.get_tokenizer()
    for token_id, position in zip(completion.token_ids, completion.logprobs, strict=True):
        assert token_id in position and len(position) == 3  # greedy: sampled is in the top 3
        sampled = position[token_id]
        assert sampled.rank == 1
        assert sampled.decoded_token == tokenizer.decode([token_id])
        ranks = sorted(lp.rank for lp in position.values())
        assert ranks == [1, 2, 3]
        values = [lp.logprob for lp in position.values()]
        assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        total += sampled.logprob
    assert completion.cumulative_logprob == pytest.approx(total, abs=1e-4)


def test_logprobs_are_the_raw_model_distribution(default_llm: LLM) -> None:
    """Temperature and penalties do not change the reported logprobs."""
    engine = default_llm.llm_engine
    prompt_ids = engine.tokenize(PROMPT)
    logits = np.asarray(engine.core.compute_prompt_logits(prompt_ids), dtype=np.float64)
    expected = _log_softmax(logits.reshape(len(prompt_ids), -1))[-1]
    for extra in ({"temperature": 0}, {"temperature": 1.7, "repetition_penalty": 1.5, "seed": 3}):
        params = SamplingParams(max_tokens=1, logprobs=2, **extra)
        completion = default_llm.generate(PROMPT, params, use_tqdm=False)[0].outputs[0]
        token_id = completion.token_ids[0]
        assert completion.logprobs[0][token_id].logprob == pytest.approx(
            expected[token_id], abs=1e-3
        )


def test_prompt_logprobs_through_the_engine(default_llm: LLM) -> None:
    engine = default_llm.llm_engine
    prompt_ids = engine.tokenize(PROMPT)
    params = SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=2)
    output = default_llm.generate(PROMPT, params, use_tqdm=False)[0]
    assert output.prompt_logprobs is not None
    assert len(output.prompt_logprobs) == len(prompt_ids)
    assert output.prompt_logprobs[0] is None
    logits = np.asarray(engine.core.compute_prompt_logits(prompt_ids), dtype=np.float64)
    expected = _log_softmax(logits.reshape(len(prompt_ids), -1))
    for position, (token_id, entry) in enumerate(
        zip(prompt_ids[1:], output.prompt_logprobs[1:], strict=True), start=1
    ):
        assert token_id in entry and 2 <= len(entry) <= 3
        assert entry[token_id].logprob == pytest.approx(expected[position - 1, token_id], abs=1e-3)
        assert not math.isnan(entry[token_id].logprob)


def test_logprobs_above_max_logprobs_is_an_error(default_llm: LLM) -> None:
    with pytest.raises(ValueError, match="logprobs"):
        default_llm.generate(PROMPT, SamplingParams(logprobs=21), use_tqdm=False)
    with pytest.raises(ValueError, match="prompt_logprobs"):
        default_llm.generate(PROMPT, SamplingParams(prompt_logprobs=21), use_tqdm=False)
    assert not default_llm.llm_engine.has_unfinished_requests()


def test_n_sequences_through_the_engine(default_llm: LLM) -> None:
    params = SamplingParams(n=3, temperature=1.0, seed=7, max_tokens=6, ignore_eos=True)
    output = default_llm.generate(PROMPT, params, use_tqdm=False)[0]
    assert output.finished and [o.index for o in output.outputs] == [0, 1, 2]
    assert all(len(o.token_ids) == 6 and o.finish_reason == "length" for o in output.outputs)
    assert len({tuple(o.token_ids) for o in output.outputs}) > 1  # independent streams
    again = default_llm.generate(PROMPT, params, use_tqdm=False)[0]
    assert [o.token_ids for o in again.outputs] == [o.token_ids for o in output.outputs]
    tokenizer = default_llm.get_tokenizer()
    for completion in output.outputs:
        assert completion.text == tokenizer.decode(completion.token_ids, skip_special_tokens=True)


def test_seeded_output_does_not_depend_on_the_batch(default_llm: LLM) -> None:
    params = SamplingParams(temperature=1.0, seed=11, max_tokens=8, ignore_eos=True)
    alone = default_llm.generate(PROMPT, params, use_tqdm=False)[0].outputs[0].token_ids
    others = SamplingParams(temperature=1.0, max_tokens=12, n=2)
    batch = default_llm.generate(
        ["Hello", PROMPT, "Once upon a time"], [others, params, others], use_tqdm=False
    )
    assert batch[1].outputs[0].token_ids == alone


def test_truncate_prompt_tokens_keeps_the_last_tokens(default_llm: LLM) -> None:
    engine = default_llm.llm_engine
    ids = engine.tokenize(PROMPT)
    params = SamplingParams(temperature=0, max_tokens=4, truncate_prompt_tokens=3)
    output = default_llm.generate(PROMPT, params, use_tqdm=False)[0]
    assert output.prompt_token_ids == ids[-3:]
    direct = default_llm.generate(
        {"prompt_token_ids": ids[-3:]}, SamplingParams(temperature=0, max_tokens=4), use_tqdm=False
    )[0]
    assert output.outputs[0].token_ids == direct.outputs[0].token_ids


def test_detokenize_false_through_the_engine(default_llm: LLM) -> None:
    params = SamplingParams(temperature=0, max_tokens=4, detokenize=False, logprobs=1)
    completion = default_llm.generate(PROMPT, params, use_tqdm=False)[0].outputs[0]
    assert completion.text == "" and len(completion.token_ids) >= 1
    assert all(lp.decoded_token is None for pos in completion.logprobs for lp in pos.values())


def test_bad_words_through_the_engine(default_llm: LLM) -> None:
    greedy = SamplingParams(temperature=0, max_tokens=3, ignore_eos=True)
    first = default_llm.generate(PROMPT, greedy, use_tqdm=False)[0].outputs[0]
    word = default_llm.get_tokenizer().decode(first.token_ids[:1]).strip()
    banned = SamplingParams(temperature=0, max_tokens=3, ignore_eos=True, bad_words=[word])
    other = default_llm.generate(PROMPT, banned, use_tqdm=False)[0].outputs[0]
    assert other.token_ids[0] != first.token_ids[0]
