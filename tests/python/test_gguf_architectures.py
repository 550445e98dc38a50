"""GGUF files of every supported architecture load and match their safetensors twins.

Each case is a tiny random-weight HF model (transformers), saved as safetensors (the twin) and
written to GGUF by a minimal converter below that does what llama.cpp's convert_hf_to_gguf.py
does for that architecture: its metadata keys, its tensor names, llama's q/k row permutation,
Gemma's +1 on norm weights, Phi-3's rope factor tensors. The tokenizer metadata is copied from
the default model's GGUF (gpt2 BPE, 49152 tokens), the vocabulary the tiny models use.

cadence loads both files; the GGUF's config must equal the twin's and its prompt logits must
match the twin's to TWIN_LOGITS_ATOL, and 32 greedy tokens must be the same. The weights are
F32, so both sides compute with the same numbers; the Q8_0 case quantizes its matrices, and
its twin is saved with the dequantized values, so the same bound holds there. The only inputs
that differ are values the GGUF stores as float32 (rms_norm_eps, rope_theta, LongRoPE factors
and attention factor), which move logits by < 1e-6.

Unsupported architectures and missing keys must fail naming what is wrong.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from conftest import NUM_THREADS, TinyModel
from gguf import GGMLQuantizationType as QType
from test_architectures import (
    COMMON,
    LONGROPE_ORIGINAL_MAX,
    SLIDING_WINDOW,
    _save_tiny_model,
)
from test_architectures import _configs as arch_configs
from test_numerics import LONG_PROMPT, NUM_NEW_TOKENS, PROMPTS, _cadence_logits, _tokenize

from cadence import _core

# Both sides hold the same fp32 weights; the float32-rounded metadata above moves logits by
# < 1e-6, while a wrong name, norm or RoPE mapping moves them by 0.1 or more.
TWIN_LOGITS_ATOL = 1e-4

# The registry's GGUF names, in its order (the error message lists them so).
REGISTRY_GGUF_NAMES = [i.gguf_name for i in _core.architecture_registry() if i.gguf_name]
SUPPORTED_GGUF_ARCHITECTURES = ", ".join(REGISTRY_GGUF_NAMES)


def test_every_registry_gguf_architecture_has_a_twin() -> None:
    """The twin tests below cover each GGUF architecture the registry lists, and only those."""
    assert {gguf_name for gguf_name, _, _ in _configs().values()} == set(REGISTRY_GGUF_NAMES)


# --------------------------------------------------------------------------- the tiny models


def _configs() -> dict[str, tuple[str, str, Any]]:
    """name -> (GGUF architecture, HF architecture, config)."""
    from transformers import (
        Gemma2Config,
        LlamaConfig,
        MistralConfig,
        Phi3Config,
        Qwen2Config,
    )

    shared = arch_configs()
    return {
        # GQA; q/k/v/o biases (llama permutes the q and k biases too); untied output.
        "llama": (
            "llama",
            "LlamaForCausalLM",
            LlamaConfig(
                hidden_size=96,
                intermediate_size=200,
                num_hidden_layers=2,
                num_attention_heads=6,
                num_key_value_heads=2,
                max_position_embeddings=512,
                rope_theta=50000.0,
                rms_norm_eps=1e-5,
                attention_bias=True,
                tie_word_embeddings=False,
                **COMMON,
            ),
        ),
        # The Q8_0 case: every matrix quantized (row lengths are multiples of 32).
        "llama_q8_0": (
            "llama",
            "LlamaForCausalLM",
            LlamaConfig(
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=512,
                rms_norm_eps=1e-5,
                tie_word_embeddings=False,
                **COMMON,
            ),
        ),
        # Mistral is written as "llama" (no sliding window: llama.cpp's converter drops it);
        # tied LM head (no output.weight).
        "mistral": (
            "llama",
            "MistralForCausalLM",
            MistralConfig(
                hidden_size=64,
                intermediate_size=136,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=512,
                sliding_window=None,
                rms_norm_eps=1e-6,
                tie_word_embeddings=True,
                **COMMON,
            ),
        ),
        "qwen2": (
            "qwen2",
            "Qwen2ForCausalLM",
            Qwen2Config(
                hidden_size=96,
                intermediate_size=200,
                num_hidden_layers=2,
                num_attention_heads=6,
                num_key_value_heads=2,
                max_position_embeddings=512,
                rope_theta=20000.0,
                rms_norm_eps=1e-6,
                use_sliding_window=False,
                tie_word_embeddings=False,
                **COMMON,
            ),
        ),
        # head_dim 32 != hidden / heads, q/k RMSNorm (test_architectures' model).
        "qwen3": ("qwen3", "Qwen3ForCausalLM", shared["qwen3"]),
        # Partial rotary (12 of 16 dims) and a sliding window shorter than the long prompt.
        "phi3": (
            "phi3",
            "Phi3ForCausalLM",
            Phi3Config(
                hidden_size=96,
                intermediate_size=200,
                num_hidden_layers=2,
                num_attention_heads=6,
                num_key_value_heads=2,
                max_position_embeddings=512,
                original_max_position_embeddings=512,
                rope_parameters={
                    "rope_type": "default",
                    "rope_theta": 10000.0,
                    "partial_rotary_factor": 0.75,
                },
                sliding_window=SLIDING_WINDOW,
                rms_norm_eps=1e-5,
                **COMMON,
            ),
        ),
        # test_architectures' LongRoPE model: the long prompt passes original_max (48).
        "phi3_longrope": ("phi3", "Phi3ForCausalLM", shared["phi3_longrope"]),
        # Sliding window on layers 0 and 2; query_pre_attn_scalar == head_dim, the rule
        # llama.cpp assumes for every size but 27B. Soft caps small enough to bend logits.
        "gemma2": (
            "gemma2",
            "Gemma2ForCausalLM",
            Gemma2Config(
                hidden_size=64,
                intermediate_size=136,
                num_hidden_layers=3,
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=16,
                query_pre_attn_scalar=16,
                max_position_embeddings=512,
                sliding_window=SLIDING_WINDOW,
                attn_logit_softcapping=20.0,
                final_logit_softcapping=8.0,
                rms_norm_eps=1e-6,
                **COMMON,
            ),
        ),
    }


# --------------------------------------------------------------------------- the converter

# HF names (after "model.layers.N.") -> GGUF names (after "blk.N."), per llama.cpp's
# gguf-py tensor_mapping.py.
_LLAMA_LAYER = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_LAYER_NAMES = {
    "llama": _LLAMA_LAYER,
    "qwen2": _LLAMA_LAYER,
    "qwen3": {**_LLAMA_LAYER, "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"},
    "phi3": {
        "input_layernorm": "attn_norm",
        "self_attn.qkv_proj": "attn_qkv",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    },
    "gemma2": {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "post_attention_norm",
        "pre_feedforward_layernorm": "ffn_norm",
        "post_feedforward_layernorm": "post_ffw_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    },
}
_GLOBAL_NAMES = {
    "model.embed_tokens": "token_embd",
    "model.norm": "output_norm",
    "lm_head": "output",
}


def _gguf_name(arch: str, hf_name: str) -> str:
    stem, suffix = hf_name.rsplit(".", 1)
    if stem.startswith("model.layers."):
        layer, rest = stem[len("model.layers.") :].split(".", 1)
        return f"blk.{layer}.{_LAYER_NAMES[arch][rest]}.{suffix}"
    return f"{_GLOBAL_NAMES[stem]}.{suffix}"


def _llama_permute(rows: np.ndarray, num_heads: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: each head's rows (2, head_dim/2) -> (head_dim/2, 2)."""
    shape = rows.shape
    return (
        rows.reshape(num_heads, 2, shape[0] // num_heads // 2, *shape[1:])
        .swapaxes(1, 2)
        .reshape(shape)
    )


def _llama_unpermute(rows: np.ndarray, num_heads: int) -> np.ndarray:
    shape = rows.shape
    return (
        rows.reshape(num_heads, shape[0] // num_heads // 2, 2, *shape[1:])
        .swapaxes(1, 2)
        .reshape(shape)
    )


def _gguf_tensors(arch: str, model: Any) -> dict[str, tuple[str, np.ndarray]]:
    """GGUF name -> (HF name, fp32 values in GGUF layout) of an HF model's weights."""
    config = model.config
    tensors = {}
    for hf_name, param in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # not in the safetensors, so not in the GGUF
        values = param.detach().float().numpy().copy()
        if arch == "llama" and ".self_attn.q_proj." in hf_name:
            values = _llama_permute(values, config.num_attention_heads)
        elif arch == "llama" and ".self_attn.k_proj." in hf_name:
            values = _llama_permute(values, config.num_key_value_heads)
        elif arch == "gemma2" and hf_name.endswith("norm.weight"):
            values = values + 1.0  # llama.cpp folds Gemma's (1 + weight) into the file
        tensors[_gguf_name(arch, hf_name)] = (hf_name, values)
    return tensors


def _rope_parameters(config: Any) -> dict[str, Any]:
    parameters = getattr(config, "rope_parameters", None) or {}
    return {"rope_theta": getattr(config, "rope_theta", 10000.0), **parameters}


def _write_metadata(writer: gguf.GGUFWriter, arch: str, config: Any) -> None:
    """The architecture keys llama.cpp's converter writes for `arch`."""
    rope = _rope_parameters(config)
    heads = config.num_attention_heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    head_dim = config.to_dict().get("head_dim")
    if head_dim is not None:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if arch != "gemma2":  # Gemma2Model writes no rope base (10000, the default)
        writer.add_rope_freq_base(rope["rope_theta"])
    if arch == "llama":
        writer.add_vocab_size(config.vocab_size)
        writer.add_rope_dimension_count(head_dim or config.hidden_size // heads)
    elif arch == "phi3":
        original = getattr(config, "original_max_position_embeddings", None)
        original = original or rope.get("original_max_position_embeddings")
        writer.add_rope_scaling_orig_ctx_len(original)
        partial = rope.get("partial_rotary_factor", 1.0)
        writer.add_rope_dimension_count(int(partial * config.hidden_size) // heads)
        writer.add_sliding_window(config.sliding_window or 0)
        if rope.get("long_factor"):
            scale = config.max_position_embeddings / original
            attn_factor = math.sqrt(1 + math.log(scale) / math.log(original)) if scale > 1 else 1.0
            writer.add_rope_scaling_attn_factors(attn_factor)
    elif arch == "gemma2":
        writer.add_attn_logit_softcapping(config.attn_logit_softcapping)
        writer.add_final_logit_softcapping(config.final_logit_softcapping)
        writer.add_sliding_window(config.sliding_window)


def _extra_tensors(arch: str, config: Any) -> dict[str, np.ndarray]:
    """Phi-3 LongRoPE factors, as the converter's generate_extra_tensors yields them."""
    rope = _rope_parameters(config)
    if arch != "phi3" or not rope.get("long_factor"):
        return {}
    return {
        "rope_factors_long.weight": np.asarray(rope["long_factor"], dtype=np.float32),
        "rope_factors_short.weight": np.asarray(rope["short_factor"], dtype=np.float32),
    }


# The default GGUF's tokenizer keys and gguf's typed writer for each.
_TOKENIZER_WRITERS = {
    "tokenizer.ggml.model": gguf.GGUFWriter.add_tokenizer_model,
    "tokenizer.ggml.pre": gguf.GGUFWriter.add_tokenizer_pre,
    "tokenizer.ggml.tokens": gguf.GGUFWriter.add_token_list,
    "tokenizer.ggml.token_type": gguf.GGUFWriter.add_token_types,
    "tokenizer.ggml.merges": gguf.GGUFWriter.add_token_merges,
    "tokenizer.ggml.bos_token_id": gguf.GGUFWriter.add_bos_token_id,
    "tokenizer.ggml.eos_token_id": gguf.GGUFWriter.add_eos_token_id,
    "tokenizer.ggml.unknown_token_id": gguf.GGUFWriter.add_unk_token_id,
    "tokenizer.ggml.padding_token_id": gguf.GGUFWriter.add_pad_token_id,
    "tokenizer.ggml.add_bos_token": gguf.GGUFWriter.add_add_bos_token,
    "tokenizer.ggml.add_space_prefix": gguf.GGUFWriter.add_add_space_prefix,
    "tokenizer.chat_template": gguf.GGUFWriter.add_chat_template,
}


def _tokenizer_metadata(path: str) -> dict[str, Any]:
    """The tokenizer.* metadata of a GGUF. Read with cadence's metadata parser: gguf's
    GGUFReader takes ~10 s on the default model (a numpy view per vocabulary string)."""
    from cadence.tokenizer.gguf_tokenizer import _read_metadata

    metadata = {k: v for k, v in _read_metadata(path).items() if k.startswith("tokenizer.")}
    unknown = set(metadata) - set(_TOKENIZER_WRITERS)
    assert not unknown, f"no writer for tokenizer keys {sorted(unknown)}"
    return metadata


def write_twin_gguf(
    path: Path,
    arch: str,
    model: Any,
    tokenizer_metadata: dict[str, Any],
    *,
    quantize: bool = False,
    drop_keys: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """Writes `model` as a GGUF of architecture `arch` (F32, or Q8_0 matrices when
    `quantize`), leaving out the metadata keys in `drop_keys`. Returns the HF name ->
    values the file holds, in HF layout (the dequantized values where quantized)."""
    writer = gguf.GGUFWriter(str(path), arch)
    _write_metadata(writer, arch, model.config)
    for key, value in tokenizer_metadata.items():
        _TOKENIZER_WRITERS[key](writer, value)
    for key in drop_keys:
        assert writer.kv_data[0].pop(key, None) is not None, f"{key} was not written"

    stored = {}
    for gguf_name, (hf_name, values) in _gguf_tensors(arch, model).items():
        if quantize and values.ndim == 2:
            raw = gguf.quants.quantize(values, QType.Q8_0)
            writer.add_tensor(gguf_name, raw, raw_dtype=QType.Q8_0)
            values = gguf.quants.dequantize(raw, QType.Q8_0).reshape(values.shape)
        else:
            writer.add_tensor(gguf_name, values)
        if arch == "llama" and ".self_attn.q_proj." in hf_name:
            values = _llama_unpermute(values, model.config.num_attention_heads)
        elif arch == "llama" and ".self_attn.k_proj." in hf_name:
            values = _llama_unpermute(values, model.config.num_key_value_heads)
        elif arch == "gemma2" and hf_name.endswith("norm.weight"):
            values = values - 1.0
        stored[hf_name] = values
    for name, values in _extra_tensors(arch, model.config).items():
        writer.add_tensor(name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return stored


# --------------------------------------------------------------------------- fixtures


class Twin:
    """A GGUF file, its safetensors twin, and cadence LLMs on both (created on first use)."""

    def __init__(self, name: str, gguf_arch: str, gguf_path: Path, twin: TinyModel):
        self.name = name
        self.gguf_arch = gguf_arch
        self.gguf_path = gguf_path
        self.twin = twin
        self._llms: dict[str, Any] = {}

    def llm(self, which: str):
        if which not in self._llms:
            from cadence import LLM

            path = str(self.gguf_path) if which == "gguf" else self.twin.path
            self._llms[which] = LLM(model=path, dtype="float32", num_threads=NUM_THREADS)
        return self._llms[which]


@pytest.fixture(scope="module")
def tokenizer_metadata(default_model_path: str) -> dict[str, Any]:
    return _tokenizer_metadata(default_model_path)


@pytest.fixture(scope="module")
def twins(tmp_path_factory, gguf_tokenizer, tokenizer_metadata) -> dict[str, Twin]:
    import torch

    torch.set_num_threads(NUM_THREADS)
    root = tmp_path_factory.mktemp("gguf_twins")
    result = {}
    for index, (name, (arch, hf_arch, config)) in enumerate(_configs().items()):
        twin_dir = root / name
        model = _save_tiny_model(config, hf_arch, twin_dir, gguf_tokenizer, 100 + index)
        gguf_path = root / f"{name}.gguf"
        stored = write_twin_gguf(
            gguf_path, arch, model, tokenizer_metadata, quantize=name.endswith("_q8_0")
        )
        if name.endswith("_q8_0"):  # the twin holds exactly the values the GGUF holds
            with torch.no_grad():
                for hf_name, param in model.state_dict().items():
                    if hf_name in stored:
                        param.copy_(torch.from_numpy(stored[hf_name]))
            model.save_pretrained(str(twin_dir), safe_serialization=True)
        result[name] = Twin(name, arch, gguf_path, TinyModel(name, str(twin_dir), model))
    return result


@pytest.fixture(scope="module", params=list(_configs()))
def twin(request: pytest.FixtureRequest, twins: dict[str, Twin]) -> Twin:
    return twins[request.param]


# --------------------------------------------------------------------------- tests

# ModelConfig fields that must be equal whichever file the model came from (architecture
# differs for Mistral, norm_weight_offset for Gemma 2: see test_config_matches_twin).
_SAME_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "rotary_dim",
    "max_position_embeddings",
    "sliding_window",
    "full_attention_layers",
    "tie_word_embeddings",
    "attention_bias",
    "attention_output_bias",
    "mlp_bias",
    "qk_norm",
    "activation",
    "sandwich_norm",
    "eos_token_ids",
)
_CLOSE_FIELDS = (
    "rms_norm_eps",
    "rope_theta",
    "embedding_scale",
    "attention_scale",
    "attn_logit_softcapping",
    "final_logit_softcapping",
)


def test_config_matches_twin(twin: Twin) -> None:
    ours = twin.llm("gguf").llm_engine.core.model_config
    theirs = twin.llm("twin").llm_engine.core.model_config
    for field in _SAME_FIELDS:
        assert getattr(ours, field) == getattr(theirs, field), field
    for field in _CLOSE_FIELDS:
        assert getattr(ours, field) == pytest.approx(getattr(theirs, field), rel=1e-6), field
    expected_arch = "LlamaForCausalLM" if twin.gguf_arch == "llama" else theirs.architecture
    assert ours.architecture == expected_arch
    # llama.cpp's converter adds Gemma's 1 to the norm weights; HF checkpoints do not.
    assert (ours.norm_weight_offset, theirs.norm_weight_offset) == (
        (0.0, 1.0) if twin.gguf_arch == "gemma2" else (0.0, 0.0)
    )
    ours_rope, theirs_rope = ours.rope_scaling, theirs.rope_scaling
    assert ours_rope.type == theirs_rope.type
    if ours_rope.type == "longrope":
        assert ours_rope.original_max_position_embeddings == LONGROPE_ORIGINAL_MAX
        assert ours_rope.factor == pytest.approx(theirs_rope.factor)
        for side in ("short_factor", "long_factor"):
            assert list(getattr(ours_rope, side)) == pytest.approx(list(getattr(theirs_rope, side)))
        # The file stores the attention factor; HF derives the same value from `factor`.
        expected = math.sqrt(1 + math.log(512 / LONGROPE_ORIGINAL_MAX) / math.log(48))
        assert ours_rope.attention_factor == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("prompt_name", ["short", "long", "chat"])
def test_logits_match_twin(twin: Twin, prompt_name: str) -> None:
    token_ids = _tokenize(twin.llm("gguf"), PROMPTS[prompt_name])
    ours = _cadence_logits(twin.llm("gguf"), token_ids)
    theirs = _cadence_logits(twin.llm("twin"), token_ids)
    assert np.isfinite(ours).all()
    diff = np.abs(ours - theirs)
    assert diff.max() <= TWIN_LOGITS_ATOL, (
        f"{twin.name}: max |GGUF - safetensors| logit difference {diff.max():.3g} at "
        f"{np.unravel_index(int(diff.argmax()), diff.shape)}"
    )


def test_greedy_matches_twin(twin: Twin) -> None:
    from cadence import SamplingParams

    prompt_ids = _tokenize(twin.llm("gguf"), LONG_PROMPT)
    params = SamplingParams(temperature=0.0, max_tokens=NUM_NEW_TOKENS, ignore_eos=True)
    tokens = {}
    for which in ("gguf", "twin"):
        [output] = twin.llm(which).generate(
            {"prompt_token_ids": prompt_ids}, params, use_tqdm=False
        )
        tokens[which] = list(output.outputs[0].token_ids)
    assert len(tokens["gguf"]) == NUM_NEW_TOKENS
    assert tokens["gguf"] == tokens["twin"]


def test_tokenizer_comes_from_the_file(twin: Twin, gguf_tokenizer) -> None:
    """The GGUF's tokenizer metadata (copied from the default model) gives the default
    model's token ids; the logits tests feed these ids to both sides."""
    text = PROMPTS["chat"] + PROMPTS["code"]
    assert _tokenize(twin.llm("gguf"), text) == list(gguf_tokenizer.encode(text))


# --------------------------------------------------------------------------- errors


def _tiny_gguf(tmp_path: Path, twins: dict[str, Twin], name: str, tokenizer_metadata, **kwargs):
    twin = twins[name]
    path = tmp_path / f"{name}_edited.gguf"
    write_twin_gguf(path, twin.gguf_arch, twin.twin.hf_model, tokenizer_metadata, **kwargs)
    return path


def test_unsupported_architecture_lists_supported_ones(tmp_path: Path) -> None:
    from cadence import LLM, _core

    path = tmp_path / "mamba.gguf"
    writer = gguf.GGUFWriter(str(path), "mamba")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    message = (
        f"GGUF architecture 'mamba' is not supported (supported: {SUPPORTED_GGUF_ARCHITECTURES})"
    )
    expected = re.escape(message)
    with pytest.raises(RuntimeError, match=expected) as info:
        _core.load_gguf_model_config(str(path))
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match=expected):
        LLM(model=str(path), num_threads=NUM_THREADS)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("qwen3", "qwen3.attention.layer_norm_rms_epsilon"),
        ("gemma2", "gemma2.block_count"),
        ("phi3_longrope", "phi3.rope.scaling.original_context_length"),
    ],
)
def test_missing_key_is_named(
    tmp_path: Path, twins, tokenizer_metadata, name: str, key: str
) -> None:
    from cadence import LLM, _core

    path = _tiny_gguf(tmp_path, twins, name, tokenizer_metadata, drop_keys=(key,))
    with pytest.raises(RuntimeError, match=f"missing .*metadata '{key}'") as info:
        _core.load_gguf_model_config(str(path))
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match=f"'{key}'"):
        LLM(model=str(path), num_threads=NUM_THREADS)


def test_gemma2_attention_scale_follows_llama_cpp(tmp_path: Path) -> None:
    """GGUF has no query_pre_attn_scalar: like llama.cpp, 1/sqrt(head_dim) for every size
    but the 27B (46 layers), which uses 1/sqrt(hidden_size / num_heads)."""
    from cadence import _core

    def config_for(num_layers: int):
        path = tmp_path / f"gemma2_{num_layers}.gguf"
        writer = gguf.GGUFWriter(str(path), "gemma2")
        writer.add_context_length(8192)
        writer.add_embedding_length(4608)
        writer.add_feed_forward_length(36864)
        writer.add_block_count(num_layers)
        writer.add_head_count(32)
        writer.add_head_count_kv(16)
        writer.add_key_length(128)
        writer.add_value_length(128)
        writer.add_layer_norm_rms_eps(1e-6)
        writer.add_vocab_size(256000)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return _core.load_gguf_model_config(str(path))

    big, other = config_for(46), config_for(42)
    assert big.attention_scale == pytest.approx(144**-0.5)
    assert other.attention_scale == pytest.approx(128**-0.5)
    # llama.cpp's defaults where the file has no soft caps or window.
    assert (big.attn_logit_softcapping, big.final_logit_softcapping) == (50.0, 30.0)
    assert big.sliding_window == 4096
    assert list(big.full_attention_layers) == list(range(1, 46, 2))
    assert big.embedding_scale == pytest.approx(4608**0.5)
