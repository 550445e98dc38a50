"""Shared fixtures: the default model (cadence and its HF reference) and tiny random-weight HF
checkpoints built offline with transformers.

Everything expensive is session-scoped and built at most once per test run:

- ``default_llm``: a cadence LLM on the default GGUF (SmolLM2-135M-Instruct, Q4_1).
- ``hf_default_model``: transformers' fp32 dequantization of the same GGUF (~45 s; tests that
  use it are marked ``slow``).
- ``tiny_model``: one of three tiny checkpoints (Llama with GQA, Llama with llama3 RoPE scaling
  and tied embeddings, Qwen2 with q/k/v bias), each a directory with safetensors weights,
  config.json, generation_config.json and the default model's tokenizer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Tokens per test prompt are small; this many tokens of KV cache hold a 16-prompt batch of the
# generation tests at once (plus the longest numerics prompt) without preemption (sized in fp32
# KV bytes: a 2-byte cache holds twice as many).
DEFAULT_LLM_KV_TOKENS = 4096
DEFAULT_LLM_MAX_MODEL_LEN = 1024
NUM_THREADS = 2

# The default GGUF's tokenizer: vocabulary size and special ids, shared by the tiny models.
VOCAB_SIZE = 49152
BOS_TOKEN_ID = 1  # <|im_start|>
EOS_TOKEN_ID = 2  # <|im_end|>


# --------------------------------------------------------------------------- no network


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection (or resolve a host) fails the test."""
    import socket

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the test tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# --------------------------------------------------------------------------- default model


@pytest.fixture(scope="session")
def default_model_path() -> str:
    from cadence.model_source import default_model_path

    return default_model_path()


def kv_bytes_per_token(model_config: Any) -> int:
    """Bytes of fp32 K and V for one token over all layers."""
    return 2 * model_config.num_layers * model_config.num_kv_heads * model_config.head_dim * 4


def make_default_llm(model_path: str, kv_cache_dtype: str, dtype: str = "auto"):
    from cadence import LLM, _core

    model_config = _core.load_gguf_model_config(model_path)
    model_config.finalize()
    return LLM(
        model=model_path,
        dtype=dtype,
        max_model_len=DEFAULT_LLM_MAX_MODEL_LEN,
        kv_cache_memory_bytes=DEFAULT_LLM_KV_TOKENS * kv_bytes_per_token(model_config),
        num_threads=NUM_THREADS,
        kv_cache_dtype=kv_cache_dtype,
    )


@pytest.fixture(scope="session")
def default_llm(default_model_path: str):
    """The default model as users get it (dtype "auto": the GGUF's quantized blocks kept, int8
    activations; kv_cache_dtype "auto": bf16 on CPUs with AVX-512 BF16), for the tests that
    compare cadence with itself."""
    return make_default_llm(default_model_path, "auto")


@pytest.fixture(scope="session")
def default_llm_fp32_kv(default_model_path: str):
    """The default GGUF dequantized to fp32 (dtype="float32") with an fp32 KV cache: the path
    that transformers' fp32 dequantization is the exact reference for (the default dtype is
    compared with it in test_quantized_gguf.py)."""
    return make_default_llm(default_model_path, "float32", dtype="float32")


@pytest.fixture(scope="session")
def hf_gguf_tokenizer(default_model_path: str):
    """transformers' own conversion of the default GGUF's tokenizer (~10 s): the reference."""
    import os

    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        os.path.dirname(default_model_path), gguf_file=os.path.basename(default_model_path)
    )


@pytest.fixture(scope="session")
def hf_default_model(default_model_path: str):
    """transformers' fp32 model of the default GGUF (dequantized on load, ~45 s)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(NUM_THREADS)
    path = Path(default_model_path)
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    )
    return model.eval()


# --------------------------------------------------------------------------- tiny models


@dataclass(frozen=True)
class TinyModel:
    """A tiny random-weight checkpoint on disk and the transformers model it was saved from."""

    name: str
    path: str
    hf_model: Any  # transformers PreTrainedModel, fp32, eval mode


def _tiny_configs() -> dict[str, Any]:
    from transformers import LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=VOCAB_SIZE,
        bos_token_id=BOS_TOKEN_ID,
        eos_token_id=EOS_TOKEN_ID,
        pad_token_id=EOS_TOKEN_ID,
        # Larger than the usual 0.02: with std 0.02 the logits of a random model are all
        # within a few hundredths of each other, and greedy comparisons would hinge on noise.
        initializer_range=0.1,
        # The plainest attention as the reference (sdpa agrees with it to ~1e-6 here).
        attn_implementation="eager",
    )
    return {
        # GQA (6 query heads share 2 KV heads), odd sizes, untied output, non-default theta.
        "llama_gqa": LlamaConfig(
            hidden_size=96,
            intermediate_size=200,
            num_hidden_layers=3,
            num_attention_heads=6,
            num_key_value_heads=2,
            max_position_embeddings=512,
            rope_theta=50000.0,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            **common,
        ),
        # llama3 RoPE scaling (frequencies split at original_max_position_embeddings) with
        # tied input/output embeddings (no lm_head.weight in the checkpoint), head_dim 32
        # != hidden_size / num_heads.
        "llama3_tied": LlamaConfig(
            hidden_size=64,
            intermediate_size=136,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            head_dim=32,
            max_position_embeddings=1024,
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
            **common,
        ),
        # Qwen2: q/k/v projections with bias, GQA.
        "qwen2": Qwen2Config(
            hidden_size=96,
            intermediate_size=200,
            num_hidden_layers=3,
            num_attention_heads=6,
            num_key_value_heads=2,
            max_position_embeddings=512,
            rope_theta=20000.0,
            rms_norm_eps=1e-6,
            use_sliding_window=False,
            tie_word_embeddings=False,
            **common,
        ),
    }


TINY_MODEL_NAMES = ("llama_gqa", "llama3_tied", "qwen2")  # the keys of _tiny_configs()


def _randomize_defaults(model: Any) -> None:
    """The default init leaves RMSNorm weights at 1 and biases at 0, which would let an engine
    that ignores them pass. Give them random values too."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
            elif name.endswith(".bias"):
                param.normal_(0.0, 0.5)


@pytest.fixture(scope="session")
def gguf_tokenizer(default_model_path: str):
    """The default model's tokenizer, built by cadence from the GGUF metadata."""
    from cadence.tokenizer.gguf_tokenizer import load_gguf_tokenizer

    return load_gguf_tokenizer(default_model_path)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, gguf_tokenizer) -> dict[str, TinyModel]:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    torch.set_num_threads(NUM_THREADS)
    root = tmp_path_factory.mktemp("tiny_models")
    models = {}
    configs = _tiny_configs()
    assert tuple(configs) == TINY_MODEL_NAMES
    for index, (name, config) in enumerate(configs.items()):
        torch.manual_seed(1234 + index)
        config.architectures = ["Qwen2ForCausalLM" if name == "qwen2" else "LlamaForCausalLM"]
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        _randomize_defaults(model)
        model.eval()
        path = root / name
        model.save_pretrained(str(path), safe_serialization=True)
        GenerationConfig(
            bos_token_id=BOS_TOKEN_ID, eos_token_id=EOS_TOKEN_ID, pad_token_id=EOS_TOKEN_ID
        ).save_pretrained(str(path))
        gguf_tokenizer.save_pretrained(str(path))
        models[name] = TinyModel(name=name, path=str(path), hf_model=model)
    return models


@pytest.fixture(scope="session", params=TINY_MODEL_NAMES)
def tiny_model(request: pytest.FixtureRequest, tiny_models: dict[str, TinyModel]) -> TinyModel:
    return tiny_models[request.param]


@pytest.fixture(scope="session")
def tiny_llm_cache() -> dict[str, Any]:
    """One cadence LLM per tiny model, created on first use (see ``tiny_llm``)."""
    return {}


@pytest.fixture
def tiny_llm(tiny_model: TinyModel, tiny_llm_cache: dict[str, Any]):
    """A cadence LLM on ``tiny_model`` (created once per session per model)."""
    if tiny_model.name not in tiny_llm_cache:
        from cadence import LLM

        # fp32 KV cache: the tests using tiny_llm compare with HF fp32 ("auto" would be bf16 on
        # CPUs with AVX-512 BF16).
        tiny_llm_cache[tiny_model.name] = LLM(
            model=tiny_model.path, num_threads=NUM_THREADS, kv_cache_dtype="float32"
        )
    return tiny_llm_cache[tiny_model.name]


# --------------------------------------------------------------------------- HF reference


def hf_greedy_generate(model: Any, prompt_token_ids: list[int], max_new_tokens: int):
    """transformers greedy ``generate`` for exactly ``max_new_tokens`` tokens, EOS not special
    (as cadence's ``ignore_eos=True``). Returns (new token ids, [max_new_tokens, vocab] logits
    as numpy)."""
    import torch

    generation_config = copy.deepcopy(model.generation_config)
    generation_config.do_sample = False
    generation_config.max_new_tokens = max_new_tokens
    # Not `min_new_tokens`: that masks the EOS logit, which changes the argmax whenever EOS
    # would win. An empty EOS list disables stopping without touching logits. (None would be
    # refilled from model.generation_config by generate.)
    generation_config.eos_token_id = []
    generation_config.output_scores = True
    generation_config.return_dict_in_generate = True
    input_ids = torch.tensor([prompt_token_ids], dtype=torch.long)
    with torch.no_grad():
        out = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=generation_config,
        )
    new_ids = out.sequences[0, len(prompt_token_ids) :].tolist()
    scores = torch.stack(out.scores)[:, 0].float().numpy()
    assert len(new_ids) == max_new_tokens, "HF stopped early; the reference is unusable"
    return new_ids, scores


def hf_prompt_logits(model: Any, token_ids: list[int]):
    """fp32 logits [len(token_ids), vocab] of one forward pass, as numpy."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([token_ids], dtype=torch.long)).logits[0]
    return logits.float().numpy()
