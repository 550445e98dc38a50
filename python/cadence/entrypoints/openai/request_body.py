"""Reading a JSON request body: content type, size limit, JSON syntax, object shape.

Each failure is an OpenAI-shaped error: 400 for a wrong content type, invalid JSON or a
body that is not a JSON object; 413 for a body over the limit (checked against
Content-Length before reading, and while reading for chunked bodies).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from cadence.entrypoints.openai.errors import OpenAIError, bad_request

_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _check_content_type(request: Request) -> None:
    """JSON or no Content-Type at all (taken as JSON); anything else is a 400."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise bad_request(
            f"Content-Type must be application/json, got {content_type!r}", code="invalid_type"
        )


def _too_large(limit_bytes: int) -> OpenAIError:
    return OpenAIError(
        413, f"the request body is larger than the limit of {limit_bytes} bytes", code="too_large"
    )


async def _read_body(request: Request, limit_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise _too_large(limit_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit_bytes:
                raise _too_large(limit_bytes)
            chunks.append(chunk)
    except ClientDisconnect:  # nobody will read the answer; not a server error
        raise bad_request("the client disconnected while sending the body") from None
    return b"".join(chunks)


async def read_json_object(request: Request, limit_bytes: int) -> dict[str, Any]:
    """The request body as a dict, or an OpenAIError (400 / 413)."""
    _check_content_type(request)
    body = await _read_body(request, limit_bytes)
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as error:  # also bad UTF-8, too-long int literals
        raise bad_request(f"the request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        kind = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        raise bad_request(f"the request body must be a JSON object, got {kind}")
    return value
