"""The string-valued config options are C++ enums with one name table each: Python sees
them as enums whose members are those names, fields accept a name or a member, and a bad
name is an InvalidParameterError naming the field and listing the allowed names."""

from __future__ import annotations

import pytest

from cadence import _core
from cadence.errors import InvalidParameterError
from cadence.kv_cache_dtype import SUPPORTED_KV_CACHE_DTYPES
from cadence.weight_dtype import _ALIASES, NATIVE

# (enum, an object holding such a field, the field's name)
FIELDS = [
    (_core.NormKind, _core.ModelConfig, "norm_kind"),
    (_core.Activation, _core.ModelConfig, "activation"),
    (_core.PositionKind, _core.ModelConfig, "position_kind"),
    (_core.RopeScalingType, _core.RopeScaling, "type"),
    (_core.WeightDtype, _core.EngineConfig, "weight_dtype"),
    (_core.KvCacheDtype, _core.EngineConfig, "kv_cache_dtype"),
]
IDS = [field for _, _, field in FIELDS]


@pytest.mark.parametrize(("enum", "holder", "field"), FIELDS, ids=IDS)
def test_fields_take_names_and_members(enum, holder, field: str) -> None:
    names = list(enum.__members__)
    assert names and len(set(names)) == len(names)
    for name, member in enum.__members__.items():
        assert str(member) == name and f"{member}" == name
        by_name, by_member = holder(), holder()
        setattr(by_name, field, name)
        setattr(by_member, field, member)
        assert getattr(by_name, field) == member == getattr(by_member, field)


@pytest.mark.parametrize(("enum", "holder", "field"), FIELDS, ids=IDS)
def test_bad_name_names_the_field_and_the_allowed_names(enum, holder, field: str) -> None:
    config = holder()
    before = getattr(config, field)
    param = "rope_scaling.type" if field == "type" else field
    with pytest.raises(InvalidParameterError) as info:
        setattr(config, field, "no_such_value")
    assert info.value.param == param
    assert str(info.value) == (
        f"{param} must be one of {', '.join(enum.__members__)}, got 'no_such_value'"
    )
    assert getattr(config, field) == before


def test_defaults() -> None:
    config = _core.ModelConfig()
    assert config.norm_kind == _core.NormKind.rms_norm
    assert config.activation == _core.Activation.silu
    assert config.position_kind == _core.PositionKind.rope
    assert config.rope_scaling.type == _core.RopeScalingType.default
    engine = _core.EngineConfig()
    assert engine.weight_dtype == _core.WeightDtype.float32
    assert engine.kv_cache_dtype == _core.KvCacheDtype.auto


def test_python_option_names_are_the_enums() -> None:
    """LLM(dtype=..., kv_cache_dtype=...) keep their string values; each maps to a member."""
    assert tuple(_core.KvCacheDtype.__members__) == SUPPORTED_KV_CACHE_DTYPES
    assert set(_ALIASES.values()) | {NATIVE} == set(_core.WeightDtype.__members__)
