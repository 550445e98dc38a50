"""What the frontends know about the served model: a snapshot taken before the engine
thread starts, never changed afterwards, so any thread may read it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    """Attributes:
    served_model_names: the names clients may send as ``model``; the first is reported.
    default_fields: SamplingParams fields from the model's generation config (or
        ``--generation-config``), applied where a request leaves a field out (read-only).
    """

    served_model_names: tuple[str, ...]
    max_model_len: int
    max_logprobs: int
    vocab_size: int
    eos_token_ids: tuple[int, ...]
    max_beam_width: int
    default_fields: Mapping[str, Any]

    @property
    def model_name(self) -> str:
        return self.served_model_names[0]

    @classmethod
    def of(
        cls, llm_engine: Any, served_model_names: Sequence[str], default_fields: Mapping[str, Any]
    ) -> ModelInfo:
        """Reads an ``LLMEngine`` (call before its engine thread starts)."""
        core = llm_engine.core
        return cls(
            served_model_names=tuple(served_model_names),
            max_model_len=llm_engine.max_model_len,
            max_logprobs=llm_engine.max_logprobs,
            vocab_size=llm_engine.vocab_size,
            eos_token_ids=tuple(core.model_config.eos_token_ids),
            max_beam_width=core.max_beam_width,
            default_fields=MappingProxyType(dict(default_fields)),
        )
