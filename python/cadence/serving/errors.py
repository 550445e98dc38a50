"""Errors a frontend turns into its protocol's codes (HTTP status, gRPC status).

Every error a client can cause is a ``ServingError``; anything else reaching a frontend is
a bug in the server (500 / INTERNAL, logged). ``code`` is a short machine-readable reason
(OpenAI's ``error.code``), ``message`` the human one.
"""

from __future__ import annotations

from cadence.engine.async_llm_engine import (
    EngineDeadError,
    EngineDrainingError,
    EngineOverloadedError,
    RequestAbortedError,
)
from cadence.errors import InvalidParameterError

# Seconds a client should wait before retrying an overloaded server.
RETRY_AFTER_SECONDS = 1


class ServingError(Exception):
    """Base of the errors a client can cause or must be told about."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidParameter(ServingError):
    """The request is wrong; ``param`` names the field at fault (None: no single one)."""

    def __init__(self, param: str | None, message: str, code: str | None = None) -> None:
        super().__init__(message, code)
        self.param = param


class NotFound(ServingError):
    """The request names something this server does not have (a model)."""

    def __init__(self, param: str | None, message: str, code: str | None = None) -> None:
        super().__init__(message, code)
        self.param = param


class Overloaded(ServingError):
    """Too many requests are waiting; retry after ``retry_after_seconds``."""

    def __init__(self, message: str, retry_after_seconds: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message, "server_overloaded")
        self.retry_after_seconds = retry_after_seconds


class Unavailable(ServingError):
    """The server cannot serve this request now: draining, engine dead, request aborted."""


def as_serving_error(
    error: BaseException, aliases: dict[str, str] | None = None
) -> ServingError | None:
    """The client-facing form of an error raised by the engine or by validation (any other
    ValueError is a refused input, with no parameter named); None for anything else (a
    bug). ``aliases`` renames an ``InvalidParameterError``'s parameter
    from the engine's name to the request's."""
    if isinstance(error, ServingError):
        return error
    if isinstance(error, InvalidParameterError):
        param = error.param
        if aliases and param in aliases:
            param = aliases[param]
        return InvalidParameter(param, str(error))
    if isinstance(error, EngineOverloadedError):
        return Overloaded(str(error))
    if isinstance(error, EngineDrainingError):
        return Unavailable(str(error), "server_shutting_down")
    if isinstance(error, RequestAbortedError):
        return Unavailable(str(error), "request_aborted")
    if isinstance(error, EngineDeadError):
        return Unavailable(str(error), "engine_dead")
    if isinstance(error, ValueError):  # a library's refusal of the input (no field known)
        return InvalidParameter(None, str(error))
    return None


# The exceptions from below the serving core that ``as_serving_error`` translates.
CLIENT_ERRORS = (
    InvalidParameterError,
    ValueError,
    EngineOverloadedError,
    EngineDrainingError,
    RequestAbortedError,
    EngineDeadError,
)
