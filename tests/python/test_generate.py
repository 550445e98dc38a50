"""LLM.generate end to end on the default model: invariants of the scheduler (batching,
preemption, chunked prefill), seeded sampling, stop conditions and the RequestOutput contract.

Expected outputs are never hard-coded: each test compares two runs that must agree, or checks
an invariant of the API.
"""

from __future__ import annotations

import pytest
from conftest import NUM_THREADS

from cadence import LLM, SamplingParams

GREEDY_16 = SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True)

_TOPICS = [
    "The history of the printing press",
    "How bees communicate the location of flowers",
    "A recipe for a simple tomato soup",
    "Why the sky appears blue during the day",
]
_OPENINGS = [
    "Tell me about",
    "Write one paragraph explaining",
    "In a few sentences, describe",
    "Here is a short essay on",
]


def _batch_prompts(count: int) -> list[str]:
    """`count` distinct prompts with lengths from a few tokens to several dozen."""
    prompts = []
    for index in range(count):
        topic = _TOPICS[index % len(_TOPICS)]
        opening = _OPENINGS[(index // len(_TOPICS)) % len(_OPENINGS)]
        padding = " Please be precise and give concrete details." * (index % 5)
        prompts.append(f"{opening} {topic.lower()}.{padding}")
    return prompts


def _long_prompts(count: int, min_tokens: int, tokenizer) -> list[str]:
    prompts = []
    for index in range(count):
        text = f"Question {index}: " + " ".join(_TOPICS[index % 4 :] + _TOPICS[: index % 4]) + "."
        while len(tokenizer.encode(text)) <= min_tokens:
            text += f" Consider also point {len(text) % 97} carefully."
        prompts.append(text)
    return prompts


def _token_ids(outputs) -> list[list[int]]:
    return [list(output.outputs[0].token_ids) for output in outputs]


def _assert_idle(llm: LLM) -> None:
    """No request left behind: bookkeeping consistent and every KV block back in the pool."""
    core = llm.llm_engine.core
    core.check_invariants()
    stats = core.stats()
    assert not core.has_unfinished_requests()
    assert stats.num_running == 0 and stats.num_waiting == 0
    assert stats.num_free_blocks == stats.num_total_blocks


def _bytes_per_block(llm: LLM) -> int:
    core = llm.llm_engine.core
    return core.kv_cache_bytes // core.stats().num_total_blocks


# --------------------------------------------------------------------------- scheduling


def test_greedy_batch_invariance(default_llm: LLM) -> None:
    """A prompt's greedy tokens do not depend on what else is in the batch."""
    prompts = _batch_prompts(16)
    lengths = {len(default_llm.get_tokenizer().encode(p)) for p in prompts}
    assert len(lengths) >= 8, "the batch should mix many prompt lengths"
    batch = _token_ids(default_llm.generate(prompts, GREEDY_16, use_tqdm=False))
    for index, prompt in enumerate(prompts):
        alone = _token_ids(default_llm.generate(prompt, GREEDY_16, use_tqdm=False))[0]
        assert alone == batch[index], f"prompt {index} ({prompt!r}) differs in the batch"
    _assert_idle(default_llm)


def test_greedy_thread_invariance_bitwise(default_llm: LLM) -> None:
    """The default engine (native quantized weights, the "auto" KV cache) on 1 and 2 threads:
    the same greedy tokens and bit-identical logprobs. Contexts past 512 keys make the
    multi-threaded attention plan split decode rows over threads by key partition, and the
    int8 GEMMs split their panels differently; neither may change a value."""
    tokenizer = default_llm.get_tokenizer()
    # Alone, a long prompt's decode rows are split by key partition on 2 threads (too few
    # attention items otherwise); in the mixed batch they are not.
    long_prompt = _long_prompts(1, 520, tokenizer)
    batches = [long_prompt, long_prompt + _batch_prompts(3)]
    params = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True, logprobs=3)
    path = default_llm.llm_engine.core.config.model_path

    def run(num_threads: int) -> list[tuple[list[int], list[dict[int, float]]]]:
        llm = LLM(model=path, max_model_len=1024, num_threads=num_threads)
        outputs = [out for batch in batches for out in llm.generate(batch, params, use_tqdm=False)]
        return [
            (
                list(output.outputs[0].token_ids),
                [{t: lp.logprob for t, lp in step.items()} for step in output.outputs[0].logprobs],
            )
            for output in outputs
        ]

    one, two = run(1), run(2)
    for index, (ours, theirs) in enumerate(zip(two, one, strict=True)):
        assert ours[0] == theirs[0], f"prompt {index}: tokens differ between 2 threads and 1"
        assert ours[1] == theirs[1], f"prompt {index}: logprobs differ between 2 threads and 1"


def test_parallel_sampling_equals_the_serial_pass(default_llm: LLM) -> None:
    """The rows of a step are sampled on all threads (logits processing, the sampler,
    logprobs, prompt logprobs): on 2 threads every token, logprob and prompt logprob equals
    the 1-thread run, where the same code runs as one serial pass. Every knob is on, n > 1
    siblings share their leader's logits row, and unseeded requests draw their seeds from
    the engine's seed in the same order."""
    prompts = _batch_prompts(6)
    params = [
        SamplingParams(
            n=2 if index % 3 == 0 else 1,
            temperature=0.8,
            top_k=50,
            top_p=0.9,
            min_p=0.01,
            presence_penalty=0.5,
            frequency_penalty=0.3,
            repetition_penalty=1.2,
            logit_bias={11: -2.0},
            seed=None if index % 2 else 1000 + index,
            logprobs=2,
            prompt_logprobs=1 if index == 1 else None,
            max_tokens=24,
            ignore_eos=True,
        )
        for index in range(len(prompts))
    ]
    path = default_llm.llm_engine.core.config.model_path

    def run(num_threads: int) -> list:
        llm = LLM(model=path, max_model_len=1024, num_threads=num_threads, seed=7)
        return [
            (
                [list(c.token_ids) for c in output.outputs],
                [
                    [{t: lp.logprob for t, lp in s.items()} for s in c.logprobs]
                    for c in output.outputs
                ],
                output.prompt_logprobs,
            )
            for output in llm.generate(prompts, params, use_tqdm=False)
        ]

    one, two = run(1), run(2)
    assert any(len(tokens) == 2 for tokens, _, _ in one), "an n > 1 request was meant to run"
    assert one[1][2] is not None
    for index, (ours, theirs) in enumerate(zip(two, one, strict=True)):
        assert ours == theirs, f"prompt {index}: sampled output differs between 2 threads and 1"


def test_preemption_gives_same_output(default_llm: LLM) -> None:
    """8 requests of 50-83 tokens on a pool with room for ~2 of them: the scheduler must preempt
    and recompute, and the result must equal the run where everything fits. Half the requests
    sample with a seed: recomputation must not consume or reset their RNG streams."""
    tokenizer = default_llm.get_tokenizer()
    prompts = _batch_prompts(8)  # 10-43 prompt tokens
    max_tokens = 40
    longest = max(len(tokenizer.encode(p)) for p in prompts) + max_tokens
    block_size = default_llm.llm_engine.core.config.block_size
    blocks_per_request = -(-longest // block_size)
    num_blocks = 2 * blocks_per_request + 2  # two full requests (+ change), never eight
    small = LLM(
        model=default_llm.llm_engine.core.config.model_path,
        max_model_len=default_llm.llm_engine.max_model_len,
        kv_cache_memory_bytes=num_blocks * _bytes_per_block(default_llm),
        num_threads=NUM_THREADS,
    )
    assert small.llm_engine.core.stats().num_total_blocks == num_blocks
    params = [
        SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
        if index % 2 == 0
        else SamplingParams(
            temperature=0.8, seed=100 + index, max_tokens=max_tokens, ignore_eos=True
        )
        for index in range(len(prompts))
    ]

    expected = _token_ids(default_llm.generate(prompts, params, use_tqdm=False))
    actual = _token_ids(small.generate(prompts, params, use_tqdm=False))

    assert small.llm_engine.core.stats().num_preemptions > 0, "the pool was meant to overflow"
    assert default_llm.llm_engine.core.stats().num_preemptions == 0
    for index, (ours, reference) in enumerate(zip(actual, expected, strict=True)):
        assert len(ours) == max_tokens
        assert ours == reference, f"request {index} changed under preemption"
    _assert_idle(small)


def test_chunked_prefill_gives_same_output(default_llm: LLM) -> None:
    """Prompts over 50 tokens computed 16 tokens per step give the same tokens."""
    tokenizer = default_llm.get_tokenizer()
    prompts = _long_prompts(3, 50, tokenizer)
    chunked = LLM(
        model=default_llm.llm_engine.core.config.model_path,
        max_model_len=default_llm.llm_engine.max_model_len,
        max_num_batched_tokens=16,
        kv_cache_memory_bytes=default_llm.llm_engine.core.kv_cache_bytes,
        num_threads=NUM_THREADS,
    )
    expected = _token_ids(default_llm.generate(prompts, GREEDY_16, use_tqdm=False))
    assert _token_ids(chunked.generate(prompts, GREEDY_16, use_tqdm=False)) == expected
    # One at a time as well: a lone long prompt is split over several steps.
    alone = _token_ids(chunked.generate(prompts[0], GREEDY_16, use_tqdm=False))[0]
    assert alone == expected[0]
    _assert_idle(chunked)


def test_max_num_seqs_limits_running_requests(tiny_models) -> None:
    """With max_num_seqs=2 at most two requests run per step; results are unchanged."""
    path = tiny_models["llama_gqa"].path
    narrow = LLM(model=path, max_num_seqs=2, num_threads=NUM_THREADS)
    wide = LLM(model=path, num_threads=NUM_THREADS)
    prompts = _batch_prompts(6)
    params = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
    expected = _token_ids(wide.generate(prompts, params, use_tqdm=False))

    engine = narrow.llm_engine
    request_ids = []
    for prompt in prompts:
        request_ids.append(engine.next_request_id())
        engine.add_request(request_ids[-1], prompt, engine.tokenize(prompt), params)
    finished = {}
    while engine.has_unfinished_requests():
        outputs = engine.step()
        assert engine.core.stats().num_running <= 2
        assert len(outputs) <= 2
        finished.update({out.request_id: out for out in outputs if out.finished})
    assert _token_ids(finished[rid] for rid in request_ids) == expected
    _assert_idle(narrow)


def test_abort_frees_the_request(default_llm: LLM) -> None:
    engine = default_llm.llm_engine
    prompts = ["Tell me about the moon.", "Tell me about the sun."]
    [expected] = _token_ids(default_llm.generate(prompts[1], GREEDY_16, use_tqdm=False))
    ids = [engine.next_request_id() for _ in prompts]
    for request_id, prompt in zip(ids, prompts, strict=True):
        engine.add_request(request_id, prompt, engine.tokenize(prompt), GREEDY_16)
    for _ in range(3):
        engine.step()
    assert engine.abort_request(ids[0]) is True
    engine.core.check_invariants()
    assert engine.abort_request(ids[0]) is False  # already gone
    assert engine.abort_request("no-such-request") is False
    finished = {}
    while engine.has_unfinished_requests():
        outputs = engine.step()
        assert all(out.request_id != ids[0] for out in outputs)
        finished.update({out.request_id: out for out in outputs if out.finished})
    assert list(finished) == [ids[1]]
    assert list(finished[ids[1]].outputs[0].token_ids) == expected
    _assert_idle(default_llm)


@pytest.mark.parametrize("block_size", [1, 7, 32])
def test_block_size_does_not_change_output(tiny_models, block_size: int) -> None:
    """KV-block index math (slot mapping, block tables, partial last block) at odd sizes, with
    chunked prefill and a batch of different lengths; compared to the 16-token blocks."""
    path = tiny_models["qwen2"].path
    prompts = _batch_prompts(6)
    params = SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True)
    reference = LLM(model=path, max_model_len=256, num_threads=NUM_THREADS)
    expected = _token_ids(reference.generate(prompts, params, use_tqdm=False))
    llm = LLM(
        model=path,
        max_model_len=256,
        block_size=block_size,
        max_num_batched_tokens=24,
        num_threads=NUM_THREADS,
    )
    assert _token_ids(llm.generate(prompts, params, use_tqdm=False)) == expected
    _assert_idle(llm)


@pytest.mark.parametrize(
    "limits",
    [
        {"max_num_batched_tokens": 1},
        {"max_num_batched_tokens": 2, "max_num_seqs": 1},
        {"max_num_seqs": 1},
        {"kv_blocks": 5},  # exactly one request's worth: requests must run one at a time
    ],
    ids=["1-token-budget", "2-token-budget-1-seq", "1-seq", "1-request-pool"],
)
def test_extreme_scheduler_limits_still_finish(tiny_models, limits: dict) -> None:
    """Scheduling must make progress (and not change greedy output) at the smallest limits."""
    path = tiny_models["llama_gqa"].path
    prompts = [{"prompt_token_ids": list(range(100, 100 + n))} for n in (5, 23, 40)]
    params = SamplingParams(temperature=0.0, max_tokens=30, ignore_eos=True)  # <= 70 tokens
    reference = LLM(model=path, num_threads=NUM_THREADS)
    expected = _token_ids(reference.generate(prompts, params, use_tqdm=False))
    kwargs = dict(limits)
    if "kv_blocks" in kwargs:
        kwargs["kv_cache_memory_bytes"] = kwargs.pop("kv_blocks") * _bytes_per_block(reference)
    llm = LLM(model=path, num_threads=NUM_THREADS, **kwargs)
    assert _token_ids(llm.generate(prompts, params, use_tqdm=False)) == expected
    _assert_idle(llm)


# --------------------------------------------------------------------------- sampling


SAMPLING_PROMPT = "Write a short poem about the sea:\n"
SAMPLING_OTHER_PROMPTS = ["List three colours:", "Once upon a time", "def add(a, b):"]


@pytest.mark.parametrize(
    "options",
    [{"temperature": 1.0}, {"temperature": 0.8, "top_p": 0.9, "top_k": 50, "min_p": 0.02}],
    ids=["plain", "filtered"],
)
def test_seeded_sampling_is_reproducible(default_llm: LLM, options: dict) -> None:
    params = SamplingParams(seed=1234, max_tokens=16, ignore_eos=True, **options)
    first = _token_ids(default_llm.generate(SAMPLING_PROMPT, params, use_tqdm=False))[0]
    second = _token_ids(default_llm.generate(SAMPLING_PROMPT, params, use_tqdm=False))[0]
    assert first == second

    # In a batch, next to other seeded and unseeded requests.
    others = [
        SamplingParams(seed=99, max_tokens=12, ignore_eos=True, **options),
        SamplingParams(max_tokens=20, ignore_eos=True, **options),
        SamplingParams(temperature=0.0, max_tokens=8),
    ]
    batch = default_llm.generate(
        [SAMPLING_OTHER_PROMPTS[0], SAMPLING_PROMPT, *SAMPLING_OTHER_PROMPTS[1:]],
        [others[0], params, others[1], others[2]],
        use_tqdm=False,
    )
    assert _token_ids(batch)[1] == first

    # Twice in one batch: each request has its own stream, seeded alike.
    twice = default_llm.generate([SAMPLING_PROMPT] * 2, params, use_tqdm=False)
    assert _token_ids(twice) == [first, first]
    _assert_idle(default_llm)


def test_different_seeds_give_different_samples(default_llm: LLM) -> None:
    outputs = default_llm.generate(
        [SAMPLING_PROMPT] * 4,
        [SamplingParams(seed=seed, max_tokens=16, ignore_eos=True) for seed in (1, 2, 3, 4)],
        use_tqdm=False,
    )
    distinct = {tuple(ids) for ids in _token_ids(outputs)}
    # 16 tokens at temperature 1 from an open-ended prompt: a collision is vanishingly rare.
    assert len(distinct) == 4


def test_unseeded_requests_differ(default_llm: LLM) -> None:
    params = SamplingParams(max_tokens=16, ignore_eos=True)
    outputs = default_llm.generate([SAMPLING_PROMPT] * 2, params, use_tqdm=False)
    first, second = _token_ids(outputs)
    assert first != second, "unseeded requests must draw different seeds"


@pytest.mark.parametrize(
    "options",
    [{"top_k": 1}, {"min_p": 1.0}, {"top_p": 1e-6}],
    ids=["top_k=1", "min_p=1", "top_p=1e-6"],
)
def test_filters_that_keep_one_token_are_greedy(default_llm: LLM, options: dict) -> None:
    """Each of these filters keeps only the most likely token, so sampling = argmax."""
    greedy = _token_ids(default_llm.generate(SAMPLING_PROMPT, GREEDY_16, use_tqdm=False))[0]
    params = SamplingParams(temperature=1.5, seed=7, max_tokens=16, ignore_eos=True, **options)
    sampled = _token_ids(default_llm.generate(SAMPLING_PROMPT, params, use_tqdm=False))[0]
    assert sampled == greedy


def test_engine_seed_makes_unseeded_requests_reproducible(tiny_models) -> None:
    path = tiny_models["llama_gqa"].path
    params = SamplingParams(temperature=1.0, max_tokens=12, ignore_eos=True)
    prompts = ["Once upon a time", "Hello"]

    def run(seed: int) -> list[list[int]]:
        llm = LLM(model=path, seed=seed, num_threads=NUM_THREADS)
        return _token_ids(llm.generate(prompts, params, use_tqdm=False))

    first = run(5)
    assert run(5) == first
    assert run(6) != first


# Sampling semantics, checked statistically on the tiny Llama: N one-token requests with seeds
# 0..N-1 against the distribution computed (in float64) from cadence's own logits. The temperature
# is chosen so that a few tokens carry most of the mass (random weights give flat logits).
NUM_SAMPLES = 1500
SAMPLING_TEMPERATURE = 0.12


def _sample_once(llm: LLM, prompt_ids: list[int], num: int, **options) -> list[int]:
    params = [
        SamplingParams(seed=seed, max_tokens=1, ignore_eos=True, **options) for seed in range(num)
    ]
    outputs = llm.generate([{"prompt_token_ids": prompt_ids}] * num, params, use_tqdm=False)
    return [output.outputs[0].token_ids[0] for output in outputs]


@pytest.fixture(scope="module")
def sampling_setup(tiny_models):
    import numpy as np

    llm = LLM(model=tiny_models["llama_gqa"].path, num_threads=NUM_THREADS)
    prompt_ids = list(llm.get_tokenizer().encode("The capital of France is"))
    logits = llm.llm_engine.core.compute_prompt_logits(prompt_ids)[-1].astype(np.float64)
    scaled = (logits - logits.max()) / SAMPLING_TEMPERATURE
    probs = np.exp(scaled) / np.exp(scaled).sum()
    order = np.argsort(-probs, kind="stable")
    return llm, prompt_ids, probs, order


def _check_frequencies(samples: list[int], probs, support) -> None:
    """Every sample lies in `support`; the frequency of each likely token is within 5 standard
    deviations of its renormalized probability."""
    import numpy as np

    support = [int(t) for t in support]
    outside = set(samples) - set(support)
    assert not outside, f"sampled tokens outside the allowed set: {sorted(outside)[:10]}"
    expected = probs[support] / probs[support].sum()
    counts = np.array([samples.count(token) for token in support])
    num = len(samples)
    for token, count, p in zip(support, counts, expected, strict=True):
        if p < 0.02:
            continue
        sigma = np.sqrt(p * (1 - p) / num)
        assert abs(count / num - p) <= 5 * sigma + 1e-9, (
            f"token {token}: frequency {count / num:.3f}, expected {p:.3f} (+-{sigma:.3f})"
        )


def test_temperature_sampling_matches_softmax(sampling_setup) -> None:
    llm, prompt_ids, probs, order = sampling_setup
    assert probs[order[0]] < 0.6, "precondition: the distribution is not nearly one-hot"
    samples = _sample_once(llm, prompt_ids, NUM_SAMPLES, temperature=SAMPLING_TEMPERATURE)
    _check_frequencies(samples, probs, order)
    _assert_idle(llm)


def test_top_k_sampling(sampling_setup) -> None:
    llm, prompt_ids, probs, order = sampling_setup
    options = {"temperature": SAMPLING_TEMPERATURE, "top_k": 3}
    samples = _sample_once(llm, prompt_ids, NUM_SAMPLES, **options)
    _check_frequencies(samples, probs, order[:3])


def test_top_p_sampling(sampling_setup) -> None:
    """top_p keeps the smallest set of most likely tokens whose mass reaches top_p; choose
    top_p between two cumulative sums so that the set is exactly 4 tokens."""
    llm, prompt_ids, probs, order = sampling_setup
    cumulative = probs[order].cumsum()
    top_p = float((cumulative[2] + cumulative[3]) / 2)
    options = {"temperature": SAMPLING_TEMPERATURE, "top_p": top_p}
    samples = _sample_once(llm, prompt_ids, NUM_SAMPLES, **options)
    _check_frequencies(samples, probs, order[:4])


def test_min_p_sampling(sampling_setup) -> None:
    """min_p keeps tokens with probability >= min_p * the top one's; choose min_p between the
    4th and 5th ratio so that exactly 4 tokens remain."""
    llm, prompt_ids, probs, order = sampling_setup
    ratios = probs[order] / probs[order[0]]
    min_p = float((ratios[3] + ratios[4]) / 2)
    options = {"temperature": SAMPLING_TEMPERATURE, "min_p": min_p}
    samples = _sample_once(llm, prompt_ids, NUM_SAMPLES, **options)
    _check_frequencies(samples, probs, order[:4])


# --------------------------------------------------------------------------- outputs


def test_request_output_fields(default_llm: LLM) -> None:
    tokenizer = default_llm.get_tokenizer()
    prompts = ["Hello, my name is", "The capital of France is", "1, 2, 3, 4,"]
    outputs = default_llm.generate(prompts, GREEDY_16, use_tqdm=False)
    assert len(outputs) == len(prompts)
    assert len({output.request_id for output in outputs}) == len(prompts)
    for prompt, output in zip(prompts, outputs, strict=True):  # order preserved
        assert isinstance(output.request_id, str)
        assert output.prompt == prompt
        assert output.prompt_token_ids == list(tokenizer.encode(prompt))
        assert output.finished is True
        assert len(output.outputs) == 1
        completion = output.outputs[0]
        assert completion.index == 0
        assert len(completion.token_ids) == 16
        assert all(isinstance(t, int) for t in completion.token_ids)
        assert completion.finish_reason == "length"
        assert completion.stop_reason is None
        assert completion.text == tokenizer.decode(completion.token_ids, skip_special_tokens=True)


def test_prompt_forms_are_equivalent(default_llm: LLM) -> None:
    text = "The quick brown fox"
    ids = list(default_llm.get_tokenizer().encode(text))
    [from_str] = default_llm.generate(text, GREEDY_16, use_tqdm=False)
    [from_dict] = default_llm.generate({"prompt": text}, GREEDY_16, use_tqdm=False)
    [from_ids] = default_llm.generate({"prompt_token_ids": ids}, GREEDY_16, use_tqdm=False)
    mixed = default_llm.generate(
        [text, {"prompt": text}, {"prompt_token_ids": ids}], GREEDY_16, use_tqdm=False
    )
    expected = from_str.outputs[0].token_ids
    assert from_dict.outputs[0].token_ids == expected
    assert from_ids.outputs[0].token_ids == expected
    assert _token_ids(mixed) == [expected] * 3
    assert from_dict.prompt == text
    assert from_ids.prompt is None
    assert from_ids.prompt_token_ids == ids
    assert from_ids.outputs[0].text == from_str.outputs[0].text


def test_list_of_sampling_params_applies_per_prompt(default_llm: LLM) -> None:
    prompts = ["Tell me a joke.", "Tell me a story.", "Tell me a fact."]
    params = [SamplingParams(temperature=0.0, max_tokens=n, ignore_eos=True) for n in (3, 9, 5)]
    outputs = default_llm.generate(prompts, params, use_tqdm=False)
    assert [len(ids) for ids in _token_ids(outputs)] == [3, 9, 5]
    # Each prefix equals the longer greedy run of the same prompt alone.
    for prompt, ids in zip(prompts, _token_ids(outputs), strict=True):
        full = _token_ids(default_llm.generate(prompt, GREEDY_16, use_tqdm=False))[0]
        assert ids == full[: len(ids)]


@pytest.mark.parametrize("max_tokens", [1, 2, 7])
def test_max_tokens_finishes_with_length(default_llm: LLM, max_tokens: int) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    [output] = default_llm.generate("Count to one hundred: 1, 2,", params, use_tqdm=False)
    completion = output.outputs[0]
    assert len(completion.token_ids) == max_tokens
    assert completion.finish_reason == "length"
    assert completion.stop_reason is None


def test_default_params_generate_16_tokens(default_llm: LLM) -> None:
    [output] = default_llm.generate(
        "Count to one hundred: 1, 2,", SamplingParams(ignore_eos=True, seed=0), use_tqdm=False
    )
    assert len(output.outputs[0].token_ids) == 16  # vLLM's default max_tokens


def test_streamed_text_matches_decode(default_llm: LLM) -> None:
    """At every step the text so far is a prefix of decode(token_ids) and equals it unless a
    multi-byte character is still incomplete; at the end it equals decode(token_ids)."""
    engine = default_llm.llm_engine
    tokenizer = default_llm.get_tokenizer()
    prompts = [
        "Reply with three emojis:",
        "日本語で自己紹介してください。",
        "Emoji for happy: 😀, sad:",
    ]
    params = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
    for prompt in prompts:
        engine.add_request(engine.next_request_id(), prompt, engine.tokenize(prompt), params)
    num_held_back = 0
    num_finished = 0
    while engine.has_unfinished_requests():
        for output in engine.step():
            completion = output.outputs[0]
            full = tokenizer.decode(completion.token_ids, skip_special_tokens=True)
            assert full.startswith(completion.text)
            if output.finished:
                num_finished += 1
                assert completion.text == full
            elif full.endswith("\ufffd"):
                num_held_back += 1
            else:
                assert completion.text == full
    assert num_finished == len(prompts)
    # Precondition: some character really was split across tokens.
    assert num_held_back > 0
    _assert_idle(default_llm)


def _eos_ids(llm: LLM) -> list[int]:
    eos = list(llm.llm_engine.core.model_config.eos_token_ids)
    assert eos, "the default model declares an EOS token"
    return eos


def test_eos_stops_generation(default_llm: LLM) -> None:
    """Greedy with ignore_eos shows where EOS comes; without it, generation ends right there."""
    tokenizer = default_llm.get_tokenizer()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    eos = _eos_ids(default_llm)
    budget = 64
    params = SamplingParams(temperature=0.0, max_tokens=budget, ignore_eos=True)
    [free_run] = default_llm.generate(prompt, params, use_tqdm=False)
    free_ids = list(free_run.outputs[0].token_ids)
    eos_positions = [i for i, token in enumerate(free_ids) if token in eos]
    assert eos_positions, f"precondition: the model should end its answer within {budget} tokens"
    end = eos_positions[0] + 1

    params = SamplingParams(temperature=0.0, max_tokens=budget)
    [output] = default_llm.generate(prompt, params, use_tqdm=False)
    completion = output.outputs[0]
    assert list(completion.token_ids) == free_ids[:end]  # EOS included, as in vLLM
    assert completion.finish_reason == "stop"
    assert completion.stop_reason is None
    assert completion.text == tokenizer.decode(completion.token_ids, skip_special_tokens=True)
    assert tokenizer.decode([completion.token_ids[-1]], skip_special_tokens=True) == ""


def test_stop_token_ids_stop_generation(default_llm: LLM) -> None:
    prompt = "Tell me about the history of the printing press."
    [free_run] = default_llm.generate(prompt, GREEDY_16, use_tqdm=False)
    free_ids = list(free_run.outputs[0].token_ids)
    # The first token that has not occurred before position 4: stopping must happen there.
    stop_index = next(i for i in range(4, len(free_ids)) if free_ids[i] not in free_ids[:i])
    stop_id = free_ids[stop_index]
    unused_id = next(t for t in range(3, 1000) if t not in free_ids)
    params = SamplingParams(
        temperature=0.0, max_tokens=16, ignore_eos=True, stop_token_ids=[unused_id, stop_id]
    )
    [output] = default_llm.generate(prompt, params, use_tqdm=False)
    completion = output.outputs[0]
    assert list(completion.token_ids) == free_ids[: stop_index + 1]  # stop token kept
    assert completion.finish_reason == "stop"
    assert completion.stop_reason == stop_id


def test_max_tokens_none_runs_to_max_model_len(tiny_models) -> None:
    """max_tokens=None generates until the context (prompt + output) is max_model_len long."""
    llm = LLM(model=tiny_models["llama_gqa"].path, max_model_len=48, num_threads=NUM_THREADS)
    prompt_ids = list(range(100, 111))
    params = SamplingParams(temperature=0.0, max_tokens=None, ignore_eos=True)
    [output] = llm.generate({"prompt_token_ids": prompt_ids}, params, use_tqdm=False)
    assert len(output.outputs[0].token_ids) == 48 - len(prompt_ids)
    assert output.outputs[0].finish_reason == "length"
    _assert_idle(llm)


def test_generate_with_no_prompts(default_llm: LLM) -> None:
    assert default_llm.generate([], GREEDY_16, use_tqdm=False) == []
    _assert_idle(default_llm)


@pytest.mark.parametrize("temperature", [1e-30, 1e-39, 1e-40, 1e-45])
def test_a_vanishing_temperature_samples_the_greedy_tokens(default_llm: LLM, temperature) -> None:
    """1/T overflows a float for T below ~3e-39; the tokens are still the T -> 0 limit's."""
    prompt = "The capital of France is"
    tiny = SamplingParams(temperature=temperature, seed=5, max_tokens=16, ignore_eos=True)
    assert _token_ids(default_llm.generate(prompt, tiny, use_tqdm=False)) == _token_ids(
        default_llm.generate(prompt, GREEDY_16, use_tqdm=False)
    )
    _assert_idle(default_llm)
