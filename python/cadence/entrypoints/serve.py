"""``cadence serve``'s composition root: builds the engine and the serving core, then
starts the HTTP server (``entrypoints/openai``), the gRPC service (``entrypoints/grpc``),
or both on one loop and one engine.

The only module that knows both frontends; neither imports the other, and ``--grpc-only``
never imports the HTTP stack (FastAPI, uvicorn, prometheus).
"""

from __future__ import annotations

from typing import Any

from cadence.engine.async_llm_engine import AsyncLLMEngine
from cadence.entrypoints.chat_utils import load_chat_template
from cadence.generation_config import default_sampling_overrides
from cadence.llm import LLM
from cadence.model_source import DEFAULT_MODEL_FILE, resolve_model
from cadence.serving.context import ServingContext
from cadence.serving.model_info import ModelInfo
from cadence.serving.text import TextWorker


def run_server(args: Any, llm_kwargs: dict[str, Any]) -> int:
    """Builds the engine (``LLM(**llm_kwargs)``) and serves with the server options of the
    parsed command line (see ``cadence.cli``) until shut down; returns the exit status."""
    llm = LLM(**llm_kwargs)
    source = resolve_model(llm_kwargs["model"], llm_kwargs["revision"])
    default_fields = default_sampling_overrides(
        llm_kwargs["generation_config"],
        llm_kwargs["override_generation_config"],
        source.path,
        source.is_gguf,
    )
    names = args.served_model_name or [llm_kwargs["model"] or DEFAULT_MODEL_FILE.split(".")[0]]
    model_info = ModelInfo.of(llm.llm_engine, names, default_fields)
    metrics = None
    if not args.grpc_only:
        from cadence.entrypoints.openai.metrics import ServerMetrics

        metrics = ServerMetrics(model_info.model_name)
    engine = AsyncLLMEngine(
        llm.llm_engine, max_waiting_requests=args.max_waiting_requests, metrics=metrics
    )
    context = ServingContext(
        engine=engine,
        model=model_info,
        text=TextWorker(llm.get_tokenizer(), llm.llm_engine.model_name),
        chat_template=load_chat_template(args.chat_template),
        max_log_len=args.max_log_len,
    )
    grpc_server = None
    if args.grpc_port is not None:
        from cadence.entrypoints.grpc.server import GrpcServer

        grpc_server = GrpcServer(
            context,
            args.host,
            args.grpc_port,
            api_key=args.api_key,
            max_message_bytes=args.grpc_max_message_bytes,
        )
    if args.grpc_only:
        from cadence.entrypoints.grpc.server import serve_grpc_only

        return serve_grpc_only(grpc_server, args.shutdown_timeout)
    from cadence.entrypoints.openai.api_server import ServerOptions, ServerState, serve

    options = ServerOptions(
        api_key=args.api_key,
        max_request_body_bytes=args.max_request_body_bytes,
        shutdown_timeout_seconds=args.shutdown_timeout,
    )
    state = ServerState(context, metrics, options)
    companions = [grpc_server] if grpc_server is not None else []
    serve(state, args.host, args.port, not args.disable_access_log, companions)
    return 0
