"""Renders docs/vllm_compat.md from the tables (``tests/python/test_vllm_compat.py`` checks the
file is current). Regenerate with::

    python -m cadence.vllm_compat.docs > docs/vllm_compat.md
"""

from __future__ import annotations

from collections import Counter

from cadence.vllm_compat.call_args import CALL_ARGS
from cadence.vllm_compat.engine_args import ENGINE_ARGS
from cadence.vllm_compat.spec import CliType, Outcome, VllmArg

_HEADER = """# vLLM compatibility: engine arguments and call keywords

Generated from `cadence.vllm_compat` (`python -m cadence.vllm_compat.docs`); do not edit by
hand. A vLLM script (`LLM(...)`, `generate`, `chat`, `beam_search`) or `vllm serve` command
runs on cadence with only the import (or the command name) changed when every argument it
passes is in these tables with an accepted value. Each argument has one of three outcomes:

1. **implemented**: cadence does what vLLM does with the accepted values;
2. **equivalent**: the accepted values are taken and the last column says truthfully what
   cadence does instead (mostly: the feature does not exist in cadence, and its "off" value
   is exactly what cadence does);
3. **refused**: any other value raises `ValueError` naming the argument, the value, the
   accepted values and the reason (`cadence serve` exits with status 2 and that message).

A keyword that is not vLLM's stays a `TypeError`, so a misspelt name is caught.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(row: VllmArg, with_flag: bool) -> str:
    name = f"`{row.name}`" + (" (older vLLM)" if row.deprecated else "")
    if row.outcome is Outcome.REFUSED:
        what = f"refused: {row.reason}"
    else:
        what = row.meaning + (f". Refused otherwise: {row.reason}" if row.reason else "")
    cells = [name, row.outcome.value, _cell(row.accepted), _cell(what)]
    if with_flag:
        if row.cli is CliType.NONE:
            flag = "-"
        else:
            flag = " ".join(f"`{f}`" for f in (row.flag, *row.cli_aliases))
            if not row.llm_kwarg:
                flag += " (serve only)"
        cells.insert(1, flag)
    return "| " + " | ".join(cells) + " |"


def _counts(rows: tuple[VllmArg, ...]) -> str:
    counts = Counter(row.outcome for row in rows)
    refusable = sum(1 for row in rows if row.reason)
    return (
        f"{len(rows)} arguments: {counts[Outcome.IMPLEMENTED]} implemented, "
        f"{counts[Outcome.EQUIVALENT]} equivalent, {counts[Outcome.REFUSED]} refused outright; "
        f"{refusable} of them refuse values other than the accepted ones."
    )


def render() -> str:
    lines = [_HEADER, "## Engine arguments (`LLM(...)` / `cadence serve` flags)", ""]
    lines += [_counts(ENGINE_ARGS), ""]
    lines += ["| argument | flag | outcome | accepted | what cadence does |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    lines += [_row(row, with_flag=True) for row in ENGINE_ARGS]
    for method, rows in CALL_ARGS.items():
        lines += ["", f"## `LLM.{method}` keywords", ""]
        lines += [
            "| keyword | outcome | accepted | what cadence does |",
            "| --- | --- | --- | --- |",
        ]
        lines += [_row(row, with_flag=False) for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
