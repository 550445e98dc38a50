"""Sampling options for one request, with vLLM's names, defaults and meanings.

Validation happens at construction and names the offending field and its allowed range
(``ValueError``); unknown keyword arguments raise ``TypeError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cadence import _core

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return float(value)


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


@dataclass
class SamplingParams:
    """How to pick tokens for one request (see vLLM's ``SamplingParams``).

    Attributes:
        temperature: in [0, 2]; 0 means greedy decoding.
        top_p: in (0, 1]; 1 keeps every token.
        top_k: 0 or -1 keeps every token, else >= 1.
        min_p: in [0, 1]; keep tokens with probability >= min_p * the best one's; 0 = off.
        seed: an integer in [-2**63, 2**63) for a private, reproducible RNG stream; None
            draws one from the engine's RNG (seeded by ``LLM(seed=...)``).
        max_tokens: new tokens to generate, >= 1; None = up to max_model_len.
        ignore_eos: keep generating past the model's EOS token(s).
        stop_token_ids: extra token ids that end generation (kept in the output).
        skip_special_tokens: leave special tokens out of the output text.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    max_tokens: int | None = 16
    ignore_eos: bool = False
    stop_token_ids: list[int] = field(default_factory=list)
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        temperature = _check_number("temperature", self.temperature)
        if not 0.0 <= temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        top_p = _check_number("top_p", self.top_p)
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        top_k = _check_int("top_k", self.top_k)
        if top_k < -1:
            raise ValueError(f"top_k must be -1, 0 (disabled) or >= 1, got {top_k}")
        min_p = _check_number("min_p", self.min_p)
        if not 0.0 <= min_p <= 1.0:
            raise ValueError(f"min_p must be in [0, 1], got {self.min_p}")
        if self.seed is not None:
            seed = _check_int("seed", self.seed)
            if not _INT64_MIN <= seed <= _INT64_MAX:
                raise ValueError(f"seed must be in [-2**63, 2**63 - 1], got {seed}")
        if self.max_tokens is not None:
            max_tokens = _check_int("max_tokens", self.max_tokens)
            if max_tokens < 1:
                raise ValueError(f"max_tokens must be >= 1 (or None), got {max_tokens}")
        if not isinstance(self.stop_token_ids, (list, tuple)):
            raise ValueError(f"stop_token_ids must be a list of ints, got {self.stop_token_ids!r}")
        self.stop_token_ids = list(self.stop_token_ids)
        for token_id in self.stop_token_ids:
            if _check_int("stop_token_ids", token_id) < 0:
                raise ValueError(f"stop_token_ids must be non-negative, got {token_id}")

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0.0

    def to_core(self, max_tokens: int) -> _core.SamplingParams:
        """The C++ engine's view, with max_tokens already resolved against the prompt."""
        seed = None if self.seed is None else self.seed & (2**64 - 1)
        return _core.SamplingParams(
            temperature=float(self.temperature),
            top_p=float(self.top_p),
            top_k=int(self.top_k),
            min_p=float(self.min_p),
            seed=seed,
            max_tokens=max_tokens,
            ignore_eos=bool(self.ignore_eos),
            stop_token_ids=self.stop_token_ids,
        )
