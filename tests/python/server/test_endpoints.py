"""/tokenize, /detokenize, /version, /health and /metrics."""

from __future__ import annotations

import pytest

import cadence

MESSAGES = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def http(server):
    with server.http() as client:
        yield client


def test_tokenize_prompt_matches_the_tokenizer(http, default_llm_fp32_kv):
    response = http.post("/tokenize", json={"prompt": "Hello, my name is"}).json()
    expected = default_llm_fp32_kv.get_tokenizer().encode("Hello, my name is")
    assert response == {"count": len(expected), "max_model_len": 512, "tokens": expected}


def test_tokenize_messages_matches_chat_rendering(http, default_llm_fp32_kv):
    response = http.post("/tokenize", json={"messages": MESSAGES}).json()
    rendered = default_llm_fp32_kv.render_chat(MESSAGES)[0]
    assert response["tokens"] == rendered.prompt_token_ids
    no_prompt = http.post(
        "/tokenize", json={"messages": MESSAGES, "add_generation_prompt": False}
    ).json()
    assert no_prompt["count"] < response["count"]


def test_detokenize_round_trips(http):
    tokens = http.post("/tokenize", json={"prompt": "Caf\u00e9 au lait \U0001f600"}).json()[
        "tokens"
    ]
    assert http.post("/detokenize", json={"tokens": tokens}).json() == {
        "prompt": "Caf\u00e9 au lait \U0001f600"
    }


def test_version_and_health(http):
    assert http.get("/version").json() == {"version": cadence.__version__}
    assert http.get("/health").status_code == 200


def test_metrics_exposes_load_tokens_and_latencies(http, server):
    before = server.metrics()
    result = http.post("/v1/completions", json={"prompt": "Hello", "max_tokens": 5}).json()
    after = server.metrics()
    text = http.get("/metrics").text
    assert 'model_name="SmolLM2-135M-Instruct"' in text
    for name in (
        "cadence:num_requests_running",
        "cadence:num_requests_waiting",
        "cadence:kv_cache_usage_perc",
        "cadence:num_preemptions_total",
    ):
        assert name in after
    assert after["cadence:kv_cache_total_blocks"] > 0
    prompt_tokens = result["usage"]["prompt_tokens"]
    assert after["cadence:prompt_tokens_total"] - before["cadence:prompt_tokens_total"] == (
        prompt_tokens
    )
    assert after["cadence:generation_tokens_total"] - before["cadence:generation_tokens_total"] == 5
    for histogram, observations in (
        ("cadence:time_to_first_token_seconds", 1),
        ("cadence:inter_token_latency_seconds", 4),
        ("cadence:e2e_request_latency_seconds", 1),
    ):
        count = after[f"{histogram}_count"] - before[f"{histogram}_count"]
        assert count == observations, histogram
        assert after[f"{histogram}_sum"] > before[f"{histogram}_sum"]
    assert "cadence:request_success_total" in after
