"""Native beam search vs n-way sampling and vs a vLLM-style beam search, one process.

On the default model (SmolLM2-135M-Instruct, Q4_1 GGUF), 8 prompts, EOS ignored so every
run makes the same number of tokens:

1. native: ``LLM.beam_search`` with beam_width W, N new tokens;
2. sampling: ``LLM.generate`` with n=W, temperature 0.8, N new tokens: the same number of
   sequences and tokens, the cost beam search is compared with (target: native <= 1.5x);
3. vLLM-style: the algorithm vLLM's ``LLM.beam_search`` runs, written here on top of
   cadence's own ``generate``: each step every live beam is re-submitted as a new one-token
   request (prompt + beam tokens, ``logprobs=2W``) and the best W of all candidates are kept
   in Python (target: native >= 5x faster). With prefix caching on (as vLLM runs it by
   default) each of those requests reuses the cached KV blocks of its prefix (the prompt and
   the beam's tokens, computed by the previous step's requests) and computes only the rest;
   with it off each recomputes its whole prefix. ``--prefix-caching`` picks the engine's
   setting: ``on`` (the default, the engine's own default), ``off``, or ``both`` (native
   and sampling on a caching engine, then the vLLM-style loop on it and again on a second
   engine with caching off, each ratio printed). The prefix cache is reset before each
   timed run, so a run reuses only what it computed itself.

Every engine gets a warm-up first. Usage:

    python benchmarks/bench_beam_search.py [--threads N] [--beam-width W] [--new-tokens N]
                                           [--prompts P] [--skip-baseline]
                                           [--prefix-caching on|off|both]
"""

from __future__ import annotations

import argparse
import os
import time

from bench_generate import batch_prompts, print_machine


def vllm_style_beam_search(
    llm, prompt_ids: list[list[int]], width: int, max_tokens: int, counts: dict | None = None
):
    """vLLM's Python beam search loop (EOS ignored): returns each prompt's best beam.

    counts, when given, accumulates "prompt_tokens" (submitted) and "cached_tokens" (of
    those, the ones whose KV came from the prefix cache)."""
    from cadence import SamplingParams

    step_params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=2 * width)
    beams = [[([], 0.0)] for _ in prompt_ids]  # per prompt: (tokens, cum_logprob)
    for _ in range(max_tokens):
        requests = [
            {"prompt_token_ids": prompt + tokens}
            for prompt, prompt_beams in zip(prompt_ids, beams, strict=True)
            for tokens, _ in prompt_beams
        ]
        step_outputs = llm.generate(requests, step_params, use_tqdm=False)
        if counts is not None:
            for output in step_outputs:
                counts["prompt_tokens"] = counts.get("prompt_tokens", 0) + len(
                    output.prompt_token_ids
                )
                counts["cached_tokens"] = counts.get("cached_tokens", 0) + (
                    output.num_cached_tokens
                )
        outputs = iter(step_outputs)
        for index, prompt_beams in enumerate(beams):
            candidates = []
            for tokens, cum in prompt_beams:
                position = next(outputs).outputs[0].logprobs[0]
                candidates += [(cum + lp.logprob, tokens + [t]) for t, lp in position.items()]
            candidates.sort(key=lambda c: -c[0])
            beams[index] = [(tokens, cum) for cum, tokens in candidates[:width]]
    return [prompt_beams[0][0] for prompt_beams in beams]


def timed(label: str, run) -> float:
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    print(f"{label:<48} {seconds:8.2f} s")
    return seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads")
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompts", "--num-prompts", dest="prompts", type=int, default=8)
    parser.add_argument(
        "--prefix-caching",
        choices=("on", "off", "both"),
        default="on",
        help="prefix caching of the engine(s); both: the vLLM-style loop with it on and off",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="skip the vLLM-style run")
    args = parser.parse_args(argv)
    for name in ("threads", "beam_width", "new_tokens", "prompts"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cadence import LLM, SamplingParams
    from cadence.sampling_params import BeamSearchParams

    print_machine(args.threads)
    is_caching = args.prefix_caching != "off"
    llm = LLM(num_threads=args.threads, max_model_len=1024, enable_prefix_caching=is_caching)
    tokenizer = llm.get_tokenizer()
    prompt_ids = [list(tokenizer.encode(text)) for text in batch_prompts(args.prompts)]
    prompts = [{"prompt_token_ids": ids} for ids in prompt_ids]
    width, new_tokens = args.beam_width, args.new_tokens
    print(
        f"{args.prompts} prompts, beam_width {width}, {new_tokens} new tokens, EOS ignored, "
        f"prefix caching {args.prefix_caching}\n"
    )

    beam_params = BeamSearchParams(beam_width=width, max_tokens=new_tokens, ignore_eos=True)
    sample_params = SamplingParams(
        n=width, temperature=0.8, seed=0, max_tokens=new_tokens, ignore_eos=True
    )
    llm.beam_search(prompts[:2], BeamSearchParams(beam_width=width, max_tokens=4))  # warm-up

    native_outputs = []
    llm.reset_prefix_cache()
    native = timed(
        f"native beam_search (width {width})",
        lambda: native_outputs.extend(llm.beam_search(prompts, beam_params)),
    )
    llm.reset_prefix_cache()
    sampling = timed(
        f"generate, n={width} sampling",
        lambda: llm.generate(prompts, sample_params, use_tqdm=False),
    )
    print(f"\nnative / sampling time: {native / sampling:.2f}x (target <= 1.5x)")

    if args.skip_baseline:
        return 0
    settings = {"on": [True], "off": [False], "both": [True, False]}[args.prefix_caching]
    for caching in settings:
        if caching != is_caching:  # "both": a second engine, caching off, warmed up
            del llm
            llm = LLM(num_threads=args.threads, max_model_len=1024, enable_prefix_caching=caching)
            vllm_style_beam_search(llm, prompt_ids[:2], width, 2)
        llm.reset_prefix_cache()
        baseline_best, counts = [], {}
        state = "on" if caching else "off"
        baseline = timed(
            f"vLLM-style loop over generate, caching {state}",
            lambda llm=llm, best=baseline_best, counts=counts: best.extend(
                vllm_style_beam_search(llm, prompt_ids, width, new_tokens, counts)
            ),
        )
        print(f"vLLM-style / native time: {baseline / native:.2f}x (target >= 5x)")
        cached, submitted = counts.get("cached_tokens", 0), counts.get("prompt_tokens", 0)
        print(
            f"  prompt tokens submitted {submitted}, from the prefix cache {cached} "
            f"({100 * cached / max(submitted, 1):.1f}%)"
        )
        same = sum(
            out.sequences[0].tokens == best
            for out, best in zip(native_outputs, baseline_best, strict=True)
        )
        print(f"best beam identical to the baseline's for {same}/{len(prompt_ids)} prompts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
