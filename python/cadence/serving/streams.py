"""Submitting a request's prompts to the async engine and following their outputs.

Servers ask for DELTA outputs: each step hands the frontend only what is new (text, token
ids, logprobs), so per-step cost does not grow with the output length. ``FinalOutput``
adds the deltas up where a frontend answers once, at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from cadence.beam_search import BeamSearchOutput
from cadence.engine.async_llm_engine import RequestStream
from cadence.outputs import (
    CompletionOutput,
    PositionLogprobs,
    RequestOutput,
    RequestOutputKind,
)
from cadence.sampling_params import BeamSearchParams, SamplingParams
from cadence.serving.context import ServingContext
from cadence.serving.errors import InvalidParameter, Unavailable, as_serving_error
from cadence.serving.request_building import PromptInput, request_param


def new_id(prefix: str) -> str:
    """A request id no other request has: ``{prefix}-{32 hex digits}``."""
    return f"{prefix}-{uuid.uuid4().hex}"


async def submit_prompts(
    context: ServingContext,
    request_id: str,
    prompts: Sequence[PromptInput],
    params: Sequence[SamplingParams | BeamSearchParams],
    request_fields: frozenset[str] | tuple[str, ...],
    aliases: Mapping[str, str],
    cache_salt: str | None = None,
) -> tuple[list[RequestStream], asyncio.Event]:
    """Adds one engine request per prompt (``{request_id}-{i}``, DELTA outputs), all sharing
    one wakeup event and ``cache_salt``; all or none: a failure aborts the ones already
    added. Errors are ServingErrors naming the request's field."""
    wakeup = asyncio.Event()
    streams: list[RequestStream] = []
    try:
        for index, (prompt, prompt_params) in enumerate(zip(prompts, params, strict=True)):
            engine_id = f"{request_id}-{index}"
            context.log_request(engine_id, prompt.text, prompt.token_ids)
            stream = await context.engine.add_request(
                engine_id,
                prompt.text,
                prompt.token_ids,
                prompt_params,
                wakeup,
                cache_salt,
                RequestOutputKind.DELTA,
            )
            streams.append(stream)
    except BaseException as error:
        for stream in streams:
            stream.abort()
        serving_error = as_serving_error(error)
        if isinstance(serving_error, InvalidParameter):
            param = request_param(serving_error.param, request_fields, aliases)
            raise InvalidParameter(param, serving_error.message) from None
        if serving_error is not None:
            raise serving_error from None
        raise
    return streams, wakeup


async def follow_streams(
    streams: list[RequestStream], wakeup: asyncio.Event
) -> AsyncIterator[tuple[int, RequestOutput]]:
    """Yields (prompt index, delta) as outputs arrive, until every stream is finished; a
    beam search's one output is converted to a RequestOutput of its n hypotheses. Raises a
    stream's error (as a ServingError). Leaving early aborts the unfinished requests."""
    try:
        remaining = set(range(len(streams)))
        while remaining:
            for index in sorted(remaining):
                try:
                    output = streams[index].poll()
                except BaseException as error:
                    serving_error = as_serving_error(error)
                    if serving_error is None:
                        raise
                    raise serving_error from None
                if isinstance(output, BeamSearchOutput):
                    output = output.as_request_output()
                if output is not None:
                    if output.finished:
                        remaining.discard(index)
                    yield index, output
                elif streams[index].is_closed:
                    remaining.discard(index)  # aborted: no final output will come
            if remaining:
                await wakeup.wait()
                wakeup.clear()
    finally:
        for stream in streams:
            stream.abort()


@dataclass
class FinalChoice:
    """One sequence's deltas added up (O(total) over the request, not per step)."""

    index: int
    text_parts: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[PositionLogprobs] | None = None
    cumulative_logprob: float | None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None

    def add(self, delta: CompletionOutput) -> None:
        self.text_parts.append(delta.text)
        self.token_ids.extend(delta.token_ids)
        if delta.logprobs is not None:
            if self.logprobs is None:
                self.logprobs = []
            self.logprobs.extend(delta.logprobs)
        self.cumulative_logprob = delta.cumulative_logprob
        self.finish_reason = delta.finish_reason
        self.stop_reason = delta.stop_reason

    def output(self) -> CompletionOutput:
        return CompletionOutput(
            index=self.index,
            text="".join(self.text_parts),
            token_ids=self.token_ids,
            cumulative_logprob=self.cumulative_logprob,
            logprobs=self.logprobs,
            finish_reason=self.finish_reason,
            stop_reason=self.stop_reason,
        )


class FinalOutput:
    """A request's DELTA outputs added up into the cumulative RequestOutput."""

    def __init__(self) -> None:
        self.first: RequestOutput | None = None
        self.choices: dict[int, FinalChoice] = {}
        self.finished = False
        self.num_cached_tokens = 0

    def add(self, delta: RequestOutput) -> None:
        if self.first is None:
            self.first = delta
        elif delta.prompt_logprobs is not None and self.first.prompt_logprobs is None:
            self.first.prompt_logprobs = delta.prompt_logprobs
        for completion in delta.outputs:
            choice = self.choices.get(completion.index)
            if choice is None:
                choice = self.choices[completion.index] = FinalChoice(completion.index)
            choice.add(completion)
        self.finished = delta.finished
        self.num_cached_tokens = delta.num_cached_tokens

    def output(self) -> RequestOutput:
        """The request as a whole; Unavailable if it ended without finishing."""
        if self.first is None or not self.finished:
            raise Unavailable("the request ended without finishing", "request_aborted")
        return RequestOutput(
            request_id=self.first.request_id,
            prompt=self.first.prompt,
            prompt_token_ids=self.first.prompt_token_ids,
            prompt_logprobs=self.first.prompt_logprobs,
            outputs=[self.choices[index].output() for index in sorted(self.choices)],
            finished=True,
            num_cached_tokens=self.num_cached_tokens,
        )


async def collect(streams: list[RequestStream], wakeup: asyncio.Event) -> list[RequestOutput]:
    """Each prompt's whole output, in prompt order, once all are finished."""
    finals = [FinalOutput() for _ in streams]
    async for index, delta in follow_streams(streams, wakeup):
        finals[index].add(delta)
    return [final.output() for final in finals]
