"""Served vs offline throughput: `cadence serve` under a fixed-concurrency load, then the
offline `LLM.generate` on the same prompts and lengths, in one run.

1. Starts `cadence serve` (a subprocess, --port 0) and keeps `--concurrency` streaming
   completions in flight until `--num-requests` are done (greedy, EOS ignored, exactly
   `--max-tokens` new tokens each, after a warm-up). Reports request throughput, output
   tok/s, and TTFT, TPOT and ITL at p50/p99 as the client sees them.
2. Stops the server, then runs `LLM.generate` on the same prompts with the same sampling
   parameters and `max_num_seqs = --concurrency` (so both batch the same number of
   sequences), after a warm-up.
3. Prints served / offline output throughput (the target is >= 0.95).
4. The same load over gRPC (the server also runs `--grpc-port 0`; streaming `Generate`
   calls on one grpc.aio channel), in `--rounds` alternating HTTP/gRPC rounds with the
   fastest of each kept, and prints gRPC / HTTP output throughput (target >= 1).

With --llama-server PATH it instead compares `cadence serve` with llama.cpp's `llama-server`
(`-np <concurrency>` parallel slots, continuous batching, the same GGUF, threads and context
per sequence) under the same streaming load on /v1/completions: the two servers take turns,
each started fresh per round and warmed up, and the fastest round of each is kept; it prints
cadence / llama-server output throughput (issue #13's target: >= 2).

The engines never run at the same time. Usage:

    python benchmarks/bench_serve.py [--threads N] [--concurrency 16] [--num-requests 64]
                                     [--max-tokens 64] [--model PATH] [--rounds 2]
                                     [--llama-server /path/to/llama-server]
                                     [--engine-cpus 0] [--client-cpus 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench_generate import batch_prompts, print_machine
from serve_harness import (
    KV_BYTES_PER_TOKEN,
    RequestTiming,
    StreamingClient,
    percentiles,
    start_cadence_server,
    stop,
    wait_until_healthy,
)

MAX_MODEL_LEN = 1024


def start_llama_server(args: argparse.Namespace, log_path: Path) -> tuple[subprocess.Popen, str]:
    """Starts llama-server with --concurrency slots of MAX_MODEL_LEN tokens each."""
    from cadence.model_source import default_model_path

    with socket.socket() as probe:  # a free loopback port (llama-server has no --port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        args.llama_server,
        "--model",
        args.model or default_model_path(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        str(args.threads),
        "--threads-batch",
        str(args.threads),
        "--parallel",
        str(args.concurrency),
        "--ctx-size",
        str(args.concurrency * MAX_MODEL_LEN),
        "--no-webui",
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - the server writes it until stopped
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(process, url, log_path)
    return process, url


def start_server(args: argparse.Namespace, log_path: Path) -> tuple[subprocess.Popen, str, str]:
    """Starts `cadence serve` with HTTP and gRPC; returns (process, HTTP url, gRPC target)."""
    return start_cadence_server(
        log_path,
        model=args.model,
        threads=args.threads,
        max_model_len=MAX_MODEL_LEN,
        kv_cache_memory_bytes=kv_cache_bytes(args),
        grpc=True,
        cpus=args.engine_cpus,
    )


def kv_cache_bytes(args: argparse.Namespace) -> int:
    """Room for `concurrency` full-length sequences, the same for both engines."""
    return args.concurrency * MAX_MODEL_LEN * KV_BYTES_PER_TOKEN


async def one_request(client: StreamingClient, prompt: str, max_tokens: int) -> RequestTiming:
    body = {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timing = RequestTiming(sent=time.perf_counter())
    async for data in client.post_stream("/v1/completions", body):
        if data == b"[DONE]":
            continue
        chunk = json.loads(data)
        if chunk["choices"]:
            timing.chunk_times.append(time.perf_counter())
        if chunk.get("usage"):
            timing.num_tokens = chunk["usage"]["completion_tokens"]
        elif chunk.get("timings"):  # llama-server's own count, on its last chunk
            timing.num_tokens = chunk["timings"]["predicted_n"]
    if timing.num_tokens != max_tokens:
        raise RuntimeError(f"{timing.num_tokens} tokens generated, not {max_tokens}")
    return timing


async def run_load(
    url: str, prompts: list[str], concurrency: int, max_tokens: int
) -> tuple[list[RequestTiming], float]:
    """Keeps `concurrency` requests in flight (one connection each) until all are done."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    timings: list[RequestTiming] = []
    address = httpx.URL(url)

    async def worker() -> None:
        client = StreamingClient(address.host, address.port)
        try:
            while not queue.empty():
                timings.append(await one_request(client, queue.get_nowait(), max_tokens))
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings, time.perf_counter() - started


async def run_grpc_load(
    target: str, prompts: list[str], concurrency: int, max_tokens: int
) -> tuple[list[RequestTiming], float]:
    """As run_load, with streaming gRPC Generate calls on one channel."""
    import grpc

    from cadence.v1 import inference_pb2, inference_pb2_grpc, sampling_pb2

    queue: asyncio.Queue[str] = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    timings: list[RequestTiming] = []
    sampling = sampling_pb2.SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)

        async def worker() -> None:
            while not queue.empty():
                request = inference_pb2.GenerateRequest(
                    text=queue.get_nowait(), sampling=sampling, stream=True
                )
                timing = RequestTiming(sent=time.perf_counter())
                async for response in stub.Generate(request):
                    if response.choices:
                        timing.chunk_times.append(time.perf_counter())
                    if response.HasField("usage"):
                        timing.num_tokens = response.usage.completion_tokens
                if timing.num_tokens != max_tokens:
                    raise RuntimeError(f"{timing.num_tokens} tokens generated, not {max_tokens}")
                timings.append(timing)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings, time.perf_counter() - started


def report(label: str, timings: list[RequestTiming], seconds: float) -> float:
    """Prints one load run's figures; returns its output tok/s."""
    num_tokens = sum(t.num_tokens for t in timings)
    throughput = num_tokens / seconds
    print(f"{label}:")
    print(f"  request throughput  {len(timings) / seconds:8.2f} req/s")
    print(
        f"  output throughput   {throughput:8.1f} tok/s  ({num_tokens} tokens in {seconds:.1f} s)"
    )
    print(f"  TTFT                {percentiles([t.ttft for t in timings])}")
    print(f"  TPOT                {percentiles([t.tpot for t in timings])}")
    print(f"  ITL                 {percentiles([x for t in timings for x in t.itls])}")
    return throughput


def offline_throughput(args: argparse.Namespace, prompts: list[str]) -> float:
    """LLM.generate on the engine's cores (--engine-cpus), as the server had them."""
    if args.engine_cpus is not None:
        os.sched_setaffinity(0, args.engine_cpus)
    from cadence import LLM, SamplingParams

    llm = LLM(
        model=args.model,
        num_threads=args.threads,
        max_model_len=MAX_MODEL_LEN,
        max_num_seqs=args.concurrency,
        kv_cache_memory_bytes=kv_cache_bytes(args),
    )
    params = SamplingParams(temperature=0, max_tokens=args.max_tokens, ignore_eos=True)
    llm.generate(prompts[: args.concurrency], params, use_tqdm=False)  # warm-up
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - started
    num_tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
    if num_tokens != len(prompts) * args.max_tokens:
        raise RuntimeError(f"offline: {num_tokens} tokens, not {len(prompts) * args.max_tokens}")
    return num_tokens / seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--num-requests", type=int, default=64, help="requests in all")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per request")
    parser.add_argument("--model", default=None, help="GGUF file or HF dir (default model)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating HTTP/gRPC rounds (fastest kept)"
    )
    parser.add_argument("--llama-server", default=None, help="compare with this llama-server")
    parser.add_argument(
        "--engine-cpus",
        type=_cpu_set,
        default=None,
        help="cores for the server and the offline engine, e.g. 0 or 0-1 (default: any)",
    )
    parser.add_argument(
        "--client-cpus",
        type=_cpu_set,
        default=None,
        help="cores for the load generator (default: any); disjoint from --engine-cpus, so "
        "the client is never the bottleneck",
    )
    args = parser.parse_args(argv)
    if args.engine_cpus and args.client_cpus and args.engine_cpus & args.client_cpus:
        parser.error("--engine-cpus and --client-cpus must not overlap")
    if args.llama_server and not os.path.exists(args.llama_server):
        parser.error(f"--llama-server {args.llama_server} does not exist")
    for name in ("threads", "concurrency", "num_requests", "max_tokens", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _cpu_set(text: str) -> set[int]:
    """ "0", "0,2", "0-3" -> the set of core numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def versus_llama_server(args: argparse.Namespace, prompts: list[str]) -> None:
    """Alternating rounds of cadence serve and llama-server, each started fresh and warmed up."""
    runs: dict[str, list[tuple[list[RequestTiming], float]]] = {"cadence": [], "llama": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            order = ["cadence", "llama"] if round_index % 2 == 0 else ["llama", "cadence"]
            for name in order:
                log_path = Path(folder) / f"{name}.log"
                if name == "cadence":
                    process, url, _ = start_server(args, log_path)
                else:
                    process, url = start_llama_server(args, log_path)
                try:
                    asyncio.run(run_load(url, prompts[: args.concurrency], args.concurrency, 8))
                    run = asyncio.run(run_load(url, prompts, args.concurrency, args.max_tokens))
                finally:
                    stop(process)
                runs[name].append(run)
                tokens = sum(t.num_tokens for t in run[0])
                print(f"round {round_index + 1} {name}: {tokens / run[1]:.1f} tok/s", flush=True)
    cadence = report("cadence serve (fastest round)", *min(runs["cadence"], key=lambda r: r[1]))
    llama = report(
        f"llama-server -np {args.concurrency} (fastest round)",
        *min(runs["llama"], key=lambda r: r[1]),
    )
    print(f"\ncadence / llama-server output throughput: {cadence / llama:.2f} (target >= 2)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client_cpus is not None:
        os.sched_setaffinity(0, args.client_cpus)
    print_machine(args.threads)
    print(
        f"engine cores: {sorted(args.engine_cpus or [])}, client cores: "
        f"{sorted(args.client_cpus or [])} (empty: any)"
    )
    prompts = batch_prompts(args.num_requests)
    print(
        f"workload: {args.num_requests} requests, concurrency {args.concurrency}, "
        f"{args.max_tokens} new tokens each (greedy, EOS ignored), streaming completions"
    )
    print()
    if args.llama_server:
        versus_llama_server(args, prompts)
        return 0

    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "server.log"
        process, url, grpc_target = start_server(args, log_path)
        try:
            warm_up = prompts[: args.concurrency]
            asyncio.run(run_load(url, warm_up, args.concurrency, 8))
            asyncio.run(run_grpc_load(grpc_target, warm_up, args.concurrency, 8))
            # Alternating rounds, the fastest of each kept: load from other processes on a
            # shared machine then hits both protocols alike.
            http_runs, grpc_runs = [], []
            for _ in range(args.rounds):
                http_runs.append(
                    asyncio.run(run_load(url, prompts, args.concurrency, args.max_tokens))
                )
                grpc_runs.append(
                    asyncio.run(
                        run_grpc_load(grpc_target, prompts, args.concurrency, args.max_tokens)
                    )
                )
            http_timings, http_seconds = min(http_runs, key=lambda run: run[1])
            grpc_timings, grpc_seconds = min(grpc_runs, key=lambda run: run[1])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    served = report(
        "served over HTTP (cadence serve, client-side timings)", http_timings, http_seconds
    )
    served_grpc = report("served over gRPC (same server)", grpc_timings, grpc_seconds)

    offline = offline_throughput(args, prompts)
    print(f"offline LLM.generate (max_num_seqs={args.concurrency}):")
    print(f"  output throughput   {offline:8.1f} tok/s")
    print()
    print(f"served (HTTP) / offline output throughput: {served / offline:.2f} (target >= 0.95)")
    print(f"gRPC / HTTP output throughput: {served_grpc / served:.2f} (target >= 1.00)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
