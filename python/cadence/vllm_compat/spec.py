"""The shape of one row of the vLLM-argument tables (``engine_args.py``, ``call_args.py``).

Every vLLM argument a script or a ``vllm serve`` command may pass has exactly one of three
outcomes in cadence (``Outcome``):

1. IMPLEMENTED: cadence does what vLLM does with the accepted values;
2. EQUIVALENT: the accepted values are taken, and ``meaning`` says truthfully what cadence
   does instead (usually: the vLLM feature does not exist here, and its "off" value is
   exactly cadence's behaviour);
3. any other value is REFUSED: ``check`` raises ValueError naming the argument, the value,
   what is accepted and ``reason``.

Every row but the few refused outright (``Outcome.REFUSED``: no value is accepted) accepts
vLLM's default, so a script that passes a feature's "off" value runs; a row for a feature
cadence lacks accepts only that value. No row accepts a value whose behaviour cadence does
not have.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Outcome(enum.Enum):
    IMPLEMENTED = "implemented"
    EQUIVALENT = "equivalent"
    REFUSED = "refused"


class CliType(enum.Enum):
    """How a ``cadence serve`` flag parses its value (vLLM's flag shapes)."""

    BOOL = "bool"  # --name / --no-name (argparse.BooleanOptionalAction)
    INT = "int"
    FLOAT = "float"
    STR = "str"
    JSON = "json"  # a JSON object, e.g. '{"image": 0}'
    LIST = "list"  # one or more strings (nargs="+")
    NONE = "none"  # LLM(...) only: no such `vllm serve` flag


# Marks "no example": an argument with no refused value, or (for CLI-only rows) no LLM kwarg.
NO_VALUE = object()


@dataclass(frozen=True)
class VllmArg:
    """One vLLM argument and what cadence does with it.

    ``accepts`` decides a value (also the value of a parsed flag); values it rejects are refused
    with ``reason``. ``example`` is a value that is accepted and does not change what the
    engine computes (tests construct one shared LLM with every row's example);
    ``refused_example`` one that is refused, or NO_VALUE when every value is accepted."""

    name: str  # vLLM's keyword (EngineArgs field / LLM.generate parameter)
    outcome: Outcome  # of the accepted values: IMPLEMENTED or EQUIVALENT
    accepted: str  # the accepted values in words (docs and error messages)
    meaning: str  # what cadence does with an accepted value
    accepts: Callable[[Any], bool]
    example: Any
    reason: str = ""  # why other values are refused; "" when every value is accepted
    refused_example: Any = NO_VALUE
    cli: CliType = CliType.NONE  # the `cadence serve` flag's shape
    cli_aliases: tuple[str, ...] = ()  # vLLM's short forms, e.g. ("-tp",)
    llm_kwarg: bool = True  # False: a `vllm serve` flag only (not an LLM(...) keyword)
    parameter: bool = False  # True: an explicit parameter of LLM.__init__ validates it there
    deprecated: bool = False  # an older vLLM name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """``value`` if accepted; ValueError naming the argument, the value, the accepted
        values and the reason otherwise."""
        if self.accepts(value):
            return value
        raise ValueError(
            f"{self.name}={value!r} is not supported by cadence: {self.reason} "
            f"(accepted: {self.accepted})"
        )

    def outcome_of(self, value: Any) -> Outcome:
        return self.outcome if self.accepts(value) else Outcome.REFUSED


def one_of(*values: Any) -> Callable[[Any], bool]:
    """Accepts exactly these values (booleans only as booleans: 0 is not False)."""

    def accepts(value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in values) or (
            value is None and None in values
        )

    return accepts


def empty_or_none(value: Any) -> bool:
    """None or an empty dict / list / string: the "nothing configured" of vLLM's options."""
    return value is None or (isinstance(value, (dict, list, tuple, str)) and len(value) == 0)


def any_value(value: Any) -> bool:
    return True


def number_in(low: float, high: float, low_open: bool = False) -> Callable[[Any], bool]:
    """Accepts an int or float in [low, high] ((low, high] with ``low_open``)."""

    def accepts(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return (low < value if low_open else low <= value) and value <= high

    return accepts
