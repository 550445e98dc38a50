"""What the completion and chat endpoints share: the serving context, turning a request
into SamplingParams (defaults, context-length check), submitting prompts to the async
engine, following their streams, per-choice deltas, logprobs and usage formatting, SSE."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse

from cadence.beam_search import BeamSearchOutput
from cadence.engine.async_llm_engine import AsyncLLMEngine, RequestStream
from cadence.entrypoints.openai.errors import OpenAIError, bad_request, param_of
from cadence.llm import LLM
from cadence.logger import get_logger
from cadence.outputs import CompletionOutput, PositionLogprobs, RequestOutput
from cadence.sampling_params import BeamSearchParams, SamplingParams

logger = get_logger(__name__)

SSE_DONE = "data: [DONE]\n\n"
# JSON has no -inf; OpenAI-compatible servers report impossible tokens with this floor.
MIN_LOGPROB = -9999.0

T = TypeVar("T")


@dataclass
class ServingContext:
    """Everything the endpoints need. ``llm`` provides the tokenizer and chat rendering;
    its ``generate`` is never called while serving (the async engine owns the engine).

    Attributes:
        default_fields: SamplingParams fields from the model's generation config (or
            ``--generation-config``), applied where a request leaves a field out.
        chat_template: the server's template (``--chat-template``); None = the tokenizer's.
        max_log_len: prompt characters / token ids logged per request; 0 = no prompt.
    """

    engine: AsyncLLMEngine
    llm: LLM
    served_model_names: list[str]
    default_fields: dict[str, Any]
    chat_template: str | None = None
    max_log_len: int = 0

    @property
    def model_name(self) -> str:
        return self.served_model_names[0]

    @property
    def max_model_len(self) -> int:
        return self.llm.llm_engine.max_model_len

    @property
    def max_logprobs(self) -> int:
        return self.llm.llm_engine.max_logprobs

    @property
    def vocab_size(self) -> int:
        return self.llm.llm_engine.vocab_size

    def check_model(self, model: str | None) -> str:
        """The model name to report; 404 for a model this server does not serve."""
        if model is None:
            return self.model_name
        if model not in self.served_model_names:
            raise OpenAIError(
                404,
                f"The model `{model}` does not exist. This server serves: "
                f"{', '.join(self.served_model_names)}",
                param="model",
                code="model_not_found",
            )
        return model

    def check_token_ids(self, token_ids: Sequence[int], param: str) -> None:
        for token_id in token_ids:
            if not 0 <= token_id < self.vocab_size:
                raise bad_request(
                    f"{param} holds token id {token_id}, out of range [0, {self.vocab_size})",
                    param=param,
                )

    def log_request(self, request_id: str, prompt: str | None, token_ids: list[int]) -> None:
        if self.max_log_len > 0:
            shown = repr(prompt[: self.max_log_len]) if prompt is not None else "None"
            logger.info(
                "request %s: %d prompt tokens, prompt=%s, prompt_token_ids=%s",
                request_id,
                len(token_ids),
                shown,
                token_ids[: self.max_log_len],
            )
        else:
            logger.info("request %s: %d prompt tokens", request_id, len(token_ids))


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now_seconds() -> int:
    return int(time.time())


def check_context_length(
    context: ServingContext, num_prompt_tokens: int, max_tokens: int | None, where: str
) -> None:
    """OpenAI's context_length_exceeded 400, with the numbers. ``where`` is "prompt" or
    "messages" (the param the error names). ``max_tokens=None``: up to the limit."""
    limit = context.max_model_len
    if max_tokens is None or max_tokens < 1:  # a bad max_tokens is SamplingParams' to report
        if num_prompt_tokens >= limit:
            raise bad_request(
                f"This model's maximum context length is {limit} tokens. However, your "
                f"{where} resulted in {num_prompt_tokens} tokens, which leaves no room for "
                f"the completion. Please reduce the length of the {where}.",
                param=where,
                code="context_length_exceeded",
            )
        return
    total = num_prompt_tokens + max_tokens
    if total > limit:
        raise bad_request(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{total} tokens ({num_prompt_tokens} in the {where}, {max_tokens} in the "
            f"completion). Please reduce the length of the {where} or completion.",
            param=where,
            code="context_length_exceeded",
        )


def resolve_max_tokens(
    context: ServingContext,
    requested: int | None,
    num_prompt_tokens: int,
    fallback: int | None,
    where: str,
) -> int | None:
    """max_tokens: the request's value (checked against the context), else the generation
    config's, else ``fallback`` (OpenAI's default); defaults are capped to the room left."""
    check_context_length(context, num_prompt_tokens, requested, where)
    if requested is not None:
        return requested
    default = context.default_fields.get("max_tokens", fallback)
    if default is None:
        return None
    return max(1, min(default, context.max_model_len - num_prompt_tokens))


def make_sampling_params(
    context: ServingContext,
    fields: dict[str, Any],
    request_fields: Sequence[str],
    aliases: dict[str, str],
) -> SamplingParams:
    """SamplingParams from the generation-config defaults overlaid with ``fields``; a
    ValueError becomes a 400 naming the request's field (``aliases``: engine -> request)."""
    merged = {**context.default_fields, **fields}
    try:
        params = SamplingParams(**merged)
        params.verify(context.vocab_size, context.max_logprobs)
    except ValueError as error:
        raise bad_request(str(error), param=param_of(str(error), request_fields, aliases)) from None
    return params


# Request fields beam search has no use for: combined with use_beam_search they are a 400
# naming the field, never silently ignored.
NOT_WITH_BEAM_SEARCH = (
    "top_p",
    "top_k",
    "min_p",
    "stop",
    "stop_token_ids",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logit_bias",
    "min_tokens",
    "logprobs",
    "top_logprobs",
    "echo",
    "best_of",
)


def make_beam_search_params(
    context: ServingContext, request: Any, max_tokens: int | None, num_prompt_tokens: int
) -> BeamSearchParams | None:
    """BeamSearchParams when the request sets ``use_beam_search`` (beam_width = n), else
    None. ``max_tokens`` is the resolved value (None = up to the context limit)."""
    if not request.use_beam_search:
        if request.length_penalty is not None:
            raise bad_request("length_penalty needs use_beam_search=true", param="length_penalty")
        return None
    for name in NOT_WITH_BEAM_SEARCH:
        value = getattr(request, name, None)
        if value is not None and value is not False:
            raise bad_request(f"{name} cannot be combined with use_beam_search", param=name)
    if max_tokens is None:
        max_tokens = context.max_model_len - num_prompt_tokens
    try:
        return BeamSearchParams(
            beam_width=request.n if request.n is not None else 1,
            max_tokens=max_tokens,
            ignore_eos=bool(request.ignore_eos),
            temperature=request.temperature if request.temperature is not None else 0.0,
            length_penalty=request.length_penalty if request.length_penalty is not None else 1.0,
            include_stop_str_in_output=bool(request.include_stop_str_in_output),
        )
    except ValueError as error:
        param = param_of(str(error), ("max_tokens", "temperature", "length_penalty"), {})
        message = str(error).replace("beam_width", "n (the beam width)")
        raise bad_request(message, param="n" if "beam_width" in str(error) else param) from None


@dataclass
class PromptInput:
    text: str | None
    token_ids: list[int]


async def submit_prompts(
    context: ServingContext,
    request_id: str,
    prompts: Sequence[PromptInput],
    params: Sequence[SamplingParams | BeamSearchParams],
    request_fields: Sequence[str],
    aliases: dict[str, str],
    cache_salt: str | None = None,
) -> tuple[list[RequestStream], asyncio.Event]:
    """Adds one engine request per prompt (``{request_id}-{i}``), all sharing one wakeup
    event and ``cache_salt``; all or none: a failure aborts the ones already added."""
    wakeup = asyncio.Event()
    streams: list[RequestStream] = []
    try:
        for index, (prompt, prompt_params) in enumerate(zip(prompts, params, strict=True)):
            engine_id = f"{request_id}-{index}"
            context.log_request(engine_id, prompt.text, prompt.token_ids)
            stream = await context.engine.add_request(
                engine_id, prompt.text, prompt.token_ids, prompt_params, wakeup, cache_salt
            )
            streams.append(stream)
    except ValueError as error:
        for stream in streams:
            stream.abort()
        param = param_of(str(error), request_fields, aliases)
        raise bad_request(str(error), param=param) from None
    except BaseException:
        for stream in streams:
            stream.abort()
        raise
    return streams, wakeup


async def follow_streams(
    streams: list[RequestStream], wakeup: asyncio.Event
) -> AsyncIterator[tuple[int, RequestOutput]]:
    """Yields (prompt index, newest snapshot) as outputs arrive, until every stream is
    finished; raises a stream's error. Leaving early aborts the unfinished requests."""
    try:
        remaining = set(range(len(streams)))
        while remaining:
            for index in sorted(remaining):
                output = streams[index].poll()
                if isinstance(output, BeamSearchOutput):  # use_beam_search: n hypotheses
                    output = output.as_request_output()
                if output is not None:
                    if output.finished:
                        remaining.discard(index)
                    yield index, output
                elif streams[index].is_closed:
                    remaining.discard(index)  # aborted: no final snapshot will come
            if remaining:
                await wakeup.wait()
                wakeup.clear()
    finally:
        for stream in streams:
            stream.abort()


@dataclass
class ChoiceProgress:
    """What one choice has sent so far (streaming deltas from cumulative snapshots)."""

    index: int
    num_chars: int = 0
    num_tokens: int = 0
    is_finished: bool = False
    text_offset: int = 0  # completions logprobs: characters covered by the tokens sent

    def advance(self, completion: CompletionOutput) -> tuple[str, int, int]:
        """(new text, first new token, end token) since the last call; marks finishing.

        Text only grows: stop-string prefixes are held back and never taken back, and the
        detokenizer never splits a UTF-8 character."""
        text = completion.text[self.num_chars :]
        start, end = self.num_tokens, len(completion.token_ids)
        self.num_chars = len(completion.text)
        self.num_tokens = end
        self.is_finished = completion.finish_reason is not None
        return text, start, end


def finish_reason_of(completion: CompletionOutput) -> str | None:
    """OpenAI's finish_reason ("stop" / "length"); "abort" never reaches a client."""
    return completion.finish_reason if completion.finish_reason in ("stop", "length") else None


def usage(
    num_prompt_tokens: int, num_completion_tokens: int, num_cached_tokens: int
) -> dict[str, Any]:
    """OpenAI's usage object; ``cached_tokens``: prompt tokens served from the prefix cache."""
    return {
        "prompt_tokens": num_prompt_tokens,
        "completion_tokens": num_completion_tokens,
        "total_tokens": num_prompt_tokens + num_completion_tokens,
        "prompt_tokens_details": {"cached_tokens": num_cached_tokens},
    }


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


def clamp_logprob(value: float) -> float:
    return value if value >= MIN_LOGPROB else MIN_LOGPROB


def top_entries(position: PositionLogprobs, count: int) -> list[tuple[int, Any]]:
    """The ``count`` most likely (token id, Logprob) of a position, best first."""
    ranked = sorted(position.items(), key=lambda item: item[1].rank or 0)
    return ranked[:count]


def completion_logprobs(
    token_ids: Sequence[int],
    positions: Sequence[PositionLogprobs | None],
    text_offset: int,
    num_top: int,
    decode_token,
) -> dict[str, list]:
    """The legacy completions ``logprobs`` object for these tokens. ``positions[i]`` is
    None for a prompt's first token (nothing precedes it). ``top_logprobs`` holds the
    sampled token and the ``num_top`` most likely ones."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    offsets: list[int] = []
    for token_id, position in zip(token_ids, positions, strict=True):
        text = decode_token(token_id)
        tokens.append(text)
        offsets.append(text_offset)
        text_offset += len(text)
        if position is None:
            token_logprobs.append(None)
            top_logprobs.append(None)
            continue
        token_logprobs.append(clamp_logprob(position[token_id].logprob))
        top = {text: clamp_logprob(position[token_id].logprob)}
        for top_id, logprob in top_entries(position, num_top):
            top.setdefault(decode_token(top_id), clamp_logprob(logprob.logprob))
        top_logprobs.append(top)
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": offsets,
    }


def chat_logprobs(
    token_ids: Sequence[int],
    positions: Sequence[PositionLogprobs],
    num_top: int,
    decode_token,
) -> dict[str, list]:
    """The chat ``logprobs`` object: per token its text, logprob, UTF-8 bytes and the
    ``num_top`` most likely alternatives."""

    def entry(token_id: int, logprob: float) -> dict[str, Any]:
        text = decode_token(token_id)
        return {"token": text, "logprob": clamp_logprob(logprob), "bytes": list(text.encode())}

    content = []
    for token_id, position in zip(token_ids, positions, strict=True):
        item = entry(token_id, position[token_id].logprob)
        item["top_logprobs"] = [
            entry(top_id, logprob.logprob) for top_id, logprob in top_entries(position, num_top)
        ]
        content.append(item)
    return {"content": content}


async def run_unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Runs ``work``; if the client disconnects first, cancels it (which aborts its engine
    requests) and returns None. For non-streaming responses, whose disconnects the ASGI
    server reports only through ``receive``."""
    task = asyncio.ensure_future(work)
    listener = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        listener.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # let its cleanup (the aborts) run
    if task.cancelled():
        return None
    return task.result()


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


class EngineStreamingResponse(StreamingResponse):
    """An SSE response that aborts its engine requests however it ends, also when the
    client leaves before the first chunk (when the body generator never starts)."""

    def __init__(self, content: AsyncIterator[str], streams: Sequence[RequestStream]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._streams = list(streams)

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            for stream in self._streams:
                stream.abort()
