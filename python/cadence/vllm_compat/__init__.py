"""vLLM drop-in compatibility: what cadence does with every vLLM engine argument
(``engine_args``), ``LLM.generate`` / ``chat`` / ``beam_search`` keyword (``call_args``) and
``vllm serve`` flag (``cli``); ``docs`` renders docs/vllm_compat.md from these tables."""
