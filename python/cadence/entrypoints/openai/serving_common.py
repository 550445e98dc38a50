"""What the completion and chat endpoints share on the HTTP side: ids, usage and logprobs
formatting, SSE, disconnect handling. Request building and streams are the serving
core's (``cadence.serving``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse

from cadence.engine.async_llm_engine import RequestStream
from cadence.outputs import CompletionOutput, Logprob, PositionLogprobs, top_entries

SSE_DONE = "data: [DONE]\n\n"
# JSON has no -inf; OpenAI-compatible servers report impossible tokens with this floor.
MIN_LOGPROB = -9999.0

T = TypeVar("T")


def now_seconds() -> int:
    return int(time.time())


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


def token_text(logprob: Logprob) -> str:
    """A logprob entry's token text, decoded on the engine thread (never here)."""
    return logprob.decoded_token or ""


def completion_logprobs(
    token_ids: Sequence[int],
    positions: Sequence[PositionLogprobs | None],
    text_offset: int,
    num_top: int,
    first_prompt_token_text: str = "",
) -> dict[str, list]:
    """The legacy completions ``logprobs`` object for these tokens. ``positions[i]`` is
    None for a prompt's first token (nothing precedes it; its text is
    ``first_prompt_token_text``). ``top_logprobs`` holds the sampled token and the
    ``num_top`` most likely ones."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    offsets: list[int] = []
    for token_id, position in zip(token_ids, positions, strict=True):
        if position is None:
            text = first_prompt_token_text
            token_logprobs.append(None)
            top_logprobs.append(None)
        else:
            chosen = position[token_id]
            text = token_text(chosen)
            token_logprobs.append(clamp_logprob(chosen.logprob))
            top = {text: clamp_logprob(chosen.logprob)}
            for _, logprob in top_entries(position, num_top):
                top.setdefault(token_text(logprob), clamp_logprob(logprob.logprob))
            top_logprobs.append(top)
        tokens.append(text)
        offsets.append(text_offset)
        text_offset += len(text)
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": offsets,
    }


def chat_logprobs(
    token_ids: Sequence[int], positions: Sequence[PositionLogprobs], num_top: int
) -> dict[str, list]:
    """The chat ``logprobs`` object: per token its text, logprob, UTF-8 bytes and the
    ``num_top`` most likely alternatives."""

    def entry(logprob: Logprob) -> dict[str, Any]:
        text = token_text(logprob)
        return {
            "token": text,
            "logprob": clamp_logprob(logprob.logprob),
            "bytes": list(text.encode()),
        }

    content = []
    for token_id, position in zip(token_ids, positions, strict=True):
        item = entry(position[token_id])
        item["top_logprobs"] = [entry(logprob) for _, logprob in top_entries(position, num_top)]
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
