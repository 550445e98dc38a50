"""The offline API: ``LLM(model=...).generate(prompts, sampling_params)`` as in vLLM."""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cadence import _core
from cadence.beam_search import BeamSearchOutput
from cadence.engine.llm_engine import LLMEngine
from cadence.entrypoints.chat_utils import ChatRenderer, RenderedChat
from cadence.generation_config import copy_params, resolve_default_sampling_params
from cadence.kv_cache_dtype import check_kv_cache_dtype
from cadence.logger import get_logger
from cadence.model_config import load_model_config
from cadence.model_source import ModelSource, resolve_model
from cadence.outputs import RequestOutput, RequestOutputKind
from cadence.sampling_params import BeamSearchParams, SamplingParams, check_token_ids
from cadence.tokenizer_loader import load_tokenizer
from cadence.vllm_compat.call_args import (
    check_call_kwargs,
    check_per_prompt,
    legacy_token_prompts,
)
from cadence.vllm_compat.engine_args import check_engine_kwargs, check_load_format
from cadence.weight_dtype import resolve_quantization, resolve_weight_dtype

logger = get_logger(__name__)

PromptType = str | dict[str, Any]

_SUPPORTED_DEVICES = ("auto", "cpu")
# What max_num_seqs=None / max_num_batched_tokens=None (vLLM's "derive it") mean here.
_DEFAULT_MAX_NUM_SEQS = 256
_DEFAULT_MAX_NUM_BATCHED_TOKENS = 2048


def _check_positive_int(name: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class LLM:
    """An LLM for offline inference.

    Args:
        model: HF model directory, .gguf file, or hub id present in the local HF cache;
            None = the default model (SmolLM2-135M-Instruct, Q4_1 GGUF).
        tokenizer: a tokenizer directory to use instead of the model's own.
        dtype: the dtype the weights are kept in: "auto" (the checkpoint's config.json dtype;
            for GGUF, every tensor as the file stores it: quantized blocks stay quantized and
            are read by the int8 kernels), "float32" / "float", "bfloat16", "float16" / "half"
            (a GGUF's quantized tensors are then dequantized at load), or a torch.dtype.
            Compute is fp32.
        quantization: None; "int8" (HF checkpoints: float weight matrices quantized at load
            to int8 per group of 32 columns, computed by the int8 kernels); or "gguf"
            (vLLM's name for a GGUF file's own quantization, which is what "auto" keeps).
        max_model_len: context length (prompt + output); default the model's maximum
            (max_position_embeddings; a sliding-window model is masked in attention, not
            capped at its window).
        seed: seeds the RNG that draws seeds for requests without their own; None = a
            random seed (vLLM's meaning).
        max_num_seqs: requests computed together per step; None = 256.
        max_num_batched_tokens: tokens computed per step (prefill is chunked to fit);
            None = 2048.
        kv_cache_memory_bytes: KV-cache size; None = derived from free RAM.
        kv_cache_dtype: how the KV cache stores keys and values: "float32", "bfloat16" or
            "float16" (2 bytes per value: twice the tokens in the same memory; rounded when
            written, attention computes in fp32), or "auto" = "bfloat16" on CPUs with AVX-512
            BF16, else "float32". See ``cadence.kv_cache_dtype``.
        block_size: tokens per KV-cache block.
        enable_prefix_caching: automatic prefix caching, as vLLM's (on by default): full KV
            blocks stay cached after their request ends, identified by a SHA-256 chain over
            the tokens up to them (and the prompt's ``cache_salt``), and a request whose
            prompt starts with cached blocks reuses them instead of computing them. A hit
            never changes the output. ``RequestOutput.num_cached_tokens`` says how many
            prompt tokens were reused; ``reset_prefix_cache()`` empties the cache.
        num_threads: CPU threads for the kernels; None = all cores.
        device: "auto" or "cpu"; this build has no GPU backend.
        revision: the snapshot to use when ``model`` is a hub id in the HF cache.
        max_logprobs: the most ``logprobs`` / ``prompt_logprobs`` a request may ask for.
        generation_config: where the default SamplingParams (used when ``generate`` or
            ``chat`` get none) come from: "auto" = the model's generation_config.json
            (temperature, top_p, top_k, min_p, repetition_penalty, max_new_tokens; a GGUF
            has none), "vllm" = neutral ``SamplingParams()``, or a folder holding a
            generation_config.json. ``do_sample: false`` there means greedy (temperature 0),
            unlike vLLM, which ignores it. See ``cadence.generation_config``.
        override_generation_config: generation_config.json keys layered on top of that
            (in every mode), e.g. ``{"temperature": 0.5, "max_new_tokens": 64}``.
        **kwargs: vLLM's other engine arguments (``task="generate"``,
            ``tensor_parallel_size=1``, ``gpu_memory_utilization``, ``enforce_eager``, ...):
            each is implemented, accepted with a documented equivalent, or refused with a
            ValueError naming it; see ``cadence.vllm_compat.engine_args`` and
            docs/vllm_compat.md. A name vLLM does not have is a TypeError.
    """

    def __init__(
        self,
        model: str | None = None,
        tokenizer: str | None = None,
        dtype: str = "auto",
        quantization: str | None = None,
        max_model_len: int | None = None,
        seed: int | None = 0,
        max_num_seqs: int | None = _DEFAULT_MAX_NUM_SEQS,
        max_num_batched_tokens: int | None = _DEFAULT_MAX_NUM_BATCHED_TOKENS,
        kv_cache_memory_bytes: int | None = None,
        kv_cache_dtype: str = "auto",
        block_size: int = 16,
        enable_prefix_caching: bool = True,
        num_threads: int | None = None,
        device: str = "auto",
        revision: str | None = None,
        max_logprobs: int = _core.DEFAULT_MAX_LOGPROBS,
        generation_config: str = "auto",
        override_generation_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        started = time.perf_counter()
        vllm_kwargs = check_engine_kwargs(kwargs)
        if device not in _SUPPORTED_DEVICES:
            raise ValueError(
                f"device {device!r} is not available: this build of cadence has the CPU "
                "backend only (CADENCE_CUDA=OFF); use device='cpu' or 'auto'"
            )
        for name, value in (
            ("max_model_len", max_model_len),
            ("max_num_seqs", max_num_seqs),
            ("max_num_batched_tokens", max_num_batched_tokens),
            ("kv_cache_memory_bytes", kv_cache_memory_bytes),
            ("block_size", block_size),
            ("num_threads", num_threads),
        ):
            _check_positive_int(name, value)
        check_kv_cache_dtype(kv_cache_dtype)
        if not isinstance(enable_prefix_caching, bool):
            raise ValueError(
                f"enable_prefix_caching must be True or False, got {enable_prefix_caching!r}"
            )
        if seed is None:
            seed = secrets.randbits(64)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        if isinstance(max_logprobs, bool) or not isinstance(max_logprobs, int) or max_logprobs < 0:
            raise ValueError(f"max_logprobs must be an integer >= 0, got {max_logprobs!r}")

        source = resolve_model(model, revision)
        check_load_format(vllm_kwargs.get("load_format", "auto"), source.is_gguf)
        weight_dtype = resolve_weight_dtype(dtype, source)
        quantization_mode = resolve_quantization(quantization, source)
        self._default_sampling_params, from_config = resolve_default_sampling_params(
            generation_config, override_generation_config, source.path, source.is_gguf
        )
        model_config = load_model_config(source)
        limit = model_config.max_position_embeddings
        window = model_config.sliding_window
        if vllm_kwargs.get("disable_sliding_window") and window > 0:
            # vLLM's meaning: the context is capped at the window, where windowed attention
            # attends to every position, i.e. is full attention.
            if max_model_len is not None and max_model_len > window:
                raise ValueError(
                    f"max_model_len must be <= {window} (the model's sliding window) with "
                    f"disable_sliding_window=True, got {max_model_len}"
                )
            limit = min(limit, window)
        if max_model_len is not None and max_model_len > limit:
            raise ValueError(
                f"max_model_len must be <= {limit} (the model's max_position_embeddings), "
                f"got {max_model_len}"
            )

        config = _core.EngineConfig()
        config.model_path = source.path
        config.model_config = model_config
        config.weight_dtype = weight_dtype
        config.quantization = quantization_mode
        config.block_size = block_size
        config.enable_prefix_caching = enable_prefix_caching
        config.kv_cache_memory_bytes = kv_cache_memory_bytes or 0
        config.kv_cache_dtype = kv_cache_dtype
        config.max_num_seqs = max_num_seqs or _DEFAULT_MAX_NUM_SEQS
        config.max_num_batched_tokens = max_num_batched_tokens or _DEFAULT_MAX_NUM_BATCHED_TOKENS
        config.max_model_len = max_model_len or limit
        config.num_threads = num_threads or 0
        config.seed = seed
        config.max_logprobs = max_logprobs
        # CADENCE_PROFILE=1: time every step's phases and kernel families (see
        # LLMEngine.step_profile); off by default.
        config.profile = os.environ.get("CADENCE_PROFILE", "0") not in ("", "0")
        # The tokenizer (Python: transformers' import and the vocabulary) loads on a thread
        # while the core loads the weights with the GIL released: start-up is the longer of
        # the two, not their sum. A tokenizer error is reported first, as if loaded first.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cadence-tokenizer") as pool:
            tokenizer_future = pool.submit(load_tokenizer, source, tokenizer)
            try:
                core = _core.Engine(config)
            except RuntimeError as error:
                tokenizer_future.result()
                raise ValueError(f"cannot load model {source.name}: {error}") from error
            except BaseException:
                tokenizer_future.result()
                raise
            tokenizer_obj = tokenizer_future.result()
        self.llm_engine = LLMEngine(core, tokenizer_obj, source.name)
        self._log_summary(source, core, time.perf_counter() - started)
        if from_config:
            logger.info(
                "default sampling parameters from the generation config (used when no "
                "sampling_params are given): %s",
                ", ".join(f"{name}={value!r}" for name, value in sorted(from_config.items())),
            )

    @staticmethod
    def _log_summary(source: ModelSource, core: _core.Engine, seconds: float) -> None:
        config = core.config
        stats = core.stats()
        logger.info(
            "cadence ready in %.1fs: model=%s (%s), weights=%s%s (%.0f MiB), "
            "KV cache=%d blocks x %d tokens (%s, %.0f MiB), max_model_len=%d, threads=%d, "
            "isa=%s",
            seconds,
            source.name,
            os.path.basename(source.path) if source.is_gguf else core.model_config.architecture,
            config.weight_dtype,
            f" + {config.quantization}" if config.quantization else "",
            core.weight_bytes / 2**20,
            stats.num_total_blocks,
            config.block_size,
            core.kv_cache_dtype,
            core.kv_cache_bytes / 2**20,
            config.max_model_len,
            config.num_threads,
            core.isa,
        )

    def get_default_sampling_params(self) -> SamplingParams:
        """The SamplingParams that ``generate`` and ``chat`` use when given none (a fresh
        copy): neutral defaults overlaid with the generation config (see ``__init__``)."""
        return copy_params(self._default_sampling_params)

    def get_tokenizer(self):
        return self.llm_engine.tokenizer

    def reset_prefix_cache(self) -> bool:
        """Empties the prefix cache (as vLLM's): later requests compute their prompts in full
        until new blocks are cached. Returns True."""
        return self.llm_engine.reset_prefix_cache()

    def _to_prompt(self, prompt: Any) -> tuple[str | None, list[int], str | None]:
        """(text, token ids, cache_salt) of a str or a prompt dict."""
        if isinstance(prompt, dict):
            text, token_ids = self._prompt_tokens(prompt)
            return text, token_ids, prompt.get("cache_salt")
        text, token_ids = self._prompt_tokens(prompt)
        return text, token_ids, None

    def _prompt_tokens(self, prompt: Any) -> tuple[str | None, list[int]]:
        engine = self.llm_engine
        if isinstance(prompt, str):
            return prompt, engine.tokenize(prompt)
        if isinstance(prompt, dict):
            if "prompt_token_ids" in prompt:
                ids = prompt["prompt_token_ids"]
                if not isinstance(ids, (list, tuple)) or not all(
                    isinstance(t, int) and not isinstance(t, bool) for t in ids
                ):
                    raise ValueError("prompt_token_ids must be a list of ints")
                check_token_ids("prompt_token_ids", ids, engine.vocab_size)
                return prompt.get("prompt"), list(ids)
            if "prompt" in prompt and isinstance(prompt["prompt"], str):
                return prompt["prompt"], engine.tokenize(prompt["prompt"])
            raise ValueError("a prompt dict needs 'prompt' (str) or 'prompt_token_ids' (list)")
        raise ValueError(
            f"a prompt must be a str or a dict with 'prompt' or 'prompt_token_ids', got "
            f"{type(prompt).__name__}"
        )

    def generate(
        self,
        prompts: PromptType | Sequence[PromptType] | None = None,
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool | Callable[..., Any] = True,
        *,
        lora_request: Any = None,
        priority: list[int] | None = None,
        truncate_prompt_tokens: int | None = None,
        prompt_token_ids: list[int] | list[list[int]] | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
        prompt_adapter_request: Any = None,
        guided_options_request: Any = None,
    ) -> list[RequestOutput]:
        """Generates for every prompt; returns RequestOutputs in input order.

        ``sampling_params=None`` uses ``get_default_sampling_params()``. The keywords are
        vLLM's (see ``cadence.vllm_compat.call_args``): ``truncate_prompt_tokens`` applies to
        every prompt (-1 = max_model_len); ``lora_request``, ``priority`` and the rest are
        accepted at their "off" values and refused (ValueError naming them) otherwise."""
        check_call_kwargs(
            "generate",
            use_tqdm=use_tqdm,
            lora_request=lora_request,
            priority=priority,
            truncate_prompt_tokens=truncate_prompt_tokens,
            prompt_token_ids=prompt_token_ids,
            tokenization_kwargs=tokenization_kwargs,
            prompt_adapter_request=prompt_adapter_request,
            guided_options_request=guided_options_request,
        )
        if prompt_token_ids is not None:
            prompts = legacy_token_prompts(prompts, prompt_token_ids)
        if prompts is None:
            raise ValueError("prompts must be given (a prompt or a list of prompts)")
        if isinstance(prompts, (str, dict)):
            prompts = [prompts]
        prompts = list(prompts)
        check_per_prompt("priority", priority, len(prompts))
        check_per_prompt("lora_request", lora_request, len(prompts))
        if sampling_params is None:
            sampling_params = self.get_default_sampling_params()
        if isinstance(sampling_params, SamplingParams):
            params_list = [sampling_params] * len(prompts)
        else:
            params_list = list(sampling_params)
            if len(params_list) != len(prompts):
                raise ValueError(
                    f"sampling_params has {len(params_list)} entries for {len(prompts)} prompts"
                )
        for params in params_list:
            if not isinstance(params, SamplingParams):
                raise ValueError(f"sampling_params must be SamplingParams, got {params!r}")
        if truncate_prompt_tokens is not None:
            keep = truncate_prompt_tokens
            if keep == -1:
                keep = self.llm_engine.max_model_len
            params_list = [
                dataclasses.replace(params, truncate_prompt_tokens=keep) for params in params_list
            ]
        parsed = [self._to_prompt(p) for p in prompts]
        add = functools.partial(
            self.llm_engine.add_request, output_kind=RequestOutputKind.FINAL_ONLY
        )
        pairs = zip(parsed, params_list, strict=True)
        requests = [(add, text, ids, params, salt) for (text, ids, salt), params in pairs]
        return self._run_requests(requests, use_tqdm)

    def beam_search(
        self,
        prompts: PromptType | Sequence[PromptType],
        params: BeamSearchParams,
        use_tqdm: bool | Callable[..., Any] = False,
        *,
        lora_request: Any = None,
        concurrency_limit: int | None = None,
    ) -> list[BeamSearchOutput]:
        """Beam search for every prompt (``{"prompt": str}``, ``{"prompt_token_ids": [...]}``
        or a string); returns one BeamSearchOutput per prompt, in order, whose ``sequences``
        are the ``params.beam_width`` best hypotheses, best first.

        The search runs inside the engine: a prompt's beams share KV blocks and run in the
        same batches as every other request (see ``BeamSearchParams`` for the rule).
        ``concurrency_limit`` (vLLM's): at most this many prompts are searched at a time;
        ``lora_request`` is accepted as None only."""
        check_call_kwargs(
            "beam_search",
            use_tqdm=use_tqdm,
            lora_request=lora_request,
            concurrency_limit=concurrency_limit,
        )
        if not isinstance(params, BeamSearchParams):
            raise ValueError(f"params must be BeamSearchParams, got {params!r}")
        if isinstance(prompts, (str, dict)):
            prompts = [prompts]
        parsed = [self._to_prompt(p) for p in prompts]
        add = self.llm_engine.add_beam_request
        requests = [(add, text, ids, params, salt) for text, ids, salt in parsed]
        check_per_prompt("lora_request", lora_request, len(requests))
        limit = concurrency_limit or max(len(requests), 1)
        outputs: list[BeamSearchOutput] = []
        for start in range(0, len(requests), limit):
            outputs += self._run_requests(requests[start : start + limit], use_tqdm)
        return outputs

    def _run_requests(
        self, requests: list[tuple[Any, ...]], use_tqdm: bool | Callable[..., Any]
    ) -> list[Any]:
        """Adds each (add_fn, prompt, prompt_token_ids, params, cache_salt) under a fresh
        request id, runs the engine until all are done and returns their outputs in order. On
        any error (including KeyboardInterrupt) the requests added so far are aborted."""
        engine = self.llm_engine
        request_ids: list[str] = []
        try:
            for add, text, token_ids, params, cache_salt in requests:
                request_id = engine.next_request_id()
                add(request_id, text, token_ids, params, cache_salt)
                request_ids.append(request_id)
            finished = self._run_to_completion(len(request_ids), use_tqdm)
        except BaseException:
            for request_id in request_ids:
                engine.abort_request(request_id)
            raise
        return [finished[request_id] for request_id in request_ids]

    def _run_to_completion(
        self, num_requests: int, use_tqdm: bool | Callable[..., Any]
    ) -> dict[str, RequestOutput | BeamSearchOutput]:
        """Steps the engine until it is idle. ``use_tqdm``: True = a tqdm.auto progress bar,
        a callable = that tqdm-like class instead (vLLM's), False = none."""
        engine = self.llm_engine
        finished: dict[str, RequestOutput | BeamSearchOutput] = {}
        progress = None
        if use_tqdm and num_requests > 0:
            if callable(use_tqdm):
                tqdm = use_tqdm
            else:
                from tqdm.auto import tqdm

            progress = tqdm(total=num_requests, desc="Processed prompts", dynamic_ncols=True)
        started = time.perf_counter()
        num_output_tokens = 0
        while engine.has_unfinished_requests():
            for output in engine.step():
                if output.finished:
                    finished[output.request_id] = output
                    num_output_tokens += _num_output_tokens(output)
                    if progress is not None:
                        elapsed = max(time.perf_counter() - started, 1e-9)
                        progress.set_postfix_str(f"output {num_output_tokens / elapsed:.1f} tok/s")
                        progress.update(1)
        if progress is not None:
            progress.close()
        return finished

    def render_chat(
        self,
        messages: Any,
        chat_template: str | None = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        allow_special_tokens_in_content: bool = False,
    ) -> list[RenderedChat]:
        """Renders conversations into prompts (text and token ids) without generating:
        for debugging templates. Same arguments as ``chat``."""
        return ChatRenderer(self.get_tokenizer(), self.llm_engine.model_name).render(
            messages,
            chat_template,
            chat_template_content_format,
            add_generation_prompt,
            continue_final_message,
            tools,
            chat_template_kwargs,
            allow_special_tokens_in_content,
        )

    def chat(
        self,
        messages: Any,
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool | Callable[..., Any] = True,
        lora_request: Any = None,
        chat_template: str | None = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        allow_special_tokens_in_content: bool = False,
    ) -> list[RequestOutput]:
        """Generates replies to one conversation or a list of conversations (batched).

        ``messages``: a list of ``{"role", "content"}`` dicts, or a list of such lists.
        Content is a string or OpenAI content parts (``[{"type": "text", "text": ...}]``);
        ``chat_template_content_format="auto"`` converts it to what the template expects.
        The template is ``chat_template`` (see ``load_chat_template``) or the tokenizer's
        own. ``tools`` and ``chat_template_kwargs`` are passed to the template.
        Control-token text inside message content is tokenized as plain text unless
        ``allow_special_tokens_in_content=True`` (vLLM's behaviour). The parameters are
        vLLM's, in vLLM's order; ``lora_request`` and ``mm_processor_kwargs`` are accepted as
        None only (see ``cadence.vllm_compat.call_args``).
        """
        check_call_kwargs(
            "chat",
            use_tqdm=use_tqdm,
            lora_request=lora_request,
            mm_processor_kwargs=mm_processor_kwargs,
        )
        rendered = self.render_chat(
            messages,
            chat_template,
            chat_template_content_format,
            add_generation_prompt,
            continue_final_message,
            tools,
            chat_template_kwargs,
            allow_special_tokens_in_content,
        )
        prompts = [
            {"prompt": chat.prompt, "prompt_token_ids": chat.prompt_token_ids} for chat in rendered
        ]
        return self.generate(prompts, sampling_params, use_tqdm=use_tqdm)


def _num_output_tokens(output: RequestOutput | BeamSearchOutput) -> int:
    if isinstance(output, BeamSearchOutput):
        return sum(len(sequence.tokens) for sequence in output.sequences)
    return sum(len(completion.token_ids) for completion in output.outputs)
