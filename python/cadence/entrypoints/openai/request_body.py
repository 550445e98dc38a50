"""Reading a JSON request body: content type, size limit, JSON syntax, object shape.

Each failure is an OpenAI-shaped error: 400 for a wrong content type, invalid JSON, a body
that is not a JSON object, or text that is not valid Unicode (a lone UTF-16 surrogate,
whether sent as a ``\ud800`` escape or as the invalid UTF-8 bytes ED A0 80, which JSON
decoding lets through); 413 for a body over the limit (checked against Content-Length
before reading, and while reading for chunked bodies).
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
    _check_text(value)
    return value


def _check_text(body: dict[str, Any]) -> None:
    """400 naming the field for any string (key or value, at any depth) that holds a lone
    surrogate: no tokenizer, template or error message downstream can take it."""
    stack: list[tuple[str, str, Any]] = [(key, key, item) for key, item in body.items()]
    for key in body:
        _check_string(key, key, "a field name")
    while stack:
        field, path, item = stack.pop()
        if isinstance(item, str):
            _check_string(item, field, path)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _check_string(key, field, f"a field name in {path}")
                stack.append((field, f"{path}.{key}", inner))
        elif isinstance(item, list):
            stack.extend((field, f"{path}[{index}]", inner) for index, inner in enumerate(item))


def _check_string(text: str, field: str, path: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise bad_request(
            f"{_printable(path)} is not valid Unicode text: a lone surrogate "
            f"(U+{ord(text[error.start]):04X}) at character {error.start}",
            param=_printable(field),
        ) from None


def _printable(name: str) -> str:
    """``name`` with any lone surrogate escaped, so the error message itself encodes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")
