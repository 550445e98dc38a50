"""Cold start: `cadence generate` vs llama.cpp's `llama-simple` and `llama-completion` on the
same GGUF, in one run.

Each round runs every command once as a fresh process (the engines alternate, the order
rotated each round) and records its wall time (process start to exit) and peak RSS (the
child's ru_maxrss, which starts from this script's RSS at fork: that is printed, and is far
below every child's peak). Both generate --max-tokens new tokens from the same prompt on the same
file with the same threads: the whole job a person runs from a shell, start-up included. The
page cache is warm for both (the file was read in the first round).

    .venv/bin/python benchmarks/bench_cold_start.py --rounds 5 [--model PATH] \\
        [--llama-simple /work/ext/llama-build/bin/llama-simple] \\
        [--llama-completion /work/ext/llama-build/bin/llama-completion]

llama-simple is llama.cpp's minimal generation program (its context is just prompt + new
tokens; it takes no thread count, so it runs ggml's default of 4 threads); llama-completion is
its full CLI (`-no-cnv -t THREADS --temp 0`, default 4096-token context). The table shows
medians and cadence / each of them (lower is better for both columns). Targets (issue #13):
cadence wall <= 1.5 s, peak RSS <= 1.5x llama.cpp's.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_generate import print_machine

PROMPT = "Hello, my name is"


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Runs command to completion; returns (wall seconds, peak RSS bytes) of the child."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would stall it
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{output[-2000:]}")
    return seconds, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def commands(args: argparse.Namespace, model: str) -> dict[str, list[str]]:
    cadence = [
        str(Path(sys.executable).with_name("cadence")),
        "generate",
        PROMPT,
        "--max-tokens",
        str(args.max_tokens),
        "--num-threads",
        str(args.threads),
        "--temperature",
        "0",
        *(["--model", args.model] if args.model else []),
    ]
    new_tokens = str(args.max_tokens)
    result = {"cadence generate": cadence}
    if args.llama_simple:
        result["llama-simple"] = [args.llama_simple, "-m", model, "-n", new_tokens, PROMPT]
    if args.llama_completion:
        result["llama-completion"] = [
            args.llama_completion,
            *("-m", model, "-p", PROMPT, "-n", new_tokens, "-t", str(args.threads)),
            *("--temp", "0", "-no-cnv"),
        ]
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="GGUF file (default: the default model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--llama-simple", default=None, help="llama.cpp's llama-simple binary")
    parser.add_argument("--llama-completion", default=None, help="llama.cpp's llama-completion")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or args.max_tokens < 1:
        parser.error("--threads, --rounds and --max-tokens must be >= 1")
    for name in ("llama_simple", "llama_completion"):
        path = getattr(args, name)
        if path and not os.path.exists(path):
            parser.error(f"--{name.replace('_', '-')} {path} does not exist")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cadence.model_source import default_model_path

    model = args.model or default_model_path()
    print_machine(args.threads)
    print(f"model:   {model} ({os.path.getsize(model) / 2**20:.1f} MiB)")
    print(f"job:     {args.max_tokens} new tokens after {PROMPT!r}, greedy, one process each")
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this script's peak RSS: {own_rss:.0f} MiB (a floor under the children's)\n")
    runs = commands(args, model)
    env = dict(os.environ)
    names = list(runs)
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, rss = run_measured(runs[name], env)
            samples[name].append((seconds, rss))
            shown = f"{seconds:.2f} s, peak RSS {rss / 2**20:.0f} MiB"
            print(f"round {round_index + 1} {name}: {shown}", flush=True)

    print(f"\nmedians of {args.rounds} rounds")
    medians = {
        name: (
            statistics.median(s for s, _ in values),
            statistics.median(r for _, r in values),
        )
        for name, values in samples.items()
    }
    references = [name for name in medians if name.startswith("llama")]
    header = f"{'command':<18} {'wall s':>8} {'peak RSS MiB':>13}"
    header += "".join(f" {'wall/' + r[6:]:>16} {'RSS/' + r[6:]:>15}" for r in references)
    print(header)
    for name, (seconds, rss) in medians.items():
        cells = ""
        for reference in references:
            ref_seconds, ref_rss = medians[reference]
            if name.startswith("llama"):
                cells += f" {'-':>16} {'-':>15}"
            else:
                cells += f" {seconds / ref_seconds:>16.2f} {rss / ref_rss:>15.2f}"
        print(f"{name:<18} {seconds:>8.2f} {rss / 2**20:>13.0f}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
