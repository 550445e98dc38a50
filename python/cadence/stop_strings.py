"""Stop-string matching on a growing output text, with hold-back for streaming.

The text grows by a delta each step (from the incremental detokenizer). A stop string may
span several tokens or start in the middle of one, so each check searches the new characters
plus ``len(stop) - 1`` characters before them::

    text:   ........ already checked ....... | new delta |
                          |<- len(stop) - 1 ->|          |
                          ^ search starts here            ^ end

While a sequence runs, the longest suffix of the text that is a prefix of some stop string is
held back (not shown): if the stop later completes, the shown text never held any part of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["StopMatch", "StopStringMatcher"]


@dataclass(frozen=True)
class StopMatch:
    """A stop string found in the text.

    Attributes:
        stop: the stop string that matched.
        start: its character offset in the text.
        text_length: how many characters of the text to keep: ``start``, or
            ``start + len(stop)`` with include_stop_str_in_output.
    """

    stop: str
    start: int
    text_length: int


class StopStringMatcher:
    """Finds stop strings in one sequence's output text. Stateless between calls: the caller
    passes the whole text and how many characters are new since the previous call.

    Preconditions: ``stops`` holds non-empty strings (SamplingParams checks this).
    """

    def __init__(self, stops: Sequence[str], include_stop_str_in_output: bool = False) -> None:
        self.stops = list(stops)
        self.include_stop_str_in_output = include_stop_str_in_output
        self._max_stop_chars = max((len(stop) for stop in self.stops), default=0)

    def find(self, text: str, num_new_chars: int) -> StopMatch | None:
        """The stop string that starts earliest among those that end within the last
        ``num_new_chars`` characters of ``text`` (ties: the longer stop), or None.

        Only stops that end in the new characters are looked for: a stop wholly in older text
        was either found before or deliberately not looked for (min_tokens)."""
        if not self.stops or num_new_chars <= 0:
            return None
        num_new_chars = min(num_new_chars, len(text))
        best: StopMatch | None = None
        new_start = len(text) - num_new_chars
        for stop in self.stops:
            begin = max(0, new_start - len(stop) + 1)
            start = text.find(stop, begin)
            if start < 0:
                continue
            if (
                best is None
                or start < best.start
                or (start == best.start and len(stop) > len(best.stop))
            ):
                end = start + len(stop) if self.include_stop_str_in_output else start
                best = StopMatch(stop=stop, start=start, text_length=end)
        return best

    def num_held_back_chars(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that is a proper prefix of a stop string;
        the caller shows ``text[: len(text) - this]`` while the sequence runs. 0 when
        include_stop_str_in_output (a completed stop is shown anyway)."""
        if self.include_stop_str_in_output or not self.stops:
            return 0
        longest = min(self._max_stop_chars - 1, len(text))
        for length in range(longest, 0, -1):
            suffix = text[len(text) - length :]
            if any(len(stop) > length and stop.startswith(suffix) for stop in self.stops):
                return length
        return 0
