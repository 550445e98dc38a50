"""Builds the C++ engine's ModelConfig from an HF config (transformers.AutoConfig) or from
GGUF metadata, and collects the EOS token ids that end generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cadence import _core
from cadence.model_source import ModelSource

# The C++ architecture registry is the one list: HF name -> the loader family it shares.
_FAMILY = {info.hf_name: info.family for info in _core.architecture_registry()}
SUPPORTED_ARCHITECTURES = tuple(_FAMILY)


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


def _rope_scaling(
    scaling: dict[str, Any] | None, model: str, supported: tuple[str, ...]
) -> _core.RopeScaling:
    result = _core.RopeScaling()
    if not scaling:
        return result
    rope_type = scaling.get("rope_type", scaling.get("type", "default")) or "default"
    if rope_type == "su":  # LongRoPE's former name
        rope_type = "longrope"
    if rope_type not in supported:
        raise ValueError(
            f"{model}: rope_scaling type {rope_type!r} is not supported "
            f"(supported: {', '.join(supported)})"
        )
    result.type = rope_type
    if rope_type in ("linear", "llama3"):
        result.factor = float(scaling["factor"])
    if rope_type == "llama3":
        result.low_freq_factor = float(scaling["low_freq_factor"])
        result.high_freq_factor = float(scaling["high_freq_factor"])
        result.original_max_position_embeddings = int(scaling["original_max_position_embeddings"])
    return result


def _fill_longrope(
    hf_config: Any, scaling: dict[str, Any], result: _core.RopeScaling, model: str
) -> None:
    """LongRoPE as HF computes it: `factor` defaults to max_position_embeddings /
    original_max_position_embeddings (the config's top-level value wins, as in HF), and a
    missing attention_factor is derived from it in C++ (rope.h)."""
    original = getattr(hf_config, "original_max_position_embeddings", None)
    if original is None:
        original = scaling.get("original_max_position_embeddings")
    if original is None:
        original = hf_config.max_position_embeddings
    factor = scaling.get("factor")
    if factor is None:
        factor = hf_config.max_position_embeddings / original
    for key in ("short_factor", "long_factor"):
        if not scaling.get(key):
            raise ValueError(f"{model}: longrope rope_scaling needs {key}")
    result.short_factor = [float(f) for f in scaling["short_factor"]]
    result.long_factor = [float(f) for f in scaling["long_factor"]]
    result.factor = float(factor)
    result.original_max_position_embeddings = int(original)
    attention_factor = scaling.get("attention_factor")
    if attention_factor is not None:
        result.attention_factor = float(attention_factor)


def generation_config_eos_ids(model_dir: str) -> list[int]:
    path = Path(model_dir) / "generation_config.json"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return _as_id_list(json.load(f).get("eos_token_id"))


def sliding_window_of(hf_config: Any, model: str = "") -> tuple[int | None, list[int]]:
    """(window, layers that attend fully despite it) as the checkpoint uses them: no window
    when it is unset, disabled (use_sliding_window=False) or used by no layer (HF
    `layer_types`, e.g. Qwen2 layers below max_window_layers)."""
    window = getattr(hf_config, "sliding_window", None)
    if window is None or getattr(hf_config, "use_sliding_window", True) is False:
        return None, []
    layer_types = getattr(hf_config, "layer_types", None)
    if not layer_types:
        return int(window), []
    for layer_type in layer_types:
        if layer_type not in ("full_attention", "sliding_attention"):
            raise _unsupported(
                model, "layer_types", layer_type, "full_attention, sliding_attention"
            )
    if "sliding_attention" not in layer_types:
        return None, []
    full = [i for i, layer_type in enumerate(layer_types) if layer_type == "full_attention"]
    return int(window), full


def _unsupported(model: str, option: str, value: Any, supported: str) -> ValueError:
    return ValueError(f"{model}: {option}={value!r} is not supported (supported: {supported})")


def _fill_rms_norm_rope_blocks(
    hf_config: Any, config: _core.ModelConfig, model: str, rope_types: tuple[str, ...]
) -> None:
    """The fields every RMSNorm + RoPE decoder (Llama family, Phi-3, Gemma 2) reads alike:
    sizes, GQA, head_dim, eps, RoPE theta and scaling (one of `rope_types`)."""
    config.intermediate_size = hf_config.intermediate_size
    config.num_kv_heads = getattr(hf_config, "num_key_value_heads", None) or config.num_heads
    config.head_dim = getattr(hf_config, "head_dim", None) or 0
    config.rms_norm_eps = float(hf_config.rms_norm_eps)
    theta, scaling = _rope_settings(hf_config)
    config.rope_theta = theta
    config.rope_scaling = _rope_scaling(scaling, model, rope_types)
    config.max_position_embeddings = hf_config.max_position_embeddings


def _fill_llama_family(hf_config: Any, config: _core.ModelConfig, model: str) -> None:
    """Llama, Mistral, Qwen2, Qwen3: RMSNorm, RoPE, SwiGLU (the ModelConfig defaults)."""
    act = getattr(hf_config, "hidden_act", "silu")
    if act != "silu":
        raise _unsupported(model, "hidden_act", act, "silu")
    is_phi3 = config.architecture == "Phi3ForCausalLM"
    rope_types = ("default", "longrope") if is_phi3 else ("default", "linear", "llama3")
    _fill_rms_norm_rope_blocks(hf_config, config, model, rope_types)
    is_qwen2 = config.architecture == "Qwen2ForCausalLM"
    attention_bias = bool(getattr(hf_config, "attention_bias", False))
    # Qwen2: q/k/v carry biases, o_proj none. Llama / Qwen3 `attention_bias`: all four.
    config.attention_bias = is_qwen2 or attention_bias
    config.attention_output_bias = attention_bias and not is_qwen2
    config.mlp_bias = bool(getattr(hf_config, "mlp_bias", False))
    config.qk_norm = config.architecture == "Qwen3ForCausalLM"


def _fill_phi3(hf_config: Any, config: _core.ModelConfig, model: str) -> None:
    """Phi3ForCausalLM: the Llama blocks with fused weights, no biases, RoPE over the first
    partial_rotary_factor of each head, optional LongRoPE ("longrope" / "su")."""
    _fill_llama_family(hf_config, config, model)
    config.attention_bias = config.attention_output_bias = config.mlp_bias = False
    _, scaling = _rope_settings(hf_config)
    scaling = scaling or {}
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // config.num_heads
    factor = scaling.get("partial_rotary_factor")
    if factor is None:
        factor = getattr(hf_config, "partial_rotary_factor", None) or 1.0
    rotary_dim = int(head_dim * float(factor))
    if rotary_dim != head_dim:
        config.rotary_dim = rotary_dim
    rope_scaling = config.rope_scaling
    if rope_scaling.type == _core.RopeScalingType.longrope:
        _fill_longrope(hf_config, scaling, rope_scaling, model)
        config.rope_scaling = rope_scaling


# GPT-2 / Gemma activations that are the tanh-approximated GELU (gelu_fast is the same formula
# rearranged).
_GELU_TANH_NAMES = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def _fill_gemma2(hf_config: Any, config: _core.ModelConfig, model: str) -> None:
    """Gemma2ForCausalLM: RMSNorm with (1 + weight) in sandwich blocks, GeGLU, RoPE, embeddings
    scaled by sqrt(hidden_size), attention scaled by query_pre_attn_scalar^-1/2 with soft-capped
    scores, soft-capped final logits; sliding-window layers come from `layer_types`
    (sliding_window_of)."""
    act = getattr(hf_config, "hidden_activation", None) or "gelu_pytorch_tanh"
    if act not in _GELU_TANH_NAMES:
        raise _unsupported(model, "hidden_activation", act, ", ".join(_GELU_TANH_NAMES))
    if getattr(hf_config, "use_bidirectional_attention", None):
        raise _unsupported(model, "use_bidirectional_attention", True, "False")
    _fill_rms_norm_rope_blocks(hf_config, config, model, ("default", "linear"))
    if getattr(hf_config, "attention_bias", False):
        raise _unsupported(model, "attention_bias", True, "False")
    config.activation = "gelu_tanh_gated"
    config.sandwich_norm = True
    config.norm_weight_offset = 1.0
    config.embedding_scale = float(hf_config.hidden_size) ** 0.5
    config.attention_scale = float(hf_config.query_pre_attn_scalar) ** -0.5
    config.attn_logit_softcapping = float(getattr(hf_config, "attn_logit_softcapping", 0) or 0)
    config.final_logit_softcapping = float(getattr(hf_config, "final_logit_softcapping", 0) or 0)


def _fill_gpt2(hf_config: Any, config: _core.ModelConfig, model: str) -> None:
    """GPT2LMHeadModel: LayerNorm, learned positions, GELU-tanh, biases everywhere."""
    act = hf_config.activation_function
    if act not in _GELU_TANH_NAMES:
        raise _unsupported(model, "activation_function", act, ", ".join(_GELU_TANH_NAMES))
    for option, supported in (
        ("scale_attn_weights", True),
        ("scale_attn_by_inverse_layer_idx", False),
        ("add_cross_attention", False),
    ):
        value = getattr(hf_config, option, supported)
        if bool(value) != supported:
            raise _unsupported(model, option, value, str(supported))
    config.intermediate_size = hf_config.n_inner or 4 * config.hidden_size
    config.max_position_embeddings = hf_config.n_positions
    config.norm_kind = "layer_norm"
    config.layer_norm_eps = float(hf_config.layer_norm_epsilon)
    config.activation = "gelu_tanh"
    config.position_kind = "learned"
    config.attention_bias = config.attention_output_bias = config.mlp_bias = True


def _fill_opt(hf_config: Any, config: _core.ModelConfig, model: str) -> None:
    """OPTForCausalLM: LayerNorm (eps 1e-5, torch's default), learned positions offset by 2,
    ReLU, biases; post-norm when do_layer_norm_before is false (350m), project_in/out when
    word_embed_proj_dim != hidden_size."""
    for option, supported in (
        ("enable_bias", True),
        ("layer_norm_elementwise_affine", True),
        ("_remove_final_layer_norm", False),
    ):
        value = getattr(hf_config, option, supported)
        if bool(value) != supported:
            raise _unsupported(model, option, value, str(supported))
    act = hf_config.activation_function
    if act != "relu":
        raise _unsupported(model, "activation_function", act, "relu")
    config.intermediate_size = hf_config.ffn_dim
    config.max_position_embeddings = hf_config.max_position_embeddings
    config.norm_kind = "layer_norm"
    config.layer_norm_eps = 1e-5
    config.is_norm_before = bool(hf_config.do_layer_norm_before)
    config.activation = "relu"
    config.position_kind = "learned"
    config.position_offset = 2
    config.word_embed_proj_dim = hf_config.word_embed_proj_dim or hf_config.hidden_size
    config.attention_bias = config.attention_output_bias = config.mlp_bias = True


# config.json reader per loader family of the registry (a test checks every family has one).
_FILLERS = {
    "llama": _fill_llama_family,
    "gemma2": _fill_gemma2,
    "gpt2": _fill_gpt2,
    "opt": _fill_opt,
    "phi3": _fill_phi3,
}


def hf_model_config(source: ModelSource) -> _core.ModelConfig:
    """The ModelConfig of an HF directory. Options that would change the math but are not
    implemented raise ValueError naming the option."""
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
    config.num_layers = hf_config.num_hidden_layers
    config.num_heads = hf_config.num_attention_heads
    config.tie_word_embeddings = bool(getattr(hf_config, "tie_word_embeddings", False))
    _FILLERS[_FAMILY[architecture]](hf_config, config, source.name)
    eos = _as_id_list(getattr(hf_config, "eos_token_id", None))
    for token_id in generation_config_eos_ids(source.path):
        if token_id not in eos:
            eos.append(token_id)
    config.eos_token_ids = eos
    window, full_attention_layers = sliding_window_of(hf_config, source.name)
    if window is not None:
        config.sliding_window = window
        config.full_attention_layers = full_attention_layers
    config.finalize()
    return config


def load_model_config(source: ModelSource) -> _core.ModelConfig:
    """The ModelConfig of any source (GGUF file or HF directory)."""
    if source.is_gguf:
        try:
            return _core.load_gguf_model_config(source.path)
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"cannot load GGUF model {source.name}: {error}") from error
    return hf_model_config(source)
