"""Rows of the vLLM-argument table for vLLM features cadence does not have (parallelism,
CUDA graphs and compilation, adapters, multimodal inputs, speculative and guided decoding,
tracing): each accepts vLLM's "off" value (or, for a knob of such a feature, any value) and
refuses the rest with the reason. See ``engine_args`` for the whole table.
"""

from __future__ import annotations

from cadence.vllm_compat.rows import (
    BOOL,
    FLOAT,
    GENERATE_ONLY,
    IMPLEMENTED,
    INT,
    JSON,
    LIST,
    NO_GPU,
    NO_LORA,
    NO_MOE,
    NO_PLUGINS,
    NO_SLEEP,
    NO_SPECULATIVE,
    NO_STRUCTURED,
    NO_TRACING,
    ONE_DEVICE,
    STR,
    TEXT_ONLY,
    inert,
    off,
    zero_limits,
)
from cadence.vllm_compat.spec import VllmArg, empty_or_none, one_of

_EXECUTION = (
    inert(
        "enforce_eager",
        "accepted either way: cadence always runs eagerly (no CUDA graphs exist to capture)",
        True,
        BOOL,
        accepts=one_of(True, False, None),
        accepted="None, True, False",
    ),
    inert(
        "compilation_config",
        "accepted, no effect: cadence's kernels are compiled ahead of time (no torch.compile "
        "or graph capture)",
        None,
        STR,
    ),
    inert("cudagraph_capture_sizes", "accepted, no effect: " + NO_GPU, None, LIST),
    inert("cuda_graph_sizes", "accepted, no effect: " + NO_GPU, None, LIST, deprecated=True),
    inert("max_cudagraph_capture_size", "accepted, no effect: " + NO_GPU, None, INT),
    inert("max_seq_len_to_capture", "accepted, no effect: " + NO_GPU, 8192, INT, deprecated=True),
    inert(
        "max_context_len_to_capture", "accepted, no effect: " + NO_GPU, None, INT, deprecated=True
    ),
    off(
        "tensor_parallel_size",
        1,
        ONE_DEVICE,
        2,
        INT,
        cli_aliases=("-tp",),
        meaning="one device, which is what cadence runs on",
    ),
    off(
        "pipeline_parallel_size",
        1,
        ONE_DEVICE,
        2,
        INT,
        cli_aliases=("-pp",),
        meaning="one device, which is what cadence runs on",
    ),
    off(
        "data_parallel_size",
        1,
        ONE_DEVICE,
        2,
        INT,
        cli_aliases=("-dp",),
        meaning="one engine, which is what cadence runs",
    ),
    off(
        "decode_context_parallel_size",
        1,
        ONE_DEVICE,
        2,
        INT,
        cli_aliases=("-dcp",),
        meaning="one device, which is what cadence runs on",
    ),
    off(
        "distributed_executor_backend",
        None,
        ONE_DEVICE,
        "ray",
        STR,
        also=("uni",),
        meaning="one process (vLLM's 'uni'), which is what cadence runs",
    ),
    off("data_parallel_rank", None, ONE_DEVICE, 1, INT),
    off("data_parallel_start_rank", None, ONE_DEVICE, 1, INT),
    off("data_parallel_size_local", None, ONE_DEVICE, 2, INT),
    off("data_parallel_address", None, ONE_DEVICE, "10.0.0.1", STR),
    off("data_parallel_rpc_port", None, ONE_DEVICE, 13345, INT),
    off("data_parallel_hybrid_lb", False, ONE_DEVICE, True, BOOL),
    off("data_parallel_external_lb", False, ONE_DEVICE, True, BOOL),
    inert(
        "data_parallel_backend",
        "accepted, no effect: only used with data_parallel_size > 1, which cadence refuses",
        "mp",
        STR,
    ),
    off("enable_expert_parallel", False, NO_MOE, True, BOOL),
    off("enable_eplb", False, NO_MOE, True, BOOL),
    off(
        "eplb_config",
        None,
        NO_MOE,
        {"window_size": 10},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    inert("expert_placement_strategy", "accepted, no effect: " + NO_MOE, "linear", STR),
    inert("num_redundant_experts", "accepted, no effect: " + NO_MOE, 0, INT),
    inert("all2all_backend", "accepted, no effect: " + ONE_DEVICE, None, STR),
    off("enable_dbo", False, ONE_DEVICE, True, BOOL),
    inert(
        "disable_custom_all_reduce",
        "accepted either way: one device has no all-reduce",
        False,
        BOOL,
    ),
    inert("disable_nccl_for_dp_synchronization", "accepted, no effect: " + ONE_DEVICE, False, BOOL),
    off("ray_workers_use_nsight", False, ONE_DEVICE, True, BOOL),
    off("worker_use_ray", False, ONE_DEVICE, True, BOOL, deprecated=True),
    off("engine_use_ray", False, ONE_DEVICE, True, BOOL, deprecated=True),
    off("worker_cls", "auto", NO_PLUGINS, "my.Worker", STR),
    off("worker_extension_cls", "", NO_PLUGINS, "my.Extension", STR, also=(None,)),
    off(
        "additional_config",
        None,
        NO_PLUGINS,
        {"x": 1},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off("enable_sleep_mode", False, NO_SLEEP, True, BOOL),
)

_LORA_NOTE = "accepted, no effect: only used with enable_lora, which cadence refuses"
_ADAPTERS = (
    off("enable_lora", False, NO_LORA, True, BOOL),
    *(
        inert(name, _LORA_NOTE, example, cli, deprecated=old)
        for name, example, cli, old in (
            ("max_loras", 1, INT, False),
            ("max_lora_rank", 16, INT, False),
            ("max_cpu_loras", None, INT, False),
            ("fully_sharded_loras", False, BOOL, False),
            ("lora_dtype", "auto", STR, False),
            ("lora_extra_vocab_size", 256, INT, False),
            ("default_mm_loras", None, JSON, False),
            ("enable_lora_bias", False, BOOL, True),
            ("long_lora_scaling_factors", None, LIST, True),
        )
    ),
    off("qlora_adapter_name_or_path", None, NO_LORA, "/adapter", STR, deprecated=True),
    off("enable_prompt_adapter", False, NO_LORA, True, BOOL, deprecated=True),
    inert("max_prompt_adapters", _LORA_NOTE, 1, INT, deprecated=True),
    inert("max_prompt_adapter_token", _LORA_NOTE, 0, INT, deprecated=True),
)

_MM_NOTE = "accepted, no effect: " + TEXT_ONLY
_MULTIMODAL = (
    off(
        "limit_mm_per_prompt",
        None,
        TEXT_ONLY,
        {"image": 1},
        JSON,
        accepts=zero_limits,
        accepted="None, {} or 0 of every modality",
    ),
    off(
        "mm_processor_kwargs",
        None,
        TEXT_ONLY,
        {"num_crops": 4},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off(
        "media_io_kwargs",
        None,
        TEXT_ONLY,
        {"video": {"num_frames": 8}},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off("allowed_local_media_path", "", TEXT_ONLY, "/media", STR, also=(None,)),
    off(
        "allowed_media_domains",
        None,
        TEXT_ONLY,
        ["example.com"],
        LIST,
        accepts=empty_or_none,
        accepted="None or []",
    ),
    off("enable_mm_embeds", False, TEXT_ONLY, True, BOOL),
    off("interleave_mm_strings", False, TEXT_ONLY, True, BOOL),
    off("io_processor_plugin", None, NO_PLUGINS, "my_plugin", STR),
    off("enable_multimodal_encoder_data_parallel", False, TEXT_ONLY, True, BOOL, deprecated=True),
    *(
        inert(name, _MM_NOTE, example, cli)
        for name, example, cli in (
            ("disable_mm_preprocessor_cache", False, BOOL),
            ("mm_processor_cache_gb", 4, FLOAT),
            ("mm_processor_cache_type", None, STR),
            ("mm_shm_cache_max_object_size_mb", 128, INT),
            ("mm_encoder_tp_mode", "weights", STR),
            ("mm_encoder_attn_backend", None, STR),
            ("skip_mm_profiling", False, BOOL),
            ("video_pruning_rate", None, FLOAT),
            ("disable_chunked_mm_input", False, BOOL),
        )
    ),
)

_SPEC_NOTE = "accepted, no effect: only used with speculative decoding, which cadence refuses"
_DECODING = (
    off(
        "speculative_config",
        None,
        NO_SPECULATIVE,
        {"method": "ngram"},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off("speculative_model", None, NO_SPECULATIVE, "/draft", STR, deprecated=True),
    off("num_speculative_tokens", None, NO_SPECULATIVE, 4, INT, deprecated=True),
    inert("speculative_draft_tensor_parallel_size", _SPEC_NOTE, None, INT, deprecated=True),
    inert("speculative_max_model_len", _SPEC_NOTE, None, INT, deprecated=True),
    inert("ngram_prompt_lookup_max", _SPEC_NOTE, None, INT, deprecated=True),
    inert("ngram_prompt_lookup_min", _SPEC_NOTE, None, INT, deprecated=True),
    inert("spec_decoding_acceptance_method", _SPEC_NOTE, "rejection_sampler", STR, deprecated=True),
    off(
        "structured_outputs_config",
        None,
        NO_STRUCTURED,
        {"backend": "xgrammar"},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off("reasoning_parser", "", NO_STRUCTURED, "deepseek_r1", STR, also=(None,)),
    *(
        inert(
            name,
            "accepted, no effect: a backend choice for guided decoding, which cadence "
            "does not have (a request cannot ask for it)",
            example,
            cli,
            deprecated=True,
        )
        for name, example, cli in (
            ("guided_decoding_backend", None, STR),
            ("guided_decoding_disable_fallback", None, BOOL),
            ("guided_decoding_disable_any_whitespace", None, BOOL),
            ("guided_decoding_disable_additional_properties", None, BOOL),
        )
    ),
    off("logits_processor_pattern", None, NO_PLUGINS, "my\\..*", STR),
    off(
        "logits_processors",
        None,
        NO_PLUGINS,
        ["my.Processor"],
        LIST,
        accepts=empty_or_none,
        accepted="None or []",
    ),
    VllmArg(
        "logprobs_mode",
        IMPLEMENTED,
        "'raw_logprobs'",
        "logprobs are of the model's raw distribution (before penalties, temperature and top-k/p)",
        one_of("raw_logprobs"),
        "raw_logprobs",
        reason="cadence returns log-probabilities of the raw distribution only",
        refused_example="processed_logits",
        cli=STR,
    ),
    off(
        "pooler_config",
        None,
        GENERATE_ONLY,
        {"pooling_type": "MEAN"},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
    ),
    off(
        "override_pooler_config",
        None,
        GENERATE_ONLY,
        {"pooling_type": "MEAN"},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
        deprecated=True,
    ),
    off(
        "override_neuron_config",
        None,
        NO_GPU,
        {"x": 1},
        JSON,
        accepts=empty_or_none,
        accepted="None or {}",
        deprecated=True,
    ),
)

_OBSERVABILITY = (
    inert(
        "disable_log_stats",
        "accepted either way: cadence logs no periodic engine statistics (cadence serve "
        "exposes them at /metrics)",
        True,
        BOOL,
    ),
    inert("aggregate_engine_logging", "accepted, no effect: cadence runs one engine", False, BOOL),
    off("show_hidden_metrics_for_version", None, "cadence has no hidden metrics", "0.7", STR),
    off("otlp_traces_endpoint", None, NO_TRACING, "http://localhost:4317", STR),
    off(
        "collect_detailed_traces",
        None,
        NO_TRACING,
        ["all"],
        LIST,
        accepts=empty_or_none,
        accepted="None or []",
    ),
    *(
        inert(
            name,
            "accepted, no effect: cadence tokenizes in the calling process (no tokenizer pool)",
            example,
            cli,
            deprecated=True,
        )
        for name, example, cli in (
            ("tokenizer_pool_size", 0, INT),
            ("tokenizer_pool_type", "ray", STR),
            ("tokenizer_pool_extra_config", None, JSON),
        )
    ),
)

FEATURE_ARGS: tuple[VllmArg, ...] = (
    *_EXECUTION,
    *_ADAPTERS,
    *_MULTIMODAL,
    *_DECODING,
    *_OBSERVABILITY,
)
