"""Generation throughput of cadence vs HF transformers (fp32, torch on CPU), one process.

Two scenarios on the default model (SmolLM2-135M-Instruct, Q4_1 GGUF), greedy, EOS ignored:

1. batch-1 decode: one prompt, 128 new tokens;
2. batched: 32 prompts of different lengths, 64 new tokens each (HF: one left-padded batch);
3. sampled (cadence only): scenario 2 with temperature, top-k, top-p and all three penalties,
   reported as a ratio to cadence's greedy throughput on the same workload.

Each engine gets a warm-up run first and the same number of threads. Throughput is generated
tokens / wall time of the whole call (prefill included). Usage:

    python benchmarks/bench_generate.py [--threads N] [--skip-hf] [--batch-size B]
                                        [--new-tokens N] [--model PATH] [--hf-attn eager]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# A continuation prompt: the model keeps writing instead of answering and ending its turn.
SINGLE_PROMPT = (
    "Once upon a time, in a small village by the sea, there lived an old lighthouse keeper"
)
_SUBJECTS = [
    "the history of the printing press",
    "how bees communicate",
    "a recipe for tomato soup",
    "why the sky is blue",
    "the rules of chess",
    "how volcanoes form",
    "the life cycle of a star",
    "how to learn a new language",
]
_FRAMES = [
    "Tell me about {}.",
    "Write a paragraph explaining {} to a ten-year-old.",
    "In a few sentences, and with one concrete example, describe {}.",
    "Here is a detailed essay on {}, written for a school magazine:",
]


def every_knob_params(SamplingParams, seed: int, max_tokens: int):
    """Sampling with every knob on (temperature, top-k, top-p, the three penalties), seeded,
    EOS ignored: the workload where host work must keep up with the kernels."""
    return SamplingParams(
        temperature=0.8,
        top_k=50,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        repetition_penalty=1.1,
        seed=seed,
        max_tokens=max_tokens,
        ignore_eos=True,
    )


def batch_prompts(count: int) -> list[str]:
    """`count` distinct prompts of different lengths."""
    prompts = []
    for index in range(count):
        subject = _SUBJECTS[index % len(_SUBJECTS)]
        frame = _FRAMES[(index // len(_SUBJECTS)) % len(_FRAMES)]
        prompts.append(f"({index}) " + frame.format(subject))
    return prompts


@dataclass
class Result:
    scenario: str
    engine: str
    num_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.num_tokens / self.seconds


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_machine(threads: int) -> None:
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"cpu:     {cpu_model()}")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print(f"cores:   {os.cpu_count()} logical, {affinity} usable by this process")
    print(f"threads: {threads}")
    print(f"python:  {platform.python_version()} on {platform.platform()}")


# --------------------------------------------------------------------------- cadence


class CadenceRunner:
    def __init__(self, model: str, threads: int, max_num_seqs: int) -> None:
        from cadence import LLM

        started = time.perf_counter()
        self.llm = LLM(
            model=model, num_threads=threads, max_model_len=1024, max_num_seqs=max_num_seqs
        )
        self.load_seconds = time.perf_counter() - started
        self.tokenizer = self.llm.get_tokenizer()

    def generate(
        self, prompt_ids: list[list[int]], num_new_tokens: int, sampled: bool = False
    ) -> list[list[int]]:
        from cadence import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=num_new_tokens, ignore_eos=True)
        if sampled:  # the "sampling must not be the bottleneck" workload
            params = every_knob_params(SamplingParams, 0, num_new_tokens)
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False
        )
        return [list(output.outputs[0].token_ids) for output in outputs]


# --------------------------------------------------------------------------- transformers


class HfRunner:
    def __init__(self, model: str, threads: int, pad_token_id: int, attention: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        self.torch = torch
        self.pad_token_id = pad_token_id
        path = Path(model)
        started = time.perf_counter()
        if path.suffix == ".gguf":
            hf_model = AutoModelForCausalLM.from_pretrained(
                str(path.parent),
                gguf_file=path.name,
                dtype=torch.float32,
                attn_implementation=attention,
            )
        else:
            hf_model = AutoModelForCausalLM.from_pretrained(
                str(path), dtype=torch.float32, attn_implementation=attention
            )
        self.model = hf_model.eval()
        self.load_seconds = time.perf_counter() - started

    def generate(self, prompt_ids: list[list[int]], num_new_tokens: int) -> list[list[int]]:
        torch = self.torch
        width = max(len(ids) for ids in prompt_ids)
        # Left padding, so that every row's next token comes right after its prompt.
        input_ids = torch.full((len(prompt_ids), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
        for row, ids in enumerate(prompt_ids):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
        with torch.no_grad():
            sequences = self.model.generate(
                input_ids,
                attention_mask=attention_mask,
                do_sample=False,
                max_new_tokens=num_new_tokens,
                min_new_tokens=num_new_tokens,
                pad_token_id=self.pad_token_id,
            )
        return [row[width:].tolist() for row in sequences]


# --------------------------------------------------------------------------- driver


def timed(runner, scenario: str, engine: str, prompt_ids, num_new_tokens: int, **kwargs):
    started = time.perf_counter()
    outputs = runner.generate(prompt_ids, num_new_tokens, **kwargs)
    seconds = time.perf_counter() - started
    num_tokens = sum(len(ids) for ids in outputs)
    expected = len(prompt_ids) * num_new_tokens
    if num_tokens != expected:
        raise RuntimeError(f"{engine} {scenario}: {num_tokens} tokens generated, not {expected}")
    return Result(scenario, engine, num_tokens, seconds), outputs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads")
    parser.add_argument("--skip-hf", action="store_true", help="benchmark cadence only")
    parser.add_argument("--batch-size", type=int, default=32, help="prompts in the batched run")
    parser.add_argument(
        "--new-tokens",
        type=int,
        default=None,
        help="new tokens per request in both scenarios (default: 128 batch-1, 64 batched)",
    )
    parser.add_argument("--model", default=None, help="GGUF file or HF dir (default model)")
    parser.add_argument(
        "--hf-attn",
        default="sdpa",
        choices=["sdpa", "eager"],
        help="attention implementation of the HF baseline (transformers' default: sdpa)",
    )
    args = parser.parse_args(argv)
    for name in ("threads", "batch_size", "new_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cadence.model_source import default_model_path

    model = args.model or default_model_path()
    single_tokens = args.new_tokens or 128
    batch_tokens = args.new_tokens or 64
    print_machine(args.threads)
    print(f"model:   {model}")
    print()

    cadence = CadenceRunner(model, args.threads, max_num_seqs=max(args.batch_size, 1))
    tokenizer = cadence.tokenizer
    single_prompt = [list(tokenizer.encode(SINGLE_PROMPT))]
    batch = [list(tokenizer.encode(text)) for text in batch_prompts(args.batch_size)]
    lengths = [len(ids) for ids in batch]
    print(f"cadence loaded in {cadence.load_seconds:.1f}s (isa {cadence.llm.llm_engine.core.isa})")
    print(
        f"batch-1: {len(single_prompt[0])} prompt tokens, {single_tokens} new; "
        f"batched: {args.batch_size} prompts of {min(lengths)}-{max(lengths)} tokens, "
        f"{batch_tokens} new each"
    )

    runners = [("cadence", cadence)]
    if not args.skip_hf:
        import torch
        import transformers

        pad_token_id = tokenizer.pad_token_id
        if pad_token_id is None:
            pad_token_id = tokenizer.eos_token_id
        hf = HfRunner(model, args.threads, pad_token_id, args.hf_attn)
        print(
            f"HF transformers {transformers.__version__} (torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, attention {args.hf_attn}) "
            f"loaded in {hf.load_seconds:.1f}s"
        )
        runners.append(("hf", hf))
    print()

    results: dict[tuple[str, str], Result] = {}
    single_outputs = {}
    for engine, runner in runners:
        runner.generate(single_prompt, 8)  # warm-up: first-call allocations, thread start-up
        result, outputs = timed(runner, "batch-1", engine, single_prompt, single_tokens)
        results[("batch-1", engine)] = result
        single_outputs[engine] = outputs[0]
        result, _ = timed(runner, "batched", engine, batch, batch_tokens)
        results[("batched", engine)] = result
        if engine == "cadence":  # top-k/top-p + penalties on the same workload
            result, _ = timed(runner, "sampled", engine, batch, batch_tokens, sampled=True)
            results[("sampled", engine)] = result
        print(f"{engine} done", flush=True)

    print()
    print(f"{'scenario':<10} {'engine':<8} {'tokens':>7} {'seconds':>8} {'tok/s':>8}")
    for result in results.values():
        print(
            f"{result.scenario:<10} {result.engine:<8} {result.num_tokens:>7} "
            f"{result.seconds:>8.2f} {result.tokens_per_second:>8.1f}"
        )
    sampled_ratio = (
        results[("sampled", "cadence")].tokens_per_second
        / results[("batched", "cadence")].tokens_per_second
    )
    print()
    print(f"cadence sampled (top-k/top-p + penalties) / greedy, batched: {sampled_ratio:.2f}")
    if not args.skip_hf:
        for scenario in ("batch-1", "batched"):
            ratio = (
                results[(scenario, "cadence")].tokens_per_second
                / results[(scenario, "hf")].tokens_per_second
            )
            print(f"{scenario}: cadence / HF = {ratio:.2f}x")
        ours, theirs = single_outputs["cadence"], single_outputs["hf"]
        same = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), None)
        agreement = "identical" if same is None else f"first differs at token {same}"
        eos_ids = set(cadence.llm.llm_engine.core.model_config.eos_token_ids)
        if same is not None and ours[same] in eos_ids:
            agreement += " (cadence's EOS, which min_new_tokens masks out in HF)"
        print(f"batch-1 greedy tokens, cadence vs HF: {agreement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
