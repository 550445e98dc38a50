"""SIGTERM: in-flight requests finish (or, past --shutdown-timeout, get an error event),
new requests and /health get 503 meanwhile, and the process exits with status 0."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx

SHUTDOWN_TIMEOUT_SECONDS = 4


def _stream(url: str, body: dict, events: list, first_token: threading.Event) -> None:
    """Collects the SSE events of one streaming completion into ``events``."""
    with httpx.stream("POST", url + "/v1/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
            first_token.set()


def test_sigterm_drains_in_flight_streams_then_exits_0(start_server):
    server = start_server("--shutdown-timeout", str(SHUTDOWN_TIMEOUT_SECONDS))
    short = {"prompt": "Count:", "max_tokens": 12, "ignore_eos": True, "stream": True}
    # Runs to the context limit: cannot finish within the shutdown timeout.
    endless = {"prompt": "Tell a story:", "max_tokens": 480, "ignore_eos": True, "stream": True}
    streams = []
    for body in (short, endless):
        events: list = []
        started = threading.Event()
        thread = threading.Thread(target=_stream, args=(server.url, body, events, started))
        thread.start()
        assert started.wait(60), "no first token"
        streams.append((thread, events))

    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while httpx.get(server.url + "/health", timeout=10).status_code != 503:
        assert time.monotonic() < deadline, "/health never turned 503"
        time.sleep(0.05)
    refused = httpx.post(
        server.url + "/v1/completions", json={"prompt": "Hi", "max_tokens": 2}, timeout=10
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "server_shutting_down"

    assert server.process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS + 30) == 0, server.log()
    for thread, _ in streams:
        thread.join(timeout=10)
    (_, short_events), (_, endless_events) = streams
    assert short_events[-1] == "[DONE]"
    assert short_events[-2]["choices"][0]["finish_reason"] == "length"
    text = "".join(event["choices"][0]["text"] for event in short_events[:-1])
    assert text  # it finished normally, after the signal
    assert endless_events[-1] == "[DONE]"
    assert endless_events[-2]["error"]["code"] == "request_aborted"
    assert all("error" not in event for event in endless_events[:-2])
