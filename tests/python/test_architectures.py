"""Architectures beyond Llama/Qwen2: Qwen3 (q/k RMSNorm), GPT-2 (Conv1D weights, learned
positions, LayerNorm, GELU-tanh) and OPT (positions offset by 2, ReLU, pre- and post-norm, the
350m-style project_in/out). Each is a tiny random-weight model built with transformers and
saved with the default model's tokenizer; logits must match HF fp32 and greedy tokens must
match HF for 32 tokens (same tolerances and top-k rule as test_numerics.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import (
    BOS_TOKEN_ID,
    EOS_TOKEN_ID,
    NUM_THREADS,
    VOCAB_SIZE,
    TinyModel,
    hf_greedy_generate,
    hf_prompt_logits,
)
from test_numerics import (
    LONG_PROMPT,
    NUM_NEW_TOKENS,
    PROMPTS,
    TINY_LOGITS_ATOL,
    _cadence_logits,
    _check_greedy_with_topk_rule,
    _check_logits_close,
    _tokenize,
)

COMMON = dict(
    vocab_size=VOCAB_SIZE,
    bos_token_id=BOS_TOKEN_ID,
    eos_token_id=EOS_TOKEN_ID,
    pad_token_id=EOS_TOKEN_ID,
    # As conftest: large enough that greedy choices are not decided by fp32 noise.
    initializer_range=0.1,
    attn_implementation="eager",
)


def _configs() -> dict[str, Any]:
    from transformers import GPT2Config, OPTConfig, Qwen3Config

    return {
        # GQA, head_dim 32 != hidden / heads, untied output.
        "qwen3": Qwen3Config(
            hidden_size=96,
            intermediate_size=200,
            num_hidden_layers=3,
            num_attention_heads=6,
            num_key_value_heads=2,
            head_dim=32,
            max_position_embeddings=512,
            rope_theta=20000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=False,
            **COMMON,
        ),
        # attention_bias: q/k/v *and* o_proj biases; tied LM head.
        "qwen3_bias_tied": Qwen3Config(
            hidden_size=64,
            intermediate_size=136,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            head_dim=16,
            max_position_embeddings=512,
            attention_bias=True,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
            **COMMON,
        ),
        # n_inner unset: the MLP is 4 * n_embd wide.
        "gpt2": GPT2Config(
            n_embd=96,
            n_layer=3,
            n_head=6,
            n_positions=512,
            activation_function="gelu_new",
            layer_norm_epsilon=1e-5,
            **COMMON,
        ),
        # Pre-norm, final LayerNorm (125m-style).
        "opt": OPTConfig(
            hidden_size=96,
            ffn_dim=200,
            num_hidden_layers=3,
            num_attention_heads=6,
            max_position_embeddings=512,
            word_embed_proj_dim=96,
            do_layer_norm_before=True,
            **COMMON,
        ),
        # 350m-style: post-norm, no final LayerNorm, 48-wide embeddings with project_in/out.
        "opt_350m_style": OPTConfig(
            hidden_size=96,
            ffn_dim=200,
            num_hidden_layers=3,
            num_attention_heads=6,
            max_position_embeddings=512,
            word_embed_proj_dim=48,
            do_layer_norm_before=False,
            **COMMON,
        ),
    }


ARCHITECTURES = {
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_bias_tied": "Qwen3ForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "opt": "OPTForCausalLM",
    "opt_350m_style": "OPTForCausalLM",
}


def _randomize_norms_and_biases(model: Any) -> None:
    """Default init leaves norm weights at 1 and biases at 0 (GPT-2's ln_1 etc. are not caught
    by conftest's name-based rule), which would let an engine that ignores them pass."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm) or "RMSNorm" in type(module).__name__:
                module.weight.uniform_(0.5, 1.5)
        for name, param in model.named_parameters():
            if name.endswith(".bias"):
                param.normal_(0.0, 0.5)


def _save_tiny_model(config: Any, architecture: str, path: Path, tokenizer: Any, seed: int):
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    torch.manual_seed(seed)
    config.architectures = [architecture]
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _randomize_norms_and_biases(model)
    model.eval()
    model.save_pretrained(str(path), safe_serialization=True)
    GenerationConfig(
        bos_token_id=BOS_TOKEN_ID, eos_token_id=EOS_TOKEN_ID, pad_token_id=EOS_TOKEN_ID
    ).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return model


@pytest.fixture(scope="module")
def arch_models(tmp_path_factory: pytest.TempPathFactory, gguf_tokenizer) -> dict[str, TinyModel]:
    import torch

    torch.set_num_threads(NUM_THREADS)
    root = tmp_path_factory.mktemp("arch_models")
    models = {}
    for index, (name, config) in enumerate(_configs().items()):
        model = _save_tiny_model(config, ARCHITECTURES[name], root / name, gguf_tokenizer, index)
        models[name] = TinyModel(name=name, path=str(root / name), hf_model=model)
    return models


@pytest.fixture(scope="module")
def arch_llms() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def arch_model(request: pytest.FixtureRequest, arch_models: dict[str, TinyModel]) -> TinyModel:
    return arch_models[request.param]


@pytest.fixture
def arch_llm(arch_model: TinyModel, arch_llms: dict[str, Any]):
    if arch_model.name not in arch_llms:
        from cadence import LLM

        arch_llms[arch_model.name] = LLM(model=arch_model.path, num_threads=NUM_THREADS)
    return arch_llms[arch_model.name]


def test_config_maps_the_architecture(arch_model: TinyModel, arch_llm) -> None:
    config = arch_llm.llm_engine.core.model_config
    assert config.architecture == ARCHITECTURES[arch_model.name]
    expected = {
        "qwen3": ("rms_norm", "silu", "rope", 0, True, True),
        "qwen3_bias_tied": ("rms_norm", "silu", "rope", 0, True, True),
        "gpt2": ("layer_norm", "gelu_tanh", "learned", 0, False, True),
        "opt": ("layer_norm", "relu", "learned", 2, False, True),
        "opt_350m_style": ("layer_norm", "relu", "learned", 2, False, False),
    }[arch_model.name]
    actual = (
        config.norm_kind,
        config.activation,
        config.position_kind,
        config.position_offset,
        config.qk_norm,
        config.is_norm_before,
    )
    assert actual == expected
    if arch_model.name == "opt_350m_style":
        assert config.word_embed_proj_dim == 48 and config.hidden_size == 96


@pytest.mark.parametrize("prompt_name", ["short", "single_token", "long", "chat"])
def test_logits_match_hf(arch_model: TinyModel, arch_llm, prompt_name: str) -> None:
    token_ids = _tokenize(arch_llm, PROMPTS[prompt_name])
    if prompt_name == "long":
        assert len(token_ids) > 64
    expected = hf_prompt_logits(arch_model.hf_model, token_ids)
    _check_logits_close(_cadence_logits(arch_llm, token_ids), expected, TINY_LOGITS_ATOL)


def test_logits_at_every_length(arch_model: TinyModel, arch_llm) -> None:
    """Prefixes around the 16-token KV block boundaries (learned positions index by position)."""
    token_ids = _tokenize(arch_llm, LONG_PROMPT)[:34]
    expected = hf_prompt_logits(arch_model.hf_model, token_ids)
    for length in (1, 2, 16, 17, 33, 34):
        _check_logits_close(
            _cadence_logits(arch_llm, token_ids[:length]), expected[:length], TINY_LOGITS_ATOL
        )


@pytest.mark.parametrize("prompt_name", ["short", "code", "long"])
def test_greedy_matches_hf(arch_model: TinyModel, arch_llm, prompt_name: str) -> None:
    from cadence import SamplingParams

    prompt_ids = _tokenize(arch_llm, PROMPTS[prompt_name])
    theirs, hf_scores = hf_greedy_generate(arch_model.hf_model, prompt_ids, NUM_NEW_TOKENS)
    params = SamplingParams(temperature=0.0, max_tokens=NUM_NEW_TOKENS, ignore_eos=True)
    [output] = arch_llm.generate({"prompt_token_ids": prompt_ids}, params, use_tqdm=False)
    ours = list(output.outputs[0].token_ids)
    assert len(ours) == NUM_NEW_TOKENS
    _check_greedy_with_topk_rule(arch_llm, prompt_ids, ours, theirs, hf_scores)


def test_batch_does_not_change_greedy_output(arch_model: TinyModel, arch_llm) -> None:
    """All prompts in one batch (mixed prefill and decode) give each prompt's solo tokens."""
    from cadence import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
    prompts = [{"prompt_token_ids": _tokenize(arch_llm, text)} for text in PROMPTS.values()]
    together = arch_llm.generate(prompts, params, use_tqdm=False)
    for prompt, output in zip(prompts, together, strict=True):
        [alone] = arch_llm.generate(prompt, params, use_tqdm=False)
        assert list(output.outputs[0].token_ids) == list(alone.outputs[0].token_ids)


# --------------------------------------------------------------------------- the vLLM snippet


def test_vllm_quickstart_snippet_with_opt_in_hf_cache(
    arch_models: dict[str, TinyModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM's quickstart, unchanged except the import, against a tiny random OPT stored in a
    temporary HF cache under the id facebook/opt-125m."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf_home" / "hub" / "models--facebook--opt-125m"
    shutil.copytree(arch_models["opt"].path, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    from cadence import LLM

    llm = LLM(model="facebook/opt-125m")
    outputs = llm.generate("Hello, my name is")

    assert len(outputs) == 1
    assert outputs[0].prompt == "Hello, my name is"
    assert len(outputs[0].outputs[0].token_ids) >= 1
    assert llm.llm_engine.core.model_config.architecture == "OPTForCausalLM"


# --------------------------------------------------------------------------- unsupported options


@pytest.mark.parametrize(
    ("name", "overrides", "option"),
    [
        ("opt", {"enable_bias": False}, "enable_bias"),
        ("opt", {"layer_norm_elementwise_affine": False}, "layer_norm_elementwise_affine"),
        ("opt", {"activation_function": "gelu"}, "activation_function"),
        ("gpt2", {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
        ("gpt2", {"activation_function": "relu"}, "activation_function"),
        ("qwen3", {"hidden_act": "gelu"}, "hidden_act"),
    ],
)
def test_unsupported_options_raise(tmp_path: Path, name: str, overrides: dict, option: str) -> None:
    from cadence import LLM

    config = _configs()[name]
    config.architectures = [ARCHITECTURES[name]]
    for key, value in overrides.items():
        setattr(config, key, value)
    config.save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match=option):
        LLM(model=str(tmp_path), num_threads=NUM_THREADS)


@pytest.mark.parametrize(
    ("field", "value"),
    [("norm_kind", "group_norm"), ("activation", "gelu"), ("position_kind", "alibi")],
)
def test_model_config_rejects_unknown_building_blocks(field: str, value: str) -> None:
    from cadence import _core

    config = _core.ModelConfig()
    config.architecture = "OPTForCausalLM"
    config.vocab_size = config.hidden_size = config.intermediate_size = 8
    config.num_layers = config.num_heads = 1
    setattr(config, field, value)
    with pytest.raises(ValueError, match=field):
        config.finalize()


def test_logits_match_hf_up_to_the_last_positions(arch_models: dict[str, TinyModel]) -> None:
    """The end of OPT's offset position table: a 511-token prompt (+1 token <= max_model_len
    512) reads rows up to 510 + 2."""
    from cadence import LLM

    model = arch_models["opt"]
    llm = LLM(model=model.path, num_threads=NUM_THREADS, max_model_len=512)
    token_ids = (_tokenize(llm, LONG_PROMPT) * 4)[:511]
    logits = _cadence_logits(llm, token_ids)
    expected = hf_prompt_logits(model.hf_model, token_ids)
    assert np.isfinite(logits).all()
    _check_logits_close(logits[-8:], expected[-8:], TINY_LOGITS_ATOL)
