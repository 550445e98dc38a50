"""The Python engine layer: the C++ engine plus tokenization, detokenization and output
assembly. Frontends (LLM, servers) talk to this class only.

Not thread-safe: one thread drives add_request / abort_request / step.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from cadence import _core
from cadence.beam_search import BeamSearchOutput, to_beam_search_output
from cadence.engine.request_state import RequestState
from cadence.errors import InvalidParameterError
from cadence.outputs import RequestOutput, RequestOutputKind
from cadence.sampling_params import BeamSearchParams, SamplingParams, tokenize_bad_words
from cadence.tokenizer_loader import encode_text


@dataclass
class _BeamRequest:
    prompt: str | None
    prompt_token_ids: list[int]
    params: BeamSearchParams


class LLMEngine:
    """Owns one ``_core.Engine`` and the tokenizer."""

    def __init__(self, core: _core.Engine, tokenizer, model_name: str) -> None:
        self.core = core
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.max_model_len = core.config.max_model_len
        self.max_logprobs = core.config.max_logprobs
        self.vocab_size = core.model_config.vocab_size
        self._requests: dict[str, RequestState] = {}
        self._beam_requests: dict[str, _BeamRequest] = {}
        self._counter = itertools.count()
        self._token_texts: dict[int, str] = {}
        self._is_profiling = bool(getattr(core.config, "profile", False))
        self._output_seconds = 0.0  # Python's share of step(), when profiling

    def next_request_id(self) -> str:
        return str(next(self._counter))

    def tokenize(self, prompt: str) -> list[int]:
        return encode_text(self.tokenizer, prompt)

    def decode_token(self, token_id: int) -> str:
        """One token's text, as ``Logprob.decoded_token`` shows it (cached)."""
        text = self._token_texts.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id], clean_up_tokenization_spaces=False)
            self._token_texts[token_id] = text
        return text

    def add_request(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int],
        params: SamplingParams,
        cache_salt: str | None = None,
        output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE,
    ) -> None:
        """Validates and queues one request. ``InvalidParameterError`` names the bad
        parameter.

        With ``params.truncate_prompt_tokens = k`` only the last k prompt tokens are used
        (and reported as the RequestOutput's prompt_token_ids). Requests share cached prefix
        blocks only when their ``cache_salt`` is equal (None and "" are the same: no salt).
        ``output_kind`` says what ``step`` reports for it (see ``RequestOutputKind``)."""
        self._check_new_id(request_id)
        params.verify(self.vocab_size, self.max_logprobs)
        if params.truncate_prompt_tokens is not None:
            prompt_token_ids = prompt_token_ids[-params.truncate_prompt_tokens :]
        self._check_prompt_length(prompt_token_ids)
        max_tokens = params.max_tokens
        if max_tokens is None:
            max_tokens = self.max_model_len - len(prompt_token_ids)
        bad_words = tokenize_bad_words(self.tokenizer, params.bad_words or [])
        self.core.add_request(
            request_id,
            prompt_token_ids,
            params.to_core(max_tokens, bad_words),
            check_cache_salt(cache_salt),
        )
        self._requests[request_id] = RequestState(
            request_id, prompt, prompt_token_ids, params, self.tokenizer, output_kind
        )

    def add_beam_request(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int],
        params: BeamSearchParams,
        cache_salt: str | None = None,
    ) -> None:
        """Queues a beam search; its one output (a BeamSearchOutput) comes from ``step`` when
        the search is done. ``InvalidParameterError`` names the bad parameter."""
        self._check_new_id(request_id)
        if not isinstance(params, BeamSearchParams):
            raise InvalidParameterError(
                "params", f"params must be BeamSearchParams, got {params!r}"
            )
        self._check_prompt_length(prompt_token_ids)
        self.core.add_beam_request(
            request_id, prompt_token_ids, params.to_core(), check_cache_salt(cache_salt)
        )
        self._beam_requests[request_id] = _BeamRequest(prompt, list(prompt_token_ids), params)

    def _check_new_id(self, request_id: str) -> None:
        if request_id in self._requests or request_id in self._beam_requests:
            raise InvalidParameterError(
                "request_id", f"request_id {request_id!r} is already in use"
            )

    def _check_prompt_length(self, prompt_token_ids: list[int]) -> None:
        num_prompt_tokens = len(prompt_token_ids)
        if num_prompt_tokens == 0:
            raise InvalidParameterError("prompt", "the prompt must not be empty")
        if num_prompt_tokens >= self.max_model_len:
            raise InvalidParameterError(
                "prompt",
                f"the prompt has {num_prompt_tokens} tokens; max_model_len is "
                f"{self.max_model_len}, so at most {self.max_model_len - 1} prompt tokens fit",
            )

    def abort_request(self, request_id: str) -> bool:
        self._requests.pop(request_id, None)
        self._beam_requests.pop(request_id, None)
        return self.core.abort_request(request_id)

    def has_unfinished_requests(self) -> bool:
        return self.core.has_unfinished_requests()

    def reset_prefix_cache(self) -> bool:
        """Forgets every cached prefix block (blocks in use stay in use); True when done."""
        self.core.reset_prefix_cache()
        return True

    def step(self) -> list[RequestOutput | BeamSearchOutput]:
        """Runs one engine step; returns one RequestOutput per request whose sequences produced
        tokens or finished, in the request's ``output_kind`` (CUMULATIVE: all n sequences,
        vLLM's default), and a BeamSearchOutput for each beam search that finished."""
        core_outputs = self.core.step()
        started = time.perf_counter() if self._is_profiling else 0.0
        results = self._assemble(core_outputs)
        if self._is_profiling:
            self._output_seconds += time.perf_counter() - started
        return results

    def step_profile(self) -> dict[str, float | int | dict[str, float]]:
        """Where step time went since the engine started or ``reset_step_profile`` (with
        ``CADENCE_PROFILE=1``; zeros otherwise), in seconds: the core's phases (``schedule``,
        ``batch``, ``forward``, ``sampling``), ``kernels`` (the forward pass by kernel
        family), and ``output`` (this class turning core outputs into RequestOutputs:
        detokenizing, stop strings, logprob dicts)."""
        profile = self.core.step_profile()
        return {
            "steps": profile.num_steps,
            "schedule": profile.schedule_seconds,
            "batch": profile.batch_seconds,
            "forward": profile.forward_seconds,
            "sampling": profile.sampling_seconds,
            "output": self._output_seconds,
            "kernels": dict(profile.kernel_seconds),
        }

    def reset_step_profile(self) -> None:
        self.core.reset_step_profile()
        self._output_seconds = 0.0

    def _assemble(self, core_outputs: list) -> list[RequestOutput | BeamSearchOutput]:
        touched: dict[str, RequestState] = {}
        finished_beam_searches: list[BeamSearchOutput] = []
        for core_output in core_outputs:
            beam_request = self._beam_requests.pop(core_output.request_id, None)
            if beam_request is not None:
                finished_beam_searches.append(
                    to_beam_search_output(
                        core_output,
                        beam_request.prompt,
                        beam_request.prompt_token_ids,
                        beam_request.params,
                        self.tokenizer,
                        self.decode_token,
                    )
                )
                continue
            state = self._requests.get(core_output.request_id)
            if state is None:  # aborted between steps
                continue
            decode = self.decode_token if state.params.detokenize else _no_text
            state.on_core_output(core_output, decode)
            sequence = state.sequences[core_output.sequence_index]
            if sequence.is_finished and not sequence.is_core_finished:
                # A stop string ended it here: free its blocks now, its siblings go on.
                self.core.abort_sequence(state.request_id, sequence.index)
                sequence.is_core_finished = True
            touched[state.request_id] = state
        results: list[RequestOutput | BeamSearchOutput] = []
        for request_id, state in touched.items():
            if state.is_finished:
                del self._requests[request_id]
            output = state.output()
            if output is not None:
                results.append(output)
        results.extend(finished_beam_searches)
        return results


def check_cache_salt(cache_salt: str | None) -> str:
    """The salt as the core takes it ("" for none); InvalidParameterError unless None or a non-empty
    string (as vLLM checks it)."""
    if cache_salt is None:
        return ""
    if not isinstance(cache_salt, str) or not cache_salt:
        raise InvalidParameterError(
            "cache_salt", f"cache_salt must be a non-empty string, got {cache_salt!r}"
        )
    return cache_salt


def _no_text(token_id: int) -> None:
    return None
