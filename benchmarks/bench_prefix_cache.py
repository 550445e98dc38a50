"""Automatic prefix caching: what it gains on multi-turn chat, what it costs where nothing is
shared, in one run (issue #14).

1. Served multi-turn chat. One shared system prompt of ~--system-tokens tokens (whole
   sentences of tests/data/perplexity_text.txt, its length measured with the model's
   tokenizer and printed), --conversations concurrent conversations of --turns turns, each
   with its own user messages. Every turn is a streaming /v1/chat/completions (greedy,
   --max-tokens new tokens, stream_options.include_usage); the assistant's reply is
   appended to that conversation's history and its next turn sent at once. The same load
   runs against `cadence serve --enable-prefix-caching` and `--no-enable-prefix-caching`,
   each server started fresh per round, the arms alternating over --rounds rounds, each
   warmed up first with one wave of unrelated one-turn chats. TTFT is the time to the first
   chunk that carries text (the role chunk comes before any token is computed). Per arm
   (its fastest round): TTFT p50/p99 over all turns, turn 1 and later turns, output tok/s
   over the whole run (all completion tokens / wall time), the prompt tokens reported as
   cached (usage.prompt_tokens_details.cached_tokens, where the server sends it) and the
   /metrics prefix-cache counters. Targets: TTFT p50 no-cache / cache >= 5; output
   throughput cache / no-cache >= 1.0. It also checks that the replies are identical with
   and without caching (a hit must not change greedy output).
2. Offline overhead where nothing is shared: --batch-size prompts of exactly
   --prompt-tokens tokens cut from different sentences of the same text (their first
   KV blocks all differ, checked), --new-tokens new tokens each, greedy, EOS ignored.
   `LLM(enable_prefix_caching=True)` and `False`, both created once and warmed up, run in
   alternating rounds (--rounds; the caching engine's cache is reset before each, so it
   never hits); the best round of each is kept. Asserts num_cached_tokens == 0 for every
   request of both engines. Target: throughput caching / no caching >= 0.98.

The servers and the offline engines never run at the same time; the same --threads for all.
Usage:

    python benchmarks/bench_prefix_cache.py [--threads 2] [--rounds 2] [--scenario all]
        [--conversations 16] [--turns 4] [--system-tokens 1000] [--max-tokens 32]
        [--max-model-len 2048] [--batch-size 32] [--prompt-tokens 128] [--new-tokens 64]
        [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench_generate import print_machine
from serve_harness import (
    KV_BYTES_PER_TOKEN,
    RequestTiming,
    StreamingClient,
    percentiles,
    start_cadence_server,
    stop,
)

TEXT_PATH = Path(__file__).resolve().parent.parent / "tests" / "data" / "perplexity_text.txt"
SYSTEM_INTRO = (
    "You are a patient assistant for a cooking school. Answer each question briefly, in "
    "plain words, using the reference notes below where they help.\n\nReference notes:\n"
)
_TOPICS = [
    "chopping onions",
    "salting pasta water",
    "tasting while cooking",
    "reading a recipe",
    "baking bread",
    "making a sauce thicker",
    "using garlic",
    "learning from a grandparent",
    "cooking rice",
    "roasting vegetables",
    "frying an egg",
    "keeping knives sharp",
    "seasoning soup",
    "cooking for a crowd",
    "storing fresh herbs",
    "cleaning as you go",
]
_TURN_FRAMES = [
    "I am student {number}. What should a beginner know about {topic}?",
    "Why does that matter for {topic}?",
    "Give me one concrete example about {topic}.",
    "Summarise your advice on {topic} in one sentence.",
]
_METRIC = re.compile(r"^cadence:(prefix_cache_(?:queries|hits))(?:_total)?(?:\{[^}]*\})? (\S+)$")
ARMS = ("cache", "no-cache")
SERVER_FLAGS = {"cache": ["--enable-prefix-caching"], "no-cache": ["--no-enable-prefix-caching"]}


def sentences() -> list[str]:
    text = TEXT_PATH.read_text(encoding="utf-8")
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def system_prompt(tokenizer, num_tokens: int) -> tuple[str, int]:
    """SYSTEM_INTRO plus the most whole sentences of the text that keep it within num_tokens;
    returns (text, its exact token count)."""
    text, count = SYSTEM_INTRO, len(tokenizer.encode(SYSTEM_INTRO, add_special_tokens=False))
    for sentence in sentences():
        candidate = text + sentence + " "
        candidate_count = len(tokenizer.encode(candidate, add_special_tokens=False))
        if candidate_count > num_tokens:
            break
        text, count = candidate, candidate_count
    return text, count


def user_message(conversation: int, turn: int) -> str:
    frame = _TURN_FRAMES[turn % len(_TURN_FRAMES)]
    topic = _TOPICS[conversation % len(_TOPICS)]
    if conversation >= len(_TOPICS):
        topic += f" (case {conversation // len(_TOPICS) + 1})"
    return frame.format(number=conversation + 1, topic=topic)


# --------------------------------------------------------------------------- served chat


@dataclass
class Turn:
    conversation: int
    turn: int
    timing: RequestTiming
    prompt_tokens: int = 0
    cached_tokens: int | None = None  # None: the server did not report it
    reply: str = ""


@dataclass
class ChatRun:
    turns: list[Turn]
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def num_output_tokens(self) -> int:
        return sum(t.timing.num_tokens for t in self.turns)

    @property
    def output_throughput(self) -> float:
        return self.num_output_tokens / self.seconds

    def ttfts(self, first_turn: bool | None = None) -> list[float]:
        return [
            t.timing.ttft for t in self.turns if first_turn is None or (t.turn == 0) == first_turn
        ]

    def ttft_p50(self) -> float:
        return statistics.median(self.ttfts())

    @property
    def cached_tokens(self) -> int | None:
        values = [t.cached_tokens for t in self.turns]
        return None if any(v is None for v in values) else sum(values)

    def replies(self) -> dict[tuple[int, int], str]:
        return {(t.conversation, t.turn): t.reply for t in self.turns}


async def chat_turn(
    client: StreamingClient, messages: list[dict], max_tokens: int, conversation: int, turn: int
) -> Turn:
    body = {
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    result = Turn(conversation, turn, RequestTiming(sent=time.perf_counter()))
    pieces = []
    async for data in client.post_stream("/v1/chat/completions", body):
        if data == b"[DONE]":
            continue
        chunk = json.loads(data)
        if "error" in chunk:
            raise RuntimeError(f"conversation {conversation} turn {turn}: {chunk['error']}")
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:  # the opening role chunk has none: no token has been computed yet
                result.timing.chunk_times.append(time.perf_counter())
                pieces.append(content)
        usage = chunk.get("usage")
        if usage:
            result.timing.num_tokens = usage["completion_tokens"]
            result.prompt_tokens = usage["prompt_tokens"]
            details = usage.get("prompt_tokens_details") or {}
            if details.get("cached_tokens") is not None:
                result.cached_tokens = details["cached_tokens"]
    if not result.timing.chunk_times or result.timing.num_tokens == 0:
        raise RuntimeError(f"conversation {conversation} turn {turn}: no tokens (or no usage)")
    result.reply = "".join(pieces)
    return result


async def run_conversations(
    url: str, system: str, conversations: int, turns: int, max_tokens: int
) -> tuple[list[Turn], float]:
    """All conversations at once, each on its own connection, its turns back to back."""
    address = httpx.URL(url)
    results: list[Turn] = []

    async def conversation(index: int) -> None:
        client = StreamingClient(address.host, address.port)
        messages = [{"role": "system", "content": system}]
        try:
            for turn in range(turns):
                messages.append({"role": "user", "content": user_message(index, turn)})
                result = await chat_turn(client, messages, max_tokens, index, turn)
                messages.append({"role": "assistant", "content": result.reply})
                results.append(result)
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(conversation(index) for index in range(conversations)))
    return results, time.perf_counter() - started


async def warm_up(url: str, count: int) -> None:
    """One wave of unrelated one-turn chats (no block in common with the benchmark's)."""
    address = httpx.URL(url)

    async def one(index: int) -> None:
        client = StreamingClient(address.host, address.port)
        messages = [
            {"role": "system", "content": f"Warm-up {index}: reply with a short greeting."},
            {"role": "user", "content": f"Hello number {index}, how are you?"},
        ]
        try:
            await chat_turn(client, messages, 8, -1, index)
        finally:
            await client.close()

    await asyncio.gather(*(one(index) for index in range(count)))


def scrape_prefix_metrics(url: str) -> dict[str, float]:
    """The cadence:prefix_cache_* counters from /metrics ({} where the server has none)."""
    values: dict[str, float] = {}
    response = httpx.get(url + "/metrics", timeout=10)
    if response.status_code != 200:
        return values
    for line in response.text.splitlines():
        match = _METRIC.match(line)
        if match:
            values[match.group(1)] = values.get(match.group(1), 0.0) + float(match.group(2))
    return values


def serve_round(args: argparse.Namespace, arm: str, system: str, folder: str) -> ChatRun:
    log_path = Path(folder) / f"server-{arm}.log"
    process, url, _ = start_cadence_server(
        log_path,
        model=args.model,
        threads=args.threads,
        max_model_len=args.max_model_len,
        kv_cache_memory_bytes=args.conversations * args.max_model_len * KV_BYTES_PER_TOKEN,
        extra_args=SERVER_FLAGS[arm],
    )
    try:
        asyncio.run(warm_up(url, args.conversations))
        # Drop the warm-up's blocks where the server can (they share nothing anyway).
        httpx.post(url + "/reset_prefix_cache", timeout=30)
        before = scrape_prefix_metrics(url)
        turns, seconds = asyncio.run(
            run_conversations(url, system, args.conversations, args.turns, args.max_tokens)
        )
        after = scrape_prefix_metrics(url)
    finally:
        stop(process)
    metrics = {name: after[name] - before.get(name, 0.0) for name in after}
    return ChatRun(turns, seconds, metrics)


def report_chat(arm: str, run: ChatRun, max_model_len: int) -> None:
    print(f"{arm} (fastest round):")
    print(
        f"  output throughput   {run.output_throughput:8.1f} tok/s  "
        f"({run.num_output_tokens} tokens in {run.seconds:.1f} s)"
    )
    print(f"  TTFT all turns      {percentiles(run.ttfts())}")
    print(f"  TTFT turn 1         {percentiles(run.ttfts(first_turn=True))}")
    if any(t.turn > 0 for t in run.turns):
        print(f"  TTFT turns 2+       {percentiles(run.ttfts(first_turn=False))}")
    print(f"  TPOT                {percentiles([t.timing.tpot for t in run.turns])}")
    num_prompt_tokens = sum(t.prompt_tokens for t in run.turns)
    longest = max(t.prompt_tokens for t in run.turns)
    cached = run.cached_tokens
    if cached is None:
        print(
            f"  cached tokens       n/a (no prompt_tokens_details in usage); "
            f"prompt tokens {num_prompt_tokens}"
        )
    else:
        print(
            f"  cached tokens       {cached} of {num_prompt_tokens} prompt tokens "
            f"({100 * cached / num_prompt_tokens:.1f}%)"
        )
    if run.metrics:
        queries = run.metrics.get("prefix_cache_queries", 0.0)
        hits = run.metrics.get("prefix_cache_hits", 0.0)
        rate = f" ({100 * hits / queries:.1f}%)" if queries else ""
        print(f"  /metrics            prefix_cache_hits {hits:.0f} of queries {queries:.0f}{rate}")
    print(f"  longest prompt      {longest} tokens (max_model_len {max_model_len})")


def served_chat(args: argparse.Namespace) -> None:
    from cadence.model_source import resolve_model
    from cadence.tokenizer_loader import load_tokenizer

    tokenizer = load_tokenizer(resolve_model(args.model))
    system, num_system_tokens = system_prompt(tokenizer, args.system_tokens)
    print(
        f"served chat: {args.conversations} conversations x {args.turns} turns, shared system "
        f"prompt of {num_system_tokens} tokens (its text alone), {args.max_tokens} new tokens "
        f"per turn (greedy), streaming /v1/chat/completions, {args.rounds} round(s) per arm"
    )
    runs: dict[str, list[ChatRun]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            order = ARMS if round_index % 2 == 0 else ARMS[::-1]
            for arm in order:
                run = serve_round(args, arm, system, folder)
                runs[arm].append(run)
                print(
                    f"  round {round_index + 1} {arm:<8}: {run.seconds:6.1f} s, "
                    f"{run.output_throughput:6.1f} tok/s, TTFT p50 {1000 * run.ttft_p50():7.1f} ms",
                    flush=True,
                )
    print()
    best = {arm: min(runs[arm], key=lambda r: r.seconds) for arm in ARMS}
    for arm in ARMS:
        report_chat(arm, best[arm], args.max_model_len)
    reference_run = runs["no-cache"][0]
    reference = reference_run.replies()
    others = [run for arm in ARMS for run in runs[arm] if run is not reference_run]
    same = sum(run.replies()[key] == reply for run in others for key, reply in reference.items())
    print(
        f"\nreplies identical to the first no-cache round's: {same}/{len(reference) * len(others)}"
        f" (turns x other runs)"
    )
    ttft_ratio = best["no-cache"].ttft_p50() / best["cache"].ttft_p50()
    throughput_ratio = best["cache"].output_throughput / best["no-cache"].output_throughput
    print(f"TTFT p50 no-cache / cache: {ttft_ratio:.2f}x (target >= 5x)")
    print(f"output throughput cache / no-cache: {throughput_ratio:.2f} (target >= 1.0)")
    if args.rounds > 1:
        per_round = [
            runs["no-cache"][i].ttft_p50() / runs["cache"][i].ttft_p50() for i in range(args.rounds)
        ]
        print("  per round TTFT p50 ratio: " + ", ".join(f"{r:.2f}x" for r in per_round))


# --------------------------------------------------------------------------- offline


def distinct_prompts(tokenizer, count: int, num_tokens: int, block_size: int) -> list[list[int]]:
    """count token-id prompts of exactly num_tokens, each from a different sentence on."""
    all_sentences = sentences()
    step = max(len(all_sentences) // count, 1)
    prompts = []
    for index in range(count):
        start = (index * step) % len(all_sentences)
        text = ""
        ids: list[int] = []
        position = start
        while len(ids) < num_tokens:
            text += all_sentences[position % len(all_sentences)] + " "
            position += 1
            ids = list(tokenizer.encode(text, add_special_tokens=False))
        prompts.append(ids[:num_tokens])
    first_blocks = {tuple(ids[:block_size]) for ids in prompts}
    if len(first_blocks) != count:
        raise RuntimeError("two prompts share their first KV block: pick other sentences")
    return prompts


def offline_overhead(args: argparse.Namespace) -> None:
    from cadence import LLM, SamplingParams

    max_model_len = args.prompt_tokens + args.new_tokens + 16
    engines = {
        arm: LLM(
            model=args.model,
            num_threads=args.threads,
            max_model_len=max_model_len,
            max_num_seqs=args.batch_size,
            kv_cache_memory_bytes=args.batch_size * max_model_len * KV_BYTES_PER_TOKEN,
            enable_prefix_caching=arm == "cache",
        )
        for arm in ARMS
    }
    block_size = 16  # LLM's default; a shared first block is what a hit would need
    prompts = distinct_prompts(
        engines["cache"].get_tokenizer(), args.batch_size, args.prompt_tokens, block_size
    )
    requests = [{"prompt_token_ids": ids} for ids in prompts]
    params = SamplingParams(temperature=0, max_tokens=args.new_tokens, ignore_eos=True)
    print(
        f"offline, nothing shared: {args.batch_size} prompts of {args.prompt_tokens} tokens "
        f"(first blocks all distinct) x {args.new_tokens} new tokens, greedy, EOS ignored, "
        f"{args.rounds} alternating round(s)"
    )
    for llm in engines.values():  # warm-up
        llm.generate(requests[:4], params, use_tqdm=False)
    best = dict.fromkeys(ARMS, 0.0)
    rates: dict[str, list[float]] = {arm: [] for arm in ARMS}
    outputs_by_arm: dict[str, list[list[int]]] = {}
    for round_index in range(args.rounds):
        order = ARMS if round_index % 2 == 0 else ARMS[::-1]
        for arm in order:
            llm = engines[arm]
            llm.reset_prefix_cache()  # the caching arm never hits: nothing left from before
            started = time.perf_counter()
            outputs = llm.generate(requests, params, use_tqdm=False)
            seconds = time.perf_counter() - started
            cached = [output.num_cached_tokens for output in outputs]
            if any(cached):
                raise AssertionError(f"{arm}: num_cached_tokens {cached} on a no-sharing load")
            num_tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
            if num_tokens != args.batch_size * args.new_tokens:
                raise RuntimeError(f"{arm}: {num_tokens} tokens generated")
            rate = num_tokens / seconds
            rates[arm].append(rate)
            best[arm] = max(best[arm], rate)
            outputs_by_arm[arm] = [list(output.outputs[0].token_ids) for output in outputs]
            print(f"  round {round_index + 1} {arm:<8}: {rate:7.1f} tok/s ({seconds:.2f} s)")
    same = sum(
        a == b for a, b in zip(outputs_by_arm["cache"], outputs_by_arm["no-cache"], strict=True)
    )
    print(f"num_cached_tokens == 0 for all {args.batch_size * args.rounds * 2} requests")
    print(f"greedy tokens identical with and without caching: {same}/{args.batch_size}")
    for arm in ARMS:
        print(f"{arm:<8} best round: {best[arm]:7.1f} tok/s")
    print(f"throughput cache / no-cache: {best['cache'] / best['no-cache']:.3f} (target >= 0.98)")
    if args.rounds > 1:
        per_round = [c / n for c, n in zip(rates["cache"], rates["no-cache"], strict=True)]
        print(
            f"  per round: {', '.join(f'{r:.3f}' for r in per_round)}; "
            f"median {statistics.median(per_round):.3f}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (every engine)")
    parser.add_argument("--model", default=None, help="GGUF file or HF dir (default model)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per arm")
    parser.add_argument(
        "--scenario", choices=("all", "chat", "offline"), default="all", help="what to run"
    )
    parser.add_argument("--conversations", type=int, default=16, help="concurrent chats")
    parser.add_argument("--turns", type=int, default=4, help="turns per conversation")
    parser.add_argument(
        "--system-tokens", type=int, default=1000, help="shared system prompt (at most)"
    )
    parser.add_argument("--max-tokens", type=int, default=32, help="new tokens per chat turn")
    parser.add_argument(
        "--max-model-len", type=int, default=2048, help="server context (room for all turns)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="offline prompts")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="offline prompt length")
    parser.add_argument("--new-tokens", type=int, default=64, help="offline new tokens")
    args = parser.parse_args(argv)
    for name in (
        "threads",
        "rounds",
        "conversations",
        "turns",
        "system_tokens",
        "max_tokens",
        "max_model_len",
        "batch_size",
        "prompt_tokens",
        "new_tokens",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.prompt_tokens < 16:
        parser.error("--prompt-tokens must be >= 16 (one full KV block)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_machine(args.threads)
    print()
    if args.scenario in ("all", "chat"):
        served_chat(args)
        print()
    if args.scenario in ("all", "offline"):
        offline_overhead(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
