"""Incremental detokenization for streaming outputs.

Decoding token by token is wrong for subword tokenizers: a character can be split across
tokens (byte-level BPE, SentencePiece byte fallback), and whether a token starts with a space
can depend on what precedes it (SentencePiece strips the leading space of the first token).
Decoding everything each step is right but costs O(length) per token.

``IncrementalDetokenizer`` decodes a short window of recent tokens instead, twice, and emits the
difference (the idea of vLLM's prefix/read offsets)::

    output ids:  t0 t1 t2 ... t(p-1) | tp ... t(r-1) | tr ... t(n-1)
                 already emitted     | prefix window | new, not yet emitted
                                     ^ prefix_offset ^ read_offset

    delta = decode(ids[p:n])[len(decode(ids[p:r])):]

Both decodes see the same first token, so any position-dependent effect at the window start
(a stripped leading space) cancels out. ``read_offset`` only moves to a point where the decoded
text is complete, so the window never starts inside a character.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Sequence
from typing import Any

from cadence.tokenizer.gguf_tokenizer import bytes_to_unicode

__all__ = ["IncrementalDetokenizer"]

_REPLACEMENT_CHAR = "\ufffd"
_BYTE_FALLBACK_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
# UTF-8 sequences are at most 4 bytes, so an unfinished one is within the last 3 bytes; one more
# byte lets the decoder see the lead byte's predecessor.
_TAIL_BYTES = 4


class IncrementalDetokenizer:
    """Turns a stream of output token ids into text deltas.

    Contract, after every call of ``append``:

    - ``text`` (the concatenation of all deltas so far) equals
      ``tokenizer.decode(output_ids, skip_special_tokens=skip_special_tokens,
      clean_up_tokenization_spaces=False)`` whenever that decode does not end in an incomplete
      UTF-8 sequence; otherwise the unfinished character is held back. Nothing emitted is ever
      taken back: ``text`` is a prefix of every later such complete decode.
    - A U+FFFD is never emitted for a character that is merely split across tokens; one produced
      by genuinely invalid bytes is emitted like any other character.
    - Each call costs O(window) decoding work, where the window is the tokens since the
      previous emission plus the newly appended ones, independent of the output length.

    The output text is the decode of the output tokens only. ``prompt_token_ids`` are accepted
    for parity with vLLM's detokenizer but deliberately not used as decoding context: a
    SentencePiece tokenizer would then keep the leading space that ``decode(output_ids)`` strips.

    Works with any Hugging Face tokenizer that has ``decode``; exact byte-level hold-back needs a
    ``tokenizers`` backend with a ByteLevel or ByteFallback decoder. For other decoders a trailing
    U+FFFD is held back until more text arrives or ``flush`` is called.

    Known limit: ``tokenizers``' ByteFallback decoder (SentencePiece ``<0xNN>`` tokens) renders a
    whole run of consecutive byte tokens as U+FFFD once any byte in it is invalid or the run ends
    mid-character, including characters of the run that were already complete (and emitted).
    Text is never taken back, so only for such invalid runs ``text`` keeps those characters where
    ``decode`` shows U+FFFD. Valid UTF-8 output is unaffected.
    """

    def __init__(
        self, tokenizer: Any, prompt_token_ids: Sequence[int], skip_special_tokens: bool = True
    ) -> None:
        self._tokenizer = tokenizer
        self._skip_special_tokens = skip_special_tokens
        self.num_prompt_tokens = len(prompt_token_ids)  # kept for callers; not decoding context
        # Output ids that reach the decoder. Skipped special tokens are dropped on arrival: the
        # decode would drop them anyway, and keeping them could leave a window whose first
        # tokens decode to nothing, which would break the stripped-leading-space cancellation.
        self._ids: list[int] = []
        self._skipped_ids = _special_ids(tokenizer) if skip_special_tokens else frozenset()
        self._token_bytes = _token_bytes_function(tokenizer)
        self._prefix_offset = 0
        self._read_offset = 0
        self._parts: list[str] = []
        self._is_finished = False

    @property
    def text(self) -> str:
        """All output text emitted so far (the concatenation of every returned delta)."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def append(self, new_token_ids: Sequence[int]) -> str:
        """Add newly generated token ids; return the text they complete (possibly "").

        Raises:
            RuntimeError: called after ``flush``.
        """
        if self._is_finished:
            raise RuntimeError("IncrementalDetokenizer.append called after flush()")
        skipped = self._skipped_ids
        self._ids.extend(token_id for token_id in new_token_ids if token_id not in skipped)
        if len(self._ids) == self._read_offset:
            return ""
        prefix_text = self._decode(self._prefix_offset, self._read_offset)
        window_text = self._decode(self._prefix_offset, len(self._ids))
        if window_text.endswith(_REPLACEMENT_CHAR) and self._ends_incomplete():
            return ""  # wait for the rest of the character
        if len(window_text) <= len(prefix_text):
            return ""  # nothing new yet (e.g. a token that decodes to ""); keep the window
        if window_text.startswith(prefix_text):
            delta = window_text[len(prefix_text) :]
        else:
            # The decoder rewrote text before the window boundary; fall back to a full decode.
            delta = self._full_delta()
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return self._emit(delta)

    def flush(self) -> str:
        """Finish the stream: emit whatever is held back, after which ``text`` equals the full
        decode (but see the ByteFallback limit in the class docstring).

        Call once, when the request has finished: a character still incomplete then is emitted
        as U+FFFD, as ``decode`` renders it. Later calls return ""; ``append`` raises.
        """
        if self._is_finished:
            return ""
        self._is_finished = True
        return self._emit(self._full_delta())

    def _emit(self, delta: str) -> str:
        if delta:
            self._parts.append(delta)
        return delta

    def _full_delta(self) -> str:
        """O(length) slow path: the decode of all output ids beyond what was emitted."""
        full = self._decode(0, len(self._ids))
        emitted = self.text
        return full[len(emitted) :] if full.startswith(emitted) else ""

    def _decode(self, start: int, stop: int) -> str:
        if start >= stop:
            return ""
        return self._tokenizer.decode(
            self._ids[start:stop],
            skip_special_tokens=self._skip_special_tokens,
            clean_up_tokenization_spaces=False,
        )

    def _ends_incomplete(self) -> bool:
        """Whether the window's bytes end in the unfinished start of a UTF-8 character.

        Without a byte view of the tokens, any trailing U+FFFD counts as unfinished."""
        if self._token_bytes is None:
            return True
        tail = b""
        index = len(self._ids)
        while index > self._prefix_offset and len(tail) < _TAIL_BYTES:
            index -= 1
            tail = self._token_bytes(self._ids[index]) + tail
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        decoder.decode(tail[-_TAIL_BYTES:], final=False)
        pending, _ = decoder.getstate()
        return bool(pending)


def _special_ids(tokenizer: Any) -> frozenset[int]:
    """Ids that ``decode(..., skip_special_tokens=True)`` drops."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        added = backend.get_added_tokens_decoder()
        return frozenset(token_id for token_id, token in added.items() if token.special)
    return frozenset(getattr(tokenizer, "all_special_ids", ()))


def _token_bytes_function(tokenizer: Any) -> Callable[[int], bytes] | None:
    """A function from token id to the bytes its decoder produces for it, or None when the
    decoder is not one whose bytes we know (ByteLevel, or ByteFallback for SentencePiece)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    if decoder is None:
        return None
    state = decoder.__getstate__()
    id_to_token = backend.id_to_token
    if b'"ByteLevel"' in state:
        byte_of = {char: bytes([byte]) for byte, char in bytes_to_unicode().items()}

        def byte_level(token_id: int) -> bytes:
            token = id_to_token(token_id) or ""
            # Characters outside the byte alphabet (in added tokens) decode as themselves.
            return b"".join(byte_of.get(char) or char.encode("utf-8") for char in token)

        return byte_level
    if b'"ByteFallback"' in state:

        def byte_fallback(token_id: int) -> bytes:
            token = id_to_token(token_id) or ""
            match = _BYTE_FALLBACK_TOKEN.fullmatch(token)
            if match is not None:
                return bytes([int(match.group(1), 16)])
            return token.replace("\u2581", " ").encode("utf-8")

        return byte_fallback
    return None
