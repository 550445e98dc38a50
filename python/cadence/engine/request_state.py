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
from cadence.outputs import (
    CompletionOutput,
    Logprob,
    PositionLogprobs,
    RequestOutput,
    RequestOutputKind,
)
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
    """One of a request's n sequences, as the Python side sees it.

    Text is kept as released pieces plus a pending tail (text that could still be the
    start of a stop string, or is past a stop). Every step costs O(new tokens + longest
    stop string): nothing is re-joined or copied in proportion to the output length, except
    for a cumulative ``snapshot``.
    """

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
        # Stop matching sees the last (longest stop - 1) characters before the new ones.
        self._match_context_chars = max((len(stop) for stop in stops or ()), default=1) - 1
        self.token_ids: list[int] = []
        self.logprobs: list[PositionLogprobs] | None = [] if params.logprobs is not None else None
        self.cumulative_logprob: float | None = 0.0 if params.logprobs is not None else None
        self.finish_reason: str | None = None
        self.stop_reason: int | str | None = None
        self.is_core_finished = False
        self._released: list[str] = []  # text shown to the caller, in pieces
        self._num_text_chars = 0  # all text decoded so far (released + pending)
        self._pending = ""  # decoded, not released: a possible stop prefix
        self._tail = ""  # the last _match_context_chars characters of all decoded text
        # What the previous DELTA output covered.
        self._num_sent_pieces = 0
        self._num_sent_tokens = 0
        self._is_finish_sent = False

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
            new_text = self.detokenizer.append(new_ids)
            if output.finished:
                new_text += self.detokenizer.flush()
            if self._on_new_text(new_text):
                return
        if output.finished:
            stop_token = output.stop_token_id if output.stop_token_id >= 0 else None
            self._finish(FINISH_REASONS[output.finish_reason], stop_token)

    def _on_new_text(self, new_text: str) -> bool:
        """Takes newly decoded text: finishes on a stop string (True), else releases what
        cannot be the start of one."""
        window = self._tail + new_text
        window_start = self._num_text_chars - len(self._tail)  # window[0]'s text offset
        pending_start = self._num_text_chars - len(self._pending)
        self._num_text_chars += len(new_text)
        self._pending += new_text
        self._tail = window[len(window) - self._match_context_chars :]
        if self.matcher is None:
            self._release(len(self._pending))
            return False
        if len(self.token_ids) > self.params.min_tokens:
            match = self.matcher.find(window, len(new_text))
            if match is not None:
                # Text before the match is never held back, so the cut is in the pending text.
                self._release(max(0, window_start + match.text_length - pending_start))
                self._finish("stop", match.stop)
                return True
        held_back = self.matcher.num_held_back_chars(self._pending)
        self._release(len(self._pending) - held_back)
        return False

    def _release(self, num_chars: int) -> None:
        if num_chars > 0:
            self._released.append(self._pending[:num_chars])
            self._pending = self._pending[num_chars:]

    def _finish(self, reason: str, stop_reason: int | str | None) -> None:
        """Ends the sequence (the caller has flushed the detokenizer). A stop string's cut
        is already released and what follows it is dropped; any other end releases the
        pending text (a stop prefix that never completed)."""
        self.finish_reason = reason
        self.stop_reason = stop_reason
        if not (reason == "stop" and isinstance(stop_reason, str)):
            self._release(len(self._pending))
        self._pending = ""

    def text(self) -> str:
        """The text shown now (cumulative; O(length)): final when finished, else without a
        possible stop prefix."""
        return "".join(self._released)

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

    def delta(self) -> CompletionOutput | None:
        """What is new since the previous ``delta`` (None when nothing is): O(new)."""
        text = "".join(self._released[self._num_sent_pieces :])
        start = self._num_sent_tokens
        finish_is_new = self.is_finished and not self._is_finish_sent
        if not text and start == len(self.token_ids) and not finish_is_new:
            return None
        self._num_sent_pieces = len(self._released)
        self._num_sent_tokens = len(self.token_ids)
        self._is_finish_sent = self.is_finished
        return CompletionOutput(
            index=self.index,
            text=text,
            token_ids=self.token_ids[start:],
            cumulative_logprob=self.cumulative_logprob,
            logprobs=None if self.logprobs is None else self.logprobs[start:],
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
        output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE,
    ) -> None:
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = list(prompt_token_ids)
        self.params = params
        self.output_kind = output_kind
        self._is_prompt_logprobs_sent = False
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

    def output(self) -> RequestOutput | None:
        """This step's output in the request's ``output_kind``; None when there is nothing
        to report (FINAL_ONLY while running, or a DELTA with nothing new)."""
        if self.output_kind is RequestOutputKind.CUMULATIVE:
            return self.snapshot()
        if self.output_kind is RequestOutputKind.FINAL_ONLY:
            return self.snapshot() if self.is_finished else None
        return self.delta()

    def delta(self) -> RequestOutput | None:
        """The sequences with something new since the previous delta (see
        ``RequestOutputKind.DELTA``); the prompt token ids are shared, not copied."""
        outputs = [d for d in (sequence.delta() for sequence in self.sequences) if d is not None]
        prompt_logprobs = None
        if not self._is_prompt_logprobs_sent and self.prompt_logprobs is not None:
            prompt_logprobs = self.prompt_logprobs
            self._is_prompt_logprobs_sent = True
        if not outputs and prompt_logprobs is None:
            return None
        return RequestOutput(
            request_id=self.request_id,
            prompt=self.prompt,
            prompt_token_ids=self.prompt_token_ids,
            prompt_logprobs=prompt_logprobs,
            outputs=outputs,
            finished=self.is_finished,
            num_cached_tokens=self.num_cached_tokens,
        )
