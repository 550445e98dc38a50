"""POST /v1/completions: prompts (text, token ids, or lists of either) to text.

Choice ``index`` is ``prompt_index * n + sequence_index`` (as OpenAI and vLLM number them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cadence.engine.async_llm_engine import RequestStream
from cadence.entrypoints.openai.errors import OpenAIError, bad_request, from_engine_error
from cadence.entrypoints.openai.protocol import CompletionRequest
from cadence.entrypoints.openai.serving_common import (
    SSE_DONE,
    ChoiceProgress,
    EngineStreamingResponse,
    PromptInput,
    ServingContext,
    completion_logprobs,
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
from cadence.sampling_params import BeamSearchParams, SamplingParams

# OpenAI's default max_tokens for completions.
DEFAULT_MAX_TOKENS = 16
_FIELDS = tuple(CompletionRequest.model_fields)
# Engine-side names in validation messages -> this endpoint's field names.
_ALIASES = {"prompt_logprobs": "logprobs"}


class CompletionServing:
    def __init__(self, context: ServingContext) -> None:
        self.context = context

    async def create(self, request: CompletionRequest, raw_request: Request) -> Response:
        context = self.context
        model = context.check_model(request.model)
        self._check_options(request)
        prompts = self._prompts(request)
        params = [self._sampling_params(request, prompt) for prompt in prompts]
        request_id = new_id("cmpl")
        streams, wakeup = await submit_prompts(
            context, request_id, prompts, params, _FIELDS, _ALIASES, request.cache_salt
        )
        response = _CompletionResponse(context, request, model, request_id, prompts)
        if request.stream:
            return EngineStreamingResponse(response.stream(streams, wakeup), streams)
        body = await run_unless_disconnected(raw_request, response.collect(streams, wakeup))
        return Response(status_code=499) if body is None else JSONResponse(body)

    def _check_options(self, request: CompletionRequest) -> None:
        if request.stream_options is not None and not request.stream:
            raise bad_request("stream_options needs stream=true", param="stream_options")
        n = request.n if request.n is not None else 1
        if request.best_of is not None and request.best_of != n:
            raise bad_request(
                f"best_of must equal n ({n}): cadence returns every sequence it generates",
                param="best_of",
            )
        limit = self.context.max_logprobs
        if request.logprobs is not None and not 0 <= request.logprobs <= limit:
            raise bad_request(
                f"logprobs must be in [0, {limit}] (--max-logprobs), got {request.logprobs}",
                param="logprobs",
            )

    def _prompts(self, request: CompletionRequest) -> list[PromptInput]:
        prompt = request.prompt
        if isinstance(prompt, str):
            items: list[Any] = [prompt]
        elif prompt and isinstance(prompt[0], int):
            items = [prompt]  # one prompt as token ids
        else:
            items = list(prompt)
        if not items:
            raise bad_request("prompt must not be empty", param="prompt")
        prompts = []
        for item in items:
            if isinstance(item, str):
                token_ids = self.context.llm.llm_engine.tokenize(item)
                prompts.append(PromptInput(item, token_ids))
            else:
                self.context.check_token_ids(item, "prompt")
                prompts.append(PromptInput(None, list(item)))
            if not prompts[-1].token_ids:
                raise bad_request("prompt must not be empty", param="prompt")
        return prompts

    def _sampling_params(
        self, request: CompletionRequest, prompt: PromptInput
    ) -> SamplingParams | BeamSearchParams:
        fields = request.sampling_fields()
        fields["max_tokens"] = resolve_max_tokens(
            self.context, request.max_tokens, len(prompt.token_ids), DEFAULT_MAX_TOKENS, "prompt"
        )
        beam_search = make_beam_search_params(
            self.context, request, fields["max_tokens"], len(prompt.token_ids)
        )
        if beam_search is not None:
            return beam_search
        if request.logprobs is not None:
            fields["logprobs"] = request.logprobs
            if request.echo:
                fields["prompt_logprobs"] = request.logprobs
        return make_sampling_params(self.context, fields, _FIELDS, _ALIASES)


class _CompletionResponse:
    """Builds one request's response body or SSE chunks from engine snapshots."""

    def __init__(
        self,
        context: ServingContext,
        request: CompletionRequest,
        model: str,
        request_id: str,
        prompts: list[PromptInput],
    ) -> None:
        self.context = context
        self.request = request
        self.model = model
        self.request_id = request_id
        self.created = now_seconds()
        self.n = request.n if request.n is not None else 1
        self.decode_token = context.llm.llm_engine.decode_token
        tokenizer = context.llm.get_tokenizer()
        self.echo_texts = [
            (p.text if p.text is not None else tokenizer.decode(p.token_ids))
            if request.echo
            else ""
            for p in prompts
        ]

    def _logprobs(
        self,
        output: RequestOutput,
        completion: CompletionOutput,
        start: int,
        end: int,
        text_offset: int,
        with_prompt: bool,
    ) -> dict[str, list] | None:
        if self.request.logprobs is None:
            return None
        token_ids = list(completion.token_ids[start:end])
        positions: list = list((completion.logprobs or [])[start:end])
        if with_prompt and output.prompt_logprobs is not None:
            token_ids = list(output.prompt_token_ids) + token_ids
            positions = list(output.prompt_logprobs) + positions
        return completion_logprobs(
            token_ids, positions, text_offset, self.request.logprobs, self.decode_token
        )

    def _choice(
        self,
        prompt_index: int,
        output: RequestOutput,
        completion: CompletionOutput,
        progress: ChoiceProgress,
        text: str,
        start: int,
        end: int,
    ) -> dict[str, Any]:
        is_first = progress.text_offset == 0 and start == 0
        echo = self.echo_texts[prompt_index] if is_first else ""
        logprobs = self._logprobs(
            output, completion, start, end, progress.text_offset, is_first and bool(echo)
        )
        if logprobs is not None:
            progress.text_offset += sum(len(token) for token in logprobs["tokens"])
        else:
            progress.text_offset += len(echo) + len(text)
        finished = completion.finish_reason is not None
        return {
            "index": progress.index,
            "text": echo + text,
            "logprobs": logprobs,
            "finish_reason": finish_reason_of(completion) if finished else None,
            "stop_reason": completion.stop_reason if finished else None,
        }

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    async def collect(self, streams: list[RequestStream], wakeup) -> dict[str, Any]:
        final: dict[int, RequestOutput] = {}
        async for prompt_index, output in follow_streams(streams, wakeup):
            final[prompt_index] = output
        choices = []
        num_prompt_tokens = num_completion_tokens = num_cached_tokens = 0
        for prompt_index in sorted(final):
            output = final[prompt_index]
            if not output.finished:
                raise from_engine_error(RuntimeError("a request ended without finishing"))
            num_prompt_tokens += len(output.prompt_token_ids)
            num_cached_tokens += output.num_cached_tokens
            for completion in output.outputs:
                num_completion_tokens += len(completion.token_ids)
                progress = ChoiceProgress(prompt_index * self.n + completion.index)
                text, start, end = progress.advance(completion)
                choices.append(
                    self._choice(prompt_index, output, completion, progress, text, start, end)
                )
        body = self._envelope(choices)
        body["usage"] = usage(num_prompt_tokens, num_completion_tokens, num_cached_tokens)
        return body

    async def stream(self, streams: list[RequestStream], wakeup) -> AsyncIterator[str]:
        include_usage = self.request.include_usage
        progress: dict[int, ChoiceProgress] = {}
        num_prompt_tokens: dict[int, int] = {}
        num_cached_tokens: dict[int, int] = {}
        try:
            async for prompt_index, output in follow_streams(streams, wakeup):
                num_prompt_tokens[prompt_index] = len(output.prompt_token_ids)
                num_cached_tokens[prompt_index] = output.num_cached_tokens
                for completion in output.outputs:
                    index = prompt_index * self.n + completion.index
                    choice_progress = progress.setdefault(index, ChoiceProgress(index))
                    if choice_progress.is_finished:
                        continue
                    text, start, end = choice_progress.advance(completion)
                    if not text and start == end and not choice_progress.is_finished:
                        continue
                    choice = self._choice(
                        prompt_index, output, completion, choice_progress, text, start, end
                    )
                    chunk = self._envelope([choice])
                    if include_usage:
                        chunk["usage"] = None
                    yield sse(chunk)
            if include_usage:
                chunk = self._envelope([])
                num_completion_tokens = sum(p.num_tokens for p in progress.values())
                chunk["usage"] = usage(
                    sum(num_prompt_tokens.values()),
                    num_completion_tokens,
                    sum(num_cached_tokens.values()),
                )
                yield sse(chunk)
        except OpenAIError as error:
            yield error.sse_event()
        except Exception as error:  # engine died, shutdown timeout, or a bug (logged)
            yield from_engine_error(error).sse_event()
        yield SSE_DONE
