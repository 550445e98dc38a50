"""SamplingParams validation and conversion (no model needed)."""

from __future__ import annotations

import math

import pytest

from cadence import SamplingParams, _core


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
    )
    core = params.to_core(max_tokens=12)
    assert isinstance(core, _core.SamplingParams)
    assert core.temperature == pytest.approx(0.7)
    assert core.top_p == pytest.approx(0.9)
    assert core.top_k == 40
    assert core.min_p == pytest.approx(0.05)
    assert core.seed == 42
    assert core.max_tokens == 12
    assert core.ignore_eos is True
    assert list(core.stop_token_ids) == [7, 8]
    core.validate()  # what Python accepts, C++ accepts


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
    ],
)
def test_core_validate_raises_value_error(field: str, value) -> None:
    """The C++ check (std::invalid_argument -> ValueError) guards C++ and gRPC callers too."""
    core = SamplingParams().to_core(max_tokens=4)
    setattr(core, field, value)
    with pytest.raises(ValueError, match=field):
        core.validate()


def test_core_sampling_params_keywords() -> None:
    core = _core.SamplingParams(temperature=0.0, max_tokens=3, stop_token_ids=[1])
    assert core.temperature == 0.0 and core.max_tokens == 3 and list(core.stop_token_ids) == [1]
    with pytest.raises(TypeError):
        _core.SamplingParams(0.5)  # keyword-only, like every option struct
