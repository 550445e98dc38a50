"""SamplingParams validation and conversion (no model needed)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from cadence import SamplingParams, _core
from cadence.errors import InvalidParameterError
from cadence.sampling_params import BeamSearchParams, check_token_ids

INT32_MAX = 2**31 - 1


def test_defaults_follow_vllm() -> None:
    params = SamplingParams()
    assert params.temperature == 1.0
    assert params.top_p == 1.0
    assert params.top_k in (0, -1)  # both mean "off" in vLLM
    assert params.min_p == 0.0
    assert params.seed is None
    assert params.max_tokens == 16
    assert params.ignore_eos is False
    assert params.stop_token_ids == []
    assert params.skip_special_tokens is True
    assert not params.is_greedy


def test_greedy_is_temperature_zero() -> None:
    assert SamplingParams(temperature=0.0).is_greedy
    assert SamplingParams(temperature=0).is_greedy
    assert not SamplingParams(temperature=1e-3).is_greedy


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0.0},
        {"temperature": 2.0},
        {"temperature": 1},  # ints are numbers
        {"top_p": 1.0},
        {"top_p": 1e-9},
        {"top_k": -1},
        {"top_k": 0},
        {"top_k": 1},
        {"top_k": 10**6},
        {"min_p": 0.0},
        {"min_p": 1.0},
        {"max_tokens": 1},
        {"max_tokens": None},
        {"seed": 0},
        {"seed": -(2**63)},
        {"seed": 2**63 - 1},
        {"stop_token_ids": [0, 2, 49151]},
        {"stop_token_ids": (5, 6)},
    ],
)
def test_valid_values_are_accepted(kwargs: dict) -> None:
    params = SamplingParams(**kwargs)
    for name, value in kwargs.items():
        expected = list(value) if name == "stop_token_ids" else value
        assert getattr(params, name) == expected


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": -1e-9}, "temperature"),
        ({"temperature": 3.0}, "temperature"),
        ({"temperature": 2.0001}, "temperature"),
        ({"temperature": math.nan}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"temperature": "0.5"}, "temperature"),
        ({"temperature": None}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": -0.5}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": math.nan}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"min_p": -0.1}, "min_p"),
        ({"min_p": 1.5}, "min_p"),
        ({"min_p": math.nan}, "min_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 2.0}, "max_tokens"),
        ({"seed": 2**64}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"seed": -(2**63) - 1}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"stop_token_ids": [-1]}, "stop_token_ids"),
        ({"stop_token_ids": [1.5]}, "stop_token_ids"),
        ({"stop_token_ids": 2}, "stop_token_ids"),
    ],
)
def test_invalid_values_raise_value_error_naming_the_field(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        SamplingParams(**kwargs)
    assert isinstance(info.value, InvalidParameterError) and info.value.param == name
    # The message shows the offending value so the caller can find it.
    value = kwargs[name]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        assert str(value) in str(info.value) or repr(value) in str(info.value)


def test_range_is_stated_in_the_message() -> None:
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        SamplingParams(temperature=5.0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        SamplingParams(top_p=0.0)


@pytest.mark.parametrize("keyword", ["no_such_option", "temprature", "n_tokens"])
def test_unknown_keyword_is_type_error(keyword: str) -> None:
    with pytest.raises(TypeError, match=keyword):
        SamplingParams(**{keyword: 1})


def test_to_core_carries_every_field() -> None:
    params = SamplingParams(
        temperature=0.7,
        top_p=0.9,
        top_k=40,
        min_p=0.05,
        seed=42,
        max_tokens=12,
        ignore_eos=True,
        stop_token_ids=[7, 8],
        n=3,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        repetition_penalty=1.2,
        min_tokens=2,
        logprobs=5,
        prompt_logprobs=0,
        logit_bias={5: 1.5, 3: -200.0},
        allowed_token_ids=[3, 5, 7],
    )
    core = params.to_core(max_tokens=12, bad_words_token_ids=[[1, 2], [4]])
    assert isinstance(core, _core.SamplingParams)
    assert core.temperature == pytest.approx(0.7)
    assert core.top_p == pytest.approx(0.9)
    assert core.top_k == 40
    assert core.min_p == pytest.approx(0.05)
    assert core.seed == 42
    assert core.max_tokens == 12
    assert core.ignore_eos is True
    assert list(core.stop_token_ids) == [7, 8]
    assert core.n == 3
    assert core.presence_penalty == pytest.approx(0.5)
    assert core.frequency_penalty == pytest.approx(-0.5)
    assert core.repetition_penalty == pytest.approx(1.2)
    assert core.min_tokens == 2
    assert core.logprobs == 5 and core.prompt_logprobs == 0
    assert [tuple(pair) for pair in core.logit_bias] == [(3, -100.0), (5, 1.5)]  # clamped
    assert list(core.allowed_token_ids) == [3, 5, 7]
    assert [list(ids) for ids in core.bad_words_token_ids] == [[1, 2], [4]]
    core.validate(vocab_size=100, max_logprobs=20)  # what Python accepts, C++ accepts


def test_to_core_logprobs_off_is_minus_one() -> None:
    core = SamplingParams().to_core(max_tokens=4)
    assert core.logprobs == -1 and core.prompt_logprobs == -1 and core.n == 1


def test_to_core_uses_the_resolved_max_tokens() -> None:
    assert SamplingParams(max_tokens=None).to_core(max_tokens=300).max_tokens == 300


def test_to_core_seed() -> None:
    assert SamplingParams().to_core(max_tokens=1).seed is None
    assert SamplingParams(seed=0).to_core(max_tokens=1).seed == 0
    # Negative seeds map to distinct uint64 values (two's complement), never collide with
    # the positive ones.
    negative = SamplingParams(seed=-1).to_core(max_tokens=1).seed
    assert negative == 2**64 - 1
    assert SamplingParams(seed=-(2**63)).to_core(max_tokens=1).seed == 2**63


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.5),
        ("temperature", math.nan),
        ("temperature", 2.5),
        ("top_p", 0.0),
        ("top_p", 1.1),
        ("top_k", -3),
        ("min_p", -0.01),
        ("min_p", math.nan),
        ("max_tokens", 0),
        ("stop_token_ids", [3, -1]),
        ("n", 0),
        ("presence_penalty", 2.5),
        ("frequency_penalty", -3.0),
        ("repetition_penalty", 0.0),
        ("min_tokens", -1),
        ("logprobs", 21),
        ("prompt_logprobs", 21),
        ("allowed_token_ids", [-1]),
    ],
)
def test_core_validate_raises_value_error(field: str, value) -> None:
    """The C++ check (std::invalid_argument -> ValueError) guards C++ and gRPC callers too."""
    core = SamplingParams().to_core(max_tokens=4)
    setattr(core, field, value)
    with pytest.raises(InvalidParameterError, match=field) as info:
        core.validate()
    assert info.value.param == field


def test_core_sampling_params_keywords() -> None:
    core = _core.SamplingParams(temperature=0.0, max_tokens=3, stop_token_ids=[1])
    assert core.temperature == 0.0 and core.max_tokens == 3 and list(core.stop_token_ids) == [1]
    with pytest.raises(TypeError):
        _core.SamplingParams(0.5)  # keyword-only, like every option struct


# --------------------------------------------------------------------------- vLLM's other fields


def test_new_fields_default_like_vllm() -> None:
    params = SamplingParams()
    assert params.n == 1
    assert params.presence_penalty == 0.0 and params.frequency_penalty == 0.0
    assert params.repetition_penalty == 1.0
    assert params.stop is None and params.stop_strings == []
    assert params.min_tokens == 0
    assert params.logprobs is None and params.prompt_logprobs is None
    assert params.detokenize is True
    assert params.spaces_between_special_tokens is True
    assert params.include_stop_str_in_output is False
    assert params.truncate_prompt_tokens is None
    assert params.logit_bias is None and params.allowed_token_ids is None
    assert params.bad_words is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 4},
        {"n": 1, "temperature": 0.0},
        {"presence_penalty": -2.0},
        {"presence_penalty": 2},
        {"frequency_penalty": 1.5},
        {"repetition_penalty": 1e-3},
        {"repetition_penalty": 5.0},
        {"stop": "###"},
        {"stop": ["a", "bc"]},
        {"stop": []},
        {"min_tokens": 16},
        {"min_tokens": 100, "max_tokens": None},
        {"logprobs": 0},
        {"logprobs": 20},
        {"prompt_logprobs": 3},
        {"detokenize": False},
        {"truncate_prompt_tokens": 1},
        {"logit_bias": {0: 100.0, 5: -3}},
        {"allowed_token_ids": [0, 1]},
        {"bad_words": ["foo", " bar baz"]},
        {"bad_words": []},
        {"include_stop_str_in_output": True},
        {"spaces_between_special_tokens": False},
    ],
)
def test_new_valid_values_are_accepted(kwargs: dict) -> None:
    SamplingParams(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name", "allowed"),
    [
        ({"n": 0}, "n", ">= 1"),
        ({"n": 1.0}, "n", "integer"),
        ({"n": 2, "temperature": 0.0}, "n", "greedy"),
        ({"presence_penalty": 2.5}, "presence_penalty", r"\[-2, 2\]"),
        ({"presence_penalty": -2.01}, "presence_penalty", r"\[-2, 2\]"),
        ({"frequency_penalty": math.nan}, "frequency_penalty", "NaN"),
        ({"frequency_penalty": 3}, "frequency_penalty", r"\[-2, 2\]"),
        ({"repetition_penalty": 0.0}, "repetition_penalty", r"\(0, inf\)"),
        ({"repetition_penalty": -1.0}, "repetition_penalty", r"\(0, inf\)"),
        ({"stop": ""}, "stop", "empty"),
        ({"stop": ["ok", ""]}, "stop", "empty"),
        ({"stop": 5}, "stop", "string"),
        ({"stop": "x", "detokenize": False}, "detokenize", "stop"),
        ({"min_tokens": -1}, "min_tokens", ">= 0"),
        ({"min_tokens": 17}, "min_tokens", "max_tokens=16"),
        ({"logprobs": -1}, "logprobs", ">= 0"),
        ({"logprobs": 1.0}, "logprobs", "integer"),
        ({"prompt_logprobs": -2}, "prompt_logprobs", ">= 0"),
        ({"truncate_prompt_tokens": 0}, "truncate_prompt_tokens", ">= 1"),
        ({"logit_bias": [1, 2]}, "logit_bias", "dict"),
        ({"logit_bias": {-1: 1.0}}, "logit_bias", "token ids"),
        ({"logit_bias": {1: math.nan}}, "logit_bias", "NaN"),
        ({"allowed_token_ids": []}, "allowed_token_ids", "non-empty"),
        ({"allowed_token_ids": [-3]}, "allowed_token_ids", "token ids"),
        ({"bad_words": "word"}, "bad_words", "list of strings"),
        ({"bad_words": [1]}, "bad_words", "list of strings"),
        ({"detokenize": 1}, "detokenize", "True or False"),
        ({"include_stop_str_in_output": None}, "include_stop_str_in_output", "True or False"),
    ],
)
def test_new_invalid_values_name_field_and_range(kwargs: dict, name: str, allowed: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        SamplingParams(**kwargs)
    assert info.match(allowed)
    assert isinstance(info.value, InvalidParameterError) and info.value.param == name


def test_logit_bias_is_clamped_and_keys_normalized() -> None:
    params = SamplingParams(logit_bias={1: 250.0, "7": -101, 3: 0.5})
    assert params.logit_bias == {1: 100.0, 7: -100.0, 3: 0.5}


def test_stop_string_becomes_list() -> None:
    assert SamplingParams(stop="END").stop_strings == ["END"]
    assert SamplingParams(stop=("a", "b")).stop_strings == ["a", "b"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"logprobs": 21}, "logprobs"),
        ({"prompt_logprobs": 50}, "prompt_logprobs"),
        ({"stop_token_ids": [100]}, "stop_token_ids"),
        ({"allowed_token_ids": [0, 100]}, "allowed_token_ids"),
        ({"logit_bias": {100: 1.0}}, "logit_bias"),
    ],
)
def test_verify_checks_against_model(kwargs: dict, name: str) -> None:
    params = SamplingParams(**kwargs)
    with pytest.raises(InvalidParameterError, match=name) as info:
        params.verify(vocab_size=100, max_logprobs=20)
    assert info.value.param == name


def test_verify_accepts_in_range() -> None:
    SamplingParams(
        logprobs=20, prompt_logprobs=20, stop_token_ids=[99], logit_bias={99: 1.0}
    ).verify(vocab_size=100, max_logprobs=20)


class _WordTokenizer:
    """A tokenizer where each character is a token and a leading space merges with the next
    character (like BPE's 'Ġx'), which is what makes the spaced variant differ."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert add_special_tokens is False
        ids, index = [], 0
        while index < len(text):
            if text[index] == " " and index + 1 < len(text):
                ids.append(1000 + ord(text[index + 1]))
                index += 2
            else:
                ids.append(ord(text[index]))
                index += 1
        return ids


def test_bad_words_are_tokenized_with_and_without_leading_space() -> None:
    from cadence.sampling_params import tokenize_bad_words

    sequences = tokenize_bad_words(_WordTokenizer(), ["ab", "  ab", "c d"])
    assert sequences == [
        [ord("a"), ord("b")],
        [1000 + ord("a"), ord("b")],
        [ord("c"), 1000 + ord("d")],
        [1000 + ord("c"), 1000 + ord("d")],
    ]


def test_bad_words_with_the_real_tokenizer(gguf_tokenizer) -> None:
    from cadence.sampling_params import tokenize_bad_words

    sequences = tokenize_bad_words(gguf_tokenizer, ["Paris"])
    assert gguf_tokenizer.encode("Paris", add_special_tokens=False) in sequences
    assert gguf_tokenizer.encode(" Paris", add_special_tokens=False) in sequences


# ------------------------------------------------------------ one source: the C++ spec tables

SPECS = _core.sampling_param_specs()
BEAM_SPECS = _core.beam_search_param_specs()


def _f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


def _f32_up(x: float) -> float:
    """The next float32 above x (the engine's float fields are float32, so both sides see
    exactly these values)."""
    if x == 0.0:
        return _f32(1)
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    return _f32(bits + 1 if x > 0 else bits - 1)


def _boundary_values(spec) -> list:
    """Each finite bound and its nearest neighbours on both sides."""
    values: list = []
    for bound in (spec.low, spec.high):
        if not math.isfinite(bound):
            continue
        if spec.kind == "int":
            values += [int(bound) - 1, int(bound), int(bound) + 1]
        else:
            values += [-_f32_up(-bound), bound, _f32_up(bound)]
    if spec.kind == "float":
        values += [math.inf, -math.inf, math.nan]
    # The off value (logprobs' -1) is Python's None: see test_off_value_is_python_none.
    return [value for value in values if value != spec.off]


def _python_accepts(cls, name: str, value, required: dict) -> bool:
    try:
        cls(**{**required, name: value})
    except InvalidParameterError as error:
        assert error.param == name, (name, value, error)
        return False
    return True


def _core_accepts(cls, validate_args: dict, name: str, value, required: dict) -> bool:
    try:
        core = cls(**{**required, name: value})
    except TypeError:  # not representable in the C++ field (an int beyond int32)
        return False
    try:
        core.validate(**validate_args)
    except InvalidParameterError as error:
        assert error.param == name, (name, value, error)
        return False
    return True


# min_tokens <= max_tokens and logprobs <= max_logprobs are checked apart from the ranges.
_SAMPLING_CASES = [
    (name, spec) for name, spec in SPECS.items() if spec.kind != "bool" and name != "logit_bias"
]


@pytest.mark.parametrize(("name", "spec"), _SAMPLING_CASES, ids=[n for n, _ in _SAMPLING_CASES])
def test_python_accepts_exactly_the_cpp_range(name: str, spec) -> None:
    python_required = {"max_tokens": None} if name == "min_tokens" else {}
    core_required = {"max_tokens": INT32_MAX} if name == "min_tokens" else {}
    values = _boundary_values(spec)
    assert values, name  # every spec'd number has a finite bound
    for value in values:
        python = _python_accepts(SamplingParams, name, value, python_required)
        core = _core_accepts(
            _core.SamplingParams, {"max_logprobs": INT32_MAX}, name, value, core_required
        )
        assert python == core == spec.contains(float(value)), (name, value, python, core)


@pytest.mark.parametrize("name", list(BEAM_SPECS))
def test_beam_search_accepts_exactly_the_cpp_range(name: str) -> None:
    spec = BEAM_SPECS[name]
    required = {"beam_width": 1, "max_tokens": 1}
    if spec.kind == "bool":
        assert _python_accepts(BeamSearchParams, name, True, required)
        assert not _python_accepts(BeamSearchParams, name, 1, required)
        return
    for value in _boundary_values(spec):
        python = _python_accepts(BeamSearchParams, name, value, required)
        core = _core_accepts(
            _core.BeamSearchParams, {"max_beam_width": INT32_MAX}, name, value, required
        )
        assert python == core == spec.contains(float(value)), (name, value, python, core)


def test_messages_state_the_cpp_range() -> None:
    """Both languages state the range the spec states (no range text written twice)."""
    for name in ("temperature", "top_p", "presence_penalty", "repetition_penalty", "n"):
        spec = SPECS[name]
        bad = int(spec.low) - 1 if spec.kind == "int" else spec.low - 1
        with pytest.raises(InvalidParameterError) as python:
            SamplingParams(**{name: bad})
        with pytest.raises(InvalidParameterError) as core:
            _core.SamplingParams(**{name: bad}).validate()
        assert spec.allowed() in str(python.value) and spec.allowed() in str(core.value)
    assert SPECS["temperature"].allowed() == "in [0, 2]"
    assert SPECS["top_p"].allowed() == "in (0, 1]"


def test_off_value_is_python_none() -> None:
    for name in ("logprobs", "prompt_logprobs"):
        spec = SPECS[name]
        assert spec.off is not None and not spec.contains(spec.off)
        core = SamplingParams(**{name: None}).to_core(max_tokens=1)
        assert getattr(core, name) == spec.off
        core.validate()
        with pytest.raises(InvalidParameterError, match=f"{name} must be None or"):
            SamplingParams(**{name: spec.off})


def test_defaults_are_the_cpp_defaults() -> None:
    python, core = SamplingParams(), _core.SamplingParams()
    for name, spec in SPECS.items():
        if name == "logit_bias":
            continue
        assert getattr(core, name) == spec.default, name  # the table reads the struct
        expected = None if spec.off is not None and spec.default == spec.off else spec.default
        assert getattr(python, name) == expected and type(getattr(python, name)) is type(
            expected
        ), name
    beam, core_beam = BeamSearchParams(beam_width=1, max_tokens=1), _core.BeamSearchParams()
    for name, spec in BEAM_SPECS.items():
        assert getattr(core_beam, name) == spec.default, name
        if name not in ("beam_width", "max_tokens"):  # required in Python, as in vLLM
            assert getattr(beam, name) == spec.default, name


def test_to_core_copies_every_spec_field() -> None:
    """to_core is driven by the spec table: a value off each default arrives in C++."""
    changed = {
        "n": 2,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "repetition_penalty": 1.5,
        "temperature": 0.5,
        "top_p": 0.5,
        "top_k": 3,
        "min_p": 0.125,
        "max_tokens": 9,
        "min_tokens": 2,
        "ignore_eos": True,
        "logprobs": 1,
        "prompt_logprobs": 2,
    }
    assert set(changed) == set(SPECS) - {"logit_bias"}  # a new spec'd field needs a case here
    core = SamplingParams(**changed).to_core(max_tokens=9)
    for name, value in changed.items():
        assert getattr(core, name) == value, name


def test_logit_bias_is_clamped_to_the_cpp_range() -> None:
    spec = SPECS["logit_bias"]
    params = SamplingParams(logit_bias={1: spec.high * 10, 2: spec.low * 10})
    assert params.logit_bias == {1: spec.high, 2: spec.low}
    params.to_core(max_tokens=1).validate(vocab_size=10)


def test_max_logprobs_default_is_one_constant() -> None:
    assert _core.EngineConfig().max_logprobs == _core.DEFAULT_MAX_LOGPROBS
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"`max_logprobs` ({_core.DEFAULT_MAX_LOGPROBS})" in readme
    core = _core.SamplingParams(logprobs=_core.DEFAULT_MAX_LOGPROBS)
    core.validate()  # validate's default cap is the same constant
    core.logprobs += 1
    with pytest.raises(InvalidParameterError, match="logprobs"):
        core.validate()


def test_check_token_ids() -> None:
    check_token_ids("stop_token_ids", [0, 9], vocab_size=10)
    check_token_ids("stop_token_ids", [], vocab_size=10)
    for bad in (10, -1):
        with pytest.raises(InvalidParameterError) as info:
            check_token_ids("allowed_token_ids", [3, bad], vocab_size=10)
        assert info.value.param == "allowed_token_ids"
        assert str(info.value) == (f"allowed_token_ids holds token id {bad}, out of range [0, 10)")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"beam_width": 0, "max_tokens": 1}, "beam_width"),
        ({"beam_width": 1.0, "max_tokens": 1}, "beam_width"),
        ({"beam_width": 1, "max_tokens": 0}, "max_tokens"),
        ({"beam_width": 1, "max_tokens": 1, "temperature": 2.5}, "temperature"),
        ({"beam_width": 1, "max_tokens": 1, "length_penalty": math.inf}, "length_penalty"),
        ({"beam_width": 1, "max_tokens": 1, "ignore_eos": 0}, "ignore_eos"),
        (
            {"beam_width": 1, "max_tokens": 1, "include_stop_str_in_output": 1},
            "include_stop_str_in_output",
        ),
    ],
)
def test_beam_search_errors_carry_param(kwargs: dict, name: str) -> None:
    with pytest.raises(InvalidParameterError, match=name) as info:
        BeamSearchParams(**kwargs)
    assert info.value.param == name


def test_core_beam_width_bound_is_the_engines() -> None:
    core = _core.BeamSearchParams(beam_width=5, max_tokens=1)
    core.validate(max_beam_width=5)
    with pytest.raises(
        InvalidParameterError, match=r"beam_width must be in \[1, 4\], got 5"
    ) as info:
        core.validate(max_beam_width=4)
    assert info.value.param == "beam_width"


@pytest.mark.parametrize(
    ("cls", "specs"), [(SamplingParams, SPECS), (BeamSearchParams, BEAM_SPECS)]
)
def test_docstring_ranges_are_the_specs(cls, specs) -> None:
    """Where the docstring states a field's range ("temperature: in [0, 2]"), it is the
    spec's, so the documentation cannot drift from the single source."""
    doc = cls.__doc__
    stated = 0
    for name, spec in specs.items():
        marker = f"        {name}: in "
        if marker in doc:
            line = doc[doc.index(marker) :].splitlines()[0]
            assert f"{name}: {spec.allowed()}" in line, (name, line, spec.allowed())
            stated += 1
    assert stated >= (5 if cls is SamplingParams else 1)
