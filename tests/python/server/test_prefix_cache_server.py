"""Prefix caching through the servers, black-box: OpenAI ``usage.prompt_tokens_details.
cached_tokens`` (streamed and not), ``cache_salt`` isolation, POST /reset_prefix_cache, the
Prometheus prefix-cache counters, gRPC usage and salts, and ``--no-enable-prefix-caching``.

Cached-token counts are checked against the block rule on the prompt's own token count (whole
16-token blocks, the last prompt token always computed), never against fixed numbers."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from cadence.grpc_client import CadenceClient

BLOCK_SIZE = 16
_TEXT = (Path(__file__).resolve().parents[2] / "data" / "perplexity_text.txt").read_text()
SYSTEM = "Answer from this text only.\n" + _TEXT[:700]


def _messages(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def _all_but_last_block(num_prompt_tokens: int) -> int:
    return (num_prompt_tokens - 1) // BLOCK_SIZE * BLOCK_SIZE


@pytest.fixture
def http(server):
    with server.http() as client:
        assert client.post("/reset_prefix_cache").status_code == 200
        yield client


def test_repeated_chat_reports_cached_tokens_and_keeps_the_answer(server, http):
    client = server.openai()
    first = client.chat.completions.create(
        model=server.model, messages=_messages("What is it about?"), max_tokens=12, temperature=0
    )
    second = client.chat.completions.create(
        model=server.model, messages=_messages("What is it about?"), max_tokens=12, temperature=0
    )
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == _all_but_last_block(
        second.usage.prompt_tokens
    )
    assert second.choices[0].message.content == first.choices[0].message.content

    chunks = list(
        client.chat.completions.create(
            model=server.model,
            messages=_messages("What is it about?"),
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == first.choices[0].message.content
    final_usage = chunks[-1].usage
    assert final_usage.prompt_tokens_details.cached_tokens == _all_but_last_block(
        final_usage.prompt_tokens
    )


def test_cache_salt_isolates_completions(server, http):
    prompt = SYSTEM + "\nSummary:"

    def complete(**extra):
        body = {"model": server.model, "prompt": prompt, "max_tokens": 4, "temperature": 0}
        return http.post("/v1/completions", json={**body, **extra}).json()

    complete(cache_salt="tenant-a")
    other = complete(cache_salt="tenant-b")
    unsalted = complete()
    same = complete(cache_salt="tenant-a")
    assert other["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert unsalted["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert same["usage"]["prompt_tokens_details"]["cached_tokens"] == _all_but_last_block(
        same["usage"]["prompt_tokens"]
    )
    assert other["choices"][0]["text"] == same["choices"][0]["text"]


def test_empty_cache_salt_is_a_400_naming_it(server, http):
    response = http.post(
        "/v1/chat/completions",
        json={"model": server.model, "messages": _messages("Hi"), "cache_salt": ""},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "cache_salt"
    assert http.get("/health").status_code == 200


def test_reset_and_metrics_counters(server, http):
    body = {"model": server.model, "prompt": SYSTEM + "\nTitle:", "max_tokens": 2}
    http.post("/v1/completions", json=body)
    before = server.metrics()
    cached = http.post("/v1/completions", json=body).json()["usage"]
    after = server.metrics()
    hits = cached["prompt_tokens_details"]["cached_tokens"]
    assert hits == _all_but_last_block(cached["prompt_tokens"])
    queries = (
        after["cadence:prefix_cache_queries_total"] - before["cadence:prefix_cache_queries_total"]
    )
    assert queries == cached["prompt_tokens"]
    assert (
        after["cadence:prefix_cache_hits_total"] - before["cadence:prefix_cache_hits_total"] == hits
    )

    assert http.post("/reset_prefix_cache").status_code == 200
    again = http.post("/v1/completions", json=body).json()["usage"]
    assert again["prompt_tokens_details"]["cached_tokens"] == 0


def test_grpc_usage_and_salt(server, http):
    prompt = SYSTEM + "\nKeywords:"
    with CadenceClient(server.grpc_target) as client:
        client.generate(prompt, max_tokens=2, temperature=0, cache_salt="g")
        hit = client.generate(prompt, max_tokens=2, temperature=0, cache_salt="g").usage
        miss = client.generate(prompt, max_tokens=2, temperature=0, cache_salt="h").usage
        beams = client.beam_search(prompt, beam_width=2, max_tokens=3, cache_salt="g").usage
        assert hit.cached_tokens == _all_but_last_block(hit.prompt_tokens)
        assert miss.cached_tokens == 0
        assert beams.cached_tokens == _all_but_last_block(beams.prompt_tokens)
        chat = client.chat(
            [{"role": "user", "content": prompt}], max_tokens=2, temperature=0, cache_salt="g"
        )
        assert chat.usage.prompt_tokens > 0
        with pytest.raises(grpc.RpcError) as error:
            client.generate(prompt, max_tokens=2, cache_salt="")
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "cache_salt" in error.value.details()


def test_caching_off_reports_no_cached_tokens(start_server):
    server = start_server("--no-enable-prefix-caching")
    with server.http() as http:
        body = {"model": server.model, "prompt": SYSTEM, "max_tokens": 2}
        usages = [http.post("/v1/completions", json=body).json()["usage"] for _ in range(2)]
    assert [u["prompt_tokens_details"]["cached_tokens"] for u in usages] == [0, 0]
    assert server.metrics()["cadence:prefix_cache_queries_total"] == 0
