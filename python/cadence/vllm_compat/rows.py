"""Shared pieces of the vLLM-argument tables: row constructors (``param``, ``off``,
``inert``), value predicates and the refusal reasons, worded once."""

from __future__ import annotations

from typing import Any

from cadence.vllm_compat.spec import (
    CliType,
    Outcome,
    VllmArg,
    any_value,
    empty_or_none,
    number_in,
    one_of,
)

IMPLEMENTED = Outcome.IMPLEMENTED
EQUIVALENT = Outcome.EQUIVALENT
BOOL, INT, FLOAT, STR, JSON, LIST, NONE = (
    CliType.BOOL,
    CliType.INT,
    CliType.FLOAT,
    CliType.STR,
    CliType.JSON,
    CliType.LIST,
    CliType.NONE,
)

# Why features that cadence lacks are refused (the message says what is accepted).
ONE_DEVICE = "cadence runs the model on one device in one process (no parallelism)"
NO_GPU = "cadence has no GPU backend (no CUDA graphs, no custom kernels to select)"
GENERATE_ONLY = "cadence serves generative models only"
TEXT_ONLY = "cadence serves text-only models (no multimodal inputs)"
NO_LORA = "cadence has no LoRA or prompt adapters"
NO_SPECULATIVE = "cadence has no speculative decoding"
NO_REMOTE_CODE = "cadence never runs code from a model repository"
NO_STRUCTURED = "cadence has no structured outputs (guided decoding) or reasoning parsers"
NO_PLUGINS = "cadence has no plugin or custom-class hooks"
NO_KV_CONNECTORS = "cadence keeps its KV cache in RAM, with no transfer, offload or events"
NO_TRACING = "cadence has no OpenTelemetry tracing"
NO_SLEEP = "cadence has no sleep mode"
NO_MOE = "cadence runs no mixture-of-experts models"
NO_MAMBA = "cadence runs no Mamba (state-space) models"
CONFIG_AS_STORED = "cadence builds the model from config.json or the GGUF metadata as stored"
NO_DOWNLOAD = (
    "cadence never downloads; hub ids are found in the HF cache (set HF_HUB_CACHE or HF_HOME "
    "to the folder instead)"
)


def param(name: str, meaning: str, example: Any, refused: Any, cli: CliType, **kw: Any):
    """A vLLM argument that is an explicit parameter of LLM.__init__ (validated there)."""
    return VllmArg(
        name=name,
        outcome=IMPLEMENTED,
        accepted=kw.pop("accepted", "see meaning"),
        meaning=meaning,
        accepts=any_value,
        example=example,
        refused_example=refused,
        cli=cli,
        parameter=True,
        **kw,
    )


def off(name: str, default: Any, reason: str, refused: Any, cli: CliType, **kw: Any):
    """A feature cadence lacks: vLLM's "off" value(s) accepted (EQUIVALENT), others refused."""
    also = kw.pop("also", ())
    accepts = kw.pop("accepts", None) or one_of(default, *also)
    accepted = kw.pop("accepted", None) or " or ".join(repr(v) for v in (default, *also))
    meaning = kw.pop("meaning", None) or "vLLM's default (the feature unused): what cadence does"
    return VllmArg(
        name=name,
        outcome=kw.pop("outcome", EQUIVALENT),
        accepted=accepted,
        meaning=meaning,
        accepts=accepts,
        example=default,
        reason=reason,
        refused_example=refused,
        cli=cli,
        **kw,
    )


def inert(name: str, meaning: str, example: Any, cli: CliType, **kw: Any):
    """Any value accepted (EQUIVALENT): it only tunes something cadence does not have, and
    ``meaning`` says why that changes nothing."""
    return VllmArg(
        name=name,
        outcome=EQUIVALENT,
        accepted=kw.pop("accepted", "any value"),
        meaning=meaning,
        accepts=kw.pop("accepts", any_value),
        example=example,
        cli=cli,
        **kw,
    )


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def non_negative(value: Any) -> bool:
    return number_in(0, float("inf"))(value)


def zero_limits(value: Any) -> bool:
    """limit_mm_per_prompt: nothing, or zero items of every modality."""
    return empty_or_none(value) or (isinstance(value, dict) and all(v == 0 for v in value.values()))
