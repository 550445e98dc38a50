"""Default SamplingParams from a model's ``generation_config.json`` (vLLM's
``generation_config`` / ``override_generation_config`` engine arguments).

Rules (``resolve_default_sampling_params``):

- ``"auto"``: read ``generation_config.json`` from the model directory (a GGUF file has none,
  so its defaults are neutral).
- ``"vllm"``: read nothing; neutral ``SamplingParams()`` defaults.
- a folder path: read ``generation_config.json`` from that folder (ValueError if missing).
- ``override_generation_config`` (a dict with the file's keys) is layered on top, in every mode.

From the merged dict these keys become defaults: ``temperature``, ``top_p``, ``top_k``,
``min_p``, ``repetition_penalty`` and ``max_new_tokens`` (as ``max_tokens``). Deliberate fix
over vLLM: ``do_sample: false`` means greedy (HF's meaning), so ``temperature`` becomes 0 unless
the override itself sets ``temperature``. The defaults apply only when ``generate``/``chat``
get no ``sampling_params``. EOS ids from the file always stop generation (model_config.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from cadence.sampling_params import SamplingParams

GENERATION_CONFIG_FILE = "generation_config.json"
# generation_config.json key -> SamplingParams field.
_SAMPLING_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "max_new_tokens": "max_tokens",
}


def read_generation_config(folder: str) -> dict[str, Any]:
    """The JSON object in ``folder/generation_config.json``; {} when there is no such file."""
    path = os.path.join(folder, GENERATION_CONFIG_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return config


def _source_config(generation_config: str, model_path: str, is_gguf: bool) -> dict[str, Any]:
    if not isinstance(generation_config, str):
        raise ValueError(
            f"generation_config must be 'auto', 'vllm' or a folder path, got {generation_config!r}"
        )
    if generation_config == "vllm":
        return {}
    if generation_config == "auto":
        return {} if is_gguf else read_generation_config(model_path)
    if not os.path.isfile(os.path.join(generation_config, GENERATION_CONFIG_FILE)):
        raise ValueError(
            f"generation_config must be 'auto', 'vllm' or a folder holding "
            f"{GENERATION_CONFIG_FILE}; {generation_config!r} is none of these"
        )
    return read_generation_config(generation_config)


def default_sampling_overrides(
    generation_config: str,
    override_generation_config: dict[str, Any] | None,
    model_path: str,
    is_gguf: bool,
) -> dict[str, Any]:
    """The SamplingParams fields (name -> value) that differ from vLLM's neutral defaults
    because of the model's or the given generation config. See the module docstring."""
    if override_generation_config is not None and not isinstance(override_generation_config, dict):
        raise ValueError(
            f"override_generation_config must be a dict or None, got {override_generation_config!r}"
        )
    override = dict(override_generation_config or {})
    config = _source_config(generation_config, model_path, is_gguf)
    config.update(override)
    fields = {
        field: config[key] for key, field in _SAMPLING_KEYS.items() if config.get(key) is not None
    }
    if config.get("do_sample") is False and "temperature" not in override:
        fields["temperature"] = 0.0
    return fields


def resolve_default_sampling_params(
    generation_config: str,
    override_generation_config: dict[str, Any] | None,
    model_path: str,
    is_gguf: bool,
) -> tuple[SamplingParams, dict[str, Any]]:
    """(the SamplingParams used when none are given, the fields that came from the config).

    Raises ValueError for a bad ``generation_config`` argument or values out of range (the
    message names the field, as SamplingParams validation does)."""
    fields = default_sampling_overrides(
        generation_config, override_generation_config, model_path, is_gguf
    )
    try:
        params = SamplingParams(**fields)
    except ValueError as error:
        raise ValueError(f"invalid default from the generation config: {error}") from error
    return params, fields


def copy_params(params: SamplingParams) -> SamplingParams:
    """An independent copy (callers may mutate what they get)."""
    return dataclasses.replace(
        params,
        stop=list(params.stop) if isinstance(params.stop, list) else params.stop,
    )
