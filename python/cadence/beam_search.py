"""Results of ``LLM.beam_search`` (vLLM's ``vllm.beam_search`` shapes).

Differences from vLLM, on purpose: ``tokens`` and ``text`` hold the generated part only
(vLLM's include the prompt), and hypotheses are ranked with a length penalty over generated
tokens only (see ``BeamSearchParams``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cadence import _core
from cadence.outputs import CompletionOutput, Logprob, RequestOutput, SampleLogprobs
from cadence.sampling_params import BeamSearchParams

_FINISH_REASONS = {_core.FinishReason.STOP: "stop", _core.FinishReason.LENGTH: "length"}


@dataclass
class BeamSearchSequence:
    """One finished hypothesis.

    Attributes:
        tokens: the generated token ids (ending with the EOS token when finish_reason is
            "stop").
        text: the generated text; the EOS token's text only with
            ``include_stop_str_in_output``.
        cum_logprob: the sum of ``logprobs`` (the search distribution: the model's, or
            log-softmax(logits / temperature)).
        score: what hypotheses are ranked by, cum_logprob / len(tokens) ** length_penalty.
        logprobs: per generated token, {token id: Logprob} with its log-probability and its
            rank among its beam's candidates that step.
        finish_reason: "stop" (EOS) or "length" (max_tokens or the context limit).
        stop_reason: always None (EOS is the only stop; vLLM reports None for it too).
    """

    tokens: list[int]
    text: str
    cum_logprob: float
    score: float
    logprobs: SampleLogprobs = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: int | str | None = None

    @property
    def token_ids(self) -> list[int]:
        return self.tokens


@dataclass
class BeamSearchOutput:
    """The result for one prompt: ``sequences`` are the beam_width best hypotheses, best
    score first. ``request_id`` and the prompt are cadence additions."""

    sequences: list[BeamSearchSequence]
    request_id: str = ""
    prompt: str | None = None
    prompt_token_ids: list[int] = field(default_factory=list)
    finished: bool = True  # reported once, when the search is done
    num_cached_tokens: int = 0  # prompt tokens whose KV came from the prefix cache

    def as_request_output(self) -> RequestOutput:
        """The hypotheses as the completions of a finished RequestOutput (index = rank), the
        shape the servers stream and return."""
        outputs = [
            CompletionOutput(
                index=index,
                text=sequence.text,
                token_ids=list(sequence.tokens),
                cumulative_logprob=sequence.cum_logprob,
                logprobs=None,
                finish_reason=sequence.finish_reason,
                stop_reason=sequence.stop_reason,
            )
            for index, sequence in enumerate(self.sequences)
        ]
        return RequestOutput(
            request_id=self.request_id,
            prompt=self.prompt,
            prompt_token_ids=list(self.prompt_token_ids),
            prompt_logprobs=None,
            outputs=outputs,
            finished=True,
            num_cached_tokens=self.num_cached_tokens,
        )


def to_beam_search_output(
    core_output: Any,
    prompt: str | None,
    prompt_token_ids: list[int],
    params: BeamSearchParams,
    tokenizer: Any,
    decode_token: Callable[[int], str],
) -> BeamSearchOutput:
    """Converts the core's finished beam-search output (``RequestOutput.beams``)."""
    sequences = []
    for beam in core_output.beams:
        tokens = list(beam.token_ids)
        finish_reason = _FINISH_REASONS[beam.finish_reason]
        text_tokens = tokens[:-1] if finish_reason == "stop" else tokens
        text = tokenizer.decode(text_tokens, skip_special_tokens=True)
        if finish_reason == "stop" and params.include_stop_str_in_output:
            text += decode_token(tokens[-1])
        logprobs = [
            {token: Logprob(float(logprob), int(rank), decode_token(token))}
            for token, logprob, rank in zip(tokens, beam.logprobs, beam.ranks, strict=True)
        ]
        sequences.append(
            BeamSearchSequence(
                tokens=tokens,
                text=text,
                cum_logprob=float(beam.cum_logprob),
                score=float(beam.score),
                logprobs=logprobs,
                finish_reason=finish_reason,
            )
        )
    return BeamSearchOutput(
        sequences,
        core_output.request_id,
        prompt,
        list(prompt_token_ids),
        num_cached_tokens=int(core_output.num_cached_tokens),
    )
