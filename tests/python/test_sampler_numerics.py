"""The C++ sampler and logits pipeline, driven at the ``cadence._core`` level.

Every reference here is computed in the test: either transformers' ``generate`` (repetition
penalty) or numpy over the engine's own raw logits from ``compute_prompt_logits`` (penalties,
logit_bias, masks, logprobs, the analytic distributions behind the chi-square tests).

Tolerances, and why:

- The engine's decode logits and ``compute_prompt_logits`` over the same tokens are the same
  fp32 computation in a different batch shape; they agree to ~1e-6 on the default model. So
  logprobs are compared at ``LOGPROB_ATOL`` = 1e-4 (~100x that noise), and a greedy token may
  differ from the reference argmax only at a near-tie within ``TIE_ATOL`` = 1e-3.
- Cadence vs transformers on the default model: logits agree to 2e-3 (test_numerics.py's
  DEFAULT_LOGITS_ATOL); a log-softmax moves by at most twice the largest logit error, hence
  ``HF_DEFAULT_LOGPROB_ATOL`` = 5e-3. Tiny models are plain fp32 on both sides (2e-4).
- Chi-square tests draw a fixed set of seeds, so they are deterministic; the threshold is the
  1e-4 upper tail (Wilson-Hilferty), so a correct sampler fails with odds ~1e-4 per config at
  the time the seeds were chosen, and a wrong one (e.g. temperature ignored, an off-by-one cut)
  fails by orders of magnitude.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from conftest import NUM_THREADS, TinyModel, hf_prompt_logits

from cadence import _core

EOS = 2  # the default model's <|im_end|>

LOGPROB_ATOL = 1e-4
TIE_ATOL = 1e-3
HF_DEFAULT_LOGPROB_ATOL = 5e-3
HF_DEFAULT_TIE_ATOL = 4e-3  # 2 x DEFAULT_LOGITS_ATOL: a flip vs HF only at a near-tie
HF_TINY_TIE_ATOL = 2e-4

# Chat-formatted prompts for the default model (SmolLM2 template, system prompt included),
# tokenized once with the model's tokenizer and frozen here so these tests do not depend on
# the Python tokenizer layer.
CHAT_STORY = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018,
              411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 31530, 549, 253, 1890, 1977, 563, 253,
              33059, 40061, 30, 2, 198, 1, 520, 9531, 198]  # fmt: skip
# "Is the sky blue? Answer with one word." -> greedy answer is 6 tokens then EOS.
CHAT_YES_NO = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28,
               7018, 411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 4182, 260, 6376, 4461, 47,
               19842, 351, 582, 2229, 30, 2, 198, 1, 520, 9531, 198]  # fmt: skip
# "The capital of France is": a peaked next-token distribution (p1 ~0.77, p2 ~0.06).
TEXT_PEAKED = [504, 3575, 282, 4649, 314]
# "My favourite fruit is the": a flat one (p1 ~0.05, the 6th token still ~0.03).
TEXT_FLAT = [5965, 20334, 4354, 314, 260]


# --------------------------------------------------------------------------- helpers


def make_engine(model_path: str, model_config=None, **overrides) -> _core.Engine:
    cfg = _core.EngineConfig()
    cfg.model_path = model_path
    if model_config is not None:
        cfg.model_config = model_config
    cfg.max_model_len = 512
    cfg.kv_cache_memory_bytes = 256 << 20
    cfg.num_threads = NUM_THREADS
    cfg.max_num_seqs = 256
    # fp32 KV cache: logprobs are compared with HF fp32 ("auto" would be bf16 on CPUs with
    # AVX-512 BF16).
    cfg.kv_cache_dtype = "float32"
    for name, value in overrides.items():
        setattr(cfg, name, value)
    return _core.Engine(cfg)


@dataclass
class Seq:
    tokens: list[int] = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    prompt_logprobs: list = field(default_factory=list)
    finish_reason: object = None
    stop_token_id: int = -1
    num_outputs_with_prompt_logprobs: int = 0


def assert_pool_idle(engine: _core.Engine) -> None:
    assert not engine.has_unfinished_requests()
    stats = engine.stats()
    assert stats.num_free_blocks == stats.num_total_blocks, "KV blocks leaked"
    engine.check_invariants()


def run_requests(engine: _core.Engine, requests: dict[str, tuple[list[int], object]]):
    """Adds all requests, steps to completion, returns {(request_id, sequence_index): Seq}."""
    for request_id, (prompt, params) in requests.items():
        assert engine.add_request(request_id, prompt, params)
    seqs: dict[tuple[str, int], Seq] = {}
    while engine.has_unfinished_requests():
        for out in engine.step():
            seq = seqs.setdefault((out.request_id, out.sequence_index), Seq())
            assert seq.finish_reason is None, "output after the sequence finished"
            assert len(out.new_token_ids) <= 1
            seq.tokens += out.new_token_ids
            seq.logprobs += out.new_logprobs
            if out.prompt_logprobs:
                seq.prompt_logprobs += out.prompt_logprobs
                seq.num_outputs_with_prompt_logprobs += 1
            if out.finished:
                seq.finish_reason = out.finish_reason
                seq.stop_token_id = out.stop_token_id
    for request_id, (_, params) in requests.items():
        for index in range(params.n):
            seq = seqs[(request_id, index)]
            assert seq.finish_reason is not None, f"{request_id}/{index} never finished"
    assert len(seqs) == sum(params.n for _, params in requests.values())
    assert_pool_idle(engine)
    return seqs


def generate(engine: _core.Engine, prompt: list[int], **params) -> Seq:
    return run_requests(engine, {"r": (prompt, _core.SamplingParams(**params))})[("r", 0)]


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def raw_rows(engine: _core.Engine, prompt: list[int], generated: list[int]) -> np.ndarray:
    """Raw logits [len(generated), vocab] that predicted each generated token (fp64)."""
    logits = np.asarray(engine.compute_prompt_logits(prompt + generated), dtype=np.float64)
    return logits[len(prompt) - 1 : len(prompt) - 1 + len(generated)]


def apply_repetition_penalty(row: np.ndarray, seen: list[int], penalty: float) -> None:
    """HF semantics: each token of prompt + output once; positive / p, negative * p."""
    ids = np.unique(np.asarray(seen, dtype=np.int64))
    values = row[ids]
    row[ids] = np.where(values > 0, values / penalty, values * penalty)


def apply_openai_penalties(row: np.ndarray, output: list[int], freq: float, pres: float) -> None:
    """OpenAI semantics over generated tokens only: logit -= freq * count + pres * (count > 0)."""
    if not output:
        return
    ids, counts = np.unique(np.asarray(output, dtype=np.int64), return_counts=True)
    row[ids] -= freq * counts + pres * (counts > 0)


def ban_after(row, out, pair):
    if out and out[-1] == pair[0]:
        row[pair[1]] = -np.inf
    return row


def assert_greedy_replay(engine, prompt, generated, process, what: str, tol=TIE_ATOL) -> None:
    """Each generated token is the argmax of process(raw row i, generated[:i]) (a near-tie
    within ``tol`` excepted)."""
    rows = raw_rows(engine, prompt, generated)
    for i, token in enumerate(generated):
        row = process(rows[i].copy(), generated[:i])
        best = int(np.argmax(row))
        assert token == best or row[token] >= row[best] - tol, (
            f"{what}: token {i} is {token} (processed logit {row[token]:.5f}) but the "
            f"reference argmax is {best} ({row[best]:.5f}); generated {generated}"
        )


def hf_generate(model, prompt: list[int], max_new_tokens: int, **kwargs):
    """transformers greedy generate with extra generation-config kwargs, EOS not special."""
    import torch

    gen_config = copy.deepcopy(model.generation_config)
    gen_config.do_sample = False
    gen_config.max_new_tokens = max_new_tokens
    gen_config.eos_token_id = []  # as ignore_eos=True; None would be refilled by generate
    gen_config.output_scores = True
    gen_config.return_dict_in_generate = True
    for name, value in kwargs.items():
        setattr(gen_config, name, value)
    input_ids = torch.tensor([prompt], dtype=torch.long)
    with torch.no_grad():
        out = model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), generation_config=gen_config
        )
    tokens = out.sequences[0, len(prompt) :].tolist()
    assert len(tokens) == max_new_tokens, "HF stopped early; the reference is unusable"
    scores = torch.stack(out.scores)[:, 0].float().numpy()  # processed (penalized) scores
    return tokens, scores


def assert_same_greedy(ours: list[int], theirs: list[int], hf_scores, tol: float, what: str):
    """Token for token; a flip is accepted only at a near-tie of HF's processed scores (after
    it, the contexts differ and nothing more is comparable)."""
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            gap = float(hf_scores[i][b] - hf_scores[i][a])
            assert gap <= tol, (
                f"{what}: first mismatch at token {i}: cadence {a}, HF {b} (HF processed-score "
                f"gap {gap:.3g} > {tol:g})\ncadence {ours}\nHF      {theirs}"
            )
            return


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def engine(default_model_path: str) -> _core.Engine:
    return make_engine(default_model_path)


@pytest.fixture(scope="module")
def tiny(tiny_models: dict[str, TinyModel]):
    from cadence.model_config import load_model_config
    from cadence.model_source import resolve_model

    model = tiny_models["llama_gqa"]
    model_config = load_model_config(resolve_model(model.path))
    return model, make_engine(model.path, model_config=model_config)


# --------------------------------------------------------------------------- 1. penalties


REPETITION_PENALTIES = (1.3, 0.8)
NUM_PENALTY_TOKENS = 24


def _check_repetition_penalty_vs_hf(engine, hf_model, prompt, tol, what) -> None:
    requests = {
        f"p{p}": (
            prompt,
            _core.SamplingParams(
                temperature=0.0,
                max_tokens=NUM_PENALTY_TOKENS,
                ignore_eos=True,
                repetition_penalty=p,
            ),
        )
        for p in (1.0, *REPETITION_PENALTIES)
    }
    seqs = run_requests(engine, requests)
    plain = seqs[("p1.0", 0)].tokens
    for p in REPETITION_PENALTIES:
        ours = seqs[(f"p{p}", 0)].tokens
        assert len(ours) == NUM_PENALTY_TOKENS
        # The penalty must bite, or this comparison would not test it.
        assert ours != plain, f"{what}: repetition_penalty={p} changed nothing"
        theirs, scores = hf_generate(
            hf_model, prompt, NUM_PENALTY_TOKENS, repetition_penalty=float(np.float32(p))
        )
        assert_same_greedy(ours, theirs, scores, tol, f"{what} repetition_penalty={p}")
        # And against our own raw logits with the HF formula.
        assert_greedy_replay(
            engine,
            prompt,
            ours,
            lambda row, out, p=p: (apply_repetition_penalty(row, prompt + out, p), row)[1],
            f"{what} repetition_penalty={p} (numpy replay)",
        )


@pytest.mark.slow
def test_repetition_penalty_matches_hf_default_model(engine, hf_default_model) -> None:
    _check_repetition_penalty_vs_hf(
        engine, hf_default_model, CHAT_STORY, HF_DEFAULT_TIE_ATOL, "default model"
    )


def test_repetition_penalty_matches_hf_tiny_model(tiny) -> None:
    model, tiny_engine = tiny
    # On this prompt both penalties change the random model's greedy output (on others its
    # margins are too wide for 1.3 to matter).
    prompt = TEXT_FLAT
    _check_repetition_penalty_vs_hf(
        tiny_engine, model.hf_model, prompt, HF_TINY_TIE_ATOL, f"tiny {model.name}"
    )


@pytest.mark.parametrize(
    ("freq", "pres", "rep"),
    [(0.7, 0.5, 1.0), (-0.4, 1.5, 1.0), (0.3, -0.5, 1.2)],
)
def test_frequency_presence_penalties_match_reference(engine, freq, pres, rep) -> None:
    """Greedy with OpenAI penalties (applied after the repetition penalty) equals the argmax of
    the raw logits penalized in numpy by counts over the generated tokens only."""
    seqs = run_requests(
        engine,
        {
            "plain": (CHAT_STORY, _core.SamplingParams(temperature=0.0, max_tokens=24)),
            "pen": (
                CHAT_STORY,
                _core.SamplingParams(
                    temperature=0.0,
                    max_tokens=24,
                    ignore_eos=True,
                    frequency_penalty=freq,
                    presence_penalty=pres,
                    repetition_penalty=rep,
                ),
            ),
        },
    )
    ours = seqs[("pen", 0)].tokens
    assert len(ours) == 24
    assert ours != seqs[("plain", 0)].tokens, "the penalties changed nothing"

    def process(row, out):
        if rep != 1.0:
            apply_repetition_penalty(row, CHAT_STORY + out, rep)
        apply_openai_penalties(row, out, freq, pres)
        return row

    assert_greedy_replay(engine, CHAT_STORY, ours, process, f"freq={freq} pres={pres} rep={rep}")


# --------------------------------------------------------------------------- 2. logprobs


def _check_token_logprobs(entries, rows: np.ndarray, tokens: list[int], k: int, atol: float, what):
    """Each TokenLogprobs equals the log-softmax of its raw row: logprob, rank, top-k."""
    assert len(entries) == len(tokens) == len(rows)
    for i, (entry, token, row) in enumerate(zip(entries, tokens, rows, strict=True)):
        ref = log_softmax(row)
        where = f"{what} entry {i} (token {token})"
        assert entry.token_id == token, where
        assert abs(entry.logprob - ref[token]) <= atol, (
            f"{where}: logprob {entry.logprob:.6f} vs raw log_softmax {ref[token]:.6f}"
        )
        # Rank 1 = best, ties share the better rank; allow logit noise of `atol` at the edge.
        low = 1 + int(np.sum(ref > ref[token] + atol))
        high = 1 + int(np.sum(ref > ref[token] - atol))
        assert low <= entry.rank <= high, f"{where}: rank {entry.rank}, expected {low}..{high}"
        assert len(entry.top_token_ids) == len(entry.top_logprobs) == k, where
        assert list(entry.top_logprobs) == sorted(entry.top_logprobs, reverse=True), where
        assert len(set(entry.top_token_ids)) == k, where
        expected_top = np.sort(ref)[::-1][:k]
        np.testing.assert_allclose(
            entry.top_logprobs, expected_top, rtol=0, atol=atol, err_msg=where
        )
        np.testing.assert_allclose(
            entry.top_logprobs, ref[list(entry.top_token_ids)], rtol=0, atol=atol, err_msg=where
        )


def test_logprobs_are_raw_log_softmax_with_sampling_and_penalties(engine) -> None:
    params = dict(
        temperature=0.5,
        seed=5,
        max_tokens=12,
        ignore_eos=True,
        repetition_penalty=1.3,
        presence_penalty=0.5,
        frequency_penalty=0.3,
        logprobs=5,
        prompt_logprobs=3,
    )
    seq = generate(engine, CHAT_STORY, **params)
    rows = raw_rows(engine, CHAT_STORY, seq.tokens)
    _check_token_logprobs(seq.logprobs, rows, seq.tokens, 5, LOGPROB_ATOL, "sampled logprobs")
    # The processed distribution (T=0.5 + penalties) is far from the raw one, so a sampler that
    # reported processed logprobs would fail above.
    processed = []
    for i, token in enumerate(seq.tokens):
        row = rows[i].copy()
        apply_repetition_penalty(row, CHAT_STORY + seq.tokens[:i], 1.3)
        apply_openai_penalties(row, seq.tokens[:i], 0.3, 0.5)
        processed.append(log_softmax(row / 0.5)[token] - log_softmax(rows[i])[token])
    assert max(abs(d) for d in processed) > 0.05

    # Prompt logprobs: positions 1..P-1, each for the actual prompt token, sent once.
    prompt_rows = np.asarray(engine.compute_prompt_logits(CHAT_STORY), dtype=np.float64)[:-1]
    assert seq.num_outputs_with_prompt_logprobs == 1
    _check_token_logprobs(
        seq.prompt_logprobs, prompt_rows, CHAT_STORY[1:], 3, LOGPROB_ATOL, "prompt logprobs"
    )


def test_logprobs_k0_and_greedy(engine) -> None:
    seq = generate(engine, TEXT_FLAT, temperature=0.0, max_tokens=6, logprobs=0, ignore_eos=True)
    rows = raw_rows(engine, TEXT_FLAT, seq.tokens)
    _check_token_logprobs(seq.logprobs, rows, seq.tokens, 0, LOGPROB_ATOL, "logprobs=0")
    assert all(entry.rank == 1 for entry in seq.logprobs), "greedy tokens must have rank 1"
    assert seq.prompt_logprobs == []


def test_sampled_token_outside_top_k_is_reported_with_raw_logprob(engine) -> None:
    """A token forced by logit_bias is sampled but its logprob/rank are the raw model's: low
    logprob, large rank, and not among the top-k."""
    raw = np.asarray(engine.compute_prompt_logits(TEXT_PEAKED), dtype=np.float64)[-1]
    order = np.argsort(-raw, kind="stable")
    forced = int(order[499])  # rank ~500
    # +100 bias at T=0.5 must dominate: design check, not a property of the engine.
    assert raw.max() - raw[forced] < 50
    seq = generate(
        engine,
        TEXT_PEAKED,
        temperature=0.5,
        seed=3,
        max_tokens=1,
        logprobs=5,
        logit_bias=[(forced, 100.0)],
    )
    assert seq.tokens == [forced]
    entry = seq.logprobs[0]
    ref = log_softmax(raw)
    assert entry.token_id == forced
    assert abs(entry.logprob - ref[forced]) <= LOGPROB_ATOL, (entry.logprob, ref[forced])
    assert entry.logprob < -5.0  # raw, not the biased ~0
    assert 400 <= entry.rank <= 600, entry.rank
    assert forced not in entry.top_token_ids
    _check_token_logprobs(seq.logprobs, raw[None], [forced], 5, LOGPROB_ATOL, "forced token")


def test_prompt_logprobs_with_chunked_prefill(default_model_path: str, engine) -> None:
    chunked = make_engine(default_model_path, max_num_batched_tokens=7)
    prompt = CHAT_STORY[:30]
    assert chunked.add_request(
        "c", prompt, _core.SamplingParams(temperature=0.0, max_tokens=3, prompt_logprobs=4)
    )
    steps_before_first_token = 0
    seq = Seq()
    while chunked.has_unfinished_requests():
        outs = chunked.step()
        if not seq.tokens and not outs:
            steps_before_first_token += 1
        for out in outs:
            seq.tokens += out.new_token_ids
            seq.prompt_logprobs += out.prompt_logprobs
    # 30 tokens in chunks of <= 7: at least 5 steps, and only the last of them samples.
    assert steps_before_first_token >= 4
    assert len(seq.tokens) == 3
    assert_pool_idle(chunked)
    prompt_rows = np.asarray(engine.compute_prompt_logits(prompt), dtype=np.float64)[:-1]
    _check_token_logprobs(
        seq.prompt_logprobs, prompt_rows, prompt[1:], 4, LOGPROB_ATOL, "chunked prompt logprobs"
    )
    # Same tokens as an unchunked engine.
    assert seq.tokens == generate(engine, prompt, temperature=0.0, max_tokens=3).tokens


@pytest.mark.slow
def test_logprobs_match_hf_default_model(engine, hf_default_model) -> None:
    seq = generate(
        engine,
        CHAT_STORY,
        temperature=0.0,
        max_tokens=16,
        ignore_eos=True,
        logprobs=5,
        prompt_logprobs=5,
    )
    hf_logits = hf_prompt_logits(hf_default_model, CHAT_STORY + seq.tokens).astype(np.float64)
    P = len(CHAT_STORY)
    _check_token_logprobs(
        seq.logprobs, hf_logits[P - 1 : -1], seq.tokens, 5, HF_DEFAULT_LOGPROB_ATOL, "vs HF"
    )
    _check_token_logprobs(
        seq.prompt_logprobs,
        hf_logits[: P - 1],
        CHAT_STORY[1:],
        5,
        HF_DEFAULT_LOGPROB_ATOL,
        "prompt vs HF",
    )


# --------------------------------------------------------------------------- 3. chi-square


def analytic_distribution(logits, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0):
    """The sampling distribution per sampling_params.h: temperature -> top-k -> top-p (smallest
    prefix of the sorted, renormalized distribution with mass >= top_p) -> min-p (relative to
    the most likely token). Returns (probabilities, design margins for the cut-offs)."""
    p = np.exp((logits - logits.max()) / temperature)
    order = np.lexsort((np.arange(len(p)), -p))  # by probability, ties to the lower id
    kept = order
    margins = {}
    if top_k > 0:
        kept = kept[:top_k]
        margins["top_k"] = float(np.log(p[kept[-1]] / p[order[top_k]]))  # vs the first cut
    if top_p < 1.0:
        cum = np.cumsum(p[kept]) / p[kept].sum()
        n = int(np.searchsorted(cum, top_p, side="left")) + 1
        below = cum[n - 2] if n >= 2 else 0.0
        margins["top_p"] = float(min(top_p - below, cum[n - 1] - top_p))
        kept = kept[:n]
    if min_p > 0.0:
        rel = p[kept] / p[kept].max()
        margins["min_p"] = float(np.min(np.abs(rel - min_p)) / min_p)
        kept = kept[rel >= min_p]
    probs = np.zeros_like(p)
    probs[kept] = p[kept] / p[kept].sum()
    return probs, margins


def chi_square_critical(df: int, z: float = 3.719) -> float:
    """Upper-tail critical value of chi-square (Wilson-Hilferty); z=3.719 is the 1e-4 tail."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def chi_square(counts: np.ndarray, probs: np.ndarray, n: int) -> tuple[float, int]:
    """Goodness of fit over the support; support tokens with expected count < 5 are pooled
    (and the pool merged into the smallest bin if it is itself < 5)."""
    support = np.nonzero(probs)[0]
    expected = probs[support] * n
    observed = counts[support].astype(np.float64)
    big = expected >= 5
    bins_e, bins_o = list(expected[big]), list(observed[big])
    if (~big).any():
        pool_e, pool_o = expected[~big].sum(), observed[~big].sum()
        if pool_e >= 5 or not bins_e:
            bins_e.append(pool_e)
            bins_o.append(pool_o)
        else:
            j = int(np.argmin(bins_e))
            bins_e[j] += pool_e
            bins_o[j] += pool_o
    e, o = np.asarray(bins_e), np.asarray(bins_o)
    return float(np.sum((o - e) ** 2 / e)), len(e) - 1


NUM_DRAWS_REQUESTS = 8
DRAWS_PER_REQUEST = 256  # n per request: siblings sample from the shared prompt row
NUM_DRAWS = NUM_DRAWS_REQUESTS * DRAWS_PER_REQUEST

CHI_SQUARE_CASES = {
    "temperature_0.7": (TEXT_FLAT, dict(temperature=0.7)),
    "top_k_5": (TEXT_FLAT, dict(temperature=1.0, top_k=5)),
    # top_p is set in the test halfway between the 1st and 2nd cumulative masses (~0.77 and
    # ~0.84): the support must be exactly 2 tokens (a cut one off keeps 1 or 3).
    "top_p_boundary": (TEXT_PEAKED, dict(temperature=1.0, top_p=None)),
    "top_p_0.8": (TEXT_FLAT, dict(temperature=1.0, top_p=0.8)),
    "min_p_0.1": (TEXT_FLAT, dict(temperature=1.0, min_p=0.1)),
    "top_k_20_top_p_0.9_T_0.9": (TEXT_FLAT, dict(temperature=0.9, top_k=20, top_p=0.9)),
}


@pytest.fixture(scope="module")
def chi_square_draws(engine):
    """All cases' draws in one batched run: {case: (counts, analytic probs, margins)}."""
    raw = {
        name: np.asarray(engine.compute_prompt_logits(prompt), dtype=np.float64)[-1]
        for name, (prompt, _) in CHI_SQUARE_CASES.items()
    }
    settings = {}
    for name, (_, kwargs) in CHI_SQUARE_CASES.items():
        kwargs = dict(kwargs)
        if kwargs.get("top_p", 1.0) is None:
            p = np.exp(log_softmax(raw[name]))
            top2 = np.sort(p)[::-1][:2]
            kwargs["top_p"] = float(np.float32((top2[0] + top2.sum()) / 2))
        settings[name] = kwargs
    requests = {}
    for c, (name, (prompt, _)) in enumerate(CHI_SQUARE_CASES.items()):
        for r in range(NUM_DRAWS_REQUESTS):
            requests[f"{name}/{r}"] = (
                prompt,
                _core.SamplingParams(
                    n=DRAWS_PER_REQUEST, max_tokens=1, seed=10_000 * c + r, **settings[name]
                ),
            )
    seqs = run_requests(engine, requests)
    vocab = engine.model_config.vocab_size
    result = {}
    for name in CHI_SQUARE_CASES:
        counts = np.zeros(vocab, dtype=np.int64)
        for (request_id, _), seq in seqs.items():
            if request_id.split("/")[0] == name:
                assert len(seq.tokens) == 1
                counts[seq.tokens[0]] += 1
        assert counts.sum() == NUM_DRAWS
        # The engine sees the float32 values of the settings.
        settings32 = {k: float(np.float32(v)) for k, v in settings[name].items()}
        settings32["top_k"] = int(settings[name].get("top_k", 0))
        probs, margins = analytic_distribution(raw[name], **settings32)
        result[name] = (counts, probs, margins, settings[name])
    return result


@pytest.mark.parametrize("case", list(CHI_SQUARE_CASES))
def test_sampling_distribution_chi_square(chi_square_draws, case: str) -> None:
    counts, probs, margins, settings = chi_square_draws[case]
    # Design checks: each cut-off is clear of a tie by 20x the logit noise between a batched
    # step and compute_prompt_logits (~1e-6, which moves probabilities and masses by ~1e-6
    # relative), so the analytic support is the engine's.
    for name, margin in margins.items():
        assert margin > 2e-5, f"{case}: {name} cut-off too close to a tie ({margin:.3g})"
    outside = np.nonzero((counts > 0) & (probs == 0))[0]
    assert outside.size == 0, (
        f"{case} {settings}: sampled outside the analytic support: "
        f"{ {int(t): int(counts[t]) for t in outside[:10]} }"
    )
    stat, df = chi_square(counts, probs, NUM_DRAWS)
    critical = chi_square_critical(df) if df > 0 else 0.0
    top = np.argsort(-probs)[:8]
    assert stat <= critical, (
        f"{case} {settings}: chi-square {stat:.1f} > {critical:.1f} (df {df}); top tokens "
        f"expected {np.round(probs[top] * NUM_DRAWS, 1).tolist()} observed {counts[top].tolist()}"
    )


def test_top_p_and_top_k_boundaries_are_exact(chi_square_draws) -> None:
    """Off-by-one detectors with large expected counts at the boundary."""
    counts, probs, _, settings = chi_square_draws["top_p_boundary"]
    support = np.nonzero(probs)[0]
    assert len(support) == 2, f"analytic support {support} for top_p={settings['top_p']}"
    # The 2nd token carries ~8% of the mass (~160 draws): a cut keeping only 1 token fails.
    assert all(counts[t] > 0 for t in support)
    assert counts.sum() == counts[support].sum()  # a cut keeping a 3rd token fails (~30 draws)
    counts, probs, _, _ = chi_square_draws["top_k_5"]
    assert np.count_nonzero(probs) == 5
    assert np.count_nonzero(counts) == 5  # the 6th token has ~4% of top-6 mass: ~80 draws


# --------------------------------------------------------------------------- 4. masks and bias


def test_logit_bias_greedy(engine) -> None:
    raw = np.asarray(engine.compute_prompt_logits(TEXT_FLAT), dtype=np.float64)[-1]
    order = np.argsort(-raw, kind="stable")
    # Push the top token out and lift the 10th token above everything else.
    bias = [(int(order[0]), -100.0), (int(order[9]), float(raw[order[0]] - raw[order[9]]) + 1.5)]
    plain = generate(engine, TEXT_FLAT, temperature=0.0, max_tokens=8, ignore_eos=True).tokens
    seq = generate(
        engine, TEXT_FLAT, temperature=0.0, max_tokens=8, ignore_eos=True, logit_bias=bias
    )
    assert seq.tokens[0] == int(order[9])
    assert seq.tokens != plain
    assert int(order[0]) not in seq.tokens

    def process(row, out):
        for token, value in bias:
            row[token] += np.float32(value)
        return row

    assert_greedy_replay(engine, TEXT_FLAT, seq.tokens, process, "logit_bias")


def test_allowed_token_ids_greedy(engine) -> None:
    plain = generate(engine, CHAT_STORY, temperature=0.0, max_tokens=10, ignore_eos=True).tokens
    # Some of the unconstrained tokens (not the first) plus arbitrary ones.
    allowed = sorted({*plain[1:4], 260, 314, 11977, 582, 2, 33059})
    seq = generate(
        engine,
        CHAT_STORY,
        temperature=0.0,
        max_tokens=10,
        ignore_eos=True,
        allowed_token_ids=allowed,
    )
    assert set(seq.tokens) <= set(allowed), seq.tokens
    assert seq.tokens != plain

    def process(row, out):
        masked = np.full_like(row, -np.inf)
        masked[allowed] = row[allowed]
        return masked

    assert_greedy_replay(engine, CHAT_STORY, seq.tokens, process, "allowed_token_ids")


def test_bad_words_greedy(engine) -> None:
    plain = generate(engine, CHAT_STORY, temperature=0.0, max_tokens=12, ignore_eos=True).tokens
    # A one-token word (banned everywhere) and a two-token word taken from the plain output
    # (its 2nd token banned right after its 1st).
    single = [plain[0]]
    pair = [plain[4], plain[5]]
    bad_words = [single, pair]
    seq = generate(
        engine,
        CHAT_STORY,
        temperature=0.0,
        max_tokens=12,
        ignore_eos=True,
        bad_words_token_ids=bad_words,
    )
    assert plain[0] not in seq.tokens
    for a, b in zip(seq.tokens, seq.tokens[1:], strict=False):
        assert [a, b] != pair, seq.tokens

    def process(row, out):
        for word in bad_words:
            prefix = word[:-1]
            if len(out) >= len(prefix) and out[len(out) - len(prefix) :] == prefix:
                row[word[-1]] = -np.inf
        return row

    assert_greedy_replay(engine, CHAT_STORY, seq.tokens, process, "bad_words")

    # The pair ban alone must be exercised: ban only the pair on the plain output's context.
    seq2 = generate(
        engine,
        CHAT_STORY,
        temperature=0.0,
        max_tokens=12,
        ignore_eos=True,
        bad_words_token_ids=[pair],
    )
    assert seq2.tokens[:5] == plain[:5]
    assert seq2.tokens[5] != plain[5]
    assert_greedy_replay(
        engine,
        CHAT_STORY,
        seq2.tokens,
        lambda row, out: ban_after(row, out, pair),
        "bad_words pair",
    )


def test_min_tokens_masks_eos_and_stop_tokens(engine) -> None:
    plain = generate(engine, CHAT_YES_NO, temperature=0.0, max_tokens=32)
    assert plain.tokens[-1] == EOS and plain.finish_reason == _core.FinishReason.STOP
    assert plain.stop_token_id == -1
    short = len(plain.tokens)
    assert short < 10, "the prompt should end quickly for this test to mean anything"

    min_tokens = short + 6
    seq = generate(engine, CHAT_YES_NO, temperature=0.0, max_tokens=32, min_tokens=min_tokens)
    assert len(seq.tokens) >= min_tokens, seq.tokens
    assert EOS not in seq.tokens[:min_tokens]
    assert seq.tokens[: short - 1] == plain.tokens[: short - 1]

    def process(row, out):
        if len(out) < min_tokens:
            row[EOS] = -np.inf
        return row

    assert_greedy_replay(engine, CHAT_YES_NO, seq.tokens, process, "min_tokens")

    # stop_token_ids: the answer's 2nd token ends generation (kept in the output) ...
    stop = plain.tokens[1]
    seq = generate(engine, CHAT_YES_NO, temperature=0.0, max_tokens=32, stop_token_ids=[stop])
    assert seq.tokens == plain.tokens[:2]
    assert seq.finish_reason == _core.FinishReason.STOP and seq.stop_token_id == stop
    # ... and is masked (with EOS) while fewer than min_tokens tokens exist.
    seq = generate(
        engine,
        CHAT_YES_NO,
        temperature=0.0,
        max_tokens=32,
        min_tokens=4,
        stop_token_ids=[stop],
    )
    assert stop not in seq.tokens[:4] and EOS not in seq.tokens[:4]
    assert len(seq.tokens) >= 4

    def process_stop(row, out):
        if len(out) < 4:
            row[[EOS, stop]] = -np.inf
        return row

    assert_greedy_replay(engine, CHAT_YES_NO, seq.tokens, process_stop, "min_tokens + stop")
    if seq.finish_reason == _core.FinishReason.STOP and seq.tokens[-1] == stop:
        assert seq.stop_token_id == stop
    elif seq.tokens[-1] == EOS:
        assert seq.stop_token_id == -1


# --------------------------------------------------------------------------- 5. n > 1


def _n_params(n: int, seed: int, **kw):
    return _core.SamplingParams(
        n=n, temperature=1.0, seed=seed, max_tokens=8, ignore_eos=True, **kw
    )


def test_n_sequences_reproducible_and_batch_invariant(engine) -> None:
    alone = run_requests(engine, {"a": (TEXT_FLAT, _n_params(4, 7))})
    assert sorted(alone) == [("a", i) for i in range(4)]
    outs = [alone[("a", i)].tokens for i in range(4)]
    assert all(len(t) == 8 for t in outs)
    assert len({tuple(t) for t in outs}) == 4, f"sequences are not distinct: {outs}"

    # The same request among others (different n, seeds, prompts, greedy), added in between.
    mixed = run_requests(
        engine,
        {
            "x": (CHAT_STORY, _n_params(2, 3)),
            "a": (TEXT_FLAT, _n_params(4, 7)),
            "y": (TEXT_PEAKED, _n_params(3, 11, top_k=50)),
            "g": (TEXT_FLAT, _core.SamplingParams(temperature=0.0, max_tokens=5)),
        },
    )
    assert [mixed[("a", i)].tokens for i in range(4)] == outs
    assert sorted(key for key in mixed if key[0] == "y") == [("y", i) for i in range(3)]

    single = run_requests(engine, {"s": (TEXT_FLAT, _n_params(1, 7))})
    assert single[("s", 0)].tokens == outs[0], "sequence 0 of n=4 must equal n=1, same seed"
    other_seed = run_requests(engine, {"o": (TEXT_FLAT, _n_params(4, 8))})
    assert [other_seed[("o", i)].tokens for i in range(4)] != outs


def _long_prompt() -> list[int]:
    rng = np.random.default_rng(0)
    return [int(t) for t in rng.integers(100, 40000, size=200)]


def test_n_block_sharing_and_release(engine) -> None:
    prompt = _long_prompt()
    block_size = engine.config.block_size
    prompt_blocks = -(-len(prompt) // block_size)
    total = engine.stats().num_total_blocks
    n = 8
    assert engine.add_request("share", prompt, _n_params(n, 1))
    seen_indices = set()
    outs = engine.step()  # the whole prompt fits one step (max_num_batched_tokens 2048)
    seen_indices |= {o.sequence_index for o in outs}
    used = total - engine.stats().num_free_blocks
    assert prompt_blocks <= used <= prompt_blocks + n + 2, (
        f"after the prompt step {used} blocks in use; prompt needs {prompt_blocks}, "
        f"unshared copies would need {n * prompt_blocks}"
    )
    outs = engine.step()  # first decode: each sequence copies the shared partial block
    seen_indices |= {o.sequence_index for o in outs}
    used = total - engine.stats().num_free_blocks
    assert used <= prompt_blocks + n + 2, f"after the first decode {used} blocks in use"
    engine.check_invariants()
    while engine.has_unfinished_requests():
        seen_indices |= {o.sequence_index for o in engine.step()}
    assert seen_indices == set(range(n))
    assert_pool_idle(engine)

    # Aborting an n > 1 request mid-decode frees everything.
    assert engine.add_request("abort", prompt, _n_params(n, 2))
    engine.step()
    engine.step()
    assert engine.stats().num_free_blocks < total
    assert engine.abort_request("abort")
    assert not engine.abort_request("abort")
    assert_pool_idle(engine)


# --------------------------------------------------------------------------- 6. validation


BAD_PARAMS = [
    (dict(n=0), "n"),
    (dict(n=2, temperature=0.0), "temperature"),
    (dict(presence_penalty=2.5), "presence_penalty"),
    (dict(frequency_penalty=-2.5), "frequency_penalty"),
    (dict(repetition_penalty=0.0), "repetition_penalty"),
    (dict(min_tokens=9, max_tokens=8), "min_tokens"),
    (dict(logprobs=21), "logprobs"),
    (dict(prompt_logprobs=21), "prompt_logprobs"),
    (dict(logit_bias=[(49152, 1.0)]), "logit_bias"),
    (dict(logit_bias=[(5, 101.0)]), "logit_bias"),
    (dict(allowed_token_ids=[49152]), "allowed_token_ids"),
    (dict(bad_words_token_ids=[[]]), "bad_words"),
    (dict(stop_token_ids=[-1]), "stop_token_ids"),
]


def test_validation_at_the_core(engine) -> None:
    for i, (kwargs, name) in enumerate(BAD_PARAMS):
        with pytest.raises(ValueError, match=name):
            engine.add_request(f"bad{i}", TEXT_FLAT, _core.SamplingParams(**kwargs))
        assert_pool_idle(engine)
    # The rejected ids were never registered, and the engine still generates.
    seq = run_requests(
        engine, {"bad0": (TEXT_FLAT, _core.SamplingParams(temperature=0.0, max_tokens=3))}
    )
    assert len(seq[("bad0", 0)].tokens) == 3
