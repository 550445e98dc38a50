"""Per-token frontend cost over a long stream (issue #18): does it grow with the output?

One request streams --tokens (8,192) greedy tokens from a one-layer random Llama (so the
forward pass is small and the Python side shows), with a stop string so the hold-back path
runs. Per window of --window (1,024) tokens it reports, in microseconds per token:

1. engine output assembly (``LLMEngine.step`` minus the core's step: detokenizing, stop
   strings, building outputs) for CUMULATIVE outputs (a snapshot of everything so far per
   step, vLLM's default and the old server path) and DELTA outputs (what servers now use);
2. the event-loop thread's CPU time in the serving core and the completions SSE encoder
   (``AsyncLLMEngine`` dispatch, the stream, the chunk's JSON), DELTA outputs.

Flat means the last window costs what the first does (ratio ~1.0). Rounds alternate the
modes (--rounds, the fastest of each window kept).

Usage:

    python benchmarks/bench_stream_overhead.py [--tokens 8192] [--window 1024] [--rounds 3]
                                                [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from bench_generate import print_machine

PROMPT = "Once upon a time"


def build_model(directory: str) -> str:
    """A one-layer random Llama with the default model's tokenizer, room for 8k+ tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from cadence.model_source import resolve_model
    from cadence.tokenizer.gguf_tokenizer import load_gguf_tokenizer

    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=16640,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    config.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    load_gguf_tokenizer(resolve_model(None, None).path).save_pretrained(directory)
    return directory


class _TimedCore:
    """Forwards to the core engine, timing its ``step``."""

    def __init__(self, core) -> None:
        self._core = core
        self.seconds = 0.0

    def step(self):
        started = time.perf_counter()
        outputs = self._core.step()
        self.seconds += time.perf_counter() - started
        return outputs

    def __getattr__(self, name):
        return getattr(self._core, name)


class _TokenCounter:
    """Counts the tokens a stream hands out (its ``poll``, wrapped; on the loop thread)."""

    def __init__(self, stream) -> None:
        self.num_tokens = 0
        self._poll = stream.poll
        stream.poll = self.poll

    def poll(self):
        output = self._poll()
        if output is not None:
            self.num_tokens += sum(len(c.token_ids) for c in output.outputs)
        return output


def params(SamplingParams, num_tokens: int):
    return SamplingParams(temperature=0, max_tokens=num_tokens, ignore_eos=True, stop=["zzzz"])


def engine_assembly(llm, kind, num_tokens: int, window: int) -> list[float]:
    """Microseconds per token of Python output assembly, per window."""
    from cadence import SamplingParams

    engine = llm.llm_engine
    timed = _TimedCore(engine.core)
    engine.core = timed
    try:
        request_id = engine.next_request_id()
        prompt_ids = engine.tokenize(PROMPT)
        engine.add_request(
            request_id, PROMPT, prompt_ids, params(SamplingParams, num_tokens), None, kind
        )
        per_window, produced, window_start = [], 0, time.perf_counter()
        core_at_start = 0.0
        while engine.has_unfinished_requests():
            engine.step()
            produced += 1
            if produced % window == 0:
                total = time.perf_counter() - window_start
                per_window.append((total - (timed.seconds - core_at_start)) / window * 1e6)
                window_start, core_at_start = time.perf_counter(), timed.seconds
        return per_window
    finally:
        engine.core = timed._core


def serving_loop_cpu(llm, num_tokens: int, window: int) -> list[float]:
    """Microseconds of event-loop-thread CPU per token, per window, streaming over the
    serving core and the completions SSE encoder."""
    from cadence import SamplingParams
    from cadence.engine.async_llm_engine import AsyncLLMEngine
    from cadence.entrypoints.openai.protocol import CompletionRequest
    from cadence.entrypoints.openai.serving_completion import _CompletionResponse
    from cadence.serving.context import ServingContext
    from cadence.serving.model_info import ModelInfo
    from cadence.serving.request_building import PromptInput
    from cadence.serving.streams import submit_prompts
    from cadence.serving.text import TextWorker

    async def main() -> list[float]:
        engine = AsyncLLMEngine(llm.llm_engine)
        context = ServingContext(
            engine,
            ModelInfo.of(llm.llm_engine, ["bench"], {}),
            TextWorker(llm.get_tokenizer(), "bench"),
        )
        engine.start()
        try:
            prompt = PromptInput(PROMPT, await context.text.encode(PROMPT))
            request = CompletionRequest(prompt=PROMPT, stream=True, max_tokens=num_tokens)
            streams, wakeup = await submit_prompts(
                context, "bench", [prompt], [params(SamplingParams, num_tokens)], (), {}
            )
            response = _CompletionResponse(request, "bench", "bench")
            counted = _TokenCounter(streams[0])
            per_window, next_boundary = [], window
            cpu_start = time.thread_time()
            async for _ in response.stream(streams, wakeup):
                if counted.num_tokens >= next_boundary:  # chunks may coalesce several tokens
                    per_window.append((time.thread_time() - cpu_start) / window * 1e6)
                    cpu_start, next_boundary = time.thread_time(), next_boundary + window
            return per_window
        finally:
            await engine.shutdown()
            context.text.shutdown()

    return asyncio.run(main())


def report(label: str, windows: list[float], window: int) -> None:
    cells = " ".join(f"{value:7.1f}" for value in windows)
    print(f"  {label:<34} {cells}   last/first {windows[-1] / windows[0]:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from cadence import LLM
    from cadence.outputs import RequestOutputKind

    print_machine(args.threads)
    with tempfile.TemporaryDirectory() as directory:
        llm = LLM(
            build_model(directory),
            max_model_len=args.tokens + 64,
            max_num_seqs=1,
            num_threads=args.threads,
        )
        best: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            runs = {
                "engine assembly, CUMULATIVE": lambda: engine_assembly(
                    llm, RequestOutputKind.CUMULATIVE, args.tokens, args.window
                ),
                "engine assembly, DELTA": lambda: engine_assembly(
                    llm, RequestOutputKind.DELTA, args.tokens, args.window
                ),
                "serving loop CPU, DELTA (SSE)": lambda: serving_loop_cpu(
                    llm, args.tokens, args.window
                ),
            }
            for label, run in runs.items():
                windows = run()
                best[label] = [
                    min(a, b) for a, b in zip(best.get(label, windows), windows, strict=True)
                ]
        print(
            f"\nus per token, by window of {args.window} tokens (fastest of {args.rounds} rounds):"
        )
        print(
            f"  {'':<34} "
            + " ".join(f"{(i + 1) * args.window:>7}" for i in range(len(best[next(iter(best))])))
        )
        for label, windows in best.items():
            report(label, windows, args.window)


if __name__ == "__main__":
    main()
