"""The `cadence` command line.

    cadence generate [PROMPT ...] [--model M] [--max-tokens N] [--temperature T] ...

prints one continuation per prompt (prompts from the arguments, else one per line on
standard input).

    cadence serve [MODEL] [--host H] [--port P] [--api-key K] ...

serves the OpenAI-compatible HTTP API (composed in cadence.entrypoints.serve) and, with
--grpc-port, the cadence.v1 gRPC API (cadence.entrypoints.grpc).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from cadence import _core
from cadence.kv_cache_dtype import SUPPORTED_KV_CACHE_DTYPES
from cadence.vllm_compat.cli import add_vllm_flags, checked_vllm_flags, vllm_llm_kwargs
from cadence.weight_dtype import SUPPORTED_DTYPES, SUPPORTED_QUANTIZATIONS


def _add_engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="HF dir, .gguf file or cached hub id (default: SmolLM2-135M-Instruct Q4_1 GGUF)",
    )
    parser.add_argument("--tokenizer", default=None, help="tokenizer dir (default: the model's)")
    parser.add_argument("--revision", default=None, help="snapshot of a cached hub model")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=list(SUPPORTED_DTYPES),
        help="dtype the weights are kept in (compute is fp32); auto = the checkpoint's "
        "(GGUF: as the file stores them, quantized blocks included)",
    )
    parser.add_argument(
        "--quantization",
        "-q",
        default=None,
        choices=[q for q in SUPPORTED_QUANTIZATIONS if q is not None],
        help="int8: quantize an HF checkpoint's weight matrices at load (per group of 32); "
        "gguf: a GGUF file's own quantization (what --dtype auto keeps)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu"])
    parser.add_argument(
        "--max-model-len", type=int, default=None, help="context length (default: the model's)"
    )
    parser.add_argument("--max-num-seqs", type=int, default=256, help="sequences per step")
    parser.add_argument(
        "--max-num-batched-tokens", type=int, default=2048, help="tokens computed per step"
    )
    parser.add_argument(
        "--kv-cache-memory-bytes", type=int, default=None, help="default: from free RAM"
    )
    parser.add_argument(
        "--kv-cache-dtype",
        default="auto",
        choices=list(SUPPORTED_KV_CACHE_DTYPES),
        help="how the KV cache stores keys and values (bf16/fp16: half the bytes per token); "
        "auto = bfloat16 on CPUs with AVX-512 BF16, else float32",
    )
    parser.add_argument("--block-size", type=int, default=16, help="tokens per KV block")
    parser.add_argument(
        "--enable-prefix-caching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reuse the KV blocks of prompt prefixes that earlier requests computed (default: "
        "on; --no-enable-prefix-caching computes every prompt in full)",
    )
    parser.add_argument(
        "--prefix-caching-hash-algo",
        default="sha256",
        choices=["sha256"],
        help="how KV blocks are identified: a SHA-256 chain over their tokens (the only one)",
    )
    parser.add_argument("--num-threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--seed", type=int, default=0, help="engine seed")
    parser.add_argument(
        "--max-logprobs",
        type=int,
        default=_core.DEFAULT_MAX_LOGPROBS,
        help="the most logprobs a request may ask for",
    )
    parser.add_argument(
        "--generation-config",
        default="auto",
        help="default sampling parameters: 'auto' (the model's generation_config.json), "
        "'vllm' (neutral), or a folder holding a generation_config.json",
    )
    parser.add_argument(
        "--override-generation-config",
        type=_json_object,
        default=None,
        help="JSON object layered on the generation config, e.g. '{\"temperature\": 0.5}'",
    )


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def llm_kwargs(args: argparse.Namespace) -> dict:
    """``LLM(...)`` keyword arguments from the options of ``_add_engine_args`` and the vLLM
    engine-argument flags given (``cadence.vllm_compat.cli``)."""
    return dict(
        model=args.model,
        tokenizer=args.tokenizer,
        revision=args.revision,
        dtype=args.dtype,
        quantization=args.quantization,
        device=args.device,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        kv_cache_memory_bytes=args.kv_cache_memory_bytes,
        kv_cache_dtype=args.kv_cache_dtype,
        block_size=args.block_size,
        enable_prefix_caching=args.enable_prefix_caching,
        num_threads=args.num_threads,
        seed=args.seed,
        max_logprobs=args.max_logprobs,
        generation_config=args.generation_config,
        override_generation_config=args.override_generation_config,
        **vllm_llm_kwargs(args),
    )


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
    llm = LLM(**llm_kwargs(args))
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
    add_vllm_flags(generate, serve=False)
    generate.set_defaults(handler=_generate)
    serve = commands.add_parser("serve", help="serve the OpenAI-compatible HTTP API")
    serve.add_argument(
        "model_positional",
        nargs="?",
        metavar="MODEL",
        help="HF dir, .gguf file or cached hub id (default: SmolLM2-135M-Instruct Q4_1 GGUF)",
    )
    _add_engine_args(serve)
    _add_serve_args(serve)
    add_vllm_flags(serve, serve=True)
    serve.set_defaults(handler=_serve)
    return parser


def _add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0 = any free port)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("CADENCE_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $CADENCE_API_KEY; /health and "
        "/metrics stay open)",
    )
    parser.add_argument(
        "--served-model-name",
        nargs="+",
        default=None,
        help="model name(s) clients use; the first is reported (default: MODEL)",
    )
    parser.add_argument("--chat-template", default=None, help="chat template file or Jinja string")
    parser.add_argument(
        "--max-waiting-requests",
        type=int,
        default=None,
        help="sequences waiting for a slot before new requests get 429 (default: no limit)",
    )
    parser.add_argument(
        "--max-log-len",
        type=int,
        default=0,
        help="prompt characters / token ids logged per request (default 0: not logged)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="seconds SIGTERM waits for in-flight requests before aborting them",
    )
    parser.add_argument(
        "--max-request-body-bytes",
        type=int,
        default=16 * 2**20,
        help="larger request bodies get 413 (default 16 MiB)",
    )
    parser.add_argument(
        "--disable-access-log", action="store_true", help="do not log each HTTP request"
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="also serve the cadence.v1 gRPC API on this port (0 = any free port)",
    )
    parser.add_argument(
        "--grpc-only", action="store_true", help="serve gRPC only (needs --grpc-port)"
    )
    parser.add_argument(
        "--grpc-max-message-bytes",
        type=int,
        default=16 * 2**20,
        help="largest gRPC message received or sent (default 16 MiB)",
    )


def _serve(args: argparse.Namespace) -> int:
    if args.model_positional is not None:
        if args.model is not None and args.model != args.model_positional:
            raise ValueError(f"two models given: {args.model_positional} and --model {args.model}")
        args.model = args.model_positional
    for name in ("max_waiting_requests", "max_request_body_bytes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.max_log_len < 0:
        raise ValueError(f"--max-log-len must be >= 0, got {args.max_log_len}")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    if args.shutdown_timeout < 0:
        raise ValueError(f"--shutdown-timeout must be >= 0, got {args.shutdown_timeout}")
    if args.grpc_port is not None and not 0 <= args.grpc_port <= 65535:
        raise ValueError(f"--grpc-port must be in [0, 65535], got {args.grpc_port}")
    if args.grpc_only and args.grpc_port is None:
        raise ValueError("--grpc-only needs --grpc-port")
    if args.grpc_max_message_bytes < 1024:
        raise ValueError(
            f"--grpc-max-message-bytes must be >= 1024, got {args.grpc_max_message_bytes}"
        )
    from cadence.entrypoints.serve import run_server

    return run_server(args, llm_kwargs(args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # vLLM flags first: a refused one exits 2 with its reason before anything loads.
        if checked_vllm_flags(args).get("disable_uvicorn_access_log"):
            args.disable_access_log = True
        return args.handler(args)
    except ValueError as error:
        print(f"cadence: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
