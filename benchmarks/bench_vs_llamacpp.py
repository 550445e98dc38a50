"""cadence vs llama.cpp vs CTranslate2 on the same GGUF and thread count, in one run.

Four scenarios, each engine in turn and the order rotated every round (the engines never run
at the same time); the table shows the median over the rounds and cadence / llama.cpp:

1. decode, batch 1: 128 new tokens after a short prompt (llama-bench tg128). Decode tok/s =
   (tokens - 1) / time after the first token (cadence: add_request + step loop; CTranslate2:
   generate_tokens);
2. decode at context 4096: the same after a 4096-token prompt (llama-bench -d 4096);
3. prefill: 512 prompt tokens / time to the first token (llama-bench pp512);
4. batched: 32 prompts of 32 tokens, 64 new tokens each, generated tokens / wall time with
   prefill included (llama-batched-bench -npp 32 -ntg 64 -npl 32).

Decode rows also show the share of the memory-bandwidth roofline: tok/s x bytes read per token
(weights + the KV cache of the average context) / a read bandwidth measured here. cadence is
greedy, EOS ignored, with detokenization; llama.cpp's benches decode random tokens without
sampling; CTranslate2 runs an int8 conversion of the same model (greedy, min_length = new
tokens). Usage (the paths are where the binaries and the converted model were built):

    .venv/bin/python benchmarks/bench_vs_llamacpp.py --threads 2 --rounds 3 \\
        --llama-bench /work/ext/llama-build/bin/llama-bench \\
        --llama-batched-bench /work/ext/llama-build/bin/llama-batched-bench \\
        --ct2-model /work/ext/smollm2-ct2-int8 --ct2-python /work/ext/ct2-venv/bin/python \\
        [--cadence-config dtype=auto --cadence-config dtype=bfloat16,max_num_seqs=64]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_generate import SINGLE_PROMPT, print_machine

SCENARIOS = {  # name: what the number is
    "decode": "tok/s, batch 1, 128 new tokens",
    "decode@4096": "tok/s, batch 1, 128 new after 4096",
    "prefill": "tok/s, 512-token prompt (TTFT)",
    "batched": "tok/s, 32 prompts x 64 new",
}
DECODE_CONTEXT = {"decode": None, "decode@4096": 4096}  # None: the short prompt's length
NEW_TOKENS, LONG_CONTEXT, PREFILL_TOKENS = 128, 4096, 512
BATCH, BATCH_PROMPT, BATCH_NEW = 32, 32, 64
FILLER = (
    " The keeper climbed the spiral stairs every evening, trimmed the wick, polished the great"
    " lens and watched the ships pass between the rocks, writing each one into his logbook."
)


def make_prompts(tokenizer) -> dict[str, list]:
    """Token ids for every scenario, from fixed text (the same ids go to every engine)."""
    short = list(tokenizer.encode(SINGLE_PROMPT))
    stream = list(tokenizer.encode(SINGLE_PROMPT + FILLER * 400))
    assert len(stream) >= LONG_CONTEXT + BATCH * BATCH_PROMPT
    batch = [stream[i * BATCH_PROMPT + 1 : (i + 1) * BATCH_PROMPT + 1] for i in range(BATCH)]
    return {
        "short": short,
        "long": stream[:LONG_CONTEXT],
        "prefill": stream[:PREFILL_TOKENS],
        "batch": batch,
    }


def parse_config(text: str) -> dict:
    """'dtype=auto,max_num_seqs=64' -> {'dtype': 'auto', 'max_num_seqs': 64}."""
    kwargs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r} is not key=value")
        for convert in (int, float):
            try:
                kwargs[key.strip()] = convert(value)
                break
            except ValueError:
                pass
        else:
            literal = {"true": True, "false": False, "none": None}
            kwargs[key.strip()] = literal.get(value.lower(), value.strip())
    return kwargs


def measure_bandwidth(threads: int, gib: float = 1.0, passes: int = 5) -> float:
    """Read bandwidth in bytes/s: numpy sums of a float32 array, split over `threads` Python
    threads (numpy releases the GIL in the sum), best of `passes`."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    data = np.ones(int(gib * 2**30) // 4, dtype=np.float32)
    chunks = np.array_split(data, threads)
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(passes):
            started = time.perf_counter()
            list(pool.map(np.sum, chunks))
            best = max(best, data.nbytes / (time.perf_counter() - started))
    return best


# --------------------------------------------------------------------------- cadence


def _cadence_stream(engine, prompt: list[int], max_tokens: int) -> tuple[float, float]:
    """One request through add_request + step: (time to first token, decode tok/s)."""
    from cadence import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    engine.add_request(engine.next_request_id(), None, prompt, params)
    started, first, num_tokens = time.perf_counter(), None, 0
    while engine.has_unfinished_requests():
        outputs = engine.step()
        now = time.perf_counter()
        for output in outputs:
            num_tokens = len(output.outputs[0].token_ids)
        if first is None and num_tokens:
            first = now
    if num_tokens != max_tokens:
        raise RuntimeError(f"cadence made {num_tokens} tokens, not {max_tokens}")
    decode = (num_tokens - 1) / (now - first) if num_tokens > 1 else float("nan")
    return first - started, decode


def measure_cadence(model: str, kwargs: dict, prompts: dict) -> tuple[dict, dict]:
    from cadence import LLM, SamplingParams

    llm = LLM(model=model, **kwargs)
    engine, core = llm.llm_engine, llm.llm_engine.core
    _cadence_stream(engine, prompts["short"], 8)  # warm-up
    results = {
        "decode": _cadence_stream(engine, prompts["short"], NEW_TOKENS)[1],
        "decode@4096": _cadence_stream(engine, prompts["long"], NEW_TOKENS)[1],
        "prefill": PREFILL_TOKENS / _cadence_stream(engine, prompts["prefill"], 1)[0],
    }
    params = SamplingParams(temperature=0.0, max_tokens=BATCH_NEW, ignore_eos=True)
    started = time.perf_counter()
    outputs = llm.generate(
        [{"prompt_token_ids": ids} for ids in prompts["batch"]], params, use_tqdm=False
    )
    num_tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
    results["batched"] = num_tokens / (time.perf_counter() - started)
    slots = core.stats().num_total_blocks * core.config.block_size
    info = {
        "weight_bytes": core.weight_bytes,
        "kv_bytes_per_token": core.kv_cache_bytes / slots,
        "isa": core.isa,
    }
    del llm, engine, core
    gc.collect()
    return results, info


# --------------------------------------------------------------------------- llama.cpp


def _run_json(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=900).stdout


def measure_llama(args: argparse.Namespace, model: str) -> tuple[dict, dict]:
    results, info = {}, {}
    common = [*f"-m {model} -t {args.threads}".split()]
    if args.llama_bench:
        bench = [args.llama_bench, *common, "-r", "1", "-o", "json", "-n", str(NEW_TOKENS)]
        entries = json.loads(_run_json([*bench, "-p", str(PREFILL_TOKENS)]))
        entries += json.loads(_run_json([*bench, "-p", "0", "-d", str(LONG_CONTEXT)]))
        for entry in entries:  # pp512, tg128, tg128 @ d4096
            depth = "@4096" if entry["n_depth"] else ""
            results["prefill" if entry["n_prompt"] else f"decode{depth}"] = entry["avg_ts"]
        first, kv_sizes = entries[0], {"f16": 2, "bf16": 2, "f32": 4, "q8_0": 34 / 32}
        info = {
            "version": f"build {first['build_number']} ({first['build_commit']})",
            "weight_bytes": first.get("model_size") or os.path.getsize(model),
            "kv_type": first.get("type_k", "f16"),
            "kv_bytes_per_value": kv_sizes.get(first.get("type_k", "f16"), 2),
            "flash_attn": first.get("flash_attn"),
        }
    if args.llama_batched_bench:
        sizes = f"-npp {BATCH_PROMPT} -ntg {BATCH_NEW} -npl {BATCH} -c 4096 -tb {args.threads}"
        command = [args.llama_batched_bench, *common, *sizes.split(), "--output-format", "jsonl"]
        out = _run_json(command)
        row = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
        results["batched"] = row["pl"] * row["tg"] / row["t"]  # generated / (prefill + decode)
    return results, info


# --------------------------------------------------------------------------- CTranslate2


def ct2_worker(job_path: str) -> None:
    """Runs in --ct2-python's interpreter (only ctranslate2 needed); prints one JSON line."""
    import ctranslate2

    job = json.loads(Path(job_path).read_text())
    vocab = json.loads((Path(job["model"]) / "vocabulary.json").read_text())
    generator = ctranslate2.Generator(
        job["model"],
        device="cpu",
        intra_threads=job["threads"],
        inter_threads=1,
        compute_type="int8",
    )
    tokens = {
        name: [vocab[i] for i in ids] for name, ids in job["prompts"].items() if name != "batch"
    }
    batch = [[vocab[i] for i in ids] for ids in job["prompts"]["batch"]]

    def stream(prompt: list[str], max_tokens: int) -> tuple[float, float]:
        started, times = time.perf_counter(), []
        for _ in generator.generate_tokens(prompt, max_length=max_tokens, min_length=max_tokens):
            times.append(time.perf_counter())
        decode = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
        return times[0] - started, decode

    stream(tokens["short"], 8)  # warm-up
    results = {
        "decode": stream(tokens["short"], NEW_TOKENS)[1],
        "decode@4096": stream(tokens["long"], NEW_TOKENS)[1],
        "prefill": PREFILL_TOKENS / stream(tokens["prefill"], 1)[0],
    }
    started = time.perf_counter()
    out = generator.generate_batch(
        batch, max_length=BATCH_NEW, min_length=BATCH_NEW, sampling_topk=1
    )
    num_tokens = sum(len(result.sequences_ids[0]) for result in out)
    results["batched"] = num_tokens / (time.perf_counter() - started)
    print(json.dumps({"results": results, "version": ctranslate2.__version__}))


def measure_ct2(args: argparse.Namespace, prompts: dict) -> tuple[dict, dict]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as job:
        json.dump({"model": args.ct2_model, "threads": args.threads, "prompts": prompts}, job)
    try:
        command = [args.ct2_python, os.path.abspath(__file__), "--ct2-worker", job.name]
        env = {**os.environ, "CT2_VERBOSE": "1"}  # logs the ISA it selected
        if args.ct2_isa:
            env["CT2_FORCE_CPU_ISA"] = args.ct2_isa
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    finally:
        os.unlink(job.name)
    if done.returncode:
        raise RuntimeError(f"CTranslate2 worker failed:\n{done.stderr[-2000:]}")
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    isa = [line.split(":")[-1].strip() for line in done.stderr.splitlines() if "ISA" in line]
    weight_bytes = os.path.getsize(Path(args.ct2_model) / "model.bin")
    return reply["results"], {
        "version": reply["version"],
        "isa": isa[-1] if isa else "?",
        "weight_bytes": weight_bytes,
    }


# --------------------------------------------------------------------------- driver


def cpu_description() -> str:
    try:
        lines = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no lscpu)"
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    flags = fields.get("Flags", "").split()
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    family = (
        f"family {fields.get('CPU family', '?').strip()} model {fields.get('Model', '?').strip()}"
    )
    return f"{fields.get('Model name', '?').strip()} ({family}; {', '.join(simd)})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="GGUF file (default: the default model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--llama-bench", default=None, help="llama-bench binary")
    parser.add_argument("--llama-batched-bench", default=None, help="llama-batched-bench binary")
    parser.add_argument("--ct2-model", default=None, help="CTranslate2 model directory")
    parser.add_argument("--ct2-python", default=sys.executable, help="Python that has ctranslate2")
    parser.add_argument("--ct2-isa", default=None, help="CT2_FORCE_CPU_ISA, e.g. AVX512")
    parser.add_argument(
        "--cadence-config",
        action="append",
        type=parse_config,
        help="LLM kwargs as key=value,key=value (repeatable; default: dtype=auto, dtype=float32)",
    )
    parser.add_argument("--ct2-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.rounds < 1:
        parser.error("--threads and --rounds must be >= 1")
    for name in ("llama_bench", "llama_batched_bench", "ct2_model"):
        path = getattr(args, name)
        if path is not None and not os.path.exists(path):
            print(f"--{name.replace('_', '-')} {path} does not exist: skipping it")
            setattr(args, name, None)
    return args


def label(kwargs: dict) -> str:
    return "cadence " + ",".join(f"{key}={value}" for key, value in kwargs.items())


def bytes_per_token(info: dict, context: int, kv_default: float) -> float | None:
    """Weights + the KV cache of `context` positions, read once per decoded token."""
    if "weight_bytes" not in info:
        return None
    kv = info.get("kv_bytes_per_token", kv_default * info.get("kv_bytes_per_value", 4))
    return info["weight_bytes"] + kv * context


def print_table(names, samples, infos, bandwidth, kv_values, short_len) -> None:
    medians = {
        n: {s: statistics.median(v) if v else None for s, v in d.items()}
        for n, d in samples.items()
    }
    reference = medians.get("llama.cpp", {})
    header = f"{'scenario':<12} {'unit':<34}" + "".join(f" | {n[:26]:>26}" for n in names)
    print(header + "\n" + "-" * len(header))
    for scenario, unit in SCENARIOS.items():
        cells = []
        for name in names:
            value, ref = medians[name][scenario], reference.get(scenario)
            ratio = f" ({value / ref:.2f}x)" if value and ref and name != "llama.cpp" else ""
            cells.append("-" if value is None else f"{value:.1f}{ratio}")
        print(f"{scenario:<12} {unit:<34}" + "".join(f" | {c:>26}" for c in cells))
    for scenario, depth in DECODE_CONTEXT.items():
        context = (depth or short_len) + NEW_TOKENS // 2  # the average context of the decode
        cells = []
        for name in names:
            value = medians[name][scenario]
            per_token = bytes_per_token(infos.get(name, {}), context, kv_values)
            ok = value is not None and per_token is not None
            cells.append(
                f"{value * per_token / bandwidth:.0%} of {bandwidth / per_token:.0f}" if ok else "-"
            )
        unit = f"roofline, avg ctx {context}"
        print(f"{scenario:<12} {unit:<34}" + "".join(f" | {c:>26}" for c in cells))
    print(
        "\nroofline rows: achieved tok/s as a share of bandwidth / bytes per token (that bound in "
        "tok/s after 'of').\nBytes per token = weights (cadence: the engine's weight_bytes; "
        "llama.cpp: llama-bench model_size; ct2: model.bin)\n+ KV bytes per position x average "
        "context (cadence: kv_cache_bytes / KV slots; llama.cpp: its KV type; ct2: fp32)."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ct2_worker:
        ct2_worker(args.ct2_worker)
        return 0
    from cadence.model_config import load_model_config
    from cadence.model_source import default_model_path, resolve_model
    from cadence.tokenizer_loader import load_tokenizer

    model = args.model or default_model_path()
    source = resolve_model(model)
    model_config = load_model_config(source)
    kv_values = 2 * model_config.num_layers * model_config.num_kv_heads * model_config.head_dim
    prompts = make_prompts(load_tokenizer(source))
    configs = args.cadence_config or [{"dtype": "auto"}, {"dtype": "float32"}]
    base = {
        "num_threads": args.threads,
        "max_model_len": 4352,
        "kv_cache_memory_bytes": 512 * 2**20,
    }
    print_machine(args.threads)
    print(f"cpu (lscpu): {cpu_description()}")
    print(f"model:   {model} ({os.path.getsize(model) / 2**20:.1f} MiB)")
    print(f"llama-bench: {args.llama_bench or 'not given: skipped'}")
    print(f"llama-batched-bench: {args.llama_batched_bench or 'not given: skipped'}")
    print(f"CTranslate2: {args.ct2_model or 'no --ct2-model: skipped'}")
    print(f"cadence LLM kwargs under each config: {base}")
    bandwidth = measure_bandwidth(args.threads)
    print(
        f"read bandwidth: {bandwidth / 1e9:.1f} GB/s (numpy float32 sum of 1 GiB split over "
        f"{args.threads} Python threads, best of 5)\n"
    )

    engines = {label(kwargs): ("cadence", kwargs) for kwargs in configs}
    if args.llama_bench or args.llama_batched_bench:
        engines["llama.cpp"] = ("llama", None)
    if args.ct2_model:
        engines["ctranslate2 int8"] = ("ct2", None)
    names = list(engines)
    samples = {name: {s: [] for s in SCENARIOS} for name in names}
    infos: dict[str, dict] = {}
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            kind, kwargs = engines[name]
            started = time.perf_counter()
            if kind == "cadence":
                results, infos[name] = measure_cadence(model, {**base, **kwargs}, prompts)
            elif kind == "llama":
                results, infos[name] = measure_llama(args, model)
            else:
                results, infos[name] = measure_ct2(args, prompts)
            for scenario, value in results.items():
                samples[name][scenario].append(value)
            shown = ", ".join(f"{s} {v:.1f}" for s, v in results.items())
            shown += f" ({time.perf_counter() - started:.0f}s, load avg {os.getloadavg()[0]:.1f})"
            print(f"round {round_index + 1} {name}: {shown}", flush=True)

    print()
    for name, info in infos.items():
        print(f"{name}: " + ", ".join(f"{key}={value}" for key, value in info.items()))
    print(
        f"short prompt {len(prompts['short'])} tokens; medians of {args.rounds} rounds; "
        "(x) = engine / llama.cpp\n"
    )
    print_table(names, samples, infos, bandwidth, kv_values, len(prompts["short"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
