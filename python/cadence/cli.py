"""The `cadence` command line.

    cadence generate [PROMPT ...] [--model M] [--max-tokens N] [--temperature T] ...

prints one continuation per prompt (prompts from the arguments, else one per line on
standard input).
"""

from __future__ import annotations

import argparse
import sys


def _add_engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="HF dir, .gguf file or cached hub id (default: SmolLM2-135M-Instruct Q4_1 GGUF)",
    )
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--kv-cache-memory-bytes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="engine seed")


def _generate(args: argparse.Namespace) -> int:
    from cadence import LLM, SamplingParams

    prompts = args.prompts
    if not prompts:
        if sys.stdin.isatty():
            print(
                'cadence generate: give a prompt, e.g. cadence generate "Hello, my name is"',
                file=sys.stderr,
            )
            return 2
        prompts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    params = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        min_p=args.min_p,
        seed=args.request_seed,
        max_tokens=args.max_tokens,
        ignore_eos=args.ignore_eos,
    )
    llm = LLM(
        model=args.model,
        tokenizer=args.tokenizer,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        num_threads=args.num_threads,
        kv_cache_memory_bytes=args.kv_cache_memory_bytes,
        seed=args.seed,
    )
    outputs = llm.generate(prompts, params, use_tqdm=False)
    for output in outputs:
        if len(outputs) > 1:
            print(f"--- {output.prompt!r}")
        print(output.prompt + output.outputs[0].text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cadence", description="cadence LLM inference engine")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate text offline")
    generate.add_argument("prompts", nargs="*", help="prompt(s); default: lines of stdin")
    _add_engine_args(generate)
    generate.add_argument("--max-tokens", type=int, default=64)
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-p", type=float, default=1.0)
    generate.add_argument("--top-k", type=int, default=0)
    generate.add_argument("--min-p", type=float, default=0.0)
    generate.add_argument(
        "--request-seed",
        type=int,
        default=None,
        help="seed of each request's RNG (default: drawn from --seed)",
    )
    generate.add_argument("--ignore-eos", action="store_true")
    generate.set_defaults(handler=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"cadence: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
