"""Bad input is a ValueError (TypeError for an unknown keyword) whose message names the parameter
or the problem, and it leaves the engine usable: after each error the same LLM object passes its
invariant check, has every KV block free, and still generates the same greedy tokens."""

from __future__ import annotations

import json
import math

import pytest
from conftest import NUM_THREADS

from cadence import LLM, SamplingParams

GREEDY = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
CHECK_PROMPT = "The capital of France is"
SMALL_MAX_MODEL_LEN = 64


@pytest.fixture(scope="module")
def default_reference(default_llm: LLM) -> list[int]:
    """Greedy tokens of CHECK_PROMPT before any error was provoked."""
    [output] = default_llm.generate(CHECK_PROMPT, GREEDY, use_tqdm=False)
    return list(output.outputs[0].token_ids)


@pytest.fixture(scope="module")
def small_llm(tiny_models) -> LLM:
    """A tiny model with a 64-token context."""
    return LLM(
        model=tiny_models["llama_gqa"].path,
        max_model_len=SMALL_MAX_MODEL_LEN,
        num_threads=NUM_THREADS,
    )


@pytest.fixture(scope="module")
def small_reference(small_llm: LLM) -> list[int]:
    [output] = small_llm.generate(CHECK_PROMPT, GREEDY, use_tqdm=False)
    return list(output.outputs[0].token_ids)


def assert_unharmed(llm: LLM, reference: list[int]) -> None:
    core = llm.llm_engine.core
    core.check_invariants()
    stats = core.stats()
    assert not core.has_unfinished_requests()
    assert stats.num_running == 0 and stats.num_waiting == 0
    assert stats.num_free_blocks == stats.num_total_blocks
    [output] = llm.generate(CHECK_PROMPT, GREEDY, use_tqdm=False)
    assert list(output.outputs[0].token_ids) == reference
    core.check_invariants()
    assert core.stats().num_free_blocks == core.stats().num_total_blocks


# --------------------------------------------------------------------------- construction


def test_unknown_model_path(tmp_path) -> None:
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(ValueError, match="not found") as info:
        LLM(model=missing)
    assert "no_such_model" in str(info.value)


def test_directory_without_model(tmp_path) -> None:
    with pytest.raises(ValueError, match="config.json"):
        LLM(model=str(tmp_path))


def test_file_that_is_not_a_model(tmp_path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="gguf"):
        LLM(model=str(path))


def test_corrupt_gguf_file(tmp_path) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"NOPE" + b"\0" * 60)
    with pytest.raises(ValueError, match="broken.gguf"):
        LLM(model=str(path))


def _write_config(directory, config: dict) -> str:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))
    return str(directory)


def test_unsupported_architecture_mixtral(tmp_path) -> None:
    from transformers import MixtralConfig

    path = tmp_path / "mixtral"
    config = MixtralConfig(
        num_hidden_layers=1, hidden_size=32, num_attention_heads=2, vocab_size=100
    )
    config.architectures = ["MixtralForCausalLM"]
    config.save_pretrained(str(path))
    with pytest.raises(ValueError, match="MixtralForCausalLM") as info:
        LLM(model=str(path))
    assert "not supported" in str(info.value)
    assert "LlamaForCausalLM" in str(info.value)  # the message lists what is supported


def test_unsupported_architecture_unknown_name(tmp_path) -> None:
    path = _write_config(
        tmp_path / "foo",
        {
            "architectures": ["FooForCausalLM"],
            "model_type": "llama",
            "vocab_size": 100,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
    )
    with pytest.raises(ValueError, match="FooForCausalLM"):
        LLM(model=path)


def test_unsupported_rope_scaling(tiny_models, tmp_path) -> None:
    import shutil

    path = tmp_path / "yarn"
    shutil.copytree(tiny_models["llama_gqa"].path, path)
    config = json.loads((path / "config.json").read_text())
    config["rope_parameters"] = {
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 4.0,
        "original_max_position_embeddings": 128,
    }
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="yarn"):
        LLM(model=str(path))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"device": "cuda"}, "cuda"),
        ({"dtype": "float64"}, "float64"),
        ({"dtype": "int8"}, "int8"),
        ({"max_model_len": 0}, "max_model_len"),
        ({"block_size": 0}, "block_size"),
        ({"num_threads": -1}, "num_threads"),
        ({"max_num_seqs": 0}, "max_num_seqs"),
        ({"max_num_batched_tokens": 0}, "max_num_batched_tokens"),
        ({"kv_cache_memory_bytes": -5}, "kv_cache_memory_bytes"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_llm_arguments(tiny_models, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        LLM(model=tiny_models["llama_gqa"].path, **kwargs)


def test_max_model_len_above_model_limit(tiny_models) -> None:
    with pytest.raises(ValueError, match="max_model_len"):
        LLM(model=tiny_models["llama_gqa"].path, max_model_len=10**6)


def test_kv_cache_smaller_than_one_block(tiny_models) -> None:
    with pytest.raises(ValueError, match="kv_cache_memory_bytes"):
        LLM(model=tiny_models["llama_gqa"].path, kv_cache_memory_bytes=1)


# --------------------------------------------------------------------------- prompts


@pytest.mark.parametrize(
    ("prompt", "pattern"),
    [
        ("", "empty"),
        ({"prompt": ""}, "empty"),
        ({"prompt_token_ids": []}, "empty"),
        ({"prompt_token_ids": [5, -1, 7]}, "-1"),
        ({"prompt_token_ids": [5, "7"]}, "prompt_token_ids"),
        ({"prompt_token_ids": [5, 7.0]}, "prompt_token_ids"),
        ({"text": "hello"}, "prompt"),
        (123, "prompt"),
    ],
)
def test_bad_prompt(default_llm: LLM, default_reference, prompt, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        default_llm.generate([prompt], GREEDY, use_tqdm=False)
    assert_unharmed(default_llm, default_reference)


def test_token_id_equal_to_vocab_size(default_llm: LLM, default_reference) -> None:
    vocab_size = default_llm.llm_engine.vocab_size
    with pytest.raises(ValueError, match=f"{vocab_size}") as info:
        default_llm.generate({"prompt_token_ids": [1, vocab_size]}, GREEDY, use_tqdm=False)
    assert "range" in str(info.value)
    assert_unharmed(default_llm, default_reference)


@pytest.mark.parametrize("num_tokens", [SMALL_MAX_MODEL_LEN, SMALL_MAX_MODEL_LEN + 36])
def test_prompt_longer_than_max_model_len(small_llm: LLM, small_reference, num_tokens) -> None:
    prompt = {"prompt_token_ids": [100 + i for i in range(num_tokens)]}
    with pytest.raises(ValueError, match="max_model_len"):
        small_llm.generate(prompt, SamplingParams(max_tokens=1), use_tqdm=False)
    assert_unharmed(small_llm, small_reference)


def test_longest_prompt_that_fits_is_accepted(small_llm: LLM, small_reference) -> None:
    """The boundary itself is valid: max_model_len - 1 prompt tokens + 1 new token."""
    prompt = {"prompt_token_ids": [100 + i for i in range(SMALL_MAX_MODEL_LEN - 1)]}
    [output] = small_llm.generate(prompt, SamplingParams(max_tokens=1), use_tqdm=False)
    assert len(output.outputs[0].token_ids) == 1
    assert output.outputs[0].finish_reason in ("length", "stop")
    assert_unharmed(small_llm, small_reference)


def test_prompt_plus_max_tokens_above_max_model_len(small_llm: LLM, small_reference) -> None:
    prompt = {"prompt_token_ids": [100 + i for i in range(40)]}
    with pytest.raises(ValueError, match="max_model_len") as info:
        small_llm.generate(prompt, SamplingParams(max_tokens=30), use_tqdm=False)
    assert "max_tokens" in str(info.value)
    assert_unharmed(small_llm, small_reference)


def test_failing_request_in_a_batch_aborts_the_others(small_llm: LLM, small_reference) -> None:
    """The first request is queued before the second is refused: generate must take it back."""
    good = {"prompt_token_ids": [100, 101, 102]}
    bad = {"prompt_token_ids": [100 + i for i in range(40)]}
    params = SamplingParams(temperature=0.0, max_tokens=30)
    with pytest.raises(ValueError, match="max_tokens"):
        small_llm.generate([good, bad], params, use_tqdm=False)
    assert_unharmed(small_llm, small_reference)


def test_request_larger_than_kv_pool(tiny_models, small_llm: LLM) -> None:
    core = small_llm.llm_engine.core  # same model and block size: same bytes per block
    bytes_per_block = core.kv_cache_bytes // core.stats().num_total_blocks
    small = LLM(
        model=tiny_models["llama_gqa"].path,
        max_model_len=256,
        kv_cache_memory_bytes=4 * bytes_per_block,
        num_threads=NUM_THREADS,
    )
    assert small.llm_engine.core.stats().num_total_blocks == 4
    [reference] = small.generate(CHECK_PROMPT, GREEDY, use_tqdm=False)
    prompt = {"prompt_token_ids": [100 + i for i in range(10)]}
    with pytest.raises(ValueError, match="kv_cache_memory_bytes|KV blocks"):
        small.generate(prompt, SamplingParams(max_tokens=100), use_tqdm=False)
    assert_unharmed(small, list(reference.outputs[0].token_ids))


def test_duplicate_request_id(small_llm: LLM, small_reference) -> None:
    engine = small_llm.llm_engine
    request_id = engine.next_request_id()
    engine.add_request(request_id, None, [100, 101], SamplingParams(max_tokens=2))
    try:
        with pytest.raises(ValueError, match=request_id):
            engine.add_request(request_id, None, [100, 101], SamplingParams(max_tokens=2))
    finally:
        assert engine.abort_request(request_id) is True
    assert_unharmed(small_llm, small_reference)


# --------------------------------------------------------------------------- sampling params


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": 3.0}, "temperature"),
        ({"temperature": math.nan}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"min_p": -0.1}, "min_p"),
        ({"min_p": 1.5}, "min_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"seed": 2**64}, "seed"),
        ({"stop_token_ids": [-3]}, "stop_token_ids"),
    ],
)
def test_invalid_sampling_params(default_llm: LLM, default_reference, kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        default_llm.generate(CHECK_PROMPT, SamplingParams(**kwargs), use_tqdm=False)
    assert_unharmed(default_llm, default_reference)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -1.0),
        ("temperature", math.nan),
        ("top_p", 0.0),
        ("top_k", -2),
        ("min_p", 1.5),
        ("max_tokens", 0),
        ("stop_token_ids", [-3]),
    ],
)
def test_engine_validates_params_mutated_after_construction(
    default_llm: LLM, default_reference, field: str, value
) -> None:
    """SamplingParams validates on construction only; the C++ engine checks again on
    add_request, and its std::invalid_argument arrives as a ValueError naming the field."""
    params = SamplingParams(temperature=0.0, max_tokens=4)
    setattr(params, field, value)
    with pytest.raises(ValueError, match=field):
        default_llm.generate([CHECK_PROMPT, "Hello"], params, use_tqdm=False)
    assert_unharmed(default_llm, default_reference)


def test_unknown_sampling_param_keyword() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        SamplingParams(no_such_option=1)


@pytest.mark.parametrize("num_params", [1, 3])
def test_sampling_params_list_of_wrong_length(
    default_llm: LLM, default_reference, num_params: int
) -> None:
    params = [SamplingParams(max_tokens=2)] * num_params
    with pytest.raises(ValueError, match="sampling_params"):
        default_llm.generate([CHECK_PROMPT, "Hello"], params, use_tqdm=False)
    assert_unharmed(default_llm, default_reference)


def test_sampling_params_list_with_a_wrong_type(default_llm: LLM, default_reference) -> None:
    with pytest.raises(ValueError, match="SamplingParams"):
        default_llm.generate(
            [CHECK_PROMPT, "Hello"], [SamplingParams(), {"temperature": 0.0}], use_tqdm=False
        )
    assert_unharmed(default_llm, default_reference)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"logprobs": 21}, "logprobs"),
        ({"prompt_logprobs": 21}, "prompt_logprobs"),
        ({"logit_bias": {10**6: 1.0}}, "logit_bias"),
        ({"allowed_token_ids": [-1]}, "allowed_token_ids"),
        ({"stop_token_ids": [10**6]}, "stop_token_ids"),
        ({"n": 2, "temperature": 0.0}, "n"),
    ],
)
def test_sampling_fields_checked_against_the_engine(default_llm, kwargs, match):
    """Errors that need the model (vocabulary, max_logprobs) surface at generate time as
    ValueError naming the field; the LLM keeps working afterwards."""
    with pytest.raises(ValueError, match=match):
        default_llm.generate("Hello", SamplingParams(max_tokens=4, **kwargs), use_tqdm=False)
    core = default_llm.llm_engine.core
    core.check_invariants()
    assert core.stats().num_free_blocks == core.stats().num_total_blocks
    greedy = SamplingParams(temperature=0, max_tokens=4)
    assert default_llm.generate("Hello", greedy, use_tqdm=False)[0].outputs[0].token_ids
