"""POST /v1/completions: prompts (text, token ids, or lists of either) to text.

Choice ``index`` is ``prompt_index * n + sequence_index`` (as OpenAI and vLLM number them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cadence.engine.async_llm_engine import RequestStream
from cadence.entrypoints.openai.errors import bad_request, to_openai_error
from cadence.entrypoints.openai.protocol import CompletionRequest
from cadence.entrypoints.openai.serving_common import (
    SSE_DONE,
    EngineStreamingResponse,
    completion_logprobs,
    finish_reason_of,
    now_seconds,
    run_unless_disconnected,
    sse,
    usage,
)
from cadence.outputs import CompletionOutput, PromptLogprobs, RequestOutput
from cadence.sampling_params import BeamSearchParams, SamplingParams
from cadence.serving.context import ServingContext
from cadence.serving.request_building import (
    PromptInput,
    check_beam_search_exclusions,
    make_beam_search_params,
    make_sampling_params,
    resolve_max_tokens,
)
from cadence.serving.streams import collect, follow_streams, new_id, submit_prompts

# OpenAI's default max_tokens for completions.
DEFAULT_MAX_TOKENS = 16
_FIELDS = frozenset(CompletionRequest.model_fields)
# Engine parameter names -> this endpoint's field names.
_ALIASES = {"prompt_logprobs": "logprobs"}


class CompletionServing:
    def __init__(self, context: ServingContext) -> None:
        self.context = context

    async def create(self, request: CompletionRequest, raw_request: Request) -> Response:
        context = self.context
        model = context.check_model(request.model)
        self._check_options(request)
        prompts = await self._prompts(request)
        params = [self._sampling_params(request, prompt) for prompt in prompts]
        request_id = new_id("cmpl")
        response = _CompletionResponse(request, model, request_id)
        if request.echo:
            await response.prepare_echo(context, prompts)
        streams, wakeup = await submit_prompts(
            context, request_id, prompts, params, _FIELDS, _ALIASES, request.cache_salt
        )
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
        limit = self.context.model.max_logprobs
        if request.logprobs is not None and not 0 <= request.logprobs <= limit:
            raise bad_request(
                f"logprobs must be in [0, {limit}] (--max-logprobs), got {request.logprobs}",
                param="logprobs",
            )

    async def _prompts(self, request: CompletionRequest) -> list[PromptInput]:
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
                prompts.append(PromptInput(item, await self.context.text.encode(item)))
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
        num_prompt_tokens = len(prompt.token_ids)
        fields["max_tokens"] = resolve_max_tokens(
            self.context, request.max_tokens, num_prompt_tokens, DEFAULT_MAX_TOKENS, "prompt"
        )
        if request.use_beam_search:
            check_beam_search_exclusions(request.model_dump())
            options = request.beam_search_options()
            return make_beam_search_params(
                self.context, options, fields["max_tokens"], num_prompt_tokens
            )
        if request.length_penalty is not None:
            raise bad_request("length_penalty needs use_beam_search=true", param="length_penalty")
        if request.logprobs is not None:
            fields["logprobs"] = request.logprobs
            if request.echo:
                fields["prompt_logprobs"] = request.logprobs
        return make_sampling_params(self.context, fields, _FIELDS, _ALIASES)


@dataclass
class _ChoiceState:
    """What one choice has sent so far."""

    index: int
    num_tokens: int = 0
    text_offset: int = 0  # characters sent (the logprobs' text_offset)
    is_started: bool = False
    is_finished: bool = False


class _CompletionResponse:
    """Builds one request's response body or SSE chunks from the engine's deltas."""

    def __init__(self, request: CompletionRequest, model: str, request_id: str) -> None:
        self.request = request
        self.model = model
        self.request_id = request_id
        self.created = now_seconds()
        self.n = request.n if request.n is not None else 1
        self.echo_texts: list[str] = []  # per prompt, with echo
        self.first_token_texts: list[str] = []  # per prompt, with echo and logprobs

    async def prepare_echo(self, context: ServingContext, prompts: list[PromptInput]) -> None:
        """The echoed prompt texts (and the first prompt tokens' texts), decoded on the text
        worker before the stream starts."""
        for prompt in prompts:
            text = prompt.text
            if text is None:
                text = await context.text.decode(prompt.token_ids)
            self.echo_texts.append(text)
            if self.request.logprobs is not None:
                self.first_token_texts.append(await context.text.decode_token(prompt.token_ids[0]))

    def _logprobs(
        self,
        prompt_index: int,
        completion: CompletionOutput,
        text_offset: int,
        prompt_token_ids: list[int],
        prompt_logprobs: PromptLogprobs | None,
    ) -> dict[str, list] | None:
        """The logprobs of ``completion``'s tokens, after the prompt's when it is echoed."""
        if self.request.logprobs is None:
            return None
        token_ids = list(completion.token_ids)
        positions: list = list(completion.logprobs or [])
        first_text = ""
        if prompt_logprobs is not None:
            token_ids = list(prompt_token_ids) + token_ids
            positions = list(prompt_logprobs) + positions
            first_text = self.first_token_texts[prompt_index]
        return completion_logprobs(
            token_ids, positions, text_offset, self.request.logprobs, first_text
        )

    def _choice(
        self,
        prompt_index: int,
        choice: _ChoiceState,
        completion: CompletionOutput,
        prompt_token_ids: list[int],
        prompt_logprobs: PromptLogprobs | None,
    ) -> dict[str, Any]:
        """The choice's new part; the first one carries the echo."""
        echo = self.echo_texts[prompt_index] if self.request.echo and not choice.is_started else ""
        echoed_logprobs = prompt_logprobs if echo else None
        logprobs = self._logprobs(
            prompt_index, completion, choice.text_offset, prompt_token_ids, echoed_logprobs
        )
        if logprobs is not None:
            choice.text_offset += sum(len(token) for token in logprobs["tokens"])
        else:
            choice.text_offset += len(echo) + len(completion.text)
        choice.is_started = True
        choice.num_tokens += len(completion.token_ids)
        finished = completion.finish_reason is not None
        choice.is_finished = finished
        return {
            "index": choice.index,
            "text": echo + completion.text,
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
        outputs = await collect(streams, wakeup)
        choices = []
        num_prompt_tokens = num_completion_tokens = num_cached_tokens = 0
        for prompt_index, output in enumerate(outputs):
            num_prompt_tokens += len(output.prompt_token_ids)
            num_cached_tokens += output.num_cached_tokens
            for completion in output.outputs:
                num_completion_tokens += len(completion.token_ids)
                state = _ChoiceState(prompt_index * self.n + completion.index)
                choices.append(
                    self._choice(
                        prompt_index,
                        state,
                        completion,
                        output.prompt_token_ids,
                        output.prompt_logprobs,
                    )
                )
        body = self._envelope(choices)
        body["usage"] = usage(num_prompt_tokens, num_completion_tokens, num_cached_tokens)
        return body

    async def stream(self, streams: list[RequestStream], wakeup) -> AsyncIterator[str]:
        include_usage = self.request.include_usage
        choices: dict[int, _ChoiceState] = {}
        num_prompt_tokens: dict[int, int] = {}
        num_cached_tokens: dict[int, int] = {}
        prompt_logprobs: dict[int, PromptLogprobs] = {}
        try:
            async for prompt_index, output in follow_streams(streams, wakeup):
                self._note_prompt(output, prompt_index, num_prompt_tokens, prompt_logprobs)
                num_cached_tokens[prompt_index] = output.num_cached_tokens
                for completion in output.outputs:
                    index = prompt_index * self.n + completion.index
                    choice = choices.setdefault(index, _ChoiceState(index))
                    if choice.is_finished:
                        continue
                    payload = self._choice(
                        prompt_index,
                        choice,
                        completion,
                        output.prompt_token_ids,
                        prompt_logprobs.get(prompt_index),
                    )
                    chunk = self._envelope([payload])
                    if include_usage:
                        chunk["usage"] = None
                    yield sse(chunk)
            if include_usage:
                chunk = self._envelope([])
                chunk["usage"] = usage(
                    sum(num_prompt_tokens.values()),
                    sum(choice.num_tokens for choice in choices.values()),
                    sum(num_cached_tokens.values()),
                )
                yield sse(chunk)
        except Exception as error:  # a client-facing error or a bug (logged)
            yield to_openai_error(error).sse_event()
        yield SSE_DONE

    @staticmethod
    def _note_prompt(
        output: RequestOutput,
        prompt_index: int,
        num_prompt_tokens: dict[int, int],
        prompt_logprobs: dict[int, PromptLogprobs],
    ) -> None:
        num_prompt_tokens[prompt_index] = len(output.prompt_token_ids)
        if output.prompt_logprobs is not None:  # the first delta only: kept for every choice
            prompt_logprobs[prompt_index] = output.prompt_logprobs
