"""Result objects returned by ``LLM.generate`` (vLLM's ``cadence.outputs`` shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CompletionOutput:
    """One generated sequence.

    Attributes:
        index: position among the request's sequences (always 0 until ``n > 1`` exists).
        text: the generated text (prompt excluded).
        token_ids: the generated token ids.
        finish_reason: "stop" (EOS or a stop token), "length" (max_tokens or the context
            limit), "abort", or None while still running.
        stop_reason: the stop token id that ended generation; None for EOS or length.
    """

    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None = None
    stop_reason: int | str | None = None

    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class RequestOutput:
    """The state of one request: its prompt and its generated sequence(s)."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = False
