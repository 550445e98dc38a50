"""The server's limits, on ``limits_server`` (API key, 2 sequences per step, 4 waiting,
64 KiB bodies): overload 429 with Retry-After, 401 without the key (but /health and
/metrics open), 413 over the body limit."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from server.server_process import API_KEY, MAX_BODY_BYTES

BURST = 64


async def _burst(url: str) -> list[tuple[int, float, str | None]]:
    """BURST concurrent completions; (status, seconds, Retry-After) for each."""
    limits = httpx.Limits(max_connections=BURST)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=120, limits=limits
    ) as client:

        async def one(index: int) -> tuple[int, float, str | None]:
            body = {"prompt": f"Request {index}:", "max_tokens": 24, "ignore_eos": True}
            started = time.monotonic()
            response = await client.post("/v1/completions", json=body)
            if response.status_code == 200:
                assert response.json()["usage"]["completion_tokens"] == 24
            else:
                assert response.json()["error"]["code"] == "server_overloaded"
            elapsed = time.monotonic() - started
            return response.status_code, elapsed, response.headers.get("retry-after")

        return await asyncio.gather(*(one(i) for i in range(BURST)))


def test_overload_gets_fast_429s_and_the_rest_completes(limits_server):
    results = asyncio.run(_burst(limits_server.url))  # returns: nothing hung
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 429}, statuses
    num_ok, num_rejected = statuses.count(200), statuses.count(429)
    # At least the 4 waiting places fill; more get in only as the 2 running slots free up.
    assert num_ok >= 4 and num_rejected >= BURST // 2, (num_ok, num_rejected)
    rejected = [(seconds, retry) for status, seconds, retry in results if status == 429]
    assert all(retry is not None and int(retry) >= 1 for _, retry in rejected)
    slowest_rejection = max(seconds for seconds, _ in rejected)
    fastest_completion = min(seconds for status, seconds, _ in results if status == 200)
    # A 429 never waits for the engine: faster than any completion, and fast in itself.
    assert slowest_rejection < min(3.0, fastest_completion), (rejected, fastest_completion)
    with limits_server.http() as http:
        assert http.get("/health").status_code == 200


@pytest.mark.parametrize(
    "method, path", [("GET", "/v1/models"), ("POST", "/v1/completions"), ("GET", "/version")]
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", f"Basic {API_KEY}", "Bearer"])
def test_missing_or_wrong_api_key_is_401(limits_server, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.request(
        method, limits_server.url + path, headers=headers, json={"prompt": "x"}, timeout=30
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_health_and_metrics_stay_open_without_a_key(limits_server):
    assert httpx.get(limits_server.url + "/health", timeout=30).status_code == 200
    metrics = httpx.get(limits_server.url + "/metrics", timeout=30)
    assert metrics.status_code == 200 and "cadence:num_requests_running" in metrics.text


def test_openai_client_with_the_key(limits_server):
    result = limits_server.openai().completions.create(
        model=limits_server.model, prompt="Hello", max_tokens=3
    )
    assert result.usage.completion_tokens == 3
    wrong = openai.OpenAI(base_url=limits_server.base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.completions.create(model=limits_server.model, prompt="Hello", max_tokens=3)


def test_body_over_the_limit_is_413(limits_server):
    prompt = "x" * MAX_BODY_BYTES
    with limits_server.http() as http:
        response = http.post("/v1/completions", json={"prompt": prompt, "max_tokens": 1})
        assert response.status_code == 413
        assert response.json()["error"]["message"].endswith(f"{MAX_BODY_BYTES} bytes")

        def chunks():  # no Content-Length: the limit is enforced while reading
            yield b'{"prompt": "'
            for _ in range(MAX_BODY_BYTES // 1024 + 1):
                yield b"x" * 1024
            yield b'", "max_tokens": 1}'

        response = http.post(
            "/v1/completions", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert http.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 1}).is_success
