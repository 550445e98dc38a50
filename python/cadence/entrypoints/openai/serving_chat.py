"""POST /v1/chat/completions: a conversation, rendered with the chat template, to replies.

Rendering, conversation checks and control-token sanitizing are the offline ``LLM.chat``
path's (``ChatRenderer``), run on the serving core's text worker. ``max_tokens`` /
``max_completion_tokens`` omitted means "up to the context limit" (unless the generation
config sets a default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cadence.engine.async_llm_engine import RequestStream
from cadence.entrypoints.openai.errors import bad_request, to_openai_error
from cadence.entrypoints.openai.protocol import ChatCompletionRequest
from cadence.entrypoints.openai.serving_common import (
    SSE_DONE,
    EngineStreamingResponse,
    chat_logprobs,
    finish_reason_of,
    now_seconds,
    run_unless_disconnected,
    sse,
    usage,
)
from cadence.outputs import CompletionOutput
from cadence.serving.chat import render_messages
from cadence.serving.context import ServingContext
from cadence.serving.request_building import (
    check_beam_search_exclusions,
    make_beam_search_params,
    make_sampling_params,
    resolve_max_tokens,
)
from cadence.serving.streams import collect, follow_streams, new_id, submit_prompts

_FIELDS = frozenset(ChatCompletionRequest.model_fields)


class ChatServing:
    def __init__(self, context: ServingContext) -> None:
        self.context = context

    async def create(self, request: ChatCompletionRequest, raw_request: Request) -> Response:
        context = self.context
        model = context.check_model(request.model)
        self._check_options(request)
        prompt = await render_messages(
            context,
            request.messages,
            request.chat_template,
            request.chat_template_kwargs,
            request.add_generation_prompt is not False,
            bool(request.continue_final_message),
        )
        aliases = {"logprobs": "top_logprobs"}
        if request.max_completion_tokens is not None:
            aliases["max_tokens"] = "max_completion_tokens"
        fields = request.sampling_fields()
        requested = request.max_completion_tokens
        if requested is None:
            requested = request.max_tokens
        num_prompt_tokens = len(prompt.token_ids)
        fields["max_tokens"] = resolve_max_tokens(
            context, requested, num_prompt_tokens, None, "messages"
        )
        if request.logprobs:
            fields["logprobs"] = request.top_logprobs or 0
        if request.use_beam_search:
            check_beam_search_exclusions(request.model_dump())
            options = request.beam_search_options()
            params = make_beam_search_params(
                context, options, fields["max_tokens"], num_prompt_tokens
            )
        elif request.length_penalty is not None:
            raise bad_request("length_penalty needs use_beam_search=true", param="length_penalty")
        else:
            params = make_sampling_params(context, fields, _FIELDS, aliases)
        request_id = new_id("chatcmpl")
        streams, wakeup = await submit_prompts(
            context, request_id, [prompt], [params], _FIELDS, aliases, request.cache_salt
        )
        response = _ChatResponse(request, model, request_id)
        if request.stream:
            return EngineStreamingResponse(response.stream(streams, wakeup), streams)
        body = await run_unless_disconnected(raw_request, response.collect(streams, wakeup))
        return Response(status_code=499) if body is None else JSONResponse(body)

    def _check_options(self, request: ChatCompletionRequest) -> None:
        if request.stream_options is not None and not request.stream:
            raise bad_request("stream_options needs stream=true", param="stream_options")
        if request.top_logprobs is not None:
            limit = self.context.model.max_logprobs
            if not request.logprobs:
                raise bad_request("top_logprobs needs logprobs=true", param="top_logprobs")
            if not 0 <= request.top_logprobs <= limit:
                raise bad_request(
                    f"top_logprobs must be in [0, {limit}] (--max-logprobs), got "
                    f"{request.top_logprobs}",
                    param="top_logprobs",
                )


class _ChatResponse:
    """Builds one chat request's response body or SSE chunks from the engine's deltas."""

    def __init__(self, request: ChatCompletionRequest, model: str, request_id: str) -> None:
        self.request = request
        self.model = model
        self.request_id = request_id
        self.created = now_seconds()
        self.num_top_logprobs = (request.top_logprobs or 0) if request.logprobs else None

    def _logprobs(self, completion: CompletionOutput) -> dict | None:
        if self.num_top_logprobs is None:
            return None
        return chat_logprobs(completion.token_ids, completion.logprobs or [], self.num_top_logprobs)

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    async def collect(self, streams: list[RequestStream], wakeup) -> dict[str, Any]:
        (output,) = await collect(streams, wakeup)
        choices = [
            {
                "index": completion.index,
                "message": {"role": "assistant", "content": completion.text},
                "logprobs": self._logprobs(completion),
                "finish_reason": finish_reason_of(completion),
                "stop_reason": completion.stop_reason,
            }
            for completion in output.outputs
        ]
        body = self._envelope("chat.completion", choices)
        num_completion_tokens = sum(len(c.token_ids) for c in output.outputs)
        body["usage"] = usage(
            len(output.prompt_token_ids), num_completion_tokens, output.num_cached_tokens
        )
        return body

    def _chunk(self, choice: dict[str, Any]) -> str:
        chunk = self._envelope("chat.completion.chunk", [choice])
        if self.request.include_usage:
            chunk["usage"] = None
        return sse(chunk)

    async def stream(self, streams: list[RequestStream], wakeup) -> AsyncIterator[str]:
        n = self.request.n if self.request.n is not None else 1
        is_finished = [False] * n
        num_prompt_tokens = num_cached_tokens = num_completion_tokens = 0
        try:
            for index in range(n):  # each choice opens with the role
                delta = {"role": "assistant", "content": ""}
                yield self._chunk(
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
                )
            async for _, output in follow_streams(streams, wakeup):
                num_prompt_tokens = len(output.prompt_token_ids)
                num_cached_tokens = output.num_cached_tokens
                for completion in output.outputs:
                    if is_finished[completion.index]:
                        continue
                    finished = completion.finish_reason is not None
                    is_finished[completion.index] = finished
                    num_completion_tokens += len(completion.token_ids)
                    yield self._chunk(
                        {
                            "index": completion.index,
                            "delta": {"content": completion.text} if completion.text else {},
                            "logprobs": self._logprobs(completion),
                            "finish_reason": finish_reason_of(completion) if finished else None,
                            "stop_reason": completion.stop_reason if finished else None,
                        }
                    )
            if self.request.include_usage:
                chunk = self._envelope("chat.completion.chunk", [])
                chunk["usage"] = usage(num_prompt_tokens, num_completion_tokens, num_cached_tokens)
                yield sse(chunk)
        except Exception as error:  # a client-facing error or a bug (logged)
            yield to_openai_error(error).sse_event()
        yield SSE_DONE
