"""The keyword arguments vLLM scripts pass to ``LLM.generate`` / ``chat`` / ``beam_search``
beyond prompts and parameters, and what cadence does with each (the rows' shape is
``spec.VllmArg``). The methods declare these keywords themselves (so a misspelt one is
Python's TypeError) and call ``check_call_kwargs`` on them first.
"""

from __future__ import annotations

from typing import Any

from cadence.vllm_compat.spec import Outcome, VllmArg, empty_or_none


def _is_tqdm_choice(value: Any) -> bool:
    return isinstance(value, bool) or callable(value)


def _no_lora(value: Any) -> bool:
    """None, or a list with None for every prompt."""
    return value is None or (isinstance(value, (list, tuple)) and all(v is None for v in value))


def _zero_priorities(value: Any) -> bool:
    return value is None or (
        isinstance(value, (list, tuple))
        and all(isinstance(p, int) and not isinstance(p, bool) and p == 0 for p in value)
    )


def _truncation(value: Any) -> bool:
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and (value == -1 or value >= 1)
    )


def _concurrency(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


_USE_TQDM = VllmArg(
    "use_tqdm",
    Outcome.IMPLEMENTED,
    "True, False or a tqdm-like callable",
    "a progress bar over finished requests (with output tokens/s); a callable is used in "
    "place of tqdm.auto.tqdm",
    _is_tqdm_choice,
    False,
    reason="it switches the progress bar",
    refused_example="yes",
)
_LORA_REQUEST = VllmArg(
    "lora_request",
    Outcome.EQUIVALENT,
    "None (or None for every prompt)",
    "no adapter: the base model, which is what cadence runs",
    _no_lora,
    None,
    reason="cadence has no LoRA adapters",
    refused_example=object(),
)
_TOKENIZATION_KWARGS = VllmArg(
    "tokenization_kwargs",
    Outcome.EQUIVALENT,
    "None or {}",
    "the tokenizer's defaults, which is how cadence tokenizes",
    empty_or_none,
    None,
    reason="cadence tokenizes prompts itself (use truncate_prompt_tokens to truncate)",
    refused_example={"max_length": 8},
)

GENERATE_ARGS: tuple[VllmArg, ...] = (
    _USE_TQDM,
    _LORA_REQUEST,
    VllmArg(
        "priority",
        Outcome.IMPLEMENTED,
        "None or 0 for every prompt",
        "every request has the same priority under first-come-first-served scheduling "
        "(vLLM refuses a non-zero priority without scheduling_policy='priority', too)",
        _zero_priorities,
        None,
        reason="cadence schedules first come, first served (no priority scheduling)",
        refused_example=[1],
    ),
    VllmArg(
        "truncate_prompt_tokens",
        Outcome.IMPLEMENTED,
        "None, -1 (max_model_len) or k >= 1",
        "only the last k tokens of every prompt are used (sets each request's "
        "SamplingParams.truncate_prompt_tokens)",
        _truncation,
        None,
        reason="it is a number of tokens",
        refused_example=0,
    ),
    VllmArg(
        "prompt_token_ids",
        Outcome.IMPLEMENTED,
        "None, a list of token ids or a list of such lists",
        "vLLM's legacy way to pass token-id prompts (same as {'prompt_token_ids': ids})",
        lambda value: True,
        None,
        deprecated=True,
    ),
    _TOKENIZATION_KWARGS,
    VllmArg(
        "prompt_adapter_request",
        Outcome.EQUIVALENT,
        "None",
        "no adapter: the base model",
        lambda value: value is None,
        None,
        reason="cadence has no prompt adapters",
        refused_example=object(),
        deprecated=True,
    ),
    VllmArg(
        "guided_options_request",
        Outcome.EQUIVALENT,
        "None",
        "unconstrained decoding, which is what cadence does",
        lambda value: value is None,
        None,
        reason="cadence has no guided decoding",
        refused_example={"guided_json": {}},
        deprecated=True,
    ),
)

CHAT_ARGS: tuple[VllmArg, ...] = (
    _USE_TQDM,
    _LORA_REQUEST,
    VllmArg(
        "mm_processor_kwargs",
        Outcome.EQUIVALENT,
        "None or {}",
        "no multimodal processor options: cadence serves text-only models",
        empty_or_none,
        None,
        reason="cadence serves text-only models (no multimodal inputs)",
        refused_example={"num_crops": 4},
    ),
)

BEAM_SEARCH_ARGS: tuple[VllmArg, ...] = (
    _USE_TQDM,
    _LORA_REQUEST,
    VllmArg(
        "concurrency_limit",
        Outcome.IMPLEMENTED,
        "None or an integer >= 1",
        "at most this many prompts are searched at a time (None: all at once)",
        _concurrency,
        None,
        reason="it is a number of prompts",
        refused_example=0,
    ),
)

CALL_ARGS: dict[str, tuple[VllmArg, ...]] = {
    "generate": GENERATE_ARGS,
    "chat": CHAT_ARGS,
    "beam_search": BEAM_SEARCH_ARGS,
}


def check_call_kwargs(method: str, **kwargs: Any) -> None:
    """ValueError naming the keyword for any refused value among ``kwargs`` (all of which must
    be rows of ``CALL_ARGS[method]``)."""
    rows = {row.name: row for row in CALL_ARGS[method]}
    for name, value in kwargs.items():
        rows[name].check(value)


def check_per_prompt(name: str, value: Any, num_prompts: int) -> None:
    """A list-valued keyword (``priority``, ``lora_request``) has one entry per prompt."""
    if isinstance(value, (list, tuple)) and len(value) != num_prompts:
        raise ValueError(f"{name} has {len(value)} entries for {num_prompts} prompts")


def legacy_token_prompts(prompts: Any, prompt_token_ids: Any) -> list[dict[str, Any]]:
    """vLLM's legacy ``generate(prompts, prompt_token_ids=...)``: one token-id prompt per list
    of ids (a flat list of ints is one prompt), with the matching text of ``prompts`` (a str,
    a list of str, or None) as its ``prompt``."""
    if not isinstance(prompt_token_ids, (list, tuple)):
        raise ValueError(f"prompt_token_ids must be a list, got {prompt_token_ids!r}")
    flat = all(isinstance(t, int) and not isinstance(t, bool) for t in prompt_token_ids)
    ids_list = [prompt_token_ids] if flat else list(prompt_token_ids)
    texts = [prompts] if isinstance(prompts, str) else prompts
    if texts is not None and len(texts) != len(ids_list):
        raise ValueError(
            f"prompts has {len(texts)} entries for {len(ids_list)} prompt_token_ids lists"
        )
    return [
        {"prompt_token_ids": ids} if texts is None else {"prompt_token_ids": ids, "prompt": text}
        for ids, text in zip(ids_list, texts or [None] * len(ids_list), strict=True)
    ]
