"""Result objects returned by ``LLM.generate`` (vLLM's ``vllm.outputs`` shapes)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class RequestOutputKind(enum.Enum):
    """What each ``RequestOutput`` of a running request holds (vLLM's names).

    CUMULATIVE: everything generated so far (each output costs O(output length)).
    DELTA: only what is new since the request's previous output: new text, new token ids
        and their logprobs, and the finish fields once it finished; prompt logprobs come
        in the first output only. Per-step cost is O(new tokens); what streaming servers use.
    FINAL_ONLY: one cumulative output, when the request finished (the offline API).
    """

    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


@dataclass
class Logprob:
    """The log-probability of one token at one position (vLLM's ``Logprob``).

    Logprobs are the model's distribution: the log-softmax of the raw logits, before
    penalties, logit bias, allowed/bad-token masks and temperature.

    Attributes:
        logprob: natural-log probability, <= 0.
        rank: 1 for the most likely token; tokens with equal logprobs share the better rank.
        decoded_token: the token's text (``tokenizer.decode([id])``); None with
            ``detokenize=False``.
    """

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


# One position: token id -> Logprob, holding the sampled (or actual prompt) token first,
# then the top-k most likely tokens, best first (a token is listed once).
PositionLogprobs = dict[int, Logprob]
SampleLogprobs = list[PositionLogprobs]
PromptLogprobs = list[PositionLogprobs | None]


def top_entries(position: PositionLogprobs, count: int) -> list[tuple[int, Logprob]]:
    """The ``count`` most likely (token id, Logprob) of a position, best first."""
    ranked = sorted(position.items(), key=lambda item: item[1].rank or 0)
    return ranked[:count]


@dataclass
class CompletionOutput:
    """One generated sequence.

    Attributes:
        index: position among the request's n sequences, 0 .. n-1.
        text: the generated text (prompt excluded; cut at a stop string). "" when
            ``detokenize=False``. While running, a tail that could be the start of a stop
            string is held back.
        token_ids: the generated token ids (including the one that completed a stop string).
        cumulative_logprob: sum of the generated tokens' logprobs when ``logprobs`` was
            requested, else None.
        logprobs: per generated token, its ``PositionLogprobs``; None unless requested.
        finish_reason: "stop" (EOS, a stop token or a stop string), "length" (max_tokens or
            the context limit), "abort", or None while still running.
        stop_reason: the stop string or stop token id that ended generation; None for EOS,
            length or while running.
    """

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: SampleLogprobs | None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None

    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class RequestOutput:
    """The state of one request: its prompt and its generated sequence(s).

    Attributes:
        prompt_token_ids: the prompt as computed (after ``truncate_prompt_tokens``).
        prompt_logprobs: None unless requested; else one entry per prompt token, the first
            None (nothing precedes it), each other holding the actual token and the top-k.
        outputs: the n sequences, ordered by index.
        finished: all n sequences are finished.
        num_cached_tokens: prompt tokens whose KV came from the prefix cache (blocks that
            earlier or concurrent requests computed) instead of being computed: a multiple of
            the block size, 0 without a hit or with ``enable_prefix_caching=False``.
    """

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: PromptLogprobs | None = None
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = False
    num_cached_tokens: int = 0

    def add(self, newer: RequestOutput) -> None:
        """Appends a later DELTA output of the same request to this one (for a consumer that
        fell behind): per sequence, text, token ids and logprobs are concatenated and the
        finish fields are the newer ones. O(size of ``newer``) plus the concatenation."""
        if newer.request_id != self.request_id:
            raise ValueError(
                f"cannot add outputs of request {newer.request_id!r} to {self.request_id!r}"
            )
        if self.prompt_logprobs is None:
            self.prompt_logprobs = newer.prompt_logprobs
        by_index = {completion.index: completion for completion in self.outputs}
        for completion in newer.outputs:
            older = by_index.get(completion.index)
            if older is None:
                self.outputs.append(completion)
                by_index[completion.index] = completion
                continue
            older.text += completion.text
            older.token_ids = older.token_ids + completion.token_ids
            if completion.logprobs is not None:
                older.logprobs = (older.logprobs or []) + completion.logprobs
            older.cumulative_logprob = completion.cumulative_logprob
            older.finish_reason = completion.finish_reason
            older.stop_reason = completion.stop_reason
        self.outputs.sort(key=lambda completion: completion.index)
        self.finished = newer.finished
        self.num_cached_tokens = newer.num_cached_tokens
