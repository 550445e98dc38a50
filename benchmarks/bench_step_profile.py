"""Per-step host work against the kernels (issue #23), in one run on the default model.

1. Sampled / greedy throughput at --batch-sizes (default 32 and 256) prompts x --new-tokens
   (64) new tokens, EOS ignored, on one engine with profiling off: greedy, then sampling with
   every knob on (temperature 0.8, top-k 50, top-p 0.9, presence 0.5, frequency 0.5 and
   repetition 1.1 penalties; seeded), alternating over --rounds rounds (the fastest of each
   kept). Target: sampled / greedy >= 0.97 at both sizes.
2. The step-time breakdown (CADENCE_PROFILE=1, a second engine): batch-1 decode (one prompt,
   128 new tokens) and each batch size, greedy and sampled. Per step: the core's phases
   (schedule, batch building, forward, sampling) and Python's output path, the forward pass
   split by kernel family, and the share of the step that is not kernels. Target: at batch-1
   decode, everything but the kernels <= 10% of the step time.

Usage:

    python benchmarks/bench_step_profile.py [--threads 2] [--rounds 3] [--new-tokens 64]
                                            [--batch-sizes 32,256] [--model PATH]
                                            [--skip-profile | --profile-only] [--cpu-time]
"""

from __future__ import annotations

import argparse
import os
import time

from bench_generate import SINGLE_PROMPT, batch_prompts, every_knob_params, print_machine

_PHASES = ("schedule", "batch", "forward", "sampling", "output")


def sampled_params(SamplingParams, count: int, new_tokens: int) -> list:
    return [every_knob_params(SamplingParams, index, new_tokens) for index in range(count)]


def make_llm(args: argparse.Namespace, profile: bool):
    from cadence import LLM

    os.environ["CADENCE_PROFILE"] = "1" if profile else "0"
    try:
        return LLM(model=args.model, num_threads=args.threads, max_model_len=1024)
    finally:
        del os.environ["CADENCE_PROFILE"]


def throughput(llm, prompts, params, cpu_time: bool = False) -> float:
    """Generated tokens per second of wall time, or (cpu_time) of this process's CPU time:
    on a shared machine that excludes the time its threads were descheduled, the pool's
    spinning threads counting the same in every arm."""
    clock = time.process_time if cpu_time else time.perf_counter
    started = clock()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = clock() - started
    return sum(len(output.outputs[0].token_ids) for output in outputs) / seconds


def print_breakdown(label: str, profile: dict) -> None:
    steps = max(profile["steps"], 1)
    total = sum(profile[phase] for phase in _PHASES)
    kernels = sum(profile["kernels"].values())
    per_step_ms = 1e3 * total / steps
    parts = ", ".join(
        f"{phase} {100 * profile[phase] / total:.1f}%" for phase in _PHASES if total > 0
    )
    print(f"  {label}: {steps} steps, {per_step_ms:.2f} ms/step; {parts}")
    families = sorted(profile["kernels"].items(), key=lambda item: -item[1])
    print(
        "    kernels "
        + ", ".join(f"{name} {100 * seconds / total:.1f}%" for name, seconds in families)
        + f"; runner outside kernels {100 * (profile['forward'] - kernels) / total:.1f}%"
    )
    print(f"    everything but the kernels: {100 * (total - kernels) / total:.1f}% of the step")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-sizes", default="32,256")
    parser.add_argument("--model", default=None)
    parser.add_argument(
        "--skip-profile", action="store_true", help="the throughput ratios only (part 1)"
    )
    parser.add_argument(
        "--profile-only", action="store_true", help="the step-time breakdown only (part 2)"
    )
    parser.add_argument(
        "--cpu-time", action="store_true", help="part 1 per CPU second instead of wall second"
    )
    args = parser.parse_args()
    from cadence import SamplingParams

    print_machine(args.threads)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    llm = make_llm(args, profile=False)
    print(f"isa {llm.llm_engine.core.isa}; sampled = every knob on (see the docstring)\n")
    greedy = SamplingParams(temperature=0.0, max_tokens=args.new_tokens, ignore_eos=True)
    for size in [] if args.profile_only else sizes:
        prompts = batch_prompts(size)
        sampled = sampled_params(SamplingParams, size, args.new_tokens)
        # Warm-up at full size: KV pages committed and the activation arena grown for both.
        throughput(llm, prompts, greedy)
        throughput(llm, prompts, sampled)
        best = {"greedy": 0.0, "sampled": 0.0}
        for round_index in range(args.rounds):
            order = ("greedy", "sampled") if round_index % 2 == 0 else ("sampled", "greedy")
            for arm in order:
                params = greedy if arm == "greedy" else sampled
                rate = throughput(llm, prompts, params, args.cpu_time)
                best[arm] = max(best[arm], rate)
                print(
                    f"  {size} x {args.new_tokens} round {round_index + 1} {arm:<7} "
                    f"{rate:7.1f} tok/s"
                )
        ratio = best["sampled"] / best["greedy"]
        print(
            f"{size} x {args.new_tokens}: greedy {best['greedy']:.1f}, sampled "
            f"{best['sampled']:.1f} tok/s, sampled / greedy {ratio:.3f} (target >= 0.97)\n"
        )
    del llm
    if args.skip_profile:
        return 0

    profiled = make_llm(args, profile=True)
    engine = profiled.llm_engine
    print("step-time breakdown (CADENCE_PROFILE=1):")
    scenarios = [("batch-1 decode, 128 new tokens", [SINGLE_PROMPT], 128)]
    scenarios += [
        (f"{size} x {args.new_tokens}", batch_prompts(size), args.new_tokens) for size in sizes
    ]
    for label, prompts, new_tokens in scenarios:
        for arm in ("greedy", "sampled"):
            params = (
                SamplingParams(temperature=0.0, max_tokens=new_tokens, ignore_eos=True)
                if arm == "greedy"
                else sampled_params(SamplingParams, len(prompts), new_tokens)
            )
            profiled.generate(
                prompts[:2], params if arm == "greedy" else params[:2], use_tqdm=False
            )
            engine.reset_step_profile()
            profiled.generate(prompts, params, use_tqdm=False)
            print_breakdown(f"{label}, {arm}", engine.step_profile())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
