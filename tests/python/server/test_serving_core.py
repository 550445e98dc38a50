"""The serving core's promises, black-box: tokenization runs off the event loop, so a huge
prompt delays neither ``/health`` nor another request's stream."""

from __future__ import annotations

import itertools
import statistics
import threading
import time

from server.server_process import MAX_MODEL_LEN

# ~200,000 tokens (one per word); 1.2 MB, under the body limit, far over max_model_len.
HUGE_PROMPT = "hello " * 200_000
# The bound on how much the huge prompt may delay anything else.
MAX_DELAY_SECONDS = 0.050


def _stream_chunk_times(server, started: threading.Event, times: list[float]) -> None:
    body = {
        "prompt": "Story:",
        "max_tokens": MAX_MODEL_LEN - 16,
        "ignore_eos": True,
        "stream": True,
    }
    with server.http() as http, http.stream("POST", "/v1/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                times.append(time.monotonic())
                if len(times) == 5:
                    started.set()


def _health_latencies(server, stop: threading.Event, samples: list[tuple[float, float]]):
    with server.http() as http:
        while not stop.is_set():
            sent = time.monotonic()
            assert http.get("/health").status_code == 200
            samples.append((sent, time.monotonic() - sent))
            time.sleep(0.005)


def test_a_huge_prompt_stalls_neither_health_nor_a_stream(server):
    chunk_times: list[float] = []
    health: list[tuple[float, float]] = []
    streaming, stop = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=_stream_chunk_times, args=(server, streaming, chunk_times)),
        threading.Thread(target=_health_latencies, args=(server, stop, health)),
    ]
    for thread in threads:
        thread.start()
    try:
        assert streaming.wait(60)
        time.sleep(0.3)  # a baseline of chunks and health checks
        with server.http() as http:
            sent = time.monotonic()
            response = http.post("/v1/completions", json={"prompt": HUGE_PROMPT, "max_tokens": 1})
            answered = time.monotonic()
        time.sleep(0.2)
    finally:
        stop.set()
        threads[1].join()
    threads[0].join()
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert answered - sent > 0.1  # the tokenization really took a while

    # A delay is measured against the same server's answers before the huge prompt came.
    before = [latency for start, latency in health if start < sent]
    during = [latency for start, latency in health if sent <= start <= answered]
    assert len(before) >= 5 and len(during) >= 3, health
    typical = statistics.median(before)
    assert max(during) <= typical + MAX_DELAY_SECONDS, (typical, during)

    gaps = [(b, b - a) for a, b in itertools.pairwise(chunk_times)]
    gaps_before = [gap for end, gap in gaps if end < sent]
    gaps_during = [gap for end, gap in gaps if sent <= end <= answered]
    assert len(gaps_before) >= 5 and gaps_during, (gaps_before, gaps_during)
    typical_gap = statistics.median(gaps_before)
    assert max(gaps_during) <= typical_gap + MAX_DELAY_SECONDS, (typical_gap, gaps_during)


def test_tokenize_of_a_huge_prompt_answers_with_the_count(server):
    with server.http() as http:
        response = http.post("/tokenize", json={"prompt": HUGE_PROMPT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["tokens"]) >= 200_000
