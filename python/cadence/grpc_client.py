"""A small typed Python client of the cadence gRPC service (cadence.v1).

    from cadence.grpc_client import CadenceClient

    with CadenceClient("127.0.0.1:50051") as client:
        print(client.generate("The capital of France is", max_tokens=8).choices[0].text)
        for delta in client.generate_stream("Once upon a time", temperature=0.8, seed=1):
            print(delta.choices[0].text, end="")

Sampling options are SamplingParams field names (``temperature``, ``max_tokens``, ``stop``,
``logprobs`` ...). Errors are ``grpc.RpcError`` with the server's status code and a message
naming the bad field.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct

from cadence.v1 import inference_pb2, inference_pb2_grpc, sampling_pb2

Message = dict[str, str]


class CadenceClient:
    """One channel to a cadence server.

    Args:
        target: "host:port".
        api_key: sent as ``authorization: Bearer <key>`` when the server has one.
        timeout: seconds per call (the gRPC deadline); None = no deadline.
        max_message_bytes: the client's send/receive limit.
    """

    def __init__(
        self,
        target: str,
        api_key: str | None = None,
        timeout: float | None = 120.0,
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        self.stub = inference_pb2_grpc.InferenceServiceStub(self.channel)
        self.timeout = timeout
        self.metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> CadenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any) -> Any:
        return method(request, timeout=self.timeout, metadata=self.metadata)

    # ------------------------------------------------------------------ generation

    def generate(
        self, prompt: str | Sequence[int], cache_salt: str | None = None, **sampling: Any
    ) -> inference_pb2.GenerateResponse:
        """The whole result of one prompt (text or token ids); ``cache_salt``: only requests
        with the same salt share cached prefix blocks."""
        request = _generate_request(prompt, sampling, stream=False, cache_salt=cache_salt)
        return _single(self._call(self.stub.Generate, request))

    def generate_stream(
        self, prompt: str | Sequence[int], cache_salt: str | None = None, **sampling: Any
    ) -> Iterator[inference_pb2.GenerateResponse]:
        """Deltas as they are generated; cancelling the iterator (``.cancel()`` on it, or
        dropping it) aborts the request on the server."""
        request = _generate_request(prompt, sampling, stream=True, cache_salt=cache_salt)
        return self._call(self.stub.Generate, request)

    def chat(
        self, messages: Sequence[Message], stream: bool = False, **options: Any
    ) -> inference_pb2.GenerateResponse | Iterator[inference_pb2.GenerateResponse]:
        """Chat; ``options`` are sampling fields plus ``chat_template``,
        ``add_generation_prompt``, ``continue_final_message``, ``chat_template_kwargs`` and
        ``cache_salt``."""
        chat_fields = {}
        for name in (
            "chat_template",
            "add_generation_prompt",
            "continue_final_message",
            "cache_salt",
        ):
            if name in options:
                chat_fields[name] = options.pop(name)
        kwargs = options.pop("chat_template_kwargs", None)
        request = inference_pb2.ChatRequest(
            messages=[sampling_pb2.ChatMessage(**message) for message in messages],
            sampling=sampling_pb2.SamplingParams(**options),
            stream=stream,
            **chat_fields,
        )
        if kwargs:
            struct = Struct()
            struct.update(kwargs)
            request.chat_template_kwargs.CopyFrom(struct)
        responses = self._call(self.stub.Chat, request)
        return responses if stream else _single(responses)

    def beam_search(
        self, prompt: str | Sequence[int], beam_width: int, max_tokens: int, **options: Any
    ) -> inference_pb2.BeamSearchResponse:
        request = inference_pb2.BeamSearchRequest(
            beam_width=beam_width, max_tokens=max_tokens, **options
        )
        _set_prompt(request, prompt)
        return self._call(self.stub.BeamSearch, request)

    # ------------------------------------------------------------------ tokenizer, info

    def tokenize(
        self, text: str | None = None, messages: Sequence[Message] | None = None, **options: Any
    ) -> list[int]:
        request = inference_pb2.TokenizeRequest(**options)
        if (text is None) == (messages is None):
            raise ValueError("give exactly one of text and messages")
        if text is not None:
            request.text = text
        else:
            request.messages.messages.extend(sampling_pb2.ChatMessage(**m) for m in messages)
        return list(self._call(self.stub.Tokenize, request).token_ids)

    def detokenize(self, token_ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        request = inference_pb2.DetokenizeRequest(
            token_ids=list(token_ids), skip_special_tokens=skip_special_tokens
        )
        return self._call(self.stub.Detokenize, request).text

    def model_info(self) -> inference_pb2.GetModelInfoResponse:
        return self._call(self.stub.GetModelInfo, inference_pb2.GetModelInfoRequest())


def _set_prompt(request: Any, prompt: str | Sequence[int]) -> None:
    if isinstance(prompt, str):
        request.text = prompt
    else:
        request.token_ids.ids.extend(prompt)


def _generate_request(
    prompt: str | Sequence[int], sampling: dict[str, Any], stream: bool, cache_salt: str | None
) -> inference_pb2.GenerateRequest:
    request = inference_pb2.GenerateRequest(
        sampling=sampling_pb2.SamplingParams(**sampling), stream=stream, cache_salt=cache_salt
    )
    _set_prompt(request, prompt)
    return request


def _single(responses: Iterator[inference_pb2.GenerateResponse]) -> Any:
    (response,) = list(responses)
    return response
