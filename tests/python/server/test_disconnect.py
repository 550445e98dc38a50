"""Clients that go away: their requests are aborted and the KV pool is freed at once."""

from __future__ import annotations

import asyncio
import time

import httpx

from server.server_process import MAX_MODEL_LEN, pool_is_free

NUM_STREAMS = 64
TOKENS_BEFORE_LEAVING = 3
# The bound: the pool is fully free within a second of the last disconnect.
FREE_WITHIN_SECONDS = 1.0


async def _stream_then_leave(client: httpx.AsyncClient, index: int) -> int:
    """Streams a request that would run to the context limit; leaves after a few tokens."""
    body = {
        "prompt": f"Story {index}:",  # a few tokens: prefill stays cheap on two cores
        # As long as the context allows (the "max_tokens=100000" would be a 400).
        "max_tokens": MAX_MODEL_LEN - 16,
        "ignore_eos": True,
        "stream": True,
    }
    received = 0
    async with client.stream("POST", "/v1/completions", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                received += 1
                if received == TOKENS_BEFORE_LEAVING:
                    break
    return received  # leaving the block closes the connection mid-stream


async def _run_and_drop_streams(url: str) -> list[int]:
    limits = httpx.Limits(max_connections=NUM_STREAMS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        return await asyncio.gather(*(_stream_then_leave(client, i) for i in range(NUM_STREAMS)))


def test_dropped_streams_free_the_kv_pool_within_a_second(server):
    received = asyncio.run(_run_and_drop_streams(server.url))
    last_disconnect = time.monotonic()
    assert received == [TOKENS_BEFORE_LEAVING] * NUM_STREAMS

    while not pool_is_free(metrics := server.metrics()):
        assert time.monotonic() - last_disconnect < 10, metrics  # fail fast if never freed
        time.sleep(0.02)
    freed_after = time.monotonic() - last_disconnect
    print(f"KV pool free {freed_after:.3f}s after the last disconnect")
    assert freed_after < FREE_WITHIN_SECONDS, f"freed after {freed_after:.2f}s"

    started = time.monotonic()
    with server.http() as http:
        response = http.post("/v1/completions", json={"prompt": "Hello", "max_tokens": 8})
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] == 8
    assert time.monotonic() - started < 5.0  # promptly: nothing else is running


def test_dropped_non_streaming_request_is_aborted(server):
    """A non-streaming client that leaves: its request is aborted too."""

    async def leave_early() -> None:
        body = {"prompt": "Once upon a time", "max_tokens": 400, "ignore_eos": True}
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            request = asyncio.ensure_future(client.post("/v1/completions", json=body))
            while server.metrics()["cadence:num_requests_running"] == 0:
                await asyncio.sleep(0.02)
            request.cancel()  # closes the connection

    asyncio.run(leave_early())
    left = time.monotonic()
    while not pool_is_free(metrics := server.metrics()):
        assert time.monotonic() - left < 10, metrics
        time.sleep(0.02)
    assert time.monotonic() - left < FREE_WITHIN_SECONDS
