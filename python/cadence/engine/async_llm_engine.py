"""The async engine layer: an ``LLMEngine`` driven by its own thread, used from asyncio.

Frontends (the OpenAI HTTP server, a gRPC server) share it. Threads and ownership::

    asyncio loop thread                        engine loop thread (owns the LLMEngine)
    -------------------                        ---------------------------------------
    add_request() --- command queue ---------> add_request (validates; ValueError goes back)
    RequestStream.abort() -- command queue --> abort_request (frees the KV blocks)
                                               step()   (the C++ step releases the GIL)
    _dispatch(outputs)  <-- call_soon_threadsafe, once per step, all outputs of the step

Contracts:

- ``add_request`` returns only once the engine thread has validated and queued the request;
  a ``ValueError`` from validation (naming the parameter) is raised to the caller and never
  stops the loop. ``EngineOverloadedError`` when the waiting queue is full,
  ``EngineDrainingError`` while draining, ``EngineDeadError`` once the loop has died.
- A ``RequestStream`` yields ``RequestOutput``s in the request's ``output_kind`` (a beam
  search: one ``BeamSearchOutput``), the last one with ``finished=True``. Outputs are
  coalesced: a consumer that falls behind gets, for CUMULATIVE, the latest snapshot (it
  holds everything the skipped ones held); for DELTA, the skipped deltas added together
  (``RequestOutput.add``). Servers use DELTA: per step they handle only what is new.
- Aborting (``RequestStream.abort``, or closing ``generate`` early: client gone, cancelled,
  deadline via ``asyncio.timeout``) reaches the core before its next step, which frees the
  request's KV blocks.
- If ``step`` raises, the loop is dead: every open stream and every later ``add_request``
  gets ``EngineDeadError`` (streams never hang), and ``is_healthy`` turns False.
- ``drain(timeout)`` refuses new requests, waits for the open ones, then aborts what is
  left with ``RequestAbortedError``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cadence.beam_search import BeamSearchOutput
from cadence.engine.llm_engine import LLMEngine
from cadence.logger import get_logger
from cadence.outputs import RequestOutput, RequestOutputKind
from cadence.sampling_params import BeamSearchParams, SamplingParams

logger = get_logger(__name__)


class EngineDeadError(RuntimeError):
    """The engine loop stopped with an error; the engine serves no more requests."""


class EngineOverloadedError(RuntimeError):
    """The waiting queue is full (``max_waiting_requests``); retry later."""


class EngineDrainingError(RuntimeError):
    """The engine is shutting down and accepts no new requests."""


class RequestAbortedError(RuntimeError):
    """The engine ended the request before it finished (shutdown timeout)."""


@dataclass(frozen=True)
class EngineStats:
    """The engine's load, as of the end of the latest step or command batch.

    ``num_running`` and ``num_waiting`` count sequences (a request with n > 1 counts n);
    ``num_waiting`` includes requests submitted but not yet handed to the core."""

    num_running: int = 0
    num_waiting: int = 0
    num_total_blocks: int = 0
    num_free_blocks: int = 0
    num_preemptions: int = 0
    # Prefix cache, since start: tokens looked up at admission, and those found cached.
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0

    @property
    def kv_cache_usage(self) -> float:
        """Fraction of KV-cache blocks in use, 0.0 (all free) .. 1.0."""
        if self.num_total_blocks == 0:
            return 0.0
        return (self.num_total_blocks - self.num_free_blocks) / self.num_total_blocks


class RequestMetricsSink(Protocol):
    """Receives per-request timings (all called on the asyncio loop thread)."""

    def record_prompt(self, num_prompt_tokens: int) -> None: ...

    def record_first_token(self, seconds: float) -> None: ...

    def record_inter_token(self, seconds: float) -> None: ...

    def record_generated(self, num_tokens: int) -> None: ...

    def record_finished(self, seconds: float, finish_reasons: list[str]) -> None: ...


class RequestStream:
    """One request's outputs, consumed on the asyncio loop thread.

    ``async for output in stream`` yields outputs (of ``output_kind``) until the finished one;
    raises the engine's error (EngineDeadError, RequestAbortedError) if the request fails.
    Several streams may share one ``wakeup`` event to be consumed together (``poll``)."""

    def __init__(
        self,
        engine: AsyncLLMEngine,
        request_id: str,
        num_prompt_tokens: int,
        wakeup: asyncio.Event,
        output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE,
    ) -> None:
        self.request_id = request_id
        self.output_kind = output_kind
        self.num_prompt_tokens = num_prompt_tokens
        self.wakeup = wakeup
        self._engine = engine
        self._latest: RequestOutput | None = None
        self._error: BaseException | None = None
        self._is_closed = False  # no more outputs will arrive
        self._is_exhausted = False  # the consumer has seen the end
        # Timings for the metrics, in time.monotonic() seconds.
        self.arrival_time = time.monotonic()
        self.last_token_time: float | None = None
        self.num_output_tokens = 0
        self.finish_reasons: dict[int, str] = {}  # sequence index -> its finish reason

    @property
    def is_closed(self) -> bool:
        """True once the request finished, failed or was aborted."""
        return self._is_closed

    def poll(self) -> RequestOutput | None:
        """The output not yet returned (for DELTA, every delta since the last poll added
        together), or None. Raises the request's error."""
        if self._error is not None:
            self._is_exhausted = True
            raise self._error
        latest, self._latest = self._latest, None
        if latest is not None and latest.finished:
            self._is_exhausted = True
        return latest

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> RequestOutput:
        while True:
            output = self.poll()
            if output is not None:
                return output
            if self._is_exhausted or self._is_closed:
                raise StopAsyncIteration
            await self.wakeup.wait()
            self.wakeup.clear()

    def abort(self) -> None:
        """Stops the request (idempotent; a no-op once it finished)."""
        self._engine.abort(self.request_id)

    # Called by the engine on the loop thread.
    def _put(self, output: RequestOutput) -> None:
        if self._latest is not None and self.output_kind is RequestOutputKind.DELTA:
            self._latest.add(output)
        else:
            self._latest = output
        if output.finished:
            self._is_closed = True
        self.wakeup.set()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._is_closed = True
        self.wakeup.set()


@dataclass
class _AddCommand:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    params: SamplingParams | BeamSearchParams
    accepted: asyncio.Future  # None, or the exception add_request raised
    cache_salt: str | None = None
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE

    @property
    def num_sequences(self) -> int:
        if isinstance(self.params, BeamSearchParams):
            return self.params.beam_width
        return self.params.n


@dataclass
class _AbortCommand:
    request_id: str


@dataclass
class _ResetPrefixCacheCommand:
    done: asyncio.Future  # set to True once the cache is empty (False: the engine stopped)


_Command = _AddCommand | _AbortCommand | _ResetPrefixCacheCommand


def _resolve(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)


class AsyncLLMEngine:
    """Runs an ``LLMEngine`` on a dedicated thread for asyncio frontends (see module doc).

    Args:
        engine: the engine to drive; from ``start()`` on, only the engine thread touches it.
        max_waiting_requests: the most sequences waiting for a slot (queued here or waiting
            in the scheduler) before ``add_request`` raises ``EngineOverloadedError``;
            None = no limit.
        metrics: optional sink for per-request timings and token counts.
    """

    def __init__(
        self,
        engine: LLMEngine,
        max_waiting_requests: int | None = None,
        metrics: RequestMetricsSink | None = None,
    ) -> None:
        if max_waiting_requests is not None and max_waiting_requests < 1:
            raise ValueError(
                f"max_waiting_requests must be >= 1 (or None for no limit), got "
                f"{max_waiting_requests}"
            )
        self.engine = engine
        self.max_waiting_requests = max_waiting_requests
        self._metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Shared between the threads, guarded by _condition.
        self._condition = threading.Condition()
        self._commands: collections.deque[_Command] = collections.deque()
        self._num_queued_sequences = 0  # submitted, not yet handed to the core
        self._stats = EngineStats()
        self._is_stopping = False
        # Loop-thread state.
        self._streams: dict[str, RequestStream] = {}
        self._pending_adds: dict[str, _AddCommand] = {}
        self._dead_error: BaseException | None = None
        self._is_draining = False
        self._ids = itertools.count()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Starts the engine thread; call from the asyncio loop that will use the engine."""
        if self._thread is not None:
            raise RuntimeError("AsyncLLMEngine.start() was already called")
        self._loop = asyncio.get_running_loop()
        # The pool's figures from the start (the engine thread does not run yet, so reading
        # the core here races nothing): a fresh server's /metrics shows its KV blocks.
        self._publish_stats(0)
        self._thread = threading.Thread(target=self._run, name="cadence-engine", daemon=True)
        self._thread.start()

    async def drain(self, timeout_seconds: float) -> None:
        """Refuses new requests, waits up to ``timeout_seconds`` for open ones to finish,
        then aborts the rest (their streams raise ``RequestAbortedError``)."""
        self._is_draining = True
        deadline = time.monotonic() + timeout_seconds
        while (self._streams or self._pending_adds) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._streams:
            logger.warning(
                "shutdown timeout (%.1fs): aborting %d unfinished request(s)",
                timeout_seconds,
                len(self._streams),
            )
        self._abort_all(RequestAbortedError("the server is shutting down"))

    async def shutdown(self) -> None:
        """Stops the engine thread (after its current step) and fails any open stream."""
        self._is_draining = True
        self._abort_all(RequestAbortedError("the server is shutting down"))
        with self._condition:
            self._is_stopping = True
            self._condition.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    @property
    def is_draining(self) -> bool:
        return self._is_draining

    @property
    def is_healthy(self) -> bool:
        """The engine loop is running (not dead, not stopped)."""
        thread = self._thread
        return self._dead_error is None and thread is not None and thread.is_alive()

    def stats(self) -> EngineStats:
        """Load figures; ``num_waiting`` includes requests not yet handed to the core."""
        with self._condition:
            stats, queued = self._stats, self._num_queued_sequences
        if not queued:
            return stats
        return dataclasses.replace(stats, num_waiting=stats.num_waiting + queued)

    # ------------------------------------------------------------------ requests

    def next_request_id(self) -> str:
        return f"req-{next(self._ids)}"

    async def add_request(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: Sequence[int],
        params: SamplingParams | BeamSearchParams,
        wakeup: asyncio.Event | None = None,
        cache_salt: str | None = None,
        output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE,
    ) -> RequestStream:
        """Validates and queues a request; returns its stream once the engine accepted it.
        With ``BeamSearchParams`` it is a beam search, whose stream yields one
        ``BeamSearchOutput`` when the search is done. Only requests with equal
        ``cache_salt`` share cached prefix blocks. ``output_kind``: what each output holds
        (CUMULATIVE or DELTA; FINAL_ONLY also works, and gives no timing metrics).

        Raises ValueError (bad request: names the parameter), EngineOverloadedError,
        EngineDrainingError or EngineDeadError. ``wakeup`` lets several streams share one
        event (see ``RequestStream``)."""
        self._check_accepting()
        if request_id in self._streams or request_id in self._pending_adds:
            raise ValueError(f"request_id {request_id!r} is already in use")
        command = _AddCommand(
            request_id,
            prompt,
            list(prompt_token_ids),
            params,
            self._loop.create_future(),
            cache_salt,
            output_kind,
        )
        with self._condition:
            if (
                self.max_waiting_requests is not None
                and self._num_queued_sequences + self._stats.num_waiting
                >= self.max_waiting_requests
            ):
                raise EngineOverloadedError(
                    f"the server is overloaded: {self.max_waiting_requests} requests are "
                    "already waiting; retry later"
                )
            self._num_queued_sequences += command.num_sequences
            self._commands.append(command)
            self._condition.notify()
        stream = RequestStream(
            self, request_id, len(prompt_token_ids), wakeup or asyncio.Event(), output_kind
        )
        self._streams[request_id] = stream
        self._pending_adds[request_id] = command
        try:
            error = await command.accepted
        except BaseException:  # cancelled while waiting: the add may still happen
            self.abort(request_id)
            raise
        finally:
            self._pending_adds.pop(request_id, None)
        if error is not None:
            self._streams.pop(request_id, None)
            raise error
        if self._metrics is not None:
            self._metrics.record_prompt(stream.num_prompt_tokens)
        return stream

    async def generate(
        self,
        prompt: str | None,
        prompt_token_ids: Sequence[int],
        params: SamplingParams,
        request_id: str | None = None,
    ) -> AsyncIterator[RequestOutput]:
        """``add_request`` + iterate its stream; leaving the loop early aborts the request."""
        stream = await self.add_request(
            request_id or self.next_request_id(), prompt, prompt_token_ids, params
        )
        try:
            async for output in stream:
                yield output
        finally:
            stream.abort()

    async def reset_prefix_cache(self) -> bool:
        """Empties the prefix cache (on the engine thread, between steps); True when done."""
        self._check_accepting()
        command = _ResetPrefixCacheCommand(self._loop.create_future())
        with self._condition:
            self._commands.append(command)
            self._condition.notify()
        return await command.done

    def abort(self, request_id: str) -> None:
        """Ends a request from the loop thread: its stream gets nothing more, and the core
        drops it (freeing its KV blocks) before the next step. Idempotent."""
        stream = self._streams.pop(request_id, None)
        if stream is None:
            return
        stream._is_closed = True
        stream.wakeup.set()
        with self._condition:
            self._commands.append(_AbortCommand(request_id))
            self._condition.notify()

    def _check_accepting(self) -> None:
        if self._dead_error is not None:
            raise EngineDeadError(f"the engine loop died: {self._dead_error!r}")
        if self._is_draining:
            raise EngineDrainingError("the server is shutting down and accepts no new requests")
        if self._loop is None:
            raise RuntimeError("AsyncLLMEngine.start() has not been called")

    def _abort_all(self, error: BaseException) -> None:
        for request_id, stream in list(self._streams.items()):
            self.abort(request_id)
            stream._fail(error)
        for command in self._pending_adds.values():
            if not command.accepted.done():
                command.accepted.set_result(error)

    # ------------------------------------------------------------------ loop thread side

    def _dispatch(self, outputs: list[RequestOutput], step_time: float) -> None:
        """Hands one step's outputs to their streams (runs on the loop thread)."""
        metrics = self._metrics
        for output in outputs:
            stream = self._streams.get(output.request_id)
            if stream is None:
                continue  # aborted meanwhile
            try:
                if metrics is not None:
                    self._record_metrics(metrics, stream, output, step_time)
            except Exception as error:  # a bug must fail this request, not every stream
                logger.exception("recording metrics for %s failed", output.request_id)
                self.abort(output.request_id)
                stream._fail(error)
                continue
            stream._put(output)
            if output.finished:
                del self._streams[output.request_id]

    @staticmethod
    def _record_metrics(
        metrics: RequestMetricsSink,
        stream: RequestStream,
        output: RequestOutput | BeamSearchOutput,
        now: float,
    ) -> None:
        if isinstance(output, BeamSearchOutput):  # reported once, when the search is done
            num_tokens = sum(len(sequence.tokens) for sequence in output.sequences)
            if stream.last_token_time is None:
                metrics.record_first_token(now - stream.arrival_time)
            metrics.record_generated(num_tokens)
            reasons = [sequence.finish_reason or "abort" for sequence in output.sequences]
            metrics.record_finished(now - stream.arrival_time, reasons)
            return
        num_new = sum(len(completion.token_ids) for completion in output.outputs)
        if stream.output_kind is not RequestOutputKind.DELTA:  # a snapshot holds them all
            num_new -= stream.num_output_tokens
        if num_new > 0:
            if stream.last_token_time is None:
                metrics.record_first_token(now - stream.arrival_time)
            else:
                metrics.record_inter_token(now - stream.last_token_time)
            metrics.record_generated(num_new)
            stream.last_token_time = now
            stream.num_output_tokens += num_new
        for completion in output.outputs:  # a delta lists only the sequences that changed
            if completion.finish_reason is not None:
                stream.finish_reasons[completion.index] = completion.finish_reason
        if output.finished:
            metrics.record_finished(now - stream.arrival_time, list(stream.finish_reasons.values()))

    def _resolve_adds(self, results: list[tuple[_AddCommand, BaseException | None]]) -> None:
        for command, error in results:
            if not command.accepted.done():
                command.accepted.set_result(error)

    def _on_engine_dead(self, error: BaseException) -> None:
        self._dead_error = error
        dead = EngineDeadError(f"the engine loop died: {error!r}")
        for stream in self._streams.values():
            stream._fail(dead)
        self._streams.clear()
        for command in self._pending_adds.values():
            if not command.accepted.done():
                command.accepted.set_result(dead)

    def _post(self, callback, *args) -> None:
        # A closed loop raises RuntimeError: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    # ------------------------------------------------------------------ engine thread

    def _run(self) -> None:
        try:
            self._loop_forever()
        except BaseException as error:
            logger.exception("the engine loop died")
            self._post(self._on_engine_dead, error)

    def _loop_forever(self) -> None:
        engine = self.engine
        has_work = False
        while True:
            with self._condition:
                while not self._commands and not has_work and not self._is_stopping:
                    self._condition.wait()
                commands = self._commands
                self._commands = collections.deque()
                if self._is_stopping:  # free what was aborted; queue nothing new
                    self._apply(c for c in commands if isinstance(c, _AbortCommand))
                    for command in commands:
                        if isinstance(command, _ResetPrefixCacheCommand):
                            self._post(_resolve, command.done, False)
                    return
            if commands:
                results = self._apply(commands)
                num_taken = sum(c.num_sequences for c in commands if isinstance(c, _AddCommand))
                self._publish_stats(num_taken)
                if results:
                    self._post(self._resolve_adds, results)
            has_work = engine.has_unfinished_requests()
            if has_work:
                outputs = engine.step()
                step_time = time.monotonic()
                self._publish_stats(0)
                if outputs:
                    self._post(self._dispatch, outputs, step_time)
                has_work = engine.has_unfinished_requests()

    def _apply(
        self, commands: Iterable[_Command]
    ) -> list[tuple[_AddCommand, BaseException | None]]:
        """Applies the commands in submission order; returns each add's outcome."""
        results: list[tuple[_AddCommand, BaseException | None]] = []
        for command in commands:
            if isinstance(command, _AbortCommand):
                self.engine.abort_request(command.request_id)
                continue
            if isinstance(command, _ResetPrefixCacheCommand):
                done = self.engine.reset_prefix_cache()
                self._post(_resolve, command.done, done)
                continue
            try:
                if isinstance(command.params, BeamSearchParams):
                    self.engine.add_beam_request(
                        command.request_id,
                        command.prompt,
                        command.prompt_token_ids,
                        command.params,
                        command.cache_salt,
                    )
                else:
                    self.engine.add_request(
                        command.request_id,
                        command.prompt,
                        command.prompt_token_ids,
                        command.params,
                        command.cache_salt,
                        command.output_kind,
                    )
                results.append((command, None))
            except Exception as error:  # a bad request must not stop the loop
                if not isinstance(error, ValueError):
                    logger.exception("add_request(%s) failed", command.request_id)
                results.append((command, error))
        return results

    def _publish_stats(self, num_taken_sequences: int) -> None:
        core_stats = self.engine.core.stats()
        stats = EngineStats(
            num_running=core_stats.num_running,
            num_waiting=core_stats.num_waiting,
            num_total_blocks=core_stats.num_total_blocks,
            num_free_blocks=core_stats.num_free_blocks,
            num_preemptions=core_stats.num_preemptions,
            prefix_cache_queries=core_stats.prefix_cache_queries,
            prefix_cache_hits=core_stats.prefix_cache_hits,
        )
        with self._condition:
            self._stats = stats
            self._num_queued_sequences -= num_taken_sequences
