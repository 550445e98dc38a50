"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Handlers turn every exception into that shape, so a client never sees another format; only
a bug in the server is a 500 (``server_error``), and it is logged with its traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cadence.engine.async_llm_engine import (
    EngineDeadError,
    EngineDrainingError,
    EngineOverloadedError,
    RequestAbortedError,
)
from cadence.logger import get_logger

logger = get_logger(__name__)

# Seconds a client should wait after a 429 before retrying (the Retry-After header).
RETRY_AFTER_SECONDS = 1

_DEFAULT_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable_error",
}


class OpenAIError(Exception):
    """An error response: HTTP status plus OpenAI's error fields."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type or _DEFAULT_TYPES.get(status_code, "invalid_request_error")
        self.headers = headers

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)

    def sse_event(self) -> str:
        """The error as a server-sent event (an error after streaming started)."""
        return f"data: {json.dumps(self.body())}\n\n"


def bad_request(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def param_of(message: str, request_fields: Iterable[str], aliases: dict[str, str]) -> str | None:
    """The request field a validation message starts with ("temperature must be ...",
    "messages[0] needs ..."), translated by ``aliases`` (engine name -> request name)."""
    match = re.match(r"[A-Za-z_]+", message)
    if match is None:
        return None
    name = aliases.get(match.group(0), match.group(0))
    return name if name in request_fields else None


def from_engine_error(error: Exception) -> OpenAIError:
    """Maps the async engine's capacity and lifecycle errors to HTTP errors."""
    if isinstance(error, EngineOverloadedError):
        return OpenAIError(
            429,
            str(error),
            code="server_overloaded",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, EngineDrainingError):
        return OpenAIError(503, str(error), code="server_shutting_down")
    if isinstance(error, RequestAbortedError):
        return OpenAIError(503, str(error), code="request_aborted")
    if isinstance(error, EngineDeadError):
        return OpenAIError(503, str(error), code="engine_dead")
    logger.error("internal error", exc_info=error)
    return OpenAIError(500, f"internal server error: {type(error).__name__}", code="internal_error")


ENGINE_ERRORS = (EngineOverloadedError, EngineDrainingError, RequestAbortedError, EngineDeadError)


def install_exception_handlers(app: FastAPI) -> None:
    async def on_openai_error(request: Request, error: OpenAIError) -> JSONResponse:
        return error.response()

    async def on_engine_error(request: Request, error: Exception) -> JSONResponse:
        return from_engine_error(error).response()

    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = {404: f"no route for {request.url.path}", 405: "method not allowed"}.get(
            error.status_code, str(error.detail)
        )
        return OpenAIError(error.status_code, message).response()

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        return from_engine_error(error).response()  # a 500, logged

    app.add_exception_handler(OpenAIError, on_openai_error)
    for error_class in ENGINE_ERRORS:
        app.add_exception_handler(error_class, on_engine_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
