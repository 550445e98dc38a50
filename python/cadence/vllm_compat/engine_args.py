"""vLLM's engine arguments (``EngineArgs`` / ``LLM(...)`` keywords / ``vllm serve`` flags) and
what cadence does with each: the single source of truth for ``LLM.__init__``'s vLLM keywords,
the ``cadence serve`` flags (``cadence.vllm_compat.cli``) and docs/vllm_compat.md
(``cadence.vllm_compat.docs``).

Rows with ``parameter=True`` are explicit parameters of ``LLM.__init__`` (and hand-written
flags in ``cadence.cli``) that validate themselves; every other row is checked here by
``check_engine_kwargs``. Names are vLLM's current ones plus the common older ones
(``deprecated=True``).
"""

from __future__ import annotations

from typing import Any

from cadence.vllm_compat.feature_args import FEATURE_ARGS
from cadence.vllm_compat.rows import (
    BOOL,
    CONFIG_AS_STORED,
    FLOAT,
    GENERATE_ONLY,
    IMPLEMENTED,
    INT,
    JSON,
    LIST,
    NO_DOWNLOAD,
    NO_KV_CONNECTORS,
    NO_MAMBA,
    NO_PLUGINS,
    NO_REMOTE_CODE,
    NO_SPECULATIVE,
    STR,
    inert,
    non_negative,
    off,
    param,
    positive_int,
)
from cadence.vllm_compat.serve_args import SERVE_ARGS
from cadence.vllm_compat.spec import NO_VALUE, VllmArg, any_value, empty_or_none, number_in, one_of

_MODEL = (
    param(
        "model",
        "an HF model directory, a .gguf file, or a hub id already in the local HF cache "
        "(never downloaded); None = the default model",
        None,
        "/no/such/model",
        STR,
        accepted="a path or cached hub id",
    ),
    param(
        "tokenizer",
        "a tokenizer directory (or .gguf) used instead of the model's own",
        None,
        "/no/such/tokenizer",
        STR,
        accepted="None or a path",
    ),
    param(
        "revision",
        "the snapshot (branch, tag or commit) of a hub id in the HF cache",
        None,
        NO_VALUE,
        STR,
        accepted="None or a snapshot name",
    ),
    param(
        "dtype",
        "how the weights are stored (compute is fp32): auto, float32/float, bfloat16, "
        "float16/half or a torch.dtype; auto keeps a GGUF's quantized blocks",
        "auto",
        "int4",
        STR,
        accepted="auto, float32, float, bfloat16, float16, half",
    ),
    param(
        "quantization",
        "None; 'int8' (weight-only int8 at load, HF checkpoints); 'gguf' (a GGUF's own)",
        None,
        "awq",
        STR,
        accepted="None, int8, gguf",
        cli_aliases=("-q",),
    ),
    param(
        "max_model_len",
        "context length (prompt + output); default the model's max_position_embeddings",
        512,
        0,
        INT,
        accepted="None or 1 .. the model's maximum",
    ),
    param(
        "seed",
        "seeds the RNG that draws a seed for each request without its own; None = random",
        0,
        -1,
        INT,
        accepted="None or 0 .. 2**64-1",
    ),
    param(
        "max_logprobs",
        "the most logprobs / prompt_logprobs a request may ask for",
        20,
        -1,
        INT,
        accepted="an integer >= 0",
    ),
    param(
        "device",
        "'auto' or 'cpu' (this build has the CPU backend only)",
        "auto",
        "cuda",
        STR,
        accepted="auto, cpu",
    ),
    param(
        "generation_config",
        "default SamplingParams: 'auto' (the model's generation_config.json), 'vllm' "
        "(neutral) or a folder holding a generation_config.json",
        "vllm",
        "/no/such/folder",
        STR,
        accepted="auto, vllm or a folder",
    ),
    param(
        "override_generation_config",
        "generation_config.json keys layered on top, e.g. {'temperature': 0.5}",
        {},
        "temperature=0.5",
        JSON,
        accepted="None or a dict",
    ),
    VllmArg(
        "task",
        IMPLEMENTED,
        "'auto', 'generate'",
        "text generation, the only task cadence has",
        one_of("auto", "generate", None),
        "generate",
        reason=GENERATE_ONLY,
        refused_example="embed",
        cli=STR,
        deprecated=True,
    ),
    VllmArg(
        "runner",
        IMPLEMENTED,
        "'auto', 'generate'",
        "the generative runner, the only one cadence has",
        one_of("auto", "generate"),
        "generate",
        reason=GENERATE_ONLY,
        refused_example="pooling",
        cli=STR,
    ),
    VllmArg(
        "convert",
        IMPLEMENTED,
        "'auto', 'none'",
        "the model is used as it is (no conversion to a pooling model)",
        one_of("auto", "none"),
        "none",
        reason=GENERATE_ONLY,
        refused_example="embed",
        cli=STR,
    ),
    VllmArg(
        "tokenizer_mode",
        IMPLEMENTED,
        "'auto', 'hf'",
        "the fast (tokenizers) tokenizer: an HF directory's tokenizer.json, or the one cadence "
        "builds from a GGUF's metadata",
        one_of("auto", "hf"),
        "auto",
        reason="cadence uses fast tokenizers only (no slow, mistral_common or custom ones)",
        refused_example="slow",
        cli=STR,
    ),
    inert(
        "trust_remote_code",
        "accepted either way: cadence never runs model-repository code, so a model that needs "
        "it is refused at load (its config cannot be read, or its architecture is not one "
        "cadence implements)",
        True,
        BOOL,
        accepted="True, False",
        accepts=one_of(True, False),
    ),
    off("code_revision", None, NO_REMOTE_CODE, "main", STR),
    off("hf_config_path", None, CONFIG_AS_STORED, "/some/config", STR),
    off("config_format", "auto", CONFIG_AS_STORED, "mistral", STR, also=("hf",)),
    off(
        "hf_overrides",
        None,
        CONFIG_AS_STORED,
        {"num_hidden_layers": 2},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off(
        "rope_scaling",
        None,
        CONFIG_AS_STORED,
        {"rope_type": "linear", "factor": 2.0},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off("rope_theta", None, CONFIG_AS_STORED, 10000.0, FLOAT),
    off("override_attention_dtype", None, "attention computes in fp32", "float16", STR),
    off(
        "tokenizer_revision",
        None,
        "cadence loads the tokenizer from the model's snapshot (revision=) or the tokenizer= "
        "path; pass tokenizer=<snapshot directory>",
        "main",
        STR,
    ),
    off(
        "skip_tokenizer_init",
        False,
        "cadence detokenizes and matches stop strings itself, so it needs the tokenizer",
        True,
        BOOL,
    ),
    off("enable_prompt_embeds", False, "prompts are text or token ids", True, BOOL),
    off(
        "model_impl",
        "auto",
        "cadence runs its own C++ implementation of each architecture",
        "transformers",
        STR,
        also=("vllm",),
        meaning="cadence's own implementation (what vLLM's 'auto' picks for a model it implements)",
    ),
    VllmArg(
        "served_model_name",
        IMPLEMENTED,
        "None, a name or a list of names",
        "cadence serve: the model name(s) the API accepts and reports (the first in "
        "responses); LLM(...): accepted, there is no API offline to report it",
        any_value,
        None,
        cli=LIST,
    ),
    inert(
        "hf_token",
        "accepted and unused: cadence never contacts the hub (hub ids are read from the "
        "local HF cache)",
        None,
        STR,
    ),
    off("download_dir", None, NO_DOWNLOAD, "/models", STR),
)

_LOAD = (
    VllmArg(
        "load_format",
        IMPLEMENTED,
        "'auto', 'safetensors' (an HF directory), 'gguf' (a .gguf file)",
        "auto: a .gguf file's GGUF tensors, else the directory's safetensors; 'safetensors' / "
        "'gguf' must match the model given",
        one_of("auto", "safetensors", "gguf"),
        "auto",
        reason="cadence reads safetensors and GGUF files only",
        refused_example="pt",
        cli=STR,
    ),
    inert(
        "safetensors_load_strategy",
        "accepted, no effect: cadence memory-maps the files and converts one tensor at a "
        "time (dropping its pages once converted)",
        "lazy",
        STR,
    ),
    inert(
        "ignore_patterns",
        "accepted, no effect: cadence never downloads and reads only the model's safetensors "
        "(or the one GGUF file), so there is nothing to filter",
        None,
        LIST,
    ),
    off(
        "model_loader_extra_config",
        None,
        "cadence has one loader with no options",
        {"x": 1},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    inert(
        "use_tqdm_on_load",
        "accepted, no effect: cadence logs one line when the model is "
        "loaded instead of a progress bar",
        True,
        BOOL,
        accepts=one_of(True, False),
        accepted="True, False",
    ),
    off(
        "pt_load_map_location",
        "cpu",
        "cadence does not load PyTorch .pt / .bin files",
        "cuda:0",
        STR,
    ),
    inert(
        "max_parallel_loading_workers",
        "accepted, no effect: one process loads one tensor at a time, so peak load memory is "
        "already one tensor",
        None,
        INT,
        accepts=lambda v: v is None or positive_int(v),
        accepted="None or an integer >= 1",
    ),
)

_CACHE = (
    param("block_size", "tokens per KV-cache block", 16, 0, INT, accepted="an integer >= 1"),
    param(
        "kv_cache_dtype",
        "how the KV cache stores keys and values: auto (bfloat16 on CPUs with AVX-512 BF16, "
        "else float32), float32, bfloat16, float16",
        "auto",
        "fp8",
        STR,
        accepted="auto, float32, bfloat16, float16",
    ),
    param(
        "kv_cache_memory_bytes",
        "the KV cache's size in bytes; None = from free RAM",
        None,
        0,
        INT,
        accepted="None or an integer >= 1",
    ),
    param(
        "enable_prefix_caching",
        "automatic prefix caching: full KV blocks (prompt and generated) are named by a "
        "SHA-256 chain and reused by later requests with the same prefix and cache_salt",
        True,
        NO_VALUE,
        BOOL,
        accepted="True, False",
    ),
    VllmArg(
        "prefix_caching_hash_algo",
        IMPLEMENTED,
        "'sha256'",
        "blocks are hashed with SHA-256",
        one_of("sha256"),
        "sha256",
        reason="cadence hashes prefix blocks with SHA-256 only",
        refused_example="xxhash",
        cli=STR,
    ),
    inert(
        "gpu_memory_utilization",
        "accepted (a fraction in (0, 1]); cadence has no GPU: the CPU KV cache is "
        "kv_cache_memory_bytes, or by default a quarter of the RAM available after loading, "
        "capped at max_num_seqs full-length sequences (vLLM's CPU backend sizes its "
        "cache from VLLM_CPU_KVCACHE_SPACE, not from this fraction)",
        0.9,
        FLOAT,
        accepts=number_in(0, 1, low_open=True),
        accepted="a number in (0, 1]",
        reason="it is a fraction of memory",
        refused_example=1.5,
    ),
    inert(
        "swap_space",
        "accepted (GiB >= 0), no effect: the KV cache is already in RAM and cadence "
        "preempts by recomputation, never by swapping",
        4,
        FLOAT,
        accepts=non_negative,
        accepted="a number >= 0",
        reason="it is a size in GiB",
        refused_example=-1,
    ),
    inert(
        "cpu_offload_gb",
        "accepted (GiB >= 0), no effect: on the CPU backend every weight already lives in RAM",
        0,
        FLOAT,
        accepts=non_negative,
        accepted="a number >= 0",
        reason="it is a size in GiB",
        refused_example=-1,
    ),
    off(
        "num_gpu_blocks_override",
        None,
        "size the cache with kv_cache_memory_bytes (bytes, vLLM's name too)",
        100,
        INT,
    ),
    off("calculate_kv_scales", False, "no fp8 KV cache to scale", True, BOOL),
    off(
        "kv_sharing_fast_prefill",
        False,
        "cadence computes every layer's KV for every token",
        True,
        BOOL,
    ),
    off("kv_offloading_size", None, NO_KV_CONNECTORS, 4.0, FLOAT),
    off("kv_offloading_backend", None, NO_KV_CONNECTORS, "native", STR),
    off(
        "kv_transfer_config",
        None,
        NO_KV_CONNECTORS,
        {"kv_connector": "x"},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off(
        "kv_events_config",
        None,
        NO_KV_CONNECTORS,
        {"enable_kv_cache_events": True},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    inert("mamba_cache_dtype", "accepted, no effect: " + NO_MAMBA, "auto", STR),
    inert("mamba_ssm_cache_dtype", "accepted, no effect: " + NO_MAMBA, "auto", STR),
    inert("mamba_block_size", "accepted, no effect: " + NO_MAMBA, None, INT),
    inert(
        "use_v2_block_manager",
        "accepted, no effect (vLLM removed it): cadence has one block manager",
        True,
        BOOL,
        deprecated=True,
        accepts=one_of(True, False),
        accepted="True, False",
    ),
)

_SCHEDULER = (
    param(
        "max_num_seqs",
        "sequences computed together per step; None = 256",
        256,
        0,
        INT,
        accepted="None or an integer >= 1",
    ),
    param(
        "max_num_batched_tokens",
        "tokens computed per step (long prompts are prefilled in chunks of at most this "
        "many); None = 2048",
        2048,
        0,
        INT,
        accepted="None or an integer >= 1",
    ),
    inert(
        "enable_chunked_prefill",
        "cadence always splits prompts into chunks of at most max_num_batched_tokens per "
        "step; False is accepted because chunking does not change any output (batch "
        "invariance), only when prompt tokens are computed",
        True,
        BOOL,
        accepts=one_of(True, False, None),
        accepted="None, True, False",
    ),
    VllmArg(
        "scheduling_policy",
        IMPLEMENTED,
        "'fcfs'",
        "first come, first served: running requests oldest first, preempting the newest",
        one_of("fcfs"),
        "fcfs",
        reason="cadence has no priority scheduling",
        refused_example="priority",
        cli=STR,
    ),
    VllmArg(
        "preemption_mode",
        IMPLEMENTED,
        "None, 'recompute'",
        "a preempted request frees its blocks and recomputes its tokens when resumed",
        one_of(None, "recompute"),
        None,
        reason="cadence preempts by recomputation only (no swapping)",
        refused_example="swap",
        cli=STR,
        deprecated=True,
    ),
    VllmArg(
        "disable_sliding_window",
        IMPLEMENTED,
        "True, False",
        "True caps max_model_len at the model's sliding window, where windowed attention is "
        "full attention (vLLM's meaning); False keeps the window (masked in attention)",
        one_of(True, False),
        False,
        cli=BOOL,
    ),
    off(
        "max_num_partial_prefills",
        1,
        "cadence bounds prefill chunks by max_num_batched_tokens only (as vLLM V1)",
        2,
        INT,
    ),
    off(
        "max_long_partial_prefills",
        1,
        "cadence bounds prefill chunks by max_num_batched_tokens only (as vLLM V1)",
        2,
        INT,
    ),
    off(
        "long_prefill_token_threshold",
        0,
        "cadence bounds prefill chunks by max_num_batched_tokens only (as vLLM V1)",
        512,
        INT,
    ),
    off(
        "scheduler_delay_factor",
        0.0,
        "cadence admits waiting requests at once",
        0.5,
        FLOAT,
        deprecated=True,
        accepts=lambda v: v == 0 and not isinstance(v, bool),
        accepted="0",
    ),
    off("num_scheduler_steps", 1, "cadence schedules every step", 8, INT, deprecated=True),
    inert(
        "multi_step_stream_outputs",
        "accepted, no effect: cadence schedules every step",
        True,
        BOOL,
        deprecated=True,
    ),
    off("num_lookahead_slots", 0, NO_SPECULATIVE, 4, INT),
    off(
        "scheduler_cls",
        None,
        NO_PLUGINS,
        "my.Scheduler",
        STR,
        also=("vllm.core.scheduler.Scheduler", "vllm.v1.core.sched.scheduler.Scheduler"),
        meaning="vLLM's own scheduler, whose policy cadence's scheduler follows",
    ),
    inert(
        "async_scheduling",
        "accepted either way: cadence schedules and runs each step in "
        "turn; outputs do not depend on it",
        False,
        BOOL,
    ),
    inert(
        "disable_hybrid_kv_cache_manager",
        "accepted either way: cadence has one KV-cache pool for all layers (windowed layers "
        "keep full-length blocks), which is what True asks of vLLM",
        False,
        BOOL,
    ),
    inert(
        "disable_cascade_attn", "accepted either way: cadence has no cascade attention", False, BOOL
    ),
    inert(
        "disable_async_output_proc",
        "accepted either way: cadence processes each step's outputs before the next step",
        False,
        BOOL,
    ),
)

ENGINE_ARGS: tuple[VllmArg, ...] = (
    *_MODEL,
    *_LOAD,
    *_CACHE,
    *_SCHEDULER,
    *FEATURE_ARGS,
    *SERVE_ARGS,
)
ENGINE_ARGS_BY_NAME: dict[str, VllmArg] = {row.name: row for row in ENGINE_ARGS}
assert len(ENGINE_ARGS_BY_NAME) == len(ENGINE_ARGS), "duplicate rows"

# cadence's own LLM(...) parameters that vLLM does not have.
CADENCE_ONLY_PARAMETERS = ("num_threads",)


def check_engine_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Checks the vLLM keywords ``LLM(**kwargs)`` got beyond its explicit parameters and returns
    them. A name that is no LLM(...) keyword of vLLM's is a TypeError (as Python's own for a
    misspelt keyword); a refused value is a ValueError naming the argument (``VllmArg.check``)."""
    for name, value in kwargs.items():
        row = ENGINE_ARGS_BY_NAME.get(name)
        if row is None or not row.llm_kwarg or row.parameter:
            raise TypeError(f"LLM.__init__() got an unexpected keyword argument {name!r}")
        row.check(value)
    return kwargs


def check_load_format(load_format: str, is_gguf: bool) -> None:
    """load_format 'safetensors' / 'gguf' must match the resolved model (ValueError)."""
    if load_format == "gguf" and not is_gguf:
        raise ValueError("load_format='gguf' needs a .gguf model file")
    if load_format == "safetensors" and is_gguf:
        raise ValueError("load_format='safetensors' needs an HF model directory, not a .gguf")
