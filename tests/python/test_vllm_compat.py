"""vLLM drop-in: every row of the vLLM-argument tables (``cadence.vllm_compat``) behaves as the
table says, in ``LLM(...)``, in the ``cadence serve`` / ``cadence generate`` flags and in
``LLM.generate`` / ``chat`` / ``beam_search``; docs/vllm_compat.md is the tables' rendering;
vLLM-shaped scripts run with only the import changed.

Accepted values share ONE extra LLM construction (every row's example at once, compared with
``default_llm`` token for token), so the suite stays fast; refused values fail before anything
is loaded.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import runpy
from pathlib import Path

import pytest
from conftest import DEFAULT_LLM_MAX_MODEL_LEN, NUM_THREADS

from cadence import LLM, SamplingParams
from cadence.cli import build_parser, llm_kwargs, main
from cadence.sampling_params import BeamSearchParams
from cadence.vllm_compat import docs
from cadence.vllm_compat.call_args import CALL_ARGS
from cadence.vllm_compat.cli import checked_vllm_flags
from cadence.vllm_compat.engine_args import (
    CADENCE_ONLY_PARAMETERS,
    ENGINE_ARGS,
    ENGINE_ARGS_BY_NAME,
)
from cadence.vllm_compat.spec import NO_VALUE, CliType, Outcome

REPO = Path(__file__).resolve().parents[2]
GREEDY = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
PROMPT = "The capital of France is"

TABLE_ROWS = [row for row in ENGINE_ARGS if not row.parameter]
LLM_ROWS = [row for row in TABLE_ROWS if row.llm_kwarg and row.example is not NO_VALUE]
REFUSED_ROWS = [row for row in ENGINE_ARGS if row.refused_example is not NO_VALUE]
CLI_ROWS = [row for row in TABLE_ROWS if row.cli is not CliType.NONE]


def ids(rows) -> list[str]:
    return [row.name for row in rows]


# --------------------------------------------------------------------------- the table itself


def test_docs_are_the_rendered_tables() -> None:
    text = (REPO / "docs" / "vllm_compat.md").read_text(encoding="utf-8")
    assert text == docs.render(), "regenerate: python -m cadence.vllm_compat.docs > docs/..."


def test_every_llm_parameter_is_a_row() -> None:
    """LLM.__init__'s explicit parameters are the table's parameter rows plus cadence's own."""
    signature = inspect.signature(LLM.__init__)
    names = {n for n, p in signature.parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD}
    names.discard("self")
    rows = {row.name for row in ENGINE_ARGS if row.parameter and row.llm_kwarg}
    assert names == rows | set(CADENCE_ONLY_PARAMETERS)


@pytest.mark.parametrize("row", TABLE_ROWS, ids=ids(TABLE_ROWS))
def test_row_examples(row) -> None:
    """A row's example is accepted, its refused example refused (with a reason to give)."""
    if row.outcome is Outcome.REFUSED:
        assert row.reason and row.refused_example is not NO_VALUE
    else:
        assert row.accepts(row.example)
    if row.refused_example is not NO_VALUE:
        assert row.reason, "a row that refuses values says why"
        assert not row.accepts(row.refused_example)
        assert row.outcome_of(row.refused_example) is Outcome.REFUSED


# --------------------------------------------------------------------------- LLM(...)


@pytest.fixture(scope="module")
def reference_tokens(default_llm: LLM) -> list[int]:
    [output] = default_llm.generate(PROMPT, GREEDY, use_tqdm=False)
    return list(output.outputs[0].token_ids)


def test_every_accepted_example_in_one_llm(
    default_model_path: str, default_llm: LLM, reference_tokens: list[int]
) -> None:
    """Outcomes 1 and 2: one LLM takes every row's example at once, generates, and computes
    exactly what the default LLM computes."""
    kwargs = {row.name: row.example for row in LLM_ROWS}
    core_config = default_llm.llm_engine.core.config
    kwargs.update(
        model=default_model_path,
        max_model_len=DEFAULT_LLM_MAX_MODEL_LEN,
        kv_cache_memory_bytes=core_config.kv_cache_memory_bytes,
        num_threads=NUM_THREADS,
    )
    llm = LLM(**kwargs)
    [output] = llm.generate(PROMPT, GREEDY, use_tqdm=False)
    assert list(output.outputs[0].token_ids) == reference_tokens


@pytest.mark.parametrize(
    "row", [r for r in REFUSED_ROWS if r.llm_kwarg], ids=ids(r for r in REFUSED_ROWS if r.llm_kwarg)
)
def test_refused_value_names_the_argument(default_model_path: str, row) -> None:
    """Outcome 3: ValueError naming the argument (and, for table rows, the value and why)."""
    kwargs = {"model": default_model_path, "num_threads": NUM_THREADS}
    kwargs[row.name] = row.refused_example
    with pytest.raises(ValueError, match=row.name) as info:
        LLM(**kwargs)
    if not row.parameter:
        message = str(info.value)
        assert repr(row.refused_example) in message and row.reason in message


@pytest.mark.parametrize("name", ["tensor_paralel_size", "gpu_memory_utilisation", "no_such"])
def test_misspelt_name_is_a_type_error(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        LLM(**{name: 1})


def test_serve_only_flag_is_no_llm_keyword() -> None:
    """vLLM's LLM(...) has no `vllm serve`-only arguments either."""
    assert not ENGINE_ARGS_BY_NAME["disable_log_requests"].llm_kwarg
    with pytest.raises(TypeError, match="disable_log_requests"):
        LLM(disable_log_requests=True)


def test_load_format_must_match_the_model(default_model_path: str) -> None:
    with pytest.raises(ValueError, match="load_format='safetensors'"):
        LLM(model=default_model_path, load_format="safetensors")


def test_disable_sliding_window_caps_the_context(tiny_models) -> None:
    """vLLM's meaning on a windowed model: max_model_len is capped at the window."""
    import shutil
    import tempfile

    source = Path(tiny_models["llama_gqa"].path)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "windowed"
        shutil.copytree(source, model_dir)
        config = json.loads((model_dir / "config.json").read_text())
        config["architectures"] = ["MistralForCausalLM"]
        config["model_type"] = "mistral"
        config["sliding_window"] = 32
        (model_dir / "config.json").write_text(json.dumps(config))
        llm = LLM(model=str(model_dir), num_threads=NUM_THREADS, disable_sliding_window=True)
        assert llm.llm_engine.core.config.max_model_len == 32
        with pytest.raises(ValueError, match="sliding window"):
            LLM(model=str(model_dir), disable_sliding_window=True, max_model_len=64)


# --------------------------------------------------------------------------- CLI


def cli_words(row, value) -> list[str]:
    """The command-line words for ``row`` = ``value``."""
    if row.cli is CliType.BOOL:
        return [row.flag if value else "--no-" + row.flag[2:]]
    if value is None:
        return [row.flag, "None"]
    if row.cli is CliType.JSON:
        return [row.flag, json.dumps(value)]
    if row.cli is CliType.LIST:
        return [row.flag, *(value if isinstance(value, list) else [value])]
    return [row.flag, str(value)]


@pytest.mark.parametrize("row", CLI_ROWS, ids=ids(CLI_ROWS))
def test_cli_flag_parses_and_passes_on(row) -> None:
    if row.example is NO_VALUE:
        return
    args = build_parser().parse_args(["serve", *cli_words(row, row.example)])
    if row.name not in args.vllm_flags:
        return  # cadence.cli defines this flag itself (a hand-written, validated option)
    given = checked_vllm_flags(args)
    expected = bool(row.example) if row.cli is CliType.BOOL else row.example
    if expected == "":
        expected = None  # an empty word on the command line is vLLM's None
    assert given[row.name] == expected
    kwargs = llm_kwargs(args)
    assert (row.name in kwargs) == row.llm_kwarg


@pytest.mark.parametrize(
    "row",
    [r for r in CLI_ROWS if r.refused_example is not NO_VALUE],
    ids=ids(r for r in CLI_ROWS if r.refused_example is not NO_VALUE),
)
def test_cli_refused_flag_exits_2(row, capsys: pytest.CaptureFixture[str]) -> None:
    words = cli_words(row, row.refused_example)
    try:
        status = main(["serve", *words])
    except SystemExit as exit_:  # argparse itself refused the value (e.g. not a number)
        status = exit_.code
    assert status == 2
    assert row.name in capsys.readouterr().err.replace("-", "_")


def test_hand_written_flags_exist(capsys: pytest.CaptureFixture[str]) -> None:
    """Rows validated by their own code have their flag in `cadence serve`."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    help_text = capsys.readouterr().out
    for row in ENGINE_ARGS:
        if row.cli is not CliType.NONE:
            assert row.flag in help_text, row.name


def test_serve_task_generate() -> None:
    args = build_parser().parse_args(["serve", "--task", "generate", "-tp", "1"])
    kwargs = llm_kwargs(args)
    assert kwargs["task"] == "generate" and kwargs["tensor_parallel_size"] == 1


def test_serve_only_flags_are_not_generate_flags() -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["generate", "hi", "--uvicorn-log-level", "info"])
    assert info.value.code == 2


def test_disable_uvicorn_access_log_is_disable_access_log(monkeypatch) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr("cadence.cli._serve", lambda args: seen.append(args) or 0)
    assert main(["serve", "--disable-uvicorn-access-log"]) == 0
    assert seen[0].disable_access_log is True


# --------------------------------------------------------------------------- call keywords


def call(llm: LLM, method: str, **kwargs):
    if method == "generate":
        return llm.generate([PROMPT], GREEDY, **kwargs)
    if method == "chat":
        return llm.chat([{"role": "user", "content": "Hi"}], GREEDY, **kwargs)
    return llm.beam_search([PROMPT], BeamSearchParams(beam_width=2, max_tokens=4), **kwargs)


CALL_ROWS = [(method, row) for method, rows in CALL_ARGS.items() for row in rows]
CALL_IDS = [f"{method}-{row.name}" for method, row in CALL_ROWS]


@pytest.mark.parametrize(("method", "row"), CALL_ROWS, ids=CALL_IDS)
def test_call_keyword(default_llm: LLM, method: str, row) -> None:
    [output] = call(default_llm, method, **{row.name: row.example})
    assert output is not None
    if row.refused_example is not NO_VALUE:
        with pytest.raises(ValueError, match=row.name):
            call(default_llm, method, **{row.name: row.refused_example})
    default_llm.llm_engine.core.check_invariants()


@pytest.mark.parametrize("method", list(CALL_ARGS))
def test_misspelt_call_keyword_is_a_type_error(default_llm: LLM, method: str) -> None:
    with pytest.raises(TypeError, match="lora_requests"):
        call(default_llm, method, lora_requests=None)


def test_generate_call_keywords_do_what_they_say(default_llm: LLM, reference_tokens) -> None:
    ids_ = default_llm.get_tokenizer().encode(PROMPT)
    [kept] = default_llm.generate(PROMPT, GREEDY, use_tqdm=False, truncate_prompt_tokens=2)
    assert kept.prompt_token_ids == ids_[-2:]
    [whole] = default_llm.generate(PROMPT, GREEDY, use_tqdm=False, truncate_prompt_tokens=-1)
    assert whole.prompt_token_ids == ids_
    # vLLM's legacy token-id prompts, with and without their text.
    [legacy] = default_llm.generate(
        None, GREEDY, use_tqdm=False, prompt_token_ids=ids_, priority=[0]
    )
    assert list(legacy.outputs[0].token_ids) == reference_tokens
    pair = default_llm.generate(
        [PROMPT, PROMPT], GREEDY, use_tqdm=False, prompt_token_ids=[ids_, ids_]
    )
    assert [o.prompt for o in pair] == [PROMPT, PROMPT]
    with pytest.raises(ValueError, match="priority has 1 entries for 2 prompts"):
        default_llm.generate([PROMPT, PROMPT], GREEDY, use_tqdm=False, priority=[0])


def test_use_tqdm_callable(default_llm: LLM) -> None:
    updates: list[int] = []

    class Bar:
        def __init__(self, total: int, **kwargs) -> None:
            assert total == 2

        def update(self, n: int) -> None:
            updates.append(n)

        def set_postfix_str(self, text: str) -> None:
            pass

        def close(self) -> None:
            updates.append(0)

    default_llm.generate([PROMPT, "Hello"], GREEDY, use_tqdm=Bar)
    assert updates == [1, 1, 0]


def test_beam_search_concurrency_limit(default_llm: LLM) -> None:
    params = BeamSearchParams(beam_width=2, max_tokens=6)
    prompts = [PROMPT, "Hello, my name is", "Once upon a time"]
    together = default_llm.beam_search(prompts, params)
    one_at_a_time = default_llm.beam_search(prompts, params, concurrency_limit=1)
    assert [[s.tokens for s in o.sequences] for o in together] == [
        [s.tokens for s in o.sequences] for o in one_at_a_time
    ]


# --------------------------------------------------------------------------- vLLM scripts


@pytest.mark.parametrize("script", ["basic", "chat", "beam_search", "sampling"])
def test_vllm_style_script(default_model_path: str, monkeypatch, script: str) -> None:
    """Scripts in the shape of vLLM's offline examples, with only the import changed."""
    monkeypatch.setenv("MODEL", default_model_path)
    monkeypatch.setenv("OMP_NUM_THREADS", str(NUM_THREADS))
    path = REPO / "tests" / "python" / "vllm_scripts" / f"{script}.py"
    namespace = runpy.run_path(str(path))
    outputs = namespace["main"]()
    assert outputs and all(output is not None for output in outputs)
    assert os.environ["MODEL"] == default_model_path
