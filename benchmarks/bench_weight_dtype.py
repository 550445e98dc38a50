"""Generation speed and weight memory of cadence by weight dtype (float32, bfloat16, float16),
side by side in one process.

One LLM per dtype on the same model (default: SmolLM2-135M-Instruct; its Q4_1 tensors are
dequantized, then stored in the dtype). Greedy, EOS ignored, two workloads:

1. batch-1 decode: one prompt, --new-tokens new tokens (memory-bandwidth bound);
2. batched: --batch-size prompts of different lengths, --new-tokens new tokens each.

Each LLM gets a warm-up run; then --rounds rounds run every dtype in turn (so load changes on
the machine hit them alike), and the best round of each is reported with its ratio to
float32. Usage:

    python benchmarks/bench_weight_dtype.py [--threads N] [--model PATH] [--rounds R]
                                            [--new-tokens N] [--batch-size B]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time

DTYPES = ("float32", "bfloat16", "float16")
PROMPT = "Once upon a time, in a small village by the sea, there lived an old lighthouse keeper"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads")
    parser.add_argument("--model", default=None, help="GGUF file or HF dir (default model)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per dtype")
    parser.add_argument("--new-tokens", type=int, default=64, help="new tokens per request")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts in the batched run")
    args = parser.parse_args(argv)
    for name in ("threads", "rounds", "new_tokens", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def tokens_per_second(llm, prompts: list[dict], new_tokens: int) -> float:
    from cadence import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, ignore_eos=True)
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - started
    generated = sum(len(o.outputs[0].token_ids) for o in outputs)
    assert generated == len(prompts) * new_tokens
    return generated / seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cadence import LLM

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"command: python {shlex.join([sys.argv[0], *(argv or sys.argv[1:])])}")
    llms = {
        dtype: LLM(model=args.model, dtype=dtype, num_threads=args.threads, max_num_seqs=64)
        for dtype in DTYPES
    }
    tokenizer = llms["float32"].get_tokenizer()
    single = [{"prompt_token_ids": tokenizer.encode(PROMPT)}]
    batch = [
        {
            "prompt_token_ids": tokenizer.encode(
                f"({i}) Tell me about topic number {i}." * (1 + i % 4)
            )
        }
        for i in range(args.batch_size)
    ]
    workloads = {"batch-1 decode": single, f"batched x{args.batch_size}": batch}
    best = {(dtype, name): 0.0 for dtype in DTYPES for name in workloads}
    for llm in llms.values():  # warm-up
        for prompts in workloads.values():
            tokens_per_second(llm, prompts, 8)
    for _ in range(args.rounds):
        for name, prompts in workloads.items():
            for dtype, llm in llms.items():
                rate = tokens_per_second(llm, prompts, args.new_tokens)
                best[dtype, name] = max(best[dtype, name], rate)

    print(f"\n{'dtype':<10} {'weights MiB':>11}", end="")
    for name in workloads:
        print(f" {name + ' tok/s':>22} {'x fp32':>7}", end="")
    print()
    for dtype, llm in llms.items():
        print(f"{dtype:<10} {llm.llm_engine.core.weight_bytes / 2**20:>11.0f}", end="")
        for name in workloads:
            rate = best[dtype, name]
            print(f" {rate:>22.1f} {rate / best['float32', name]:>7.2f}", end="")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
