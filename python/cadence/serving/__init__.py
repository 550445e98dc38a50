"""The protocol-neutral serving core under every frontend (``entrypoints/openai`` for HTTP,
``entrypoints/grpc`` for gRPC). It imports neither of them; they translate its inputs,
outputs and errors to their own wire formats.

- ``errors``: typed errors that carry the parameter at fault (``InvalidParameter``,
  ``NotFound``, ``Overloaded`` with a retry-after, ``Unavailable``).
- ``model_info``: the immutable facts about the served model the frontends read.
- ``text``: tokenization, detokenization and chat rendering on worker threads, never on
  the event loop.
- ``context``: ``ServingContext``, what a frontend holds: the async engine, the model info,
  the text worker, the defaults.
- ``request_building``: requests from neutral inputs (prompts, sampling fields) into the
  engine's params, with the context-length and option checks.
- ``streams``: submitting a request's prompts and following their per-step deltas.

Threads: frontends run on the asyncio loop thread; the engine on its own (see
``AsyncLLMEngine``); text work on the text worker's threads. Nothing here touches
engine-owned state except through the async engine's command queue or the immutable
``ModelInfo``.
"""
