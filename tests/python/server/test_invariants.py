"""Invariants: streaming == non-streaming, same seed -> same text, concurrent identical
greedy requests agree, and the server returns what the offline ``LLM`` returns."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cadence import SamplingParams

PROMPTS = [
    "The capital of France is",
    "Here is a short story about a robot who learns to paint:",
    "1, 2, 3, 4,",
]
# A prompt whose reply is non-ASCII: multi-byte characters split across byte-level tokens.
UNICODE_PROMPT = "Translate to Chinese: 'The moon is bright tonight.' Chinese:"
MESSAGES = [{"role": "user", "content": "Name three colors."}]


@pytest.fixture(scope="module")
def client(server):
    return server.openai()


def _completion(client, model, prompt, **kwargs) -> str:
    return client.completions.create(model=model, prompt=prompt, **kwargs).choices[0].text


def _streamed_completion(client, model, prompt, **kwargs) -> list[str]:
    stream = client.completions.create(model=model, prompt=prompt, stream=True, **kwargs)
    return [chunk.choices[0].text for chunk in stream]


@pytest.mark.parametrize("prompt", [*PROMPTS, UNICODE_PROMPT])
def test_stream_concatenation_equals_non_stream(client, server, prompt):
    kwargs = dict(max_tokens=24, temperature=0)
    text = _completion(client, server.model, prompt, **kwargs)
    deltas = _streamed_completion(client, server.model, prompt, **kwargs)
    assert "".join(deltas) == text
    assert "\ufffd" not in text  # no character split across deltas or decoded half


def test_unicode_prompt_really_produces_multibyte_text(client, server):
    text = _completion(client, server.model, UNICODE_PROMPT, max_tokens=24, temperature=0)
    assert any(ord(char) > 0x7FF for char in text), text  # 3-byte UTF-8 characters


def test_stream_with_stop_strings_never_leaks_part_of_the_stop(client, server):
    kwargs = dict(max_tokens=24, temperature=0, stop=[" 7,", "xyz"])
    text = _completion(client, server.model, "1, 2, 3, 4,", **kwargs)
    deltas = _streamed_completion(client, server.model, "1, 2, 3, 4,", **kwargs)
    assert "".join(deltas) == text
    assert text.endswith(" 6,") and " 7" not in "".join(deltas)


def test_chat_stream_concatenation_equals_non_stream(client, server):
    kwargs = dict(model=server.model, messages=MESSAGES, max_tokens=32, temperature=0)
    text = client.chat.completions.create(**kwargs).choices[0].message.content
    stream = client.chat.completions.create(stream=True, **kwargs)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == text


def test_same_seed_same_text_in_stream_and_not(client, server):
    kwargs = dict(max_tokens=24, temperature=0.9, top_p=0.95, seed=42)
    first = _completion(client, server.model, PROMPTS[1], **kwargs)
    assert _completion(client, server.model, PROMPTS[1], **kwargs) == first
    assert "".join(_streamed_completion(client, server.model, PROMPTS[1], **kwargs)) == first


def test_eight_concurrent_identical_greedy_requests_agree(client, server):
    def run(_: int) -> str:
        return _completion(client, server.model, PROMPTS[1], max_tokens=24, temperature=0)

    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(run, range(8)))
    assert len(set(texts)) == 1
    assert texts[0] == _completion(client, server.model, PROMPTS[1], max_tokens=24, temperature=0)


def test_completions_equal_offline_llm(client, server, default_llm_fp32_kv):
    """Greedy and seeded sampling, all six served requests in flight together."""
    greedy = dict(max_tokens=24, temperature=0)
    seeded = dict(max_tokens=24, temperature=0.8, seed=7, extra_body={"top_k": 40})
    requests = [(prompt, kwargs) for kwargs in (greedy, seeded) for prompt in PROMPTS]
    with ThreadPoolExecutor(len(requests)) as pool:
        served = list(pool.map(lambda r: _completion(client, server.model, r[0], **r[1]), requests))
    offline = [
        output.outputs[0].text
        for params in (
            SamplingParams(temperature=0, max_tokens=24),
            SamplingParams(temperature=0.8, top_k=40, seed=7, max_tokens=24),
        )
        for output in default_llm_fp32_kv.generate(PROMPTS, params, use_tqdm=False)
    ]
    assert served == offline


def test_token_id_prompt_equals_offline_llm(client, server, default_llm_fp32_kv):
    token_ids = default_llm_fp32_kv.get_tokenizer().encode(PROMPTS[0])
    expected = default_llm_fp32_kv.generate(
        {"prompt_token_ids": token_ids}, SamplingParams(temperature=0, max_tokens=16), False
    )[0]
    result = client.completions.create(
        model=server.model, prompt=token_ids, max_tokens=16, temperature=0
    )
    assert result.choices[0].text == expected.outputs[0].text


def test_chat_equals_offline_llm_chat(client, server, default_llm_fp32_kv):
    expected = default_llm_fp32_kv.chat(
        MESSAGES, SamplingParams(temperature=0, max_tokens=32), use_tqdm=False
    )[0]
    result = client.chat.completions.create(
        model=server.model, messages=MESSAGES, max_tokens=32, temperature=0
    )
    assert result.choices[0].message.content == expected.outputs[0].text
    assert result.usage.prompt_tokens == len(expected.prompt_token_ids)
