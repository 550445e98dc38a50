"""`cadence serve` / `cadence generate` flags for the rows of ``engine_args.ENGINE_ARGS``.

``add_vllm_flags`` adds one flag per row that ``cadence.cli`` does not define by hand, in
vLLM's shape (``--name`` with ``_`` as ``-``, booleans as ``--name`` / ``--no-name``, vLLM's
short aliases such as ``-tp``). Their default is "not given", so only flags on the command
line are checked: ``checked_vllm_flags`` returns them after ``VllmArg.check`` (a refused
value is a ValueError, which ``cadence.cli.main`` turns into exit status 2 with the reason).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from typing import Any

from cadence.vllm_compat.engine_args import ENGINE_ARGS, ENGINE_ARGS_BY_NAME
from cadence.vllm_compat.spec import CliType, Outcome, VllmArg

# The namespace attribute listing the rows whose flags add_vllm_flags added to a parser.
_ADDED = "vllm_flags"


def _nullable(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """vLLM's optional values: "None" (or "") on the command line is None."""

    def convert(text: str) -> Any:
        if text in ("", "None"):
            return None
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: {error}") from None

    return convert


def _json_value(text: str) -> Any:
    return json.loads(text)


_PARSERS: dict[CliType, Callable[[str], Any]] = {
    CliType.INT: _nullable(int),
    CliType.FLOAT: _nullable(float),
    CliType.STR: _nullable(str),
    CliType.JSON: _nullable(_json_value),
}


class _ListAction(argparse.Action):
    """nargs="+" strings; the single word "None" is None (vLLM's optional lists)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, None if values == ["None"] else list(values))


def _help(row: VllmArg) -> str:
    outcome = "vLLM's meaning" if row.outcome is Outcome.IMPLEMENTED else "vLLM compatibility"
    text = f"[{outcome}; accepted: {row.accepted}] {row.meaning}"
    if row.reason:
        text += f"; other values are refused: {row.reason}"
    return text.replace("%", "%%")


def _argparse_kwargs(row: VllmArg) -> dict[str, Any]:
    if row.cli is CliType.BOOL:
        return {"action": argparse.BooleanOptionalAction}
    if row.cli is CliType.LIST:
        return {"nargs": "+", "action": _ListAction}
    return {"type": _PARSERS[row.cli]}


def add_vllm_flags(parser: argparse.ArgumentParser, serve: bool) -> None:
    """Adds the flags of the table's rows to ``parser`` (``serve``: also the rows that are
    `vllm serve` flags only). A flag the parser already has (hand-written in cadence.cli) is
    left alone, as is an alias that is taken."""
    group = parser.add_argument_group(
        "vLLM engine arguments", "accepted for vLLM compatibility; see docs/vllm_compat.md"
    )
    added = []
    for row in ENGINE_ARGS:
        if row.parameter or row.cli is CliType.NONE or (not row.llm_kwarg and not serve):
            continue
        try:
            group.add_argument(
                row.flag,
                dest=row.name,
                default=argparse.SUPPRESS,
                help=_help(row),
                **_argparse_kwargs(row),
            )
        except argparse.ArgumentError:  # cadence.cli defines this flag itself
            continue
        for alias in row.cli_aliases:
            with contextlib.suppress(argparse.ArgumentError):  # the alias is taken
                group.add_argument(
                    alias,
                    dest=row.name,
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                    **_argparse_kwargs(row),
                )
        added.append(row.name)
    parser.set_defaults(**{_ADDED: tuple(added)})


def checked_vllm_flags(args: argparse.Namespace) -> dict[str, Any]:
    """name -> value for every table flag given on the command line, each checked
    (ValueError naming the flag's argument, the value and why it is refused)."""
    given = {name: getattr(args, name) for name in getattr(args, _ADDED, ()) if hasattr(args, name)}
    for name, value in given.items():
        ENGINE_ARGS_BY_NAME[name].check(value)
    return given


def vllm_llm_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The given table flags that are ``LLM(...)`` keywords (checked)."""
    return {
        name: value
        for name, value in checked_vllm_flags(args).items()
        if ENGINE_ARGS_BY_NAME[name].llm_kwarg
    }
