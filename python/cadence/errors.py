"""Errors that carry the name of what was wrong, for every layer above the core.

``InvalidParameterError`` is what validation raises (SamplingParams, BeamSearchParams, the
engine's request checks, prompt and message checks): a ``ValueError`` whose ``param`` is the
parameter's name as the offline API spells it, so a frontend names the field at fault
without reading the message. ``param`` is None when no single parameter is at fault.
"""

from __future__ import annotations


class InvalidParameterError(ValueError):
    """A bad value for ``param``; the message states the allowed range or form."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message
