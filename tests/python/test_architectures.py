"""Architectures beyond Llama/Qwen2: Qwen3 (q/k RMSNorm), GPT-2 (Conv1D weights, learned
positions, LayerNorm, GELU-tanh), OPT (positions offset by 2, ReLU, pre- and post-norm, the
350m-style project_in/out), Phi-3 (fused qkv / gate_up weights, partial RoPE, LongRoPE), Gemma 2
(sandwich norms with 1 + weight, GeGLU, scaled embeddings, query_pre_attn_scalar, soft-capped
scores and logits, sliding window on alternate layers), and sliding-window attention (Mistral;
Qwen2 with use_sliding_window on some layers). Each is a
tiny random-weight model built with transformers and saved with the default model's tokenizer;
logits must match HF fp32 and greedy tokens must match HF for 32 tokens (same tolerances and
top-k rule as test_numerics.py). The windows (24) are shorter than the long prompt (~130
tokens) and than 34-token prefixes, and the LongRoPE model's original_max_position_embeddings
(48) lies between the short prompts (+ 32 generated tokens) and the long one, so the mask and
both factor sets decide the results.
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


# Phi-3 LongRoPE test model: 16-dim heads, 12 rotary dims (partial_rotary_factor 0.75), so
# 6 frequencies; long factors far from the short ones.
LONGROPE_ORIGINAL_MAX = 48
LONGROPE_SHORT_FACTOR = [1.0, 1.1, 1.3, 1.2, 1.5, 1.05]
LONGROPE_LONG_FACTOR = [1.5, 3.0, 6.0, 9.0, 14.0, 20.0]
SLIDING_WINDOW = 24


def _configs() -> dict[str, Any]:
    from transformers import (
        Gemma2Config,
        GPT2Config,
        MistralConfig,
        OPTConfig,
        Phi3Config,
        Qwen2Config,
        Qwen3Config,
    )

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
        # GQA, plain RoPE, fused qkv_proj / gate_up_proj.
        "phi3": Phi3Config(
            hidden_size=96,
            intermediate_size=200,
            num_hidden_layers=3,
            num_attention_heads=6,
            num_key_value_heads=2,
            max_position_embeddings=512,
            original_max_position_embeddings=512,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            rms_norm_eps=1e-5,
            **COMMON,
        ),
        # LongRoPE over the first 12 of 16 head dims; factor 512 / 48 gives an attention
        # factor of sqrt(1 + ln(512 / 48) / ln(48)).
        "phi3_longrope": Phi3Config(
            hidden_size=64,
            intermediate_size=136,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            original_max_position_embeddings=LONGROPE_ORIGINAL_MAX,
            rope_parameters={
                "rope_type": "longrope",
                "rope_theta": 10000.0,
                "partial_rotary_factor": 0.75,
                "short_factor": LONGROPE_SHORT_FACTOR,
                "long_factor": LONGROPE_LONG_FACTOR,
            },
            rms_norm_eps=1e-5,
            **COMMON,
        ),
        # Every layer attends to the 24 newest positions.
        "mistral_window": MistralConfig(
            hidden_size=96,
            intermediate_size=200,
            num_hidden_layers=3,
            num_attention_heads=6,
            num_key_value_heads=2,
            max_position_embeddings=512,
            sliding_window=SLIDING_WINDOW,
            rms_norm_eps=1e-6,
            **COMMON,
        ),
        # Layers 0 and 2 attend to the 24 newest positions, layer 1 fully. The caps are small
        # enough that tanh saturates (scores reach ~5, logits ~3), query_pre_attn_scalar differs
        # from head_dim, and GQA.
        "gemma2": Gemma2Config(
            hidden_size=64,
            intermediate_size=136,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=24,
            query_pre_attn_scalar=40,
            max_position_embeddings=512,
            sliding_window=SLIDING_WINDOW,
            attn_logit_softcapping=3.0,
            final_logit_softcapping=2.0,
            rms_norm_eps=1e-6,
            **COMMON,
        ),
        # use_sliding_window on layers >= max_window_layers (1, 2); layer 0 attends fully.
        "qwen2_window": Qwen2Config(
            hidden_size=64,
            intermediate_size=136,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            use_sliding_window=True,
            sliding_window=SLIDING_WINDOW,
            max_window_layers=1,
            rms_norm_eps=1e-6,
            **COMMON,
        ),
    }


ARCHITECTURES = {
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_bias_tied": "Qwen3ForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "opt": "OPTForCausalLM",
    "opt_350m_style": "OPTForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "phi3_longrope": "Phi3ForCausalLM",
    "mistral_window": "MistralForCausalLM",
    "qwen2_window": "Qwen2ForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
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

        # fp32 KV cache: the logits and greedy tokens are compared with HF fp32 ("auto" would
        # be bf16 on CPUs with AVX-512 BF16).
        arch_llms[arch_model.name] = LLM(
            model=arch_model.path, num_threads=NUM_THREADS, kv_cache_dtype="float32"
        )
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
        "phi3": ("rms_norm", "silu", "rope", 0, False, True),
        "phi3_longrope": ("rms_norm", "silu", "rope", 0, False, True),
        "mistral_window": ("rms_norm", "silu", "rope", 0, False, True),
        "qwen2_window": ("rms_norm", "silu", "rope", 0, False, True),
        "gemma2": ("rms_norm", "gelu_tanh_gated", "rope", 0, False, True),
    }[arch_model.name]
    actual = (
        str(config.norm_kind),
        str(config.activation),
        str(config.position_kind),
        config.position_offset,
        config.qk_norm,
        config.is_norm_before,
    )
    assert actual == expected
    if arch_model.name == "opt_350m_style":
        assert config.word_embed_proj_dim == 48 and config.hidden_size == 96
    window, full_layers = {
        "mistral_window": (SLIDING_WINDOW, []),
        "qwen2_window": (SLIDING_WINDOW, [0]),
        "gemma2": (SLIDING_WINDOW, [1]),
    }.get(arch_model.name, (0, []))
    if hasattr(config, "sliding_window"):
        assert (config.sliding_window, list(config.full_attention_layers)) == (window, full_layers)
    gemma = arch_model.name == "gemma2"
    assert config.sandwich_norm == gemma
    assert config.norm_weight_offset == (1.0 if gemma else 0.0)
    assert config.embedding_scale == pytest.approx(8.0 if gemma else 1.0)
    assert config.attention_scale == pytest.approx(40**-0.5 if gemma else 0.0)
    assert (config.attn_logit_softcapping, config.final_logit_softcapping) == (
        (3.0, 2.0) if gemma else (0.0, 0.0)
    )
    if arch_model.name == "phi3_longrope":
        scaling = config.rope_scaling
        assert str(scaling.type) == "longrope" and config.rotary_dim == 12
        assert scaling.original_max_position_embeddings == LONGROPE_ORIGINAL_MAX
        assert scaling.factor == pytest.approx(512 / LONGROPE_ORIGINAL_MAX)
        assert list(scaling.long_factor) == LONGROPE_LONG_FACTOR


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


@pytest.mark.parametrize("offline", ["1", None])
def test_vllm_quickstart_snippet_with_opt_in_hf_cache(
    arch_models: dict[str, TinyModel],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_network: None,
    offline: str | None,
) -> None:
    """vLLM's quickstart, unchanged except the import, against a tiny random OPT stored in a
    temporary HF cache under the id facebook/opt-125m; the network is never used, whether
    HF_HUB_OFFLINE is set or not."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf_home" / "hub" / "models--facebook--opt-125m"
    shutil.copytree(arch_models["opt"].path, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    if offline is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)

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
    # The field is an enum: the name is refused as it is set, naming the field.
    with pytest.raises(ValueError, match=field) as info:
        setattr(config, field, value)
        config.finalize()
    assert info.value.param == field


@pytest.mark.parametrize("name", ["qwen3", "phi3", "gpt2", "opt"])
def test_loaders_refuse_sandwich_norm_they_have_no_weights_for(
    arch_models: dict[str, TinyModel], name: str
) -> None:
    """ModelConfig is public (C++ embedders, _core): a block an architecture lacks must be
    refused by its loader, never run on missing weights."""
    from cadence import _core
    from cadence.model_config import load_model_config
    from cadence.model_source import resolve_model

    path = arch_models[name].path
    config = _core.EngineConfig()
    config.model_path = path
    config.model_config = load_model_config(resolve_model(path))
    config.model_config.sandwich_norm = True
    config.kv_cache_memory_bytes = 1 << 20
    with pytest.raises(ValueError, match="sandwich_norm"):
        _core.Engine(config)


def test_sliding_window_does_not_cap_max_model_len(arch_models: dict[str, TinyModel]) -> None:
    """The window is masked in attention, so the context may exceed it (up to
    max_position_embeddings), and a prompt far longer than the window still matches HF."""
    from cadence import LLM

    model = arch_models["mistral_window"]
    # fp32 KV cache: compared with HF fp32.
    llm = LLM(
        model=model.path, num_threads=NUM_THREADS, max_model_len=512, kv_cache_dtype="float32"
    )
    token_ids = (_tokenize(llm, LONG_PROMPT) * 3)[:400]
    expected = hf_prompt_logits(model.hf_model, token_ids)
    _check_logits_close(_cadence_logits(llm, token_ids)[-8:], expected[-8:], TINY_LOGITS_ATOL)


@pytest.mark.parametrize("name", ["phi3_longrope", "mistral_window", "gemma2"])
def test_chunked_prefill_keeps_greedy_output(arch_models: dict[str, TinyModel], name: str) -> None:
    """A long prompt prefilled in 16-token chunks gives the tokens of a one-step prefill:
    LongRoPE picks its factors by the prompt length, not by the chunk, and the window mask
    does not depend on how the prompt is cut."""
    from cadence import LLM, SamplingParams

    model = arch_models[name]
    whole = LLM(model=model.path, num_threads=NUM_THREADS)
    chunked = LLM(model=model.path, num_threads=NUM_THREADS, max_num_batched_tokens=16)
    prompt = {"prompt_token_ids": _tokenize(whole, LONG_PROMPT)}
    assert len(prompt["prompt_token_ids"]) > 3 * 16
    params = SamplingParams(temperature=0.0, max_tokens=NUM_NEW_TOKENS, ignore_eos=True)
    [a] = whole.generate(prompt, params, use_tqdm=False)
    [b] = chunked.generate(prompt, params, use_tqdm=False)
    assert list(a.outputs[0].token_ids) == list(b.outputs[0].token_ids)


@pytest.mark.parametrize("name", ["phi3_longrope", "mistral_window", "gemma2"])
def test_prefix_cache_hit_keeps_greedy_output(arch_models: dict[str, TinyModel], name: str) -> None:
    """A prompt whose leading blocks are cached gives the tokens it gives uncached: with
    LongRoPE, with every layer windowed (the blocks the first run released outside the
    window were cached and are taken again) and with alternating local/global layers."""
    from cadence import LLM, SamplingParams

    model = arch_models[name]
    cached = LLM(model=model.path, num_threads=NUM_THREADS)
    uncached = LLM(model=model.path, num_threads=NUM_THREADS, enable_prefix_caching=False)
    prompt_ids = _tokenize(cached, LONG_PROMPT)
    params = SamplingParams(temperature=0.0, max_tokens=NUM_NEW_TOKENS, ignore_eos=True)
    [first] = cached.generate({"prompt_token_ids": prompt_ids[:-5]}, params, use_tqdm=False)
    [hit] = cached.generate({"prompt_token_ids": prompt_ids}, params, use_tqdm=False)
    [reference] = uncached.generate({"prompt_token_ids": prompt_ids}, params, use_tqdm=False)
    # Cached: the full blocks of what the first request computed (its prompt and all but its
    # last token) that the new prompt starts with.
    computed = prompt_ids[:-5] + list(first.outputs[0].token_ids)[:-1]
    common = 0
    while common < min(len(prompt_ids), len(computed)) and prompt_ids[common] == computed[common]:
        common += 1
    expected = min(common // 16, (len(prompt_ids) - 1) // 16) * 16
    assert hit.num_cached_tokens == expected > 0
    assert list(hit.outputs[0].token_ids) == list(reference.outputs[0].token_ids)
    cached.llm_engine.core.check_invariants()


def test_sliding_window_frees_kv_blocks_outside_it(arch_models: dict[str, TinyModel]) -> None:
    """Every Mistral layer is windowed, so after each step the scheduler releases the blocks
    the next token no longer sees: a ~130-token prompt holds 9 blocks of 16 only while it is
    prefilled, then at most ceil((24 + 16) / 16) = 3, and the tokens are generate()'s."""
    from cadence import LLM, SamplingParams

    llm = LLM(model=arch_models["mistral_window"].path, num_threads=NUM_THREADS, block_size=16)
    engine = llm.llm_engine
    prompt_ids = _tokenize(llm, LONG_PROMPT)
    assert len(prompt_ids) > 8 * 16
    params = SamplingParams(temperature=0.0, max_tokens=NUM_NEW_TOKENS, ignore_eos=True)
    engine.add_request("windowed", None, prompt_ids, params)
    total = engine.core.stats().num_total_blocks
    final = None
    while engine.has_unfinished_requests():
        for output in engine.step():
            final = output if output.finished else final
        engine.core.check_invariants()
        assert total - engine.core.stats().num_free_blocks <= 3
    assert engine.core.stats().num_free_blocks == total
    [alone] = llm.generate({"prompt_token_ids": prompt_ids}, params, use_tqdm=False)
    assert list(final.outputs[0].token_ids) == list(alone.outputs[0].token_ids)


def test_longrope_rejected_outside_phi3(tmp_path: Path) -> None:
    from cadence import LLM

    config = _configs()["qwen3"]
    config.architectures = ["Qwen3ForCausalLM"]
    config.rope_parameters = {
        "rope_type": "longrope",
        "rope_theta": 10000.0,
        "short_factor": [1.0] * 16,
        "long_factor": [2.0] * 16,
        "original_max_position_embeddings": 64,
    }
    config.save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="longrope"):
        LLM(model=str(tmp_path), num_threads=NUM_THREADS)


def test_logits_match_hf_up_to_the_last_positions(arch_models: dict[str, TinyModel]) -> None:
    """The end of OPT's offset position table: a 511-token prompt (+1 token <= max_model_len
    512) reads rows up to 510 + 2."""
    from cadence import LLM

    model = arch_models["opt"]
    # fp32 KV cache: compared with HF fp32.
    llm = LLM(
        model=model.path, num_threads=NUM_THREADS, max_model_len=512, kv_cache_dtype="float32"
    )
    token_ids = (_tokenize(llm, LONG_PROMPT) * 4)[:511]
    logits = _cadence_logits(llm, token_ids)
    expected = hf_prompt_logits(model.hf_model, token_ids)
    assert np.isfinite(logits).all()
    _check_logits_close(logits[-8:], expected[-8:], TINY_LOGITS_ATOL)


# --------------------------------------------------------------------------- the registry


def test_python_architecture_list_is_the_registry() -> None:
    from cadence import _core, model_config

    registry = _core.architecture_registry()
    names = [info.hf_name for info in registry]
    assert len(set(names)) == len(names) and names
    assert list(model_config.SUPPORTED_ARCHITECTURES) == names
    assert list(_core.supported_architectures()) == names
    assert list(_core.ModelConfig.supported_architectures()) == names
    # Every loader family has a config.json reader in Python.
    assert {info.family for info in registry} == set(model_config._FILLERS)
    # A GGUF name reads back as exactly one HF architecture.
    gguf_names = [info.gguf_name for info in registry if info.gguf_name]
    assert len(set(gguf_names)) == len(gguf_names)


def test_every_registry_architecture_is_tested() -> None:
    """The tiny models here (plus conftest's Llama/Qwen2 ones) cover the whole registry."""
    from cadence import _core

    covered = set(ARCHITECTURES.values()) | {"LlamaForCausalLM", "Qwen2ForCausalLM"}
    assert covered == set(_core.supported_architectures())


def test_readme_lists_the_registry() -> None:
    """README's human list of architectures (HF names, then GGUF names) is the registry's."""
    import re

    from cadence import _core

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("Supported today, from HF safetensors directories")
    paragraph = readme[start : readme.index("\n\n", start)]
    hf_part, gguf_part = paragraph.split("from GGUF:", 1)
    registry = _core.architecture_registry()
    # Same names, each once (the prose orders them its own way).
    assert sorted(re.findall(r"`(\w+(?:ForCausalLM|LMHeadModel))`", hf_part)) == sorted(
        info.hf_name for info in registry
    )
    assert sorted(re.findall(r"`([a-z0-9]+)`", gguf_part)) == sorted(
        info.gguf_name for info in registry if info.gguf_name
    )
