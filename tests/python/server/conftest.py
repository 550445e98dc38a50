"""Black-box server fixtures (see server_process.py for how a server is run):

- ``server``: the default model, HTTP and gRPC (``--grpc-port 0``), max_model_len 512 and
  32 sequences per step (a 64-sequence decode step takes ~0.6 s on two cores; an abort
  lands after the step in progress, so the disconnect test's one-second bound would measure
  the machine rather than the abort path), shared by the session.
- ``limits_server``: every limit set (API key, 2 sequences, 4 waiting, 64 KiB bodies).
- ``start_server``: a factory for tests that need their own (SIGTERM).

The servers run the fp32 path (``--dtype float32 --kv-cache-dtype float32``, see
server_process.py); the offline reference is the parent conftest's ``default_llm_fp32_kv``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.server_process import API_KEY, MAX_BODY_BYTES, ServerProcess, launch


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = launch(
        tmp_path_factory.mktemp("server") / "server.log", "--max-num-seqs", "32", "--grpc-port", "0"
    )
    yield process
    process.stop()


@pytest.fixture(scope="session")
def limits_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = launch(
        tmp_path_factory.mktemp("limits_server") / "server.log",
        "--max-num-seqs",
        "2",
        "--max-waiting-requests",
        "4",
        "--max-request-body-bytes",
        str(MAX_BODY_BYTES),
        "--grpc-port",
        "0",
        api_key=API_KEY,
    )
    yield process
    process.stop()


@pytest.fixture
def start_server(tmp_path: Path):
    """Factory: ``start_server(*flags)``; every server started is stopped afterwards."""
    started: list[ServerProcess] = []

    def start(*extra_args: str) -> ServerProcess:
        process = launch(tmp_path / f"server{len(started)}.log", *extra_args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
