"""Default SamplingParams from generation_config.json (LLM(generation_config=...,
override_generation_config=...)): the rules on files alone, then through LLM."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BOS_TOKEN_ID, EOS_TOKEN_ID, NUM_THREADS

from cadence import LLM, SamplingParams
from cadence.generation_config import resolve_default_sampling_params

MODEL_FILE_CONFIG = {
    "bos_token_id": BOS_TOKEN_ID,
    "eos_token_id": [EOS_TOKEN_ID, 7],
    "do_sample": False,
    "temperature": 0.6,
    "top_p": 0.9,
    "top_k": 20,
    "min_p": 0.05,
    "repetition_penalty": 1.1,
    "max_new_tokens": 7,
}


def _write(folder: Path, config: dict) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "generation_config.json").write_text(json.dumps(config))
    return str(folder)


def _resolve(mode: str, model_dir: str, override=None, is_gguf: bool = False):
    return resolve_default_sampling_params(mode, override, model_dir, is_gguf)


# --------------------------------------------------------------------------- rules, no model


def test_auto_reads_the_model_file_and_do_sample_false_is_greedy(tmp_path: Path) -> None:
    params, fields = _resolve("auto", _write(tmp_path, MODEL_FILE_CONFIG))
    # do_sample: false means greedy (a deliberate fix over vLLM, which would sample at 0.6).
    assert params.temperature == 0.0
    assert (params.top_p, params.top_k, params.min_p) == (0.9, 20, 0.05)
    assert params.repetition_penalty == 1.1
    assert params.max_tokens == 7
    assert fields == {
        "temperature": 0.0,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "max_tokens": 7,
    }


def test_auto_with_do_sample_true_keeps_the_temperature(tmp_path: Path) -> None:
    params, _ = _resolve("auto", _write(tmp_path, {**MODEL_FILE_CONFIG, "do_sample": True}))
    assert params.temperature == 0.6


def test_auto_without_do_sample_keeps_the_temperature(tmp_path: Path) -> None:
    config = {k: v for k, v in MODEL_FILE_CONFIG.items() if k != "do_sample"}
    assert _resolve("auto", _write(tmp_path, config))[0].temperature == 0.6


def test_auto_without_a_file_or_for_gguf_is_neutral(tmp_path: Path) -> None:
    assert _resolve("auto", str(tmp_path)) == (SamplingParams(), {})
    gguf_dir = _write(tmp_path / "g", MODEL_FILE_CONFIG)
    assert _resolve("auto", gguf_dir + "/model.gguf", is_gguf=True) == (SamplingParams(), {})


def test_vllm_mode_is_neutral(tmp_path: Path) -> None:
    assert _resolve("vllm", _write(tmp_path, MODEL_FILE_CONFIG)) == (SamplingParams(), {})


def test_folder_path_reads_that_folder(tmp_path: Path) -> None:
    model_dir = _write(tmp_path / "model", MODEL_FILE_CONFIG)
    other = _write(tmp_path / "other", {"temperature": 0.3, "max_new_tokens": 99})
    params, fields = _resolve(other, model_dir)
    assert fields == {"temperature": 0.3, "max_tokens": 99}
    assert params.temperature == 0.3 and params.max_tokens == 99 and params.top_k == 0


def test_override_is_layered_on_top_in_every_mode(tmp_path: Path) -> None:
    model_dir = _write(tmp_path, MODEL_FILE_CONFIG)
    override = {"top_k": 5, "max_new_tokens": 3}
    params, _ = _resolve("auto", model_dir, override)
    assert (params.top_k, params.max_tokens, params.top_p) == (5, 3, 0.9)
    assert params.temperature == 0.0  # do_sample: false still applies
    params, fields = _resolve("vllm", model_dir, override)
    assert fields == {"top_k": 5, "max_tokens": 3}
    # An explicit temperature in the override wins over the file's do_sample: false.
    assert _resolve("auto", model_dir, {"temperature": 0.8})[0].temperature == 0.8
    assert _resolve("auto", model_dir, {"do_sample": True})[0].temperature == 0.6


def test_unrelated_keys_are_ignored(tmp_path: Path) -> None:
    model_dir = _write(tmp_path, {"num_beams": 4, "pad_token_id": 2, "top_p": None})
    assert _resolve("auto", model_dir) == (SamplingParams(), {})


@pytest.mark.parametrize(
    ("mode", "override", "match"),
    [
        ("nonexistent/folder", None, "generation_config"),
        (5, None, "generation_config"),
        ("auto", ["temperature"], "override_generation_config"),
        ("auto", {"temperature": 5.0}, r"temperature must be in \[0, 2\]"),
        ("auto", {"max_new_tokens": 0}, "max_tokens"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, mode, override, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _resolve(mode, str(tmp_path), override)


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "generation_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="generation_config.json"):
        _resolve("auto", str(tmp_path))


# --------------------------------------------------------------------------- through LLM


@pytest.fixture(scope="module")
def model_with_generation_config(tiny_models, tmp_path_factory) -> str:
    """A copy of a tiny model whose generation_config.json sets sampling defaults."""
    path = tmp_path_factory.mktemp("genconfig") / "model"
    shutil.copytree(tiny_models["llama_gqa"].path, path)
    _write(path, MODEL_FILE_CONFIG)
    return str(path)


def _llm(path: str, **kwargs) -> LLM:
    return LLM(model=path, num_threads=NUM_THREADS, max_model_len=128, **kwargs)


def test_llm_auto_defaults_are_used_by_generate(model_with_generation_config: str) -> None:
    llm = _llm(model_with_generation_config)
    defaults = llm.get_default_sampling_params()
    assert defaults.temperature == 0.0 and defaults.max_tokens == 7 and defaults.top_k == 20
    defaults.max_tokens = 1  # a copy: does not change what generate uses
    output = llm.generate("hello there", use_tqdm=False)[0].outputs[0]
    # max_new_tokens=7 from the file (EOS ids 2 and 7 from the file may stop it earlier).
    assert len(output.token_ids) == 7 or output.finish_reason == "stop"
    greedy = SamplingParams(temperature=0, max_tokens=7, top_p=0.9, top_k=20, min_p=0.05)
    greedy.repetition_penalty = 1.1
    again = llm.generate("hello there", greedy, use_tqdm=False)[0].outputs[0]
    assert again.token_ids == output.token_ids  # do_sample: false made the default greedy
    # Explicit sampling_params are used as given, without the file's defaults.
    explicit = llm.generate("hello there", SamplingParams(max_tokens=2), use_tqdm=False)
    assert len(explicit[0].outputs[0].token_ids) <= 2


def test_llm_chat_uses_the_same_defaults(model_with_generation_config: str) -> None:
    llm = _llm(model_with_generation_config)
    chat = llm.chat([{"role": "user", "content": "hi"}], use_tqdm=False)[0].outputs[0]
    assert len(chat.token_ids) <= 7


def test_llm_vllm_mode_and_override(model_with_generation_config: str, tmp_path: Path) -> None:
    assert (
        _llm(model_with_generation_config, generation_config="vllm").get_default_sampling_params()
        == SamplingParams()
    )
    folder = _write(tmp_path, {"temperature": 0.25, "top_p": 0.5})
    llm = _llm(
        model_with_generation_config,
        generation_config=folder,
        override_generation_config={"max_new_tokens": 3},
    )
    defaults = llm.get_default_sampling_params()
    assert (defaults.temperature, defaults.top_p, defaults.max_tokens) == (0.25, 0.5, 3)
    assert defaults.top_k == 0  # not in that folder's file


def test_llm_logs_the_defaults_from_the_model(model_with_generation_config: str) -> None:
    import logging

    class _Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    handler = _Collect()
    logger = logging.getLogger("cadence")  # does not propagate to the root (caplog)
    logger.addHandler(handler)
    try:
        _llm(model_with_generation_config)
    finally:
        logger.removeHandler(handler)
    messages = [m for m in handler.messages if "generation config" in m]
    assert len(messages) == 1
    assert "max_tokens=7" in messages[0] and "temperature=0.0" in messages[0]


def test_llm_gguf_defaults_are_neutral(default_llm: LLM) -> None:
    assert default_llm.get_default_sampling_params() == SamplingParams()


def test_llm_bad_generation_config_argument(model_with_generation_config: str) -> None:
    with pytest.raises(ValueError, match="generation_config"):
        _llm(model_with_generation_config, generation_config="no/such/folder")
