"""The serving core's typed errors and how each frontend reports them: HTTP statuses in
OpenAI's shape, gRPC status codes; the parameter comes from the error, never its text."""

from __future__ import annotations

import grpc
import pytest

from cadence.engine.async_llm_engine import (
    EngineDeadError,
    EngineDrainingError,
    EngineOverloadedError,
    RequestAbortedError,
)
from cadence.entrypoints.grpc.servicer import status_of
from cadence.entrypoints.openai.errors import to_openai_error
from cadence.errors import InvalidParameterError
from cadence.sampling_params import SamplingParams
from cadence.serving.errors import (
    InvalidParameter,
    NotFound,
    Overloaded,
    Unavailable,
    as_serving_error,
)

CASES = [
    # (raised, serving error type, HTTP status, gRPC code)
    (
        InvalidParameterError("top_p", "top_p must be in (0, 1], got 2"),
        InvalidParameter,
        400,
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    (NotFound("model", "no such model"), NotFound, 404, grpc.StatusCode.NOT_FOUND),
    (EngineOverloadedError("full"), Overloaded, 429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (EngineDrainingError("bye"), Unavailable, 503, grpc.StatusCode.UNAVAILABLE),
    (RequestAbortedError("cut"), Unavailable, 503, grpc.StatusCode.UNAVAILABLE),
    (EngineDeadError("dead"), Unavailable, 503, grpc.StatusCode.UNAVAILABLE),
    (
        ValueError("a library refused the input"),
        InvalidParameter,
        400,
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
]


@pytest.mark.parametrize("raised, kind, http_status, grpc_code", CASES)
def test_each_error_maps_to_one_status_per_protocol(raised, kind, http_status, grpc_code):
    assert isinstance(as_serving_error(raised), kind)
    http = to_openai_error(raised)
    assert http.status_code == http_status
    assert set(http.body()["error"]) == {"message", "type", "param", "code"}
    code, message = status_of(raised)
    assert code == grpc_code
    assert message == str(raised)


def test_a_bug_is_500_and_internal():
    bug = RuntimeError("a bug")
    assert as_serving_error(bug) is None
    assert to_openai_error(bug).status_code == 500
    assert status_of(bug)[0] == grpc.StatusCode.INTERNAL


def test_the_parameter_comes_from_the_validator_and_aliases_rename_it():
    with pytest.raises(InvalidParameterError) as info:
        SamplingParams(logprobs=-1)
    error = as_serving_error(info.value, {"logprobs": "top_logprobs"})
    assert error.param == "top_logprobs"
    assert to_openai_error(info.value).param == "logprobs"


def test_overloaded_carries_retry_after():
    response = to_openai_error(EngineOverloadedError("full")).response()
    assert response.headers["Retry-After"] == "1"
    assert to_openai_error(EngineOverloadedError("full")).code == "server_overloaded"
