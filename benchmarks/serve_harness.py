"""What the serving benchmarks share: starting and stopping `cadence serve` (a subprocess on
--port 0, its listening line parsed from the log), a cheap streaming HTTP client for SSE
endpoints, per-request client-side timings and percentile formatting.

Used by bench_serve.py and bench_prefix_cache.py; not a benchmark itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

KV_BYTES_PER_TOKEN = 46080  # SmolLM2-135M: 2 (K, V) x 30 layers x 3 KV heads x 64 x fp32
_LISTENING = re.compile(r"serving .* at (http://[^ ]+) ")
_GRPC_LISTENING = re.compile(r"gRPC service \S+ on (\S+:\d+)")


@dataclass
class RequestTiming:
    """Client-side times (perf_counter seconds) of one streaming request."""

    sent: float
    chunk_times: list[float] = field(default_factory=list)  # one per chunk carrying tokens
    num_tokens: int = 0

    @property
    def ttft(self) -> float:
        return self.chunk_times[0] - self.sent

    @property
    def tpot(self) -> float:
        """Mean time per output token after the first."""
        return (self.chunk_times[-1] - self.chunk_times[0]) / max(self.num_tokens - 1, 1)

    @property
    def itls(self) -> list[float]:
        return list(np.diff(self.chunk_times))


def percentiles(values: Sequence[float]) -> str:
    """p50 and p99 of values in seconds, formatted in ms."""
    p50, p99 = np.percentile(values, [50, 99]) * 1000
    return f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"


def wait_until_healthy(process: subprocess.Popen, url: str, log_path: Path) -> None:
    """Polls url/health until 200 (180 s at most); raises with the log if the server exits."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the server did not start:\n{log_path.read_text()}")


def start_cadence_server(
    log_path: Path,
    *,
    model: str | None,
    threads: int,
    max_model_len: int,
    kv_cache_memory_bytes: int,
    grpc: bool = False,
    extra_args: Sequence[str] = (),
    cpus: set[int] | None = None,
) -> tuple[subprocess.Popen, str, str | None]:
    """Starts `cadence serve` on a free loopback port, its output going to log_path.

    Returns (process, HTTP url, gRPC target or None when grpc is false) once /health
    answers. extra_args are appended to the command line (e.g. --no-enable-prefix-caching).
    cpus: the cores the server may run on (None: any).
    """
    command = [
        sys.executable,
        "-m",
        "cadence.cli",
        "serve",
        *(["--model", model] if model else []),
        "--port",
        "0",
        "--num-threads",
        str(threads),
        "--max-model-len",
        str(max_model_len),
        "--kv-cache-memory-bytes",
        str(kv_cache_memory_bytes),
        "--disable-access-log",
        *(["--grpc-port", "0"] if grpc else []),
        *extra_args,
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - the server writes it until stopped
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()}")
        log_text = log_path.read_text(errors="replace")
        match = _LISTENING.search(log_text)
        grpc_match = _GRPC_LISTENING.search(log_text)
        if match and (grpc_match or not grpc):
            url = match.group(1)
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    return process, url, grpc_match.group(1) if grpc_match else None
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 60 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class StreamingClient:
    """A minimal HTTP/1.1 client for streaming completions over one keep-alive connection.

    The load generator shares the machine's cores with the server, so it must be cheap:
    this reads the chunked SSE body straight off an asyncio stream (httpx costs about three
    times as much CPU per event, which on two cores shows up as lost server throughput)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_stream(self, path: str, body: dict) -> AsyncIterator[bytes]:
        """Yields the payload of each SSE ``data:`` event of one streaming POST."""
        payload = json.dumps(body).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        is_reused = self.writer is not None
        try:
            status = await self._send(request)
        except ConnectionError:
            if not is_reused:
                raise
            status = b""
        if not status and is_reused:  # the server closed the idle connection (llama-server)
            await self.close()
            status = await self._send(request)
        if b" 200 " not in status:
            raise RuntimeError(f"HTTP error: {status!r}")
        reader = self.reader
        while (await reader.readline()) != b"\r\n":  # headers (the body is chunked)
            pass
        while True:
            size = int((await reader.readline()).strip(), 16)
            chunk = await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                return
            for event in chunk[:-2].split(b"\n\n"):
                if event.startswith(b"data: "):
                    yield event[len(b"data: ") :]

    async def _send(self, request: bytes) -> bytes:
        """Sends request on the connection (opened first if needed); returns the status line."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        return await self.reader.readline()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
            self.reader = self.writer = None
