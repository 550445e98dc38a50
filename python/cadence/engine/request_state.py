"""Per-request and per-sequence bookkeeping of the Python engine: detokenization, stop
strings, logprob assembly and grouping of a request's n sequences into one RequestOutput.

The C++ engine reports each sequence separately (``sequence_index``). A sequence can finish
here before the core finishes it (a stop string): its later tokens are ignored, and the
engine aborts the core request once every sequence is finished here (the core has no
per-sequence abort).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cadence import _core
from cadence.detokenizer import IncrementalDetokenizer
from cadence.outputs import CompletionOutput, Logprob, PositionLogprobs, RequestOutput
from cadence.sampling_params import SamplingParams
from cadence.stop_strings import StopStringMatcher

FINISH_REASONS = {
    _core.FinishReason.STOP: "stop",
    _core.FinishReason.LENGTH: "length",
    _core.FinishReason.ABORT: "abort",
}

# token id -> its text, or None (detokenize=False).
DecodeToken = Callable[[int], str | None]


def to_position_logprobs(entry: Any, decode: DecodeToken) -> PositionLogprobs:
    """One ``_core.TokenLogprobs`` as {token id: Logprob}: the sampled (or actual prompt) token
    first, then the top-k best first with ranks 1..k; a token listed once."""
    result = {
        entry.token_id: Logprob(float(entry.logprob), int(entry.rank), decode(entry.token_id))
    }
    for rank, (token_id, logprob) in enumerate(
        zip(entry.top_token_ids, entry.top_logprobs, strict=True), start=1
    ):
        if token_id not in result:
            result[token_id] = Logprob(float(logprob), rank, decode(token_id))
    return result


class SequenceState:
    """One of a request's n sequences, as the Python side sees it."""

    def __init__(self, index: int, params: SamplingParams, tokenizer: Any) -> None:
        self.index = index
        self.params = params
        self.detokenizer = (
            IncrementalDetokenizer(tokenizer, [], skip_special_tokens=params.skip_special_tokens)
            if params.detokenize
            else None
        )
        stops = params.stop_strings
        self.matcher = (
            StopStringMatcher(stops, params.include_stop_str_in_output) if stops else None
        )
        self.token_ids: list[int] = []
        self.logprobs: list[PositionLogprobs] | None = [] if params.logprobs is not None else None
        self.cumulative_logprob: float | None = 0.0 if params.logprobs is not None else None
        self.finish_reason: str | None = None
        self.stop_reason: int | str | None = None
        self.is_core_finished = False
        self._final_text: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.finish_reason is not None

    def on_core_output(self, output: Any, decode: DecodeToken) -> None:
        """Applies one core ``RequestOutput`` of this sequence."""
        if output.finished:
            self.is_core_finished = True
        if self.is_finished:
            return  # already stopped here by a stop string (and aborted in the core)
        new_ids = list(output.new_token_ids)
        self.token_ids.extend(new_ids)
        if self.logprobs is not None:
            for entry in output.new_logprobs:
                self.logprobs.append(to_position_logprobs(entry, decode))
                self.cumulative_logprob += float(entry.logprob)
        if self.detokenizer is not None:
            num_new_chars = len(self.detokenizer.append(new_ids))
            if output.finished:
                num_new_chars += len(self.detokenizer.flush())
            if self.matcher is not None and len(self.token_ids) > self.params.min_tokens:
                text = self.detokenizer.text
                match = self.matcher.find(text, num_new_chars)
                if match is not None:
                    self._finish("stop", match.stop, text[: match.text_length])
                    return
        if output.finished:
            stop_token = output.stop_token_id if output.stop_token_id >= 0 else None
            self._finish(FINISH_REASONS[output.finish_reason], stop_token, None)

    def _finish(self, reason: str, stop_reason: int | str | None, text: str | None) -> None:
        self.finish_reason = reason
        self.stop_reason = stop_reason
        if text is None and self.detokenizer is not None:
            self.detokenizer.flush()
            text = self.detokenizer.text
        self._final_text = text or ""

    def text(self) -> str:
        """The text to show now: final when finished, else without a possible stop prefix."""
        if self._final_text is not None:
            return self._final_text
        if self.detokenizer is None:
            return ""
        text = self.detokenizer.text
        if self.matcher is not None:
            text = text[: len(text) - self.matcher.num_held_back_chars(text)]
        return text

    def snapshot(self) -> CompletionOutput:
        return CompletionOutput(
            index=self.index,
            text=self.text(),
            token_ids=list(self.token_ids),
            cumulative_logprob=self.cumulative_logprob,
            logprobs=None if self.logprobs is None else list(self.logprobs),
            finish_reason=self.finish_reason,
            stop_reason=self.stop_reason,
        )


class RequestState:
    """A request and its n sequences."""

    def __init__(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: Sequence[int],
        params: SamplingParams,
        tokenizer: Any,
    ) -> None:
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = list(prompt_token_ids)
        self.params = params
        self.sequences = [SequenceState(i, params, tokenizer) for i in range(params.n)]
        self.prompt_logprobs: list[PositionLogprobs | None] | None = None
        self.num_cached_tokens = 0

    @property
    def is_finished(self) -> bool:
        return all(sequence.is_finished for sequence in self.sequences)

    @property
    def is_core_finished(self) -> bool:
        return all(sequence.is_core_finished for sequence in self.sequences)

    def on_core_output(self, output: Any, decode: DecodeToken) -> None:
        index = output.sequence_index
        if not 0 <= index < len(self.sequences):
            raise RuntimeError(
                f"request {self.request_id!r}: the core reported sequence {index} of "
                f"n={len(self.sequences)}"
            )
        if self.params.prompt_logprobs is not None and self.prompt_logprobs is None and index == 0:
            self.prompt_logprobs = [None]
            self.prompt_logprobs.extend(
                to_position_logprobs(entry, decode) for entry in output.prompt_logprobs
            )
        self.num_cached_tokens = output.num_cached_tokens
        self.sequences[index].on_core_output(output, decode)

    def snapshot(self) -> RequestOutput:
        return RequestOutput(
            request_id=self.request_id,
            prompt=self.prompt,
            prompt_token_ids=self.prompt_token_ids,
            prompt_logprobs=None if self.prompt_logprobs is None else list(self.prompt_logprobs),
            outputs=[sequence.snapshot() for sequence in self.sequences],
            finished=self.is_finished,
            num_cached_tokens=self.num_cached_tokens,
        )
