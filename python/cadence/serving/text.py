"""Tokenization, detokenization and chat rendering off the event loop.

A 15 MB prompt takes seconds to tokenize and a nested template seconds to render; done on
the asyncio loop thread that would stall every stream and ``/health``. ``TextWorker`` runs
them on its own threads, at a lower priority than the loop and the engine (``encode_text``
releases the GIL while the Rust tokenizer runs; Jinja rendering is Python and yields it
every switch interval) and awaits the result.

The tokenizer is shared, read-only, with the engine thread's detokenizers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cadence.entrypoints.chat_utils import ChatRenderer, RenderedChat
from cadence.tokenizer_loader import encode_text

T = TypeVar("T")
DEFAULT_NUM_THREADS = 2
# How much lower than the process the text threads run (a nice increment, 0..19).
TEXT_THREAD_NICENESS = 10


class TextWorker:
    """The frontends' tokenizer and chat renderer, run on ``num_threads`` worker threads."""

    def __init__(self, tokenizer: Any, model_name: str, num_threads: int = DEFAULT_NUM_THREADS):
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        self.tokenizer = tokenizer
        self.renderer = ChatRenderer(tokenizer, model_name)
        self._executor = ThreadPoolExecutor(
            num_threads, thread_name_prefix="cadence-text", initializer=_lower_priority
        )

    async def _run(self, function, *args, **kwargs) -> T:
        call = functools.partial(function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return await self._run(encode_text, self.tokenizer, text, add_special_tokens)

    async def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return await self._run(
            self.tokenizer.decode, list(token_ids), skip_special_tokens=skip_special_tokens
        )

    async def decode_token(self, token_id: int) -> str:
        """One token's text, as ``Logprob.decoded_token`` holds it."""
        return await self._run(
            self.tokenizer.decode, [token_id], clean_up_tokenization_spaces=False
        )

    async def render_chat(self, messages: Any, **options: Any) -> RenderedChat:
        """One conversation, as ``ChatRenderer.render`` takes it."""
        rendered = await self._run(self.renderer.render, messages, **options)
        return rendered[0]

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _lower_priority() -> None:
    """Runs text work below the event loop and the engine threads: a huge prompt competes
    for the cores as background work (Linux nice values are per thread)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), TEXT_THREAD_NICENESS)
