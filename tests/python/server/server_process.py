"""A ``cadence serve`` subprocess for the black-box server tests: started on a free
loopback port (``--port 0``; the port is read from the startup log line), polled on
/health, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import cadence

MAX_MODEL_LEN = 512
# 8192 tokens of fp32 KV (~380 MiB): room for 64 concurrent short requests.
KV_CACHE_BYTES = 8192 * 46080
API_KEY = "test-key-123"
MAX_BODY_BYTES = 65536
_STARTUP_TIMEOUT_SECONDS = 120
_LISTENING = re.compile(r"serving .* at (http://[^ ]+) ")
_GRPC_LISTENING = re.compile(r"gRPC service \S+ on (\S+:\d+)")


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    log_path: Path
    api_key: str | None = None
    grpc_target: str = ""  # host:port of the gRPC service, when started with --grpc-port

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def model(self) -> str:
        return "SmolLM2-135M-Instruct"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def http(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=120, **kwargs)

    def openai(self):
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=self.api_key or "EMPTY", max_retries=0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> dict[str, float]:
        """The /metrics samples without labels: {name: value} (one model, so unique)."""
        text = httpx.get(self.url + "/metrics", timeout=30).text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name_and_labels, value = line.rsplit(" ", 1)
                samples[name_and_labels.split("{", 1)[0]] = float(value)
        return samples

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def launch(log_path: Path, *extra_args: str, api_key: str | None = None) -> ServerProcess:
    """Starts ``cadence serve`` and returns once /health answers 200."""
    command = [
        sys.executable,
        "-m",
        "cadence.cli",
        "serve",
        "--port",
        "0",
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--kv-cache-memory-bytes",
        str(KV_CACHE_BYTES),
        "--num-threads",
        "2",
        # The fp32 path (the GGUF dequantized, fp32 KV): the server tests' expected texts are
        # its greedy answers, and the parent conftest's default_llm_fp32_kv is the same engine
        # offline. The default dtypes are covered offline (test_quantized_gguf.py,
        # test_kv_cache_dtype.py) and by the invariance tests on default_llm.
        "--dtype",
        "float32",
        "--kv-cache-dtype",
        "float32",
        *extra_args,
    ]
    if api_key is not None:
        command += ["--api-key", api_key]
    env = dict(os.environ)
    package_root = str(Path(cadence.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.pop("CADENCE_API_KEY", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(process, "", log_path, api_key)
    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{server.log()}")
        log = server.log()
        grpc_match = _GRPC_LISTENING.search(log)
        if grpc_match:
            server.grpc_target = grpc_match.group(1)
            if "--grpc-only" in extra_args:
                return server
        match = _LISTENING.search(log)
        if match:
            server.url = match.group(1)
            try:
                if httpx.get(server.url + "/health", timeout=5).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"the server did not become healthy:\n{server.log()}")


def pool_is_free(metrics: dict[str, float]) -> bool:
    """Per the /metrics gauges: no KV block in use and no request running or waiting."""
    return (
        metrics["cadence:kv_cache_usage_perc"] == 0.0
        and metrics["cadence:kv_cache_free_blocks"] == metrics["cadence:kv_cache_total_blocks"]
        and metrics["cadence:num_requests_running"] == 0
        and metrics["cadence:num_requests_waiting"] == 0
    )
