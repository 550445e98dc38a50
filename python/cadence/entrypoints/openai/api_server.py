"""The OpenAI-compatible HTTP server: the FastAPI app and the uvicorn runner.

Endpoints: POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health,
GET /version, POST /tokenize, POST /detokenize, GET /metrics.

Shutdown: the first SIGTERM (or SIGINT) starts a drain: /health and every new request get
503, in-flight requests finish (up to ``--shutdown-timeout`` seconds, then they are aborted
and their streams get an error event), and the process exits with status 0. A second
signal exits at once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
import socket
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

import cadence
from cadence.entrypoints.openai.errors import OpenAIError, install_exception_handlers
from cadence.entrypoints.openai.metrics import CONTENT_TYPE, ServerMetrics
from cadence.entrypoints.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    DetokenizeRequest,
    TokenizeRequest,
    parse_request,
)
from cadence.entrypoints.openai.request_body import read_json_object
from cadence.entrypoints.openai.serving_chat import ChatServing
from cadence.entrypoints.openai.serving_completion import CompletionServing
from cadence.entrypoints.openai.serving_tokenization import detokenize, tokenize
from cadence.logger import get_logger
from cadence.serving.context import ServingContext

logger = get_logger(__name__)

# Paths served without an API key (probes and scrapers).
OPEN_PATHS = frozenset({"/health", "/metrics"})
# Paths still served while draining.
DRAIN_OPEN_PATHS = frozenset({"/metrics"})
# Seconds uvicorn waits for open connections once the engine has drained.
_CONNECTION_CLOSE_SECONDS = 5


@dataclass
class ServerOptions:
    """HTTP-level options (the engine's are the LLM's).

    Attributes:
        api_key: required as ``Authorization: Bearer <key>`` on every path but
            ``OPEN_PATHS``; None = no authentication.
        max_request_body_bytes: larger bodies get 413.
        shutdown_timeout_seconds: how long a drain waits for in-flight requests.
    """

    api_key: str | None = None
    max_request_body_bytes: int = 16 * 2**20
    shutdown_timeout_seconds: float = 30.0


class CompanionServer(Protocol):
    """Another server on the same loop and engine (the gRPC service), started after the
    engine and stopped before it."""

    async def start(self) -> None: ...

    async def stop(self, grace_seconds: float) -> None: ...


class _Gatekeeper:
    """ASGI middleware: 503 for new requests while draining, 401 without the API key."""

    def __init__(self, app, api_key: str | None, is_draining) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.is_draining = is_draining

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        error = None
        if self.is_draining() and path not in DRAIN_OPEN_PATHS:
            error = OpenAIError(
                503, "the server is shutting down", code="server_shutting_down"
            ).response()
        elif self.api_key is not None and path not in OPEN_PATHS and not self._authorized(scope):
            error = OpenAIError(
                401,
                "Incorrect or missing API key: send 'Authorization: Bearer <key>'",
                code="invalid_api_key",
            ).response()
        if error is not None:
            await error(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                # Constant-time comparison: the time taken does not reveal the key.
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    token.strip(), self.api_key
                )
        return False


class ServerState:
    """The app's shared state: the serving context, metrics and the drain flag."""

    def __init__(
        self, context: ServingContext, metrics: ServerMetrics, options: ServerOptions
    ) -> None:
        self.context = context
        self.metrics = metrics
        self.options = options
        self.host = "127.0.0.1"  # set by serve()
        self.is_draining = False
        self.completions = CompletionServing(context)
        self.chat = ChatServing(context)

    async def drain(self) -> None:
        self.is_draining = True
        logger.info(
            "draining: refusing new requests, waiting up to %.0fs for in-flight ones",
            self.options.shutdown_timeout_seconds,
        )
        await self.context.engine.drain(self.options.shutdown_timeout_seconds)


def build_app(state: ServerState, companions: Sequence[CompanionServer] = ()) -> FastAPI:
    """The ASGI app. The lifespan starts the async engine's thread and the companions, and
    stops them."""
    engine = state.context.engine

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine.start()
        started: list[CompanionServer] = []
        try:
            for companion in companions:
                await companion.start()
                started.append(companion)
            yield
        finally:
            for companion in reversed(started):
                await companion.stop(_CONNECTION_CLOSE_SECONDS)
            await engine.shutdown()
            state.context.text.shutdown()

    app = FastAPI(
        title="cadence",
        version=cadence.__version__,
        lifespan=lifespan,
        openapi_url=None,  # request bodies are parsed by hand (to control every error)
        docs_url=None,
        redoc_url=None,
    )
    install_exception_handlers(app)
    app.add_middleware(
        _Gatekeeper, api_key=state.options.api_key, is_draining=lambda: state.is_draining
    )
    limit = state.options.max_request_body_bytes
    context = state.context
    model_info = context.model

    @app.get("/health")
    async def health() -> Response:
        if state.is_draining:
            raise OpenAIError(503, "the server is shutting down", code="server_shutting_down")
        if not engine.is_healthy:
            raise OpenAIError(503, "the engine loop is not running", code="engine_dead")
        return JSONResponse({"status": "ok"})

    @app.get("/version")
    async def version() -> Response:
        return JSONResponse({"version": cadence.__version__})

    @app.get("/v1/models")
    async def models() -> Response:
        created = int(time.time())
        data = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "cadence",
                "root": model_info.model_name,
                "parent": None,
                "max_model_len": model_info.max_model_len,
            }
            for name in model_info.served_model_names
        ]
        return JSONResponse({"object": "list", "data": data})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @app.post("/reset_prefix_cache")
    async def reset_prefix_cache() -> Response:
        """Empties the prefix cache (vLLM's route); later requests compute their prompts in
        full until new blocks are cached."""
        await engine.reset_prefix_cache()
        return Response(status_code=200)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = parse_request(CompletionRequest, await read_json_object(request, limit))
        return await state.completions.create(body, request)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = parse_request(ChatCompletionRequest, await read_json_object(request, limit))
        return await state.chat.create(body, request)

    @app.post("/tokenize")
    async def tokenize_route(request: Request) -> Response:
        body = parse_request(TokenizeRequest, await read_json_object(request, limit))
        return JSONResponse(await tokenize(context, body))

    @app.post("/detokenize")
    async def detokenize_route(request: Request) -> Response:
        body = parse_request(DetokenizeRequest, await read_json_object(request, limit))
        return JSONResponse(await detokenize(context, body))

    return app


class _DrainingServer(uvicorn.Server):
    """uvicorn, with the first SIGTERM/SIGINT draining the engine before the usual
    shutdown (and no re-raised signal afterwards, so the exit status is 0)."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task | None = None
        self._is_signalled = False

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started and sockets:  # listening now: the one startup line
            host, port = sockets[0].getsockname()[:2]
            shown_host = f"[{host}]" if ":" in host else host
            logger.info(
                "cadence %s serving %s at http://%s:%d (OpenAI API under /v1)",
                cadence.__version__,
                json.dumps(self._state.context.model.served_model_names),
                shown_host,
                port,
            )

    def handle_exit(self, sig: int, frame) -> None:
        if self._is_signalled or self._loop is None:  # a second signal: exit now
            self.should_exit = True
            self.force_exit = True
            return
        self._is_signalled = True
        logger.info("received %s", signal.Signals(sig).name)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            await self._state.drain()
        finally:
            self.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    sock.set_inheritable(True)
    return sock


def serve(
    state: ServerState,
    host: str,
    port: int,
    access_log: bool = True,
    companions: Sequence[CompanionServer] = (),
) -> None:
    """Binds ``host:port`` (0 = any free port), logs the URL once listening, and serves
    until shut down (see the module docstring), with ``companions`` on the same loop."""
    state.host = host
    app = build_app(state, companions)
    state.metrics.attach(state.context.engine)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=_CONNECTION_CLOSE_SECONDS,
        lifespan="on",
    )
    if access_log:  # log_level="warning" silences uvicorn's banner, not the access log
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    sock = _bind(host, port)
    _DrainingServer(config, state).run(sockets=[sock])
