"""POST /v1/chat/completions: a conversation, rendered with the chat template, to replies.

Rendering, conversation checks and control-token sanitizing are ``LLM.render_chat``'s
(the offline ``LLM.chat`` path). ``max_tokens`` / ``max_completion_tokens`` omitted means
"up to the context limit" (unless the generation config sets a default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cadence.engine.async_llm_engine import RequestStream
from cadence.entrypoints.openai.errors import OpenAIError, bad_request, from_engine_error
from cadence.entrypoints.openai.protocol import ChatCompletionRequest
from cadence.entrypoints.openai.serving_common import (
    SSE_DONE,
    ChoiceProgress,
    EngineStreamingResponse,
    PromptInput,
    ServingContext,
    chat_logprobs,
    finish_reason_of,
    follow_streams,
    make_beam_search_params,
    make_sampling_params,
    new_id,
    now_seconds,
    resolve_max_tokens,
    run_unless_disconnected,
    sse,
    submit_prompts,
    usage,
)
from cadence.outputs import CompletionOutput, RequestOutput

_FIELDS = tuple(ChatCompletionRequest.model_fields)
# Keyword arguments of the template renderer that chat_template_kwargs must not override.
_RESERVED_TEMPLATE_KWARGS = frozenset(
    {
        "chat_template",
        "add_generation_prompt",
        "continue_final_message",
        "tools",
        "tokenize",
        "return_dict",
        "sanitize_control_tokens",
        "conversation",
    }
)


def render_messages(
    context: ServingContext,
    messages: list[dict[str, Any]],
    chat_template: str | None,
    chat_template_kwargs: dict[str, Any] | None,
    add_generation_prompt: bool,
    continue_final_message: bool,
) -> PromptInput:
    """Renders one conversation with the request's or the server's template; 400 (param
    "messages", or the offending option) for anything the renderer rejects."""
    reserved = sorted(_RESERVED_TEMPLATE_KWARGS.intersection(chat_template_kwargs or {}))
    if reserved:
        raise bad_request(
            f"chat_template_kwargs must not set {', '.join(reserved)} (use the request fields)",
            param="chat_template_kwargs",
        )
    try:
        rendered = context.llm.render_chat(
            messages,
            chat_template=chat_template or context.chat_template,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=continue_final_message,
            chat_template_kwargs=chat_template_kwargs,
        )[0]
    except ValueError as error:
        message = str(error)
        param = "messages"
        if message.startswith("add_generation_prompt and continue_final_message"):
            param = "continue_final_message"
        elif message.startswith("chat template error"):
            param = "chat_template" if chat_template else "messages"
        raise bad_request(message, param=param) from None
    if not rendered.prompt_token_ids:
        raise bad_request("the rendered conversation is empty", param="messages")
    return PromptInput(rendered.prompt, rendered.prompt_token_ids)


class ChatServing:
    def __init__(self, context: ServingContext) -> None:
        self.context = context

    async def create(self, request: ChatCompletionRequest, raw_request: Request) -> Response:
        context = self.context
        model = context.check_model(request.model)
        self._check_options(request)
        prompt = render_messages(
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
        fields["max_tokens"] = resolve_max_tokens(
            context, requested, len(prompt.token_ids), None, "messages"
        )
        if request.logprobs:
            fields["logprobs"] = request.top_logprobs or 0
        params = make_beam_search_params(
            context, request, fields["max_tokens"], len(prompt.token_ids)
        ) or make_sampling_params(context, fields, _FIELDS, aliases)
        request_id = new_id("chatcmpl")
        streams, wakeup = await submit_prompts(
            context, request_id, [prompt], [params], _FIELDS, aliases, request.cache_salt
        )
        response = _ChatResponse(request, model, request_id, context.llm.llm_engine.decode_token)
        if request.stream:
            return EngineStreamingResponse(response.stream(streams, wakeup), streams)
        body = await run_unless_disconnected(raw_request, response.collect(streams, wakeup))
        return Response(status_code=499) if body is None else JSONResponse(body)

    def _check_options(self, request: ChatCompletionRequest) -> None:
        if request.stream_options is not None and not request.stream:
            raise bad_request("stream_options needs stream=true", param="stream_options")
        if request.top_logprobs is not None:
            limit = self.context.max_logprobs
            if not request.logprobs:
                raise bad_request("top_logprobs needs logprobs=true", param="top_logprobs")
            if not 0 <= request.top_logprobs <= limit:
                raise bad_request(
                    f"top_logprobs must be in [0, {limit}] (--max-logprobs), got "
                    f"{request.top_logprobs}",
                    param="top_logprobs",
                )


class _ChatResponse:
    """Builds one chat request's response body or SSE chunks from engine snapshots."""

    def __init__(self, request: ChatCompletionRequest, model: str, request_id: str, decode_token):
        self.request = request
        self.model = model
        self.request_id = request_id
        self.created = now_seconds()
        self.decode_token = decode_token
        self.num_top_logprobs = (request.top_logprobs or 0) if request.logprobs else None

    def _logprobs(self, completion: CompletionOutput, start: int, end: int) -> dict | None:
        if self.num_top_logprobs is None:
            return None
        return chat_logprobs(
            completion.token_ids[start:end],
            (completion.logprobs or [])[start:end],
            self.num_top_logprobs,
            self.decode_token,
        )

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    async def collect(self, streams: list[RequestStream], wakeup) -> dict[str, Any]:
        output: RequestOutput | None = None
        async for _, snapshot in follow_streams(streams, wakeup):
            output = snapshot
        if output is None or not output.finished:
            raise from_engine_error(RuntimeError("a request ended without finishing"))
        choices = []
        for completion in output.outputs:
            choices.append(
                {
                    "index": completion.index,
                    "message": {"role": "assistant", "content": completion.text},
                    "logprobs": self._logprobs(completion, 0, len(completion.token_ids)),
                    "finish_reason": finish_reason_of(completion),
                    "stop_reason": completion.stop_reason,
                }
            )
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
        progress = {index: ChoiceProgress(index) for index in range(n)}
        num_prompt_tokens = num_cached_tokens = 0
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
                    choice_progress = progress[completion.index]
                    if choice_progress.is_finished:
                        continue
                    text, start, end = choice_progress.advance(completion)
                    finished = choice_progress.is_finished
                    if not text and start == end and not finished:
                        continue
                    yield self._chunk(
                        {
                            "index": completion.index,
                            "delta": {"content": text} if text else {},
                            "logprobs": self._logprobs(completion, start, end),
                            "finish_reason": finish_reason_of(completion) if finished else None,
                            "stop_reason": completion.stop_reason if finished else None,
                        }
                    )
            if self.request.include_usage:
                chunk = self._envelope("chat.completion.chunk", [])
                num_completion_tokens = sum(p.num_tokens for p in progress.values())
                chunk["usage"] = usage(num_prompt_tokens, num_completion_tokens, num_cached_tokens)
                yield sse(chunk)
        except OpenAIError as error:
            yield error.sse_event()
        except Exception as error:  # engine died, shutdown timeout, or a bug (logged)
            yield from_engine_error(error).sse_event()
        yield SSE_DONE
