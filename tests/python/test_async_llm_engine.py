"""AsyncLLMEngine's contracts, on a scripted stand-in for LLMEngine (no model): snapshots
until finished, validation errors to the caller, aborts reaching the engine, the waiting
limit, engine death and draining. The real engine behind it is covered by tests/python/server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from cadence import SamplingParams
from cadence.engine.async_llm_engine import (
    AsyncLLMEngine,
    EngineDeadError,
    EngineDrainingError,
    EngineOverloadedError,
    RequestAbortedError,
)
from cadence.outputs import CompletionOutput, RequestOutput

BAD_MAX_TOKENS = 13  # the scripted engine rejects it, as LLMEngine rejects bad params


class ScriptedEngine:
    """Duck-types LLMEngine: one token per request per step, finished at max_tokens."""

    def __init__(self, step_seconds: float = 0.002, all_waiting: bool = False) -> None:
        self.step_seconds = step_seconds
        self.all_waiting = all_waiting  # stats report every request as waiting
        self.requests: dict[str, tuple[int, list[int]]] = {}
        self.aborted: list[str] = []
        self.step_error: Exception | None = None
        self.num_steps = 0
        self.core = SimpleNamespace(stats=self._stats)

    def _stats(self):
        num = len(self.requests)
        return SimpleNamespace(
            num_running=0 if self.all_waiting else num,
            num_waiting=num if self.all_waiting else 0,
            num_total_blocks=100,
            num_free_blocks=100 - num,
            num_preemptions=0,
            prefix_cache_queries=0,
            prefix_cache_hits=0,
        )

    def add_request(
        self, request_id, prompt, prompt_token_ids, params, cache_salt=None, output_kind=None
    ) -> None:
        if params.max_tokens == BAD_MAX_TOKENS:
            raise ValueError(f"max_tokens must not be {BAD_MAX_TOKENS}")
        self.requests[request_id] = (params.max_tokens, [])

    def abort_request(self, request_id: str) -> bool:
        self.aborted.append(request_id)
        return self.requests.pop(request_id, None) is not None

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    def step(self) -> list[RequestOutput]:
        if self.step_error is not None:
            raise self.step_error
        time.sleep(self.step_seconds)
        self.num_steps += 1
        outputs = []
        for request_id, (max_tokens, tokens) in list(self.requests.items()):
            tokens.append(len(tokens))
            finished = len(tokens) == max_tokens
            completion = CompletionOutput(
                0, "t" * len(tokens), list(tokens), finish_reason="length" if finished else None
            )
            outputs.append(RequestOutput(request_id, "p", [1], None, [completion], finished))
            if finished:
                del self.requests[request_id]
        return outputs


def run(coroutine_function, engine: ScriptedEngine, **kwargs):
    """Runs ``coroutine_function(async_engine)`` on a fresh loop with a started engine."""

    async def main():
        async_engine = AsyncLLMEngine(engine, **kwargs)
        async_engine.start()
        try:
            return await coroutine_function(async_engine)
        finally:
            await async_engine.shutdown()

    return asyncio.run(main())


def params(max_tokens: int) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens)


async def wait_until(condition, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def test_stream_yields_growing_snapshots_until_finished():
    async def scenario(engine: AsyncLLMEngine):
        return [o async for o in engine.generate("p", [1, 2], params(5))]

    outputs = run(scenario, ScriptedEngine())
    lengths = [len(o.outputs[0].token_ids) for o in outputs]
    assert lengths == sorted(lengths) and lengths[-1] == 5
    assert outputs[-1].finished and not any(o.finished for o in outputs[:-1])


def test_stats_hold_the_pool_before_the_first_request():
    async def scenario(engine: AsyncLLMEngine):
        return engine.stats()

    stats = run(scenario, ScriptedEngine())
    assert stats.num_total_blocks == 100 and stats.num_free_blocks == 100


def test_validation_error_reaches_the_caller_and_the_loop_goes_on():
    async def scenario(engine: AsyncLLMEngine):
        with pytest.raises(ValueError, match="max_tokens"):
            await engine.add_request("bad", "p", [1], params(BAD_MAX_TOKENS))
        outputs = [o async for o in engine.generate("p", [1], params(3))]
        return outputs[-1], engine.is_healthy

    last, healthy = run(scenario, ScriptedEngine())
    assert last.finished and healthy


def test_abort_reaches_the_engine_within_a_step():
    scripted = ScriptedEngine(step_seconds=0.01)

    async def scenario(engine: AsyncLLMEngine):
        stream = await engine.add_request("long", "p", [1], params(10**6))
        await stream.__anext__()
        steps_at_abort = scripted.num_steps
        stream.abort()
        await wait_until(lambda: "long" in scripted.aborted)
        assert scripted.num_steps - steps_at_abort <= 1
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()

    run(scenario, scripted)
    assert not scripted.requests


def test_leaving_generate_early_aborts():
    scripted = ScriptedEngine()

    async def scenario(engine: AsyncLLMEngine):
        generator = engine.generate("p", [1], params(10**6), request_id="early")
        async for _ in generator:
            break
        await generator.aclose()
        await wait_until(lambda: "early" in scripted.aborted)

    run(scenario, scripted)


def test_cancelled_caller_aborts_its_request():
    scripted = ScriptedEngine()

    async def scenario(engine: AsyncLLMEngine):
        async def consume():
            async for _ in engine.generate("p", [1], params(10**6), request_id="cancelled"):
                pass

        task = asyncio.ensure_future(consume())
        await wait_until(lambda: "cancelled" in scripted.requests)
        task.cancel()
        await wait_until(lambda: "cancelled" in scripted.aborted)

    run(scenario, scripted)


def test_full_waiting_queue_raises_overloaded():
    async def scenario(engine: AsyncLLMEngine):
        first = await engine.add_request("a", "p", [1], params(10**6))
        second = await engine.add_request("b", "p", [1], params(10**6))
        with pytest.raises(EngineOverloadedError):
            await engine.add_request("c", "p", [1], params(3))
        assert engine.stats().num_waiting == 2
        first.abort()
        second.abort()
        await wait_until(lambda: engine.stats().num_waiting == 0)
        return [o async for o in engine.generate("p", [1], params(2))][-1]

    last = run(scenario, ScriptedEngine(all_waiting=True), max_waiting_requests=2)
    assert last.finished


def test_engine_death_fails_open_streams_and_new_requests():
    scripted = ScriptedEngine(step_seconds=0.01)

    async def scenario(engine: AsyncLLMEngine):
        stream = await engine.add_request("victim", "p", [1], params(10**6))
        await stream.__anext__()
        scripted.step_error = RuntimeError("kernel exploded")
        with pytest.raises(EngineDeadError, match="kernel exploded"):
            async for _ in stream:
                pass
        assert not engine.is_healthy
        with pytest.raises(EngineDeadError):
            await engine.add_request("late", "p", [1], params(3))

    run(scenario, scripted)


def test_drain_lets_short_requests_finish_and_aborts_the_rest():
    scripted = ScriptedEngine(step_seconds=0.005)

    async def scenario(engine: AsyncLLMEngine):
        short = await engine.add_request("short", "p", [1], params(5))
        long = await engine.add_request("long", "p", [1], params(10**6))
        drain = asyncio.ensure_future(engine.drain(timeout_seconds=0.3))
        await asyncio.sleep(0)
        assert engine.is_draining
        with pytest.raises(EngineDrainingError):
            await engine.add_request("new", "p", [1], params(3))
        short_outputs = [o async for o in short]
        with pytest.raises(RequestAbortedError):
            async for _ in long:
                pass
        await drain
        return short_outputs[-1]

    last = run(scenario, scripted)
    assert last.finished and len(last.outputs[0].token_ids) == 5
    assert "long" in scripted.aborted


def test_outputs_are_delivered_on_the_loop_thread():
    loop_threads = set()

    async def scenario(engine: AsyncLLMEngine):
        async for _ in engine.generate("p", [1], params(3)):
            loop_threads.add(threading.current_thread().name)

    run(scenario, ScriptedEngine())
    assert loop_threads == {threading.main_thread().name}
