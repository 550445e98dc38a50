"""Result objects returned by ``LLM.generate`` (vLLM's ``vllm.outputs`` shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
