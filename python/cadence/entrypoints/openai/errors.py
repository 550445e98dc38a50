"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Handlers turn every exception into that shape, so a client never sees another format: the
serving core's typed errors map to 400 / 404 / 429 / 503; only a bug in the server is a 500
(``server_error``), and it is logged with its traceback.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cadence.logger import get_logger
from cadence.serving.errors import (
    CLIENT_ERRORS,
    InvalidParameter,
    NotFound,
    Overloaded,
    ServingError,
    Unavailable,
    as_serving_error,
)

logger = get_logger(__name__)

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


def from_serving_error(error: ServingError) -> OpenAIError:
    if isinstance(error, InvalidParameter):
        return OpenAIError(400, error.message, param=error.param, code=error.code)
    if isinstance(error, NotFound):
        return OpenAIError(404, error.message, param=error.param, code=error.code)
    if isinstance(error, Overloaded):
        return OpenAIError(
            429,
            error.message,
            code=error.code,
            headers={"Retry-After": str(error.retry_after_seconds)},
        )
    if isinstance(error, Unavailable):
        return OpenAIError(503, error.message, code=error.code)
    return OpenAIError(400, error.message, code=error.code)


def to_openai_error(error: BaseException) -> OpenAIError:
    """Any exception as an OpenAIError; one the serving core does not know is a 500,
    logged with its traceback."""
    if isinstance(error, OpenAIError):
        return error
    serving_error = as_serving_error(error)
    if serving_error is not None:
        return from_serving_error(serving_error)
    logger.error("internal error", exc_info=error)
    return OpenAIError(500, f"internal server error: {type(error).__name__}", code="internal_error")


def install_exception_handlers(app: FastAPI) -> None:
    async def on_error(request: Request, error: Exception) -> JSONResponse:
        return to_openai_error(error).response()

    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = {404: f"no route for {request.url.path}", 405: "method not allowed"}.get(
            error.status_code, str(error.detail)
        )
        # Its headers too: a 405 carries Allow (RFC 9110).
        return OpenAIError(error.status_code, message, headers=error.headers).response()

    # Starlette serves an Exception handler from its outermost middleware (and re-raises
    # there), so the errors a client causes get handlers of their own.
    for error_class in (OpenAIError, ServingError, *CLIENT_ERRORS):
        app.add_exception_handler(error_class, on_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_error)  # a bug: 500
