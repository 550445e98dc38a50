"""Rows of the vLLM-argument table for `vllm serve` flags that are not engine arguments
(``llm_kwarg=False``). See ``engine_args`` for the whole table.
"""

from __future__ import annotations

from cadence.vllm_compat.rows import (
    BOOL,
    IMPLEMENTED,
    INT,
    LIST,
    NO_LORA,
    STR,
    inert,
    off,
    param,
)
from cadence.vllm_compat.spec import NO_VALUE, Outcome, VllmArg, empty_or_none, one_of

_PLAIN_HTTP = "cadence serve speaks plain HTTP (terminate TLS in a proxy in front of it)"
_NO_CORS = "cadence serve sends no CORS headers (serve browsers through a proxy)"
_NO_TOOLS = "cadence serve does not parse tool calls out of the generated text"
# `vllm serve` flags that are not engine arguments (llm_kwarg=False).
_SERVE = (
    param(
        "host",
        "the address to listen on (default 127.0.0.1)",
        None,
        NO_VALUE,
        STR,
        llm_kwarg=False,
        accepted="an address",
    ),
    param(
        "port",
        "the port (0 = any free port)",
        None,
        NO_VALUE,
        INT,
        llm_kwarg=False,
        accepted="0 .. 65535",
    ),
    param(
        "api_key",
        "requires 'Authorization: Bearer KEY' (also $CADENCE_API_KEY)",
        None,
        NO_VALUE,
        STR,
        llm_kwarg=False,
        accepted="None or a key",
    ),
    param(
        "chat_template",
        "a chat template file or Jinja string instead of the model's",
        None,
        NO_VALUE,
        STR,
        llm_kwarg=False,
        accepted="None, a path or a template",
    ),
    param(
        "max_log_len",
        "prompt characters / token ids logged per request (0: none)",
        None,
        NO_VALUE,
        INT,
        llm_kwarg=False,
        accepted="an integer >= 0",
    ),
    VllmArg(
        "chat_template_content_format",
        IMPLEMENTED,
        "'auto'",
        "message content is converted to what the template expects (string or OpenAI parts)",
        one_of("auto"),
        "auto",
        reason="cadence serve detects the content format from the template",
        refused_example="openai",
        cli=STR,
        llm_kwarg=False,
    ),
    VllmArg(
        "disable_uvicorn_access_log",
        IMPLEMENTED,
        "True, False",
        "True does not log each HTTP request (cadence's --disable-access-log)",
        one_of(True, False),
        False,
        cli=BOOL,
        llm_kwarg=False,
    ),
    inert(
        "disable_log_requests",
        "accepted either way: cadence serve logs request contents only up to "
        "--max-log-len (default 0: nothing)",
        True,
        BOOL,
        llm_kwarg=False,
        deprecated=True,
    ),
    inert(
        "enable_log_requests",
        "accepted either way: cadence serve logs request contents only up to "
        "--max-log-len (default 0: nothing)",
        False,
        BOOL,
        llm_kwarg=False,
    ),
    inert(
        "disable_frontend_multiprocessing",
        "accepted either way: the HTTP server and the engine thread share one process",
        False,
        BOOL,
        llm_kwarg=False,
    ),
    off(
        "api_server_count", 1, "cadence serve runs one API server process", 2, INT, llm_kwarg=False
    ),
    off("headless", False, "cadence serve always runs its API server", True, BOOL, llm_kwarg=False),
    off(
        "uvicorn_log_level",
        "info",
        "cadence serve sets uvicorn's log level itself",
        "debug",
        STR,
        llm_kwarg=False,
        meaning="accepted at vLLM's default only: cadence serve logs uvicorn's warnings and, "
        "unless --disable-access-log, one line per request",
    ),
    off(
        "response_role",
        "assistant",
        "cadence serve answers as 'assistant'",
        "bot",
        STR,
        llm_kwarg=False,
        outcome=IMPLEMENTED,
        meaning="the role of generated chat messages",
    ),
    off("ssl_keyfile", None, _PLAIN_HTTP, "/key.pem", STR, llm_kwarg=False),
    off("ssl_certfile", None, _PLAIN_HTTP, "/cert.pem", STR, llm_kwarg=False),
    off("ssl_ca_certs", None, _PLAIN_HTTP, "/ca.pem", STR, llm_kwarg=False),
    off("root_path", None, "cadence serve's routes are at the root", "/api", STR, llm_kwarg=False),
    *(
        VllmArg(
            name,
            Outcome.REFUSED,
            "none (the flag is refused)",
            "",
            lambda value: False,
            NO_VALUE,
            reason=_NO_CORS,
            refused_example=["*"],
            cli=LIST,
            llm_kwarg=False,
        )
        for name in ("allowed_origins", "allowed_methods", "allowed_headers")
    ),
    off("allow_credentials", False, _NO_CORS, True, BOOL, llm_kwarg=False),
    off("enable_auto_tool_choice", False, _NO_TOOLS, True, BOOL, llm_kwarg=False),
    off("tool_call_parser", None, _NO_TOOLS, "hermes", STR, llm_kwarg=False),
    off(
        "return_tokens_as_token_ids",
        False,
        "logprobs carry token text",
        True,
        BOOL,
        llm_kwarg=False,
    ),
    off(
        "enable_request_id_headers",
        False,
        "responses carry no X-Request-Id header",
        True,
        BOOL,
        llm_kwarg=False,
    ),
    off(
        "lora_modules",
        None,
        NO_LORA,
        ["a=/adapter"],
        LIST,
        llm_kwarg=False,
        accepts=empty_or_none,
        accepted="None or []",
    ),
    off(
        "prompt_adapters",
        None,
        NO_LORA,
        ["a=/adapter"],
        LIST,
        llm_kwarg=False,
        accepts=empty_or_none,
        accepted="None or []",
        deprecated=True,
    ),
)

SERVE_ARGS: tuple[VllmArg, ...] = _SERVE
