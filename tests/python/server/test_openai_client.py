"""The official ``openai`` client against the server: completions and chat, streaming and
not, n=3, logprobs, stop, seed, usage, echo, models."""

from __future__ import annotations

import math

import pytest

PROMPT = "The capital of France is"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(server):
    return server.openai()


def test_models_lists_the_served_model_with_max_model_len(client, server):
    models = client.models.list().data
    assert [m.id for m in models] == [server.model]
    assert models[0].model_extra["max_model_len"] == 512


def test_completion(client, server):
    result = client.completions.create(
        model=server.model, prompt=PROMPT, max_tokens=12, temperature=0
    )
    choice = result.choices[0]
    assert result.object == "text_completion" and result.model == server.model
    assert choice.index == 0 and choice.finish_reason == "length"
    assert choice.text.startswith(" Paris")
    assert result.usage.completion_tokens == 12
    assert result.usage.total_tokens == result.usage.prompt_tokens + 12


def test_completion_stream(client, server):
    *chunks, usage_chunk = list(
        client.completions.create(
            model=server.model,
            prompt=PROMPT,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens == 12
    assert all(c.object == "text_completion" and c.usage is None for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks][-1] == "length"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert "".join(c.choices[0].text for c in chunks).startswith(" Paris")


def test_chat(client, server):
    result = client.chat.completions.create(
        model=server.model, messages=MESSAGES, max_completion_tokens=16, temperature=0
    )
    choice = result.choices[0]
    assert result.object == "chat.completion"
    assert choice.message.role == "assistant"
    assert "Paris" in choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert result.usage.completion_tokens <= 16


def test_chat_stream_with_usage(client, server):
    chunks = list(
        client.chat.completions.create(
            model=server.model,
            messages=MESSAGES,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    *content_chunks, usage_chunk = chunks
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens >= 1
    assert all(c.usage is None for c in content_chunks)
    reasons = [c.choices[0].finish_reason for c in content_chunks]
    assert reasons[-1] in ("stop", "length") and all(r is None for r in reasons[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in content_chunks)
    assert "Paris" in text


def test_n3_completion_has_three_indexed_choices(client, server):
    result = client.completions.create(
        model=server.model, prompt=PROMPT, max_tokens=8, temperature=1.0, n=3, seed=5
    )
    assert sorted(c.index for c in result.choices) == [0, 1, 2]
    assert len({c.text for c in result.choices}) > 1  # independent samples
    assert result.usage.completion_tokens == 24


def test_n3_chat_stream_indexes_and_finishes_each_choice(client, server):
    stream = client.chat.completions.create(
        model=server.model, messages=MESSAGES, max_tokens=6, n=3, seed=9, stream=True
    )
    finishes: dict[int, list] = {0: [], 1: [], 2: []}
    for chunk in stream:
        for choice in chunk.choices:
            finishes[choice.index].append(choice.finish_reason)
    for reasons in finishes.values():
        assert reasons[-1] in ("stop", "length")
        assert all(r is None for r in reasons[:-1])


def test_two_prompts_number_choices_by_prompt_then_sequence(client, server):
    result = client.completions.create(
        model=server.model, prompt=[PROMPT, "1, 2, 3,"], max_tokens=4, n=2, seed=1
    )
    assert sorted(c.index for c in result.choices) == [0, 1, 2, 3]


def test_completion_logprobs(client, server):
    result = client.completions.create(
        model=server.model, prompt=PROMPT, max_tokens=5, temperature=0, logprobs=3
    )
    logprobs = result.choices[0].logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == 5
    assert "".join(logprobs.tokens) == result.choices[0].text
    for token, value, top in zip(
        logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True
    ):
        assert value <= 0 and token in top
        assert 3 <= len(top) <= 4  # the sampled token plus the top 3
        assert value == pytest.approx(max(top.values()))  # greedy takes the best
    offsets = logprobs.text_offset
    assert offsets[0] == 0 and offsets == sorted(offsets)


def test_echo_with_logprobs_covers_the_prompt(client, server):
    result = client.completions.create(
        model=server.model, prompt=PROMPT, max_tokens=2, temperature=0, echo=True, logprobs=1
    )
    choice = result.choices[0]
    assert choice.text.startswith(PROMPT)
    logprobs = choice.logprobs
    assert logprobs.token_logprobs[0] is None  # the first prompt token has no context
    assert len(logprobs.tokens) == result.usage.prompt_tokens + 2
    assert "".join(logprobs.tokens) == choice.text


def test_chat_logprobs(client, server):
    result = client.chat.completions.create(
        model=server.model,
        messages=MESSAGES,
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    content = result.choices[0].logprobs.content
    assert len(content) == result.usage.completion_tokens
    for entry in content:
        assert len(entry.top_logprobs) == 2
        assert entry.logprob == pytest.approx(entry.top_logprobs[0].logprob)
        assert bytes(entry.bytes).decode() == entry.token
        assert math.isfinite(entry.logprob)


def test_stop_string_cuts_the_text(client, server):
    full = client.completions.create(
        model=server.model, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0
    )
    assert " 6," in full.choices[0].text
    stopped = client.completions.create(
        model=server.model, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[" 6"]
    )
    choice = stopped.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.text == full.choices[0].text.split(" 6")[0]
    assert choice.model_extra["stop_reason"] == " 6"


def test_seed_makes_sampling_reproducible(client, server):
    def sample(seed: int) -> str:
        result = client.completions.create(
            model=server.model, prompt=PROMPT, max_tokens=16, temperature=1.0, seed=seed
        )
        return result.choices[0].text

    assert sample(1234) == sample(1234)
    assert len({sample(seed) for seed in (1, 2, 3)}) > 1
