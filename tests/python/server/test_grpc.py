"""The gRPC service, black-box: the shared server runs HTTP and gRPC on one engine; clients
are cadence.grpc_client (Python), raw grpcio stubs, the health and reflection services, and
the Node.js example client."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cadence import SamplingParams
from cadence.grpc_client import CadenceClient
from cadence.sampling_params import BeamSearchParams
from cadence.v1 import inference_pb2, inference_pb2_grpc, sampling_pb2
from server.server_process import API_KEY, MAX_MODEL_LEN, pool_is_free

PROMPTS = ["The capital of France is", "Once upon a time", "def add(a, b):"]
NODE_CLIENT = Path(__file__).resolve().parents[3] / "examples" / "clients" / "node"


@pytest.fixture(scope="module")
def client(server):
    with CadenceClient(server.grpc_target) as client:
        yield client


def _wait_until_pool_free(server, since: float) -> float:
    while not pool_is_free(metrics := server.metrics()):
        assert time.monotonic() - since < 10, metrics
        time.sleep(0.02)
    return time.monotonic() - since


def test_streaming_generate_equals_offline_generate(client, default_llm_fp32_kv):
    params = SamplingParams(temperature=0, max_tokens=24)
    for prompt, offline in zip(PROMPTS, default_llm_fp32_kv.generate(PROMPTS, params), strict=True):
        text, token_ids, finish, usage = "", [], None, None
        for response in client.generate_stream(prompt, temperature=0, max_tokens=24):
            (choice,) = response.choices
            text += choice.text
            token_ids += choice.token_ids
            if choice.finish_reason:
                finish = choice.finish_reason
            if response.HasField("usage"):
                usage = response.usage
        expected = offline.outputs[0]
        assert text == expected.text
        assert token_ids == expected.token_ids
        assert finish == inference_pb2.FINISH_REASON_LENGTH
        assert usage.prompt_tokens == len(offline.prompt_token_ids)
        assert usage.completion_tokens == len(expected.token_ids)
        final = client.generate(prompt, temperature=0, max_tokens=24)
        assert final.choices[0].text == expected.text


def test_token_id_prompt_and_logprobs_equal_offline(client, default_llm_fp32_kv):
    (offline,) = default_llm_fp32_kv.generate(
        PROMPTS[0], SamplingParams(temperature=0, max_tokens=6, logprobs=3, prompt_logprobs=2)
    )
    response = client.generate(
        list(offline.prompt_token_ids), temperature=0, max_tokens=6, logprobs=3, prompt_logprobs=2
    )
    (choice,) = response.choices
    expected = offline.outputs[0]
    assert list(choice.token_ids) == expected.token_ids
    assert len(choice.logprobs) == len(expected.token_ids)
    for position, token_id, offline_position in zip(
        choice.logprobs, expected.token_ids, expected.logprobs, strict=True
    ):
        assert position.token.token_id == token_id
        assert position.token.logprob == pytest.approx(offline_position[token_id].logprob)
        assert len(position.top) == 3
        assert [entry.rank for entry in position.top] == [1, 2, 3]
    assert choice.cumulative_logprob == pytest.approx(expected.cumulative_logprob, abs=1e-4)
    assert len(response.prompt_logprobs) == len(offline.prompt_token_ids) - 1


def test_n_choices_have_their_indices(client):
    responses = list(
        client.generate_stream(PROMPTS[1], n=3, temperature=0.8, seed=11, max_tokens=8)
    )
    finished = {}
    for response in responses:
        for choice in response.choices:
            assert 0 <= choice.index < 3
            if choice.finish_reason:
                assert choice.index not in finished  # finish_reason once per choice
                finished[choice.index] = choice.finish_reason
    assert sorted(finished) == [0, 1, 2]
    assert responses[-1].usage.completion_tokens == 24


def test_chat_equals_offline_chat(client, default_llm_fp32_kv):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    (offline,) = default_llm_fp32_kv.chat(messages, SamplingParams(temperature=0, max_tokens=20))
    response = client.chat(messages, temperature=0, max_tokens=20)
    assert response.choices[0].text == offline.outputs[0].text
    streamed = "".join(
        r.choices[0].text
        for r in client.chat(messages, stream=True, temperature=0, max_tokens=20)
        if r.choices
    )
    assert streamed == offline.outputs[0].text


def test_beam_search_equals_offline_beam_search(client, default_llm_fp32_kv):
    (offline,) = default_llm_fp32_kv.beam_search(
        PROMPTS[0], BeamSearchParams(beam_width=3, max_tokens=10, ignore_eos=True)
    )
    response = client.beam_search(PROMPTS[0], beam_width=3, max_tokens=10, ignore_eos=True)
    assert [list(s.token_ids) for s in response.sequences] == [s.tokens for s in offline.sequences]
    assert [s.text for s in response.sequences] == [s.text for s in offline.sequences]
    assert response.sequences[0].score == pytest.approx(offline.sequences[0].score, abs=1e-5)
    assert response.usage.completion_tokens == 30


def test_tokenize_detokenize_round_trip(client, default_llm_fp32_kv):
    text = "Hello, world! Ünïcödé text."
    token_ids = client.tokenize(text)
    assert token_ids == list(default_llm_fp32_kv.get_tokenizer().encode(text))
    assert client.detokenize(token_ids, skip_special_tokens=True) == text
    messages = [{"role": "user", "content": "Hi"}]
    assert (
        client.tokenize(messages=messages)
        == default_llm_fp32_kv.render_chat(messages)[0].prompt_token_ids
    )


def test_model_info(client, default_llm_fp32_kv):
    info = client.model_info()
    assert info.name == "SmolLM2-135M-Instruct"
    assert info.max_model_len == MAX_MODEL_LEN
    assert info.vocab_size == default_llm_fp32_kv.llm_engine.vocab_size
    assert list(info.eos_token_ids) == list(
        default_llm_fp32_kv.llm_engine.core.model_config.eos_token_ids
    )
    assert info.max_beam_width >= 1


def test_health_check_watch_and_reflection(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "cadence.v1.InferenceService"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=10))
        names = {service.name for service in answer.list_services_response.service}
        assert {"cadence.v1.InferenceService", "grpc.health.v1.Health"} <= names


def test_cancel_mid_stream_and_deadline_free_the_pool(server, client):
    stream = client.generate_stream(
        "Story:", max_tokens=MAX_MODEL_LEN - 16, ignore_eos=True, temperature=0
    )
    for received, _ in enumerate(stream, start=1):
        if received == 3:
            break
    stream.cancel()
    cancelled = time.monotonic()
    assert _wait_until_pool_free(server, cancelled) < 1.0

    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        request = inference_pb2.GenerateRequest(
            text="Story:",
            sampling=sampling_pb2.SamplingParams(max_tokens=MAX_MODEL_LEN - 16, ignore_eos=True),
        )
        with pytest.raises(grpc.RpcError) as error:
            list(stub.Generate(request, timeout=0.5))
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    expired = time.monotonic()
    assert _wait_until_pool_free(server, expired) < 1.0
    assert client.generate("Hello", max_tokens=4).usage.completion_tokens == 4


# (field values, text the error message must contain), mirroring the HTTP bad-input list.
BAD_SAMPLING = [
    (dict(max_tokens=0), "max_tokens"),
    (dict(max_tokens=-1), "max_tokens"),
    (dict(temperature=-1.0), "temperature"),
    (dict(temperature=math.nan), "temperature"),
    (dict(temperature=3.0), "temperature"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(top_k=-2), "top_k"),
    (dict(n=0), "n"),
    (dict(logprobs=21), "logprobs"),
    (dict(logit_bias={5: 500.0}), "logit_bias"),
    (dict(logit_bias={-3: 1.0}), "logit_bias"),
    (dict(stop=[""]), "stop"),
    (dict(min_tokens=9, max_tokens=4), "min_tokens"),
]


@pytest.mark.parametrize(("fields", "named"), BAD_SAMPLING)
def test_bad_sampling_params_are_invalid_argument(client, fields, named):
    with pytest.raises(grpc.RpcError) as error:
        client.generate("Hello", **fields)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in error.value.details()


def test_bad_prompts_are_invalid_argument_and_the_server_keeps_serving(server, client):
    vocab_size = client.model_info().vocab_size
    cases = [
        ("", {}),
        ([-1, 5], {}),
        ([vocab_size], {}),
        ([1] * MAX_MODEL_LEN, {"max_tokens": 1}),  # prompt == max_model_len
        ([1] * 100, {"max_tokens": MAX_MODEL_LEN}),  # prompt + max_tokens > max_model_len
    ]
    for prompt, fields in cases:
        with pytest.raises(grpc.RpcError) as error:
            client.generate(prompt, **fields)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (prompt, fields)
    for messages in ([], [{"role": "", "content": "hi"}]):
        with pytest.raises(grpc.RpcError) as error:
            client.chat(messages, max_tokens=2)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, messages
    with pytest.raises(grpc.RpcError) as error:
        client.beam_search("Hi", beam_width=0, max_tokens=4)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "beam_width" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        client.detokenize([vocab_size + 5])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            list(stub.Generate(inference_pb2.GenerateRequest(model="gpt-4", text="x"), timeout=10))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as error:  # over the server's 16 MiB limit
            stub.Tokenize(inference_pb2.TokenizeRequest(text="x" * (17 << 20)), timeout=30)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    errors = []

    def invalid_call() -> None:
        try:
            client.generate("Hello", temperature=5.0)
        except grpc.RpcError as rpc_error:
            errors.append(rpc_error.code())

    threads = [threading.Thread(target=invalid_call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [grpc.StatusCode.INVALID_ARGUMENT] * 50
    assert client.generate("Hello", max_tokens=3).usage.completion_tokens == 3
    with server.http() as http:
        assert http.get("/health").status_code == 200


def test_api_key_is_required_except_for_health(limits_server):
    target = limits_server.grpc_target
    for api_key in (None, "wrong-key"):
        with CadenceClient(target, api_key=api_key) as client:
            with pytest.raises(grpc.RpcError) as error:
                client.model_info()
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with CadenceClient(target, api_key=API_KEY) as client:
        assert client.generate("Hi", max_tokens=2).usage.completion_tokens == 2
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_full_queue_is_resource_exhausted(limits_server):
    """limits_server: 2 running sequences, 4 waiting: a burst of 16 gets fast refusals."""
    codes = []

    def call() -> None:
        with CadenceClient(limits_server.grpc_target, api_key=API_KEY) as client:
            try:
                client.generate("Count:", max_tokens=16, ignore_eos=True)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
    assert codes.count(grpc.StatusCode.OK) >= 2


def test_grpc_only_server_runs_without_the_http_stack(start_server, monkeypatch):
    # As if FastAPI, uvicorn and prometheus_client were not installed.
    no_http_stack = Path(__file__).resolve().parents[1] / "no_http_stack"
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(filter(None, [str(no_http_stack), os.environ.get("PYTHONPATH")])),
    )
    process = start_server("--grpc-port", "0", "--grpc-only")
    with CadenceClient(process.grpc_target) as client:
        assert client.generate("Hi", max_tokens=2).usage.completion_tokens == 2
    assert process.url == ""  # no HTTP listener
    assert process.stop() == 0


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_node_client_streams_generate_and_runs_chat(server, default_llm_fp32_kv):
    if not (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").exists():
        subprocess.run(["npm", "install"], cwd=NODE_CLIENT, check=True, timeout=300)
    result = subprocess.run(
        ["node", "client.js", "--address", server.grpc_target, "--max-tokens", "12"],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    greedy = SamplingParams(temperature=0, max_tokens=12)
    (generate,) = default_llm_fp32_kv.generate("The capital of France is", greedy)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    (chat,) = default_llm_fp32_kv.chat(messages, greedy)
    assert output["model"] == "SmolLM2-135M-Instruct"
    assert output["generate"]["text"] == generate.outputs[0].text
    assert output["generate"]["token_ids"] == generate.outputs[0].token_ids
    assert output["generate"]["finish_reason"] == "FINISH_REASON_LENGTH"
    assert int(output["generate"]["usage"]["completion_tokens"]) == 12
    assert output["chat"]["text"] == chat.outputs[0].text
    assert generate.outputs[0].text in result.stderr  # the deltas were printed as they came
