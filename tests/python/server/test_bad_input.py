"""Bad input: every case gets an OpenAI-shaped 4xx naming the parameter, and the server
keeps serving (a valid request succeeds and /health is 200 right after)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from server.server_process import MAX_MODEL_LEN

COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"
JSON = {"Content-Type": "application/json"}
VOCAB_SIZE = 49152
USER = [{"role": "user", "content": "Hi"}]


def completion(**fields) -> dict:
    return {"prompt": "Hello", "max_tokens": 4, **fields}


def chat(**fields) -> dict:
    return {"messages": USER, "max_tokens": 4, **fields}


def case(case_id: str, path: str, body, param: str | None, status: int = 400, headers=None):
    """One bad request: the body (bytes sent as-is with ``headers``, else JSON), the status
    and the ``param`` the error must name."""
    return pytest.param(path, body, headers or JSON, status, param, id=case_id)


LONG_PROMPT = [28] * 500  # token ids
TEXT = {"Content-Type": "text/plain"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CHAT_INF = b'{"messages": [{"role": "user", "content": "x"}], "temperature": Infinity}'
IMAGE_PART = [{"type": "image_url", "image_url": {"url": "x"}}]
TOOL = {"type": "function", "function": {"name": "f"}}
PREFILL = [*USER, {"role": "assistant", "content": "Hel"}]

RAW_CASES = [
    case("malformed json", COMPLETIONS, b'{"prompt": "x",', None),
    case("body is a string", COMPLETIONS, b'"hello"', None),
    case("body is a list", COMPLETIONS, b'[{"prompt": "x"}]', None),
    case("body is a number", COMPLETIONS, b"42", None),
    case("body is null", CHAT, b"null", None),
    case("invalid utf-8", COMPLETIONS, b'{"prompt": "\xff\xfe"}', None),
    case("wrong content type", COMPLETIONS, b'{"prompt": "x"}', None, headers=TEXT),
    case("form content type", CHAT, b"messages=hi", None, headers=FORM),
    case("temperature NaN", COMPLETIONS, b'{"prompt": "x", "temperature": NaN}', "temperature"),
    case("temperature Infinity", CHAT, CHAT_INF, "temperature"),
]

JSON_CASES = [
    case("empty prompt", COMPLETIONS, completion(prompt=""), "prompt"),
    case("empty prompt list", COMPLETIONS, completion(prompt=[]), "prompt"),
    case("prompt wrong type", COMPLETIONS, completion(prompt={"text": "x"}), "prompt"),
    case("missing prompt", COMPLETIONS, {"max_tokens": 4}, "prompt"),
    case("empty messages", CHAT, chat(messages=[]), "messages"),
    case("message without role", CHAT, chat(messages=[{"content": "x"}]), "messages"),
    case("non-string content", CHAT, chat(messages=[{"role": "user", "content": 7}]), "messages"),
    case("message not an object", CHAT, chat(messages=["hi"]), "messages"),
    case("image part", CHAT, chat(messages=[{"role": "user", "content": IMAGE_PART}]), "messages"),
    case("token id -1", COMPLETIONS, completion(prompt=[1, -1, 2]), "prompt"),
    case("token id = vocab", COMPLETIONS, completion(prompt=[VOCAB_SIZE]), "prompt"),
    case("token id 2**40", COMPLETIONS, completion(prompt=[2**40]), "prompt"),
    case("prompt = context", COMPLETIONS, completion(prompt=[28] * MAX_MODEL_LEN), "prompt"),
    case(
        "prompt + max_tokens", COMPLETIONS, completion(prompt=LONG_PROMPT, max_tokens=13), "prompt"
    ),
    case("chat over the context", CHAT, chat(max_completion_tokens=MAX_MODEL_LEN), "messages"),
    case("max_tokens 0", COMPLETIONS, completion(max_tokens=0), "max_tokens"),
    case("max_tokens -1", COMPLETIONS, completion(max_tokens=-1), "max_tokens"),
    case("max_tokens 2**40", COMPLETIONS, completion(max_tokens=2**40), "prompt"),
    case("max_completion_tokens 0", CHAT, chat(max_completion_tokens=0), "max_completion_tokens"),
    case("max_tokens a string", COMPLETIONS, completion(max_tokens="4"), "max_tokens"),
    case("temperature -1", COMPLETIONS, completion(temperature=-1), "temperature"),
    case("temperature 3", CHAT, chat(temperature=3), "temperature"),
    case("top_p 0", COMPLETIONS, completion(top_p=0), "top_p"),
    case("top_p 1.5", CHAT, chat(top_p=1.5), "top_p"),
    case("top_k -2", COMPLETIONS, completion(top_k=-2), "top_k"),
    case("n 0", COMPLETIONS, completion(n=0), "n"),
    case("n over max_num_seqs", COMPLETIONS, completion(n=100000), "n"),
    case("n > 1 greedy", CHAT, chat(n=2, temperature=0), "n"),
    case("logprobs 21", COMPLETIONS, completion(logprobs=21), "logprobs"),
    case("top_logprobs 21", CHAT, chat(logprobs=True, top_logprobs=21), "top_logprobs"),
    case("top_logprobs alone", CHAT, chat(top_logprobs=2), "top_logprobs"),
    case("seed 2**63", COMPLETIONS, completion(seed=2**63), "seed"),
    case("seed -2**63 - 1", CHAT, chat(seed=-(2**63) - 1), "seed"),
    case("logit_bias bad key", COMPLETIONS, completion(logit_bias={"abc": 1}), "logit_bias"),
    case("logit_bias key -1", COMPLETIONS, completion(logit_bias={"-1": 1}), "logit_bias"),
    case("logit_bias key vocab", CHAT, chat(logit_bias={str(VOCAB_SIZE): 1}), "logit_bias"),
    case("logit_bias value 101", COMPLETIONS, completion(logit_bias={"5": 101}), "logit_bias"),
    case("logit_bias value str", CHAT, chat(logit_bias={"5": "up"}), "logit_bias"),
    case("stop empty string", COMPLETIONS, completion(stop=""), "stop"),
    case("stop list with empty", CHAT, chat(stop=["a", ""]), "stop"),
    case("stop wrong type", COMPLETIONS, completion(stop=5), "stop"),
    case("presence_penalty 3", COMPLETIONS, completion(presence_penalty=3), "presence_penalty"),
    case("min_tokens > max_tokens", COMPLETIONS, completion(min_tokens=9), "min_tokens"),
    case("stop_token_ids vocab", CHAT, chat(stop_token_ids=[VOCAB_SIZE]), "stop_token_ids"),
    case("best_of != n", COMPLETIONS, completion(best_of=3), "best_of"),
    case(
        "stream_options alone", CHAT, chat(stream_options={"include_usage": True}), "stream_options"
    ),
    case(
        "stream_options unknown key",
        CHAT,
        chat(stream=True, stream_options={"continuous_usage_stats": True}),
        "stream_options",
    ),
    case("unknown model", COMPLETIONS, completion(model="gpt-4o"), "model", status=404),
    case("unsupported suffix", COMPLETIONS, completion(suffix="!"), "suffix"),
    case("unsupported tools", CHAT, chat(tools=[TOOL]), "tools"),
    case(
        "unsupported response_format",
        CHAT,
        chat(response_format={"type": "json_object"}),
        "response_format",
    ),
    case(
        "beam search with a sampling-only field",
        COMPLETIONS,
        completion(use_beam_search=True, seed=3),
        "seed",
    ),
    case("made-up field", CHAT, chat(temprature=0.5), "temprature"),
    case("bad chat template", CHAT, chat(chat_template="{% for %}"), "chat_template"),
    case(
        "template kwarg overrides an argument",
        CHAT,
        chat(chat_template_kwargs={"chat_template": "x"}),
        "chat_template_kwargs",
    ),
    case(
        "continue_final_message with generation prompt",
        CHAT,
        chat(continue_final_message=True, messages=PREFILL),
        "continue_final_message",
    ),
    case("detokenize id out of range", "/detokenize", {"tokens": [VOCAB_SIZE]}, "tokens"),
    case("tokenize neither prompt nor messages", "/tokenize", {}, "prompt"),
]


def check_error(response: httpx.Response, status: int, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, error
        assert param.split("_")[0] in error["message"] or "context length" in error["message"]


def check_still_serving(http: httpx.Client) -> None:
    response = http.post(COMPLETIONS, json={"prompt": "Hello", "max_tokens": 2})
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 2
    assert http.get("/health").status_code == 200


@pytest.fixture(scope="module")
def http(server):
    with server.http() as client:
        yield client


@pytest.mark.parametrize("path, body, headers, status, param", RAW_CASES)
def test_raw_bad_input(http, path, body, headers, status, param):
    check_error(http.post(path, content=body, headers=headers), status, param)
    check_still_serving(http)


@pytest.mark.parametrize("path, body, headers, status, param", JSON_CASES)
def test_json_bad_input(http, path, body, headers, status, param):
    check_error(http.post(path, json=body), status, param)
    check_still_serving(http)


def test_context_error_has_openai_wording_and_numbers(http):
    response = http.post(COMPLETIONS, json=completion(prompt=[28] * 500, max_tokens=13))
    message = response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 512 tokens" in message
    assert "513 tokens (500 in the prompt, 13 in the completion)" in message


def test_unknown_route_and_method_are_openai_shaped(http):
    check_error(http.get("/v1/nothing"), 404, None)
    not_allowed = http.get(COMPLETIONS)
    check_error(not_allowed, 405, None)
    assert not_allowed.headers["allow"] == "POST"  # RFC 9110: a 405 says what is allowed


def test_hundred_invalid_requests_in_a_row(http):
    for index in range(100):
        body = [completion(temperature=-1), chat(messages=[]), b"{", completion(n=0)][index % 4]
        if isinstance(body, bytes):
            response = http.post(COMPLETIONS, content=body, headers=JSON)
        else:
            response = http.post(CHAT if "messages" in body else COMPLETIONS, json=body)
        assert response.status_code == 400, response.text
    check_still_serving(http)


def test_fifty_concurrent_invalid_requests(server, http):
    def send(index: int) -> int:
        path, body, _, status, _ = JSON_CASES[index % len(JSON_CASES)].values
        with server.http() as client:
            return client.post(path, json=body).status_code - status

    with ThreadPoolExecutor(50) as pool:
        mismatches = list(pool.map(send, range(50)))
    assert mismatches == [0] * 50
    check_still_serving(http)


# Every string field of every endpoint, with a lone surrogate sent two ways: the JSON escape
# \ud800, and the invalid UTF-8 bytes ED A0 80 (which JSON decoding lets through as the same
# surrogate). Each is a 400 naming the field, never a 500 or a dropped connection.
MARK = "@@TEXT@@"
STRING_FIELDS = [
    (COMPLETIONS, {"prompt": MARK, "max_tokens": 2}, "prompt"),
    (COMPLETIONS, {"prompt": ["ok", MARK], "max_tokens": 2}, "prompt"),
    (COMPLETIONS, {"prompt": "Hi", "model": MARK}, "model"),
    (COMPLETIONS, {"prompt": "Hi", "stop": MARK}, "stop"),
    (COMPLETIONS, {"prompt": "Hi", "stop": ["x", MARK]}, "stop"),
    (COMPLETIONS, {"prompt": "Hi", "user": MARK}, "user"),
    (COMPLETIONS, {"prompt": "Hi", "cache_salt": MARK}, "cache_salt"),
    (CHAT, {"messages": [{"role": "user", "content": MARK}]}, "messages"),
    (CHAT, {"messages": [{"role": MARK, "content": "Hi"}]}, "messages"),
    (
        CHAT,
        {"messages": [{"role": "user", "content": [{"type": "text", "text": MARK}]}]},
        "messages",
    ),
    (CHAT, {"messages": [{"role": "user", "content": "Hi"}], "model": MARK}, "model"),
    (CHAT, {"messages": [{"role": "user", "content": "Hi"}], "stop": [MARK]}, "stop"),
    (
        CHAT,
        {"messages": [{"role": "user", "content": "Hi"}], "chat_template": MARK},
        "chat_template",
    ),
    (
        CHAT,
        {"messages": [{"role": "user", "content": "Hi"}], "chat_template_kwargs": {MARK: 1}},
        "chat_template_kwargs",
    ),
    ("/tokenize", {"prompt": MARK}, "prompt"),
    ("/tokenize", {"messages": [{"role": "user", "content": MARK}]}, "messages"),
    ("/tokenize", {"prompt": "Hi", "model": MARK}, "model"),
    ("/detokenize", {"tokens": [1], "model": MARK}, "model"),
    (COMPLETIONS, {"prompt": "Hi", MARK: 1}, MARK),  # a field name
]
SURROGATES = {"escape": b"\\ud800", "invalid UTF-8": b"\xed\xa0\x80"}


@pytest.mark.parametrize("how", SURROGATES)
@pytest.mark.parametrize(
    "path, body, param", STRING_FIELDS, ids=[f"{p} {f}" for p, _, f in STRING_FIELDS]
)
def test_a_lone_surrogate_in_any_string_field_is_a_400_naming_it(http, path, body, param, how):
    raw = json.dumps(body).encode().replace(MARK.encode(), b"x" + SURROGATES[how])
    response = http.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    if param == MARK:  # the field name itself: reported escaped
        assert error["param"] == "x\\ud800"
    else:
        assert error["param"] == param, error
    assert "lone surrogate" in error["message"]
    check_still_serving(http)
