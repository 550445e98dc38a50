"""Native beam search (``LLM.beam_search``): against transformers' beam search, against an
exact reference search written here over HF logits, block sharing, mixing with sampling
requests, preemption, and parameter errors."""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import EOS_TOKEN_ID, NUM_THREADS, TinyModel, hf_prompt_logits

from cadence import LLM, SamplingParams
from cadence.beam_search import BeamSearchOutput
from cadence.sampling_params import BeamSearchParams

PROMPTS = ["The capital of France is", "Hello, my name is", "def fibonacci(n):"]


def hf_beam_search(model: Any, prompt_token_ids: list[int], width: int, max_new_tokens: int):
    """transformers' beam search for exactly max_new_tokens tokens with EOS an ordinary token
    (cadence's ignore_eos=True): the width hypotheses' new token ids, best first."""
    import torch

    config = copy.deepcopy(model.generation_config)
    config.do_sample = False
    config.num_beams = width
    config.num_return_sequences = width
    config.max_new_tokens = max_new_tokens
    config.eos_token_id = []  # no stopping; None would be refilled from the model's config
    config.length_penalty = 1.0
    input_ids = torch.tensor([prompt_token_ids], dtype=torch.long)
    with torch.no_grad():
        out = model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config
        )
    return [row[len(prompt_token_ids) :].tolist() for row in out]


def generated_ids(output: BeamSearchOutput) -> list[list[int]]:
    return [sequence.tokens for sequence in output.sequences]


@pytest.mark.slow
@pytest.mark.parametrize("width", [1, 2, 4, 8])
def test_default_model_matches_hf_beam_search(default_llm_fp32_kv, hf_default_model, width) -> None:
    default_llm = default_llm_fp32_kv  # the HF-exact path: fp32 weights and KV cache
    prompts = PROMPTS[:2]
    params = BeamSearchParams(beam_width=width, max_tokens=12, ignore_eos=True)
    outputs = default_llm.beam_search([{"prompt": p} for p in prompts], params)
    tokenizer = default_llm.get_tokenizer()
    for prompt, output in zip(prompts, outputs, strict=True):
        expected = hf_beam_search(hf_default_model, tokenizer.encode(prompt), width, 12)
        assert generated_ids(output) == expected, prompt
        assert [s.text for s in output.sequences] == [
            tokenizer.decode(ids, skip_special_tokens=True) for ids in expected
        ]


@pytest.mark.parametrize("width", [1, 2, 4, 8])
def test_tiny_model_matches_hf_beam_search(tiny_models, width) -> None:
    tiny = tiny_models["llama_gqa"]
    # fp32 KV cache: compared with HF fp32 beam search, whose choices hinge on small gaps
    # between cumulative logprobs ("auto" would be bf16 on CPUs with AVX-512 BF16).
    llm = _tiny_llm(tiny.path, kv_cache_dtype="float32")
    prompt_ids = [1, 400, 2301, 77, 9000, 13]
    params = BeamSearchParams(beam_width=width, max_tokens=10, ignore_eos=True)
    (output,) = llm.beam_search([{"prompt_token_ids": prompt_ids}], params)
    assert generated_ids(output) == hf_beam_search(tiny.hf_model, prompt_ids, width, 10)


# --------------------------------------------------------------------------- exact reference


def log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits.astype(np.float64) / (temperature if temperature > 0 else 1.0)
    return scaled - (scaled.max() + np.log(np.exp(scaled - scaled.max()).sum()))


@dataclass
class ReferenceResult:
    hypotheses: list[tuple[list[int], float, str]]  # (tokens, score, finish_reason), best first
    num_steps: int  # < max_tokens when the search stopped early
    num_eos_offered: int  # EOS candidates offered to the finished set


def reference_beam_search(
    next_logits, width, max_tokens, eos_ids, length_penalty, temperature=0.0
) -> ReferenceResult:
    """The rule documented in cadence's BeamSearchParams, written plainly: every live beam's
    log-probabilities come from a full forward pass over its whole sequence."""
    num_candidates = max(2, 1 + len(eos_ids)) * width

    def score(cum: float, length: int) -> float:
        return cum if length_penalty == 0 else cum / length**length_penalty

    live: list[tuple[list[int], float]] = [([], 0.0)]
    finished: list[tuple[float, list[int], str]] = []  # (score, tokens, reason), best first
    num_eos_offered = 0

    def offer(tokens: list[int], cum: float, reason: str) -> None:
        finished.append((score(cum, len(tokens)), tokens, reason))
        finished.sort(key=lambda item: -item[0])  # stable: earlier wins ties
        del finished[width:]

    for length in range(1, max_tokens + 1):
        candidates = []
        for slot, (tokens, cum) in enumerate(live):
            logprobs = log_softmax(next_logits(tokens), temperature)
            best = sorted(range(len(logprobs)), key=lambda t: (-logprobs[t], t))[:num_candidates]
            candidates += [(cum + logprobs[t], slot, t) for t in best]
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        new_live = []
        for cum, slot, token in candidates[:num_candidates]:
            tokens = live[slot][0] + [token]
            if token in eos_ids:
                offer(tokens, cum, "stop")
                num_eos_offered += 1
            elif len(new_live) < width:
                new_live.append((tokens, cum))
        live = new_live
        if length == max_tokens:
            for tokens, cum in live:
                offer(tokens, cum, "length")
            break
        best_cum = max(cum for _, cum in live)
        reachable = score(best_cum, max_tokens if length_penalty > 0 else length + 1)
        if len(finished) == width and reachable <= finished[-1][0]:
            break
    hypotheses = [(tokens, s, reason) for s, tokens, reason in finished]
    return ReferenceResult(hypotheses, length, num_eos_offered)


def _tiny_llm(path: str, **kwargs: Any) -> LLM:
    return LLM(model=path, num_threads=NUM_THREADS, **kwargs)


@pytest.fixture(scope="module")
def eos_model(tiny_models, tmp_path_factory) -> tuple[TinyModel, str, list[int], list[int]]:
    """The tiny Llama with extra EOS ids that its beam search meets at once: the tokens ranked
    2nd to 5th after the prompt. Returns (model, directory, prompt ids, all EOS ids)."""
    tiny = tiny_models["llama_gqa"]
    prompt_ids = [1, 4093, 314, 1345, 30, 216]
    ranked = np.argsort(-hf_prompt_logits(tiny.hf_model, prompt_ids)[-1], kind="stable")
    eos_ids = [EOS_TOKEN_ID] + [int(token) for token in ranked[1:5]]
    path = tmp_path_factory.mktemp("tiny_llama_eos")
    for name in os.listdir(tiny.path):
        if name != "generation_config.json":
            os.symlink(Path(tiny.path) / name, path / name)
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": eos_ids}))
    return tiny, str(path), prompt_ids, eos_ids


# With lp 0 the four short EOS hypotheses fill the finished set and no live beam can beat
# them: the search stops early. With lp 1 short and long hypotheses mix; with lp 2 the long
# ones win. Every case offers EOS hypotheses.
@pytest.mark.parametrize(
    ("length_penalty", "temperature"), [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (1.0, 0.7)]
)
def test_matches_exact_reference_with_eos_finished_hypotheses(
    eos_model, length_penalty, temperature
) -> None:
    tiny, path, prompt_ids, eos_ids = eos_model
    # fp32 KV cache: compared with an exact reference search over HF fp32 logprobs.
    llm = _tiny_llm(path, kv_cache_dtype="float32")
    assert llm.llm_engine.core.model_config.eos_token_ids == eos_ids
    width, max_tokens = 4, 8

    def next_logits(tokens: list[int]) -> np.ndarray:
        return hf_prompt_logits(tiny.hf_model, prompt_ids + tokens)[-1]

    expected = reference_beam_search(
        next_logits, width, max_tokens, eos_ids, length_penalty, temperature
    )
    assert expected.num_eos_offered > 0
    if length_penalty == 0.0:
        assert expected.num_steps < max_tokens, "the early stop was not exercised"
    params = BeamSearchParams(
        beam_width=width,
        max_tokens=max_tokens,
        length_penalty=length_penalty,
        temperature=temperature,
    )
    (output,) = llm.beam_search([{"prompt_token_ids": prompt_ids}], params)
    assert generated_ids(output) == [tokens for tokens, _, _ in expected.hypotheses]
    assert [s.finish_reason for s in output.sequences] == [r for _, _, r in expected.hypotheses]
    for sequence, (_, score, _) in zip(output.sequences, expected.hypotheses, strict=True):
        assert sequence.score == pytest.approx(score, abs=2e-3)
        token_logprobs = [
            position[token].logprob
            for token, position in zip(sequence.tokens, sequence.logprobs, strict=True)
        ]
        assert sequence.cum_logprob == pytest.approx(sum(token_logprobs), abs=1e-4)
    llm.llm_engine.core.check_invariants()
    assert _used_blocks(llm) == 0


def test_width_one_equals_greedy_generate(default_llm) -> None:
    greedy = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
    expected = default_llm.generate(PROMPTS, greedy, use_tqdm=False)
    beams = default_llm.beam_search(
        PROMPTS, BeamSearchParams(beam_width=1, max_tokens=24, ignore_eos=True)
    )
    for want, got in zip(expected, beams, strict=True):
        assert got.sequences[0].tokens == want.outputs[0].token_ids
        assert got.sequences[0].text == want.outputs[0].text


def test_eos_ends_hypotheses_and_text_leaves_it_out(default_llm_fp32_kv) -> None:
    # The fp32 path, whose greedy answer to this chat is known to end (EOS) within the budget.
    default_llm = default_llm_fp32_kv
    chat = default_llm.render_chat([{"role": "user", "content": "Say hi."}])[0]
    params = BeamSearchParams(beam_width=3, max_tokens=40)
    (output,) = default_llm.beam_search([{"prompt_token_ids": chat.prompt_token_ids}], params)
    stopped = [s for s in output.sequences if s.finish_reason == "stop"]
    assert stopped, "the chat reply should end with <|im_end|> within 40 tokens"
    eos_text = default_llm.get_tokenizer().decode([EOS_TOKEN_ID])
    for sequence in stopped:
        assert sequence.tokens[-1] == EOS_TOKEN_ID
        assert not sequence.text.endswith(eos_text)
    params = BeamSearchParams(beam_width=3, max_tokens=40, include_stop_str_in_output=True)
    (with_eos,) = default_llm.beam_search([{"prompt_token_ids": chat.prompt_token_ids}], params)
    assert [s.tokens for s in with_eos.sequences] == [s.tokens for s in output.sequences]
    assert with_eos.sequences[0].text.endswith(eos_text) == (
        output.sequences[0].finish_reason == "stop"
    )
    scores = [s.score for s in output.sequences]
    assert scores == sorted(scores, reverse=True)


def _used_blocks(llm: LLM) -> int:
    stats = llm.llm_engine.core.stats()
    return stats.num_total_blocks - stats.num_free_blocks


def _peak_used_blocks(llm: LLM, add) -> int:
    """Adds one request with ``add(engine, request_id)`` and steps it to the end; returns
    the most KV blocks in use after any step."""
    engine = llm.llm_engine
    add(engine, engine.next_request_id())
    peak = 0
    while engine.has_unfinished_requests():
        engine.step()
        engine.core.check_invariants()
        peak = max(peak, _used_blocks(llm))
    assert _used_blocks(llm) == 0
    return peak


def test_beams_share_kv_blocks(default_llm) -> None:
    tokenizer = default_llm.get_tokenizer()
    text = " ".join(f"Item {i} is on the list." for i in range(200))
    prompt_ids = tokenizer.encode(text)[:512]
    single = _peak_used_blocks(
        default_llm,
        lambda engine, rid: engine.add_request(
            rid, None, prompt_ids, SamplingParams(temperature=0, max_tokens=64, ignore_eos=True)
        ),
    )
    beams = _peak_used_blocks(
        default_llm,
        lambda engine, rid: engine.add_beam_request(
            rid, None, prompt_ids, BeamSearchParams(beam_width=8, max_tokens=64, ignore_eos=True)
        ),
    )
    assert single == math.ceil((512 + 64) / 16)
    assert beams <= 1.5 * single, (beams, single)


def test_mixed_with_sampling_requests_gives_the_same_results(default_llm) -> None:
    beam_params = BeamSearchParams(beam_width=4, max_tokens=16)
    sampled = SamplingParams(temperature=0.8, top_p=0.9, seed=7, max_tokens=20, n=2)
    greedy = SamplingParams(temperature=0.0, max_tokens=20)
    alone_beams = default_llm.beam_search(PROMPTS, beam_params)
    alone_sampled = default_llm.generate(PROMPTS, sampled, use_tqdm=False)
    alone_greedy = default_llm.generate(PROMPTS, greedy, use_tqdm=False)

    engine = default_llm.llm_engine
    tokenizer = default_llm.get_tokenizer()
    kinds: dict[str, tuple[str, int]] = {}
    for index, prompt in enumerate(PROMPTS):
        ids = tokenizer.encode(prompt)
        for kind in ("greedy", "beam", "sampled"):  # interleaved arrivals
            request_id = engine.next_request_id()
            kinds[request_id] = (kind, index)
            if kind == "beam":
                engine.add_beam_request(request_id, prompt, ids, beam_params)
            else:
                engine.add_request(
                    request_id, prompt, ids, sampled if kind == "sampled" else greedy
                )
    results: dict[tuple[str, int], Any] = {}
    while engine.has_unfinished_requests():
        for output in engine.step():
            if output.finished:
                results[kinds[output.request_id]] = output
        engine.core.check_invariants()
    for index in range(len(PROMPTS)):
        assert generated_ids(results["beam", index]) == generated_ids(alone_beams[index])
        for kind, alone in (("sampled", alone_sampled), ("greedy", alone_greedy)):
            assert [o.token_ids for o in results[kind, index].outputs] == [
                o.token_ids for o in alone[index].outputs
            ]


def test_preempted_beam_search_restarts_and_gives_the_same_result(tiny_models) -> None:
    tiny = tiny_models["llama3_tied"]
    prompts = [{"prompt_token_ids": [1, 50 + i, 700, 31, 2000 + 13 * i]} for i in range(6)]
    params = BeamSearchParams(beam_width=4, max_tokens=24, ignore_eos=True)
    roomy = _tiny_llm(tiny.path)
    expected = roomy.beam_search(prompts, params)
    # 12 blocks of 16 tokens: one search needs up to 4 * 2 (no prompt block is full, so
    # none is surely shared); six at once do not fit.
    config = roomy.llm_engine.core.model_config
    bytes_per_block = 2 * config.num_layers * config.num_kv_heads * config.head_dim * 4 * 16
    tight = _tiny_llm(tiny.path, kv_cache_memory_bytes=12 * bytes_per_block)
    got = tight.beam_search(prompts, params)
    assert tight.llm_engine.core.stats().num_preemptions > 0
    assert [generated_ids(o) for o in got] == [generated_ids(o) for o in expected]
    assert _used_blocks(tight) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(beam_width=0, max_tokens=4), "beam_width must be >= 1"),
        (dict(beam_width=2.5, max_tokens=4), "beam_width must be an integer"),
        (dict(beam_width=2, max_tokens=0), "max_tokens must be >= 1"),
        (dict(beam_width=2, max_tokens=4, temperature=-1), r"temperature must be in \[0, 2\]"),
        (dict(beam_width=2, max_tokens=4, length_penalty=math.nan), "length_penalty"),
        (dict(beam_width=2, max_tokens=4, ignore_eos="yes"), "ignore_eos"),
    ],
)
def test_invalid_params_raise_value_error(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        BeamSearchParams(**kwargs)


def test_engine_limits_raise_value_error_and_the_llm_keeps_working(default_llm) -> None:
    max_num_seqs = default_llm.llm_engine.core.config.max_num_seqs
    with pytest.raises(ValueError, match=rf"beam_width must be in \[1, {max_num_seqs}\]"):
        default_llm.beam_search("Hi", BeamSearchParams(beam_width=max_num_seqs + 1, max_tokens=2))
    with pytest.raises(ValueError, match="max_model_len"):
        default_llm.beam_search("Hi", BeamSearchParams(beam_width=2, max_tokens=100_000))
    with pytest.raises(ValueError, match="KV blocks"):  # 64 unshared beams cannot fit
        default_llm.beam_search("Hi", BeamSearchParams(beam_width=64, max_tokens=1000))
    with pytest.raises(ValueError, match="BeamSearchParams"):
        default_llm.beam_search("Hi", SamplingParams())
    assert _used_blocks(default_llm) == 0
    (output,) = default_llm.beam_search("Hi", BeamSearchParams(beam_width=2, max_tokens=3))
    assert len(output.sequences) == 2
