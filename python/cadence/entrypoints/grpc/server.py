"""The gRPC server: cadence.v1.InferenceService, grpc.health.v1.Health and server
reflection on one ``grpc.aio`` server, sharing the asyncio loop and the async engine with
the HTTP server (or alone, with ``--grpc-only``).

Health: SERVING while the engine loop runs and the server accepts requests; NOT_SERVING
once it drains (SIGTERM) or the engine died. Health and reflection need no API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cadence.entrypoints.grpc.servicer import InferenceServicer
from cadence.logger import get_logger
from cadence.serving.context import ServingContext
from cadence.v1 import inference_pb2, inference_pb2_grpc

logger = get_logger(__name__)

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_HEALTH_POLL_SECONDS = 0.25
_STOP_GRACE_SECONDS = 5.0  # for calls still open after the engine drained


class GrpcServer:
    """Owns the grpc.aio server and its health status. Built anywhere; ``start`` (on the
    serving loop, which grpc.aio binds to) creates, binds and starts it."""

    def __init__(
        self,
        context: ServingContext,
        host: str,
        port: int,
        api_key: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        if max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be >= 1024, got {max_message_bytes}")
        self.context = context
        self.host = host
        self.port = port
        self._api_key = api_key
        self._max_message_bytes = max_message_bytes
        self.server: grpc.aio.Server | None = None
        self.health: health.aio.HealthServicer | None = None
        self._watcher: asyncio.Task | None = None

    async def start(self) -> None:
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self._max_message_bytes),
                ("grpc.max_send_message_length", self._max_message_bytes),
            ]
        )
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(
            InferenceServicer(self.context, self._api_key), self.server
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        host = self.host
        address = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot bind the gRPC server to {address}")
        await self.server.start()
        await self._set_serving(self._is_serving())
        self._watcher = asyncio.create_task(self._watch_health())
        logger.info("gRPC service %s on %s:%d", SERVICE_NAME, self.host, self.port)

    async def stop(self, grace_seconds: float) -> None:
        """Reports NOT_SERVING, lets calls in flight finish for up to ``grace_seconds``."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.server is None:
            return
        await self._set_serving(False)
        await self.server.stop(grace_seconds)

    def _is_serving(self) -> bool:
        engine = self.context.engine
        return engine.is_healthy and not engine.is_draining

    async def _set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE_NAME):
            await self.health.set(service, status)

    async def _watch_health(self) -> None:
        serving = self._is_serving()
        while True:
            await asyncio.sleep(_HEALTH_POLL_SECONDS)
            now = self._is_serving()
            if now != serving:
                serving = now
                await self._set_serving(serving)


def serve_grpc_only(grpc_server: GrpcServer, shutdown_timeout_seconds: float) -> int:
    """``cadence serve --grpc-only``: the engine and the gRPC server, no HTTP. SIGTERM or
    SIGINT drains (NOT_SERVING, new calls UNAVAILABLE, in-flight ones finish up to the
    shutdown timeout) and exits 0."""

    async def main() -> None:
        engine = grpc_server.context.engine
        engine.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await grpc_server.start()
        try:
            await stop.wait()
            logger.info(
                "draining the gRPC server: waiting up to %.0fs for in-flight calls",
                shutdown_timeout_seconds,
            )
            await engine.drain(shutdown_timeout_seconds)
        finally:
            await grpc_server.stop(_STOP_GRACE_SECONDS)
            await engine.shutdown()
            grpc_server.context.text.shutdown()

    asyncio.run(main())
    return 0
