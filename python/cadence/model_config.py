"""Builds the C++ engine's ModelConfig from an HF config (transformers.AutoConfig) or from
GGUF metadata, and collects the EOS token ids that end generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cadence import _core
from cadence.model_source import ModelSource

SUPPORTED_ARCHITECTURES = tuple(_core.ModelConfig.supported_architectures())


def _as_id_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _rope_settings(hf_config: Any) -> tuple[float, dict[str, Any] | None]:
    """(rope_theta, scaling dict or None) from `rope_parameters` (transformers 5) or the
    older `rope_theta` + `rope_scaling` attributes."""
    parameters = getattr(hf_config, "rope_parameters", None)
    if isinstance(parameters, dict) and parameters:
        theta = parameters.get("rope_theta", getattr(hf_config, "rope_theta", 10000.0))
        return float(theta), parameters
    theta = float(getattr(hf_config, "rope_theta", 10000.0) or 10000.0)
    return theta, getattr(hf_config, "rope_scaling", None)


def _rope_scaling(scaling: dict[str, Any] | None, model: str) -> _core.RopeScaling:
    result = _core.RopeScaling()
    if not scaling:
        return result
    rope_type = scaling.get("rope_type", scaling.get("type", "default")) or "default"
    if rope_type not in ("default", "linear", "llama3"):
        raise ValueError(
            f"{model}: rope_scaling type {rope_type!r} is not supported "
            "(supported: default, linear, llama3)"
        )
    result.type = rope_type
    if rope_type in ("linear", "llama3"):
        result.factor = float(scaling["factor"])
    if rope_type == "llama3":
        result.low_freq_factor = float(scaling["low_freq_factor"])
        result.high_freq_factor = float(scaling["high_freq_factor"])
        result.original_max_position_embeddings = int(scaling["original_max_position_embeddings"])
    return result


def generation_config_eos_ids(model_dir: str) -> list[int]:
    path = Path(model_dir) / "generation_config.json"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return _as_id_list(json.load(f).get("eos_token_id"))


def sliding_window_of(hf_config: Any) -> int | None:
    """The attention window the checkpoint uses, when it is in effect."""
    window = getattr(hf_config, "sliding_window", None)
    if window is None:
        return None
    if getattr(hf_config, "use_sliding_window", True) is False:
        return None
    return int(window)


def hf_model_config(source: ModelSource) -> tuple[_core.ModelConfig, int | None]:
    """(ModelConfig, sliding window or None) of an HF directory."""
    from transformers import AutoConfig

    try:
        hf_config = AutoConfig.from_pretrained(source.path, local_files_only=True)
    except Exception as error:  # transformers raises many types for a bad config
        raise ValueError(f"cannot read the config of {source.name}: {error}") from error
    architectures = getattr(hf_config, "architectures", None) or []
    architecture = architectures[0] if architectures else type(hf_config).__name__
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ValueError(
            f"{source.name}: architecture {architecture!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    config = _core.ModelConfig()
    config.architecture = architecture
    config.vocab_size = hf_config.vocab_size
    config.hidden_size = hf_config.hidden_size
    config.intermediate_size = hf_config.intermediate_size
    config.num_layers = hf_config.num_hidden_layers
    config.num_heads = hf_config.num_attention_heads
    config.num_kv_heads = getattr(hf_config, "num_key_value_heads", None) or config.num_heads
    config.head_dim = getattr(hf_config, "head_dim", None) or 0
    config.rms_norm_eps = float(hf_config.rms_norm_eps)
    theta, scaling = _rope_settings(hf_config)
    config.rope_theta = theta
    config.rope_scaling = _rope_scaling(scaling, source.name)
    config.max_position_embeddings = hf_config.max_position_embeddings
    config.tie_word_embeddings = bool(getattr(hf_config, "tie_word_embeddings", False))
    config.attention_bias = architecture == "Qwen2ForCausalLM" or bool(
        getattr(hf_config, "attention_bias", False)
    )
    eos = _as_id_list(getattr(hf_config, "eos_token_id", None))
    for token_id in generation_config_eos_ids(source.path):
        if token_id not in eos:
            eos.append(token_id)
    config.eos_token_ids = eos
    config.finalize()
    return config, sliding_window_of(hf_config)


def load_model_config(source: ModelSource) -> tuple[_core.ModelConfig, int | None]:
    """(ModelConfig, sliding window or None) for any model source."""
    if source.is_gguf:
        try:
            return _core.load_gguf_model_config(source.path), None
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"cannot load GGUF model {source.name}: {error}") from error
    return hf_model_config(source)
