"""The Python engine layer: the C++ engine plus tokenization, detokenization and output
assembly. Frontends (LLM, servers) talk to this class only.

Not thread-safe: one thread drives add_request / abort_request / step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from cadence import _core
from cadence.detokenizer import IncrementalDetokenizer
from cadence.outputs import CompletionOutput, RequestOutput
from cadence.sampling_params import SamplingParams

_FINISH_REASONS = {
    _core.FinishReason.STOP: "stop",
    _core.FinishReason.LENGTH: "length",
    _core.FinishReason.ABORT: "abort",
}


@dataclass
class _RequestState:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    params: SamplingParams
    detokenizer: IncrementalDetokenizer
    output_token_ids: list[int]
    finish_reason: str | None = None
    stop_reason: int | None = None

    def snapshot(self) -> RequestOutput:
        completion = CompletionOutput(
            index=0,
            text=self.detokenizer.text,
            token_ids=list(self.output_token_ids),
            finish_reason=self.finish_reason,
            stop_reason=self.stop_reason,
        )
        return RequestOutput(
            request_id=self.request_id,
            prompt=self.prompt,
            prompt_token_ids=self.prompt_token_ids,
            outputs=[completion],
            finished=self.finish_reason is not None,
        )


class LLMEngine:
    """Owns one ``_core.Engine`` and the tokenizer."""

    def __init__(self, core: _core.Engine, tokenizer, model_name: str) -> None:
        self.core = core
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.max_model_len = core.config.max_model_len
        self.vocab_size = core.model_config.vocab_size
        self._requests: dict[str, _RequestState] = {}
        self._counter = itertools.count()

    def next_request_id(self) -> str:
        return str(next(self._counter))

    def tokenize(self, prompt: str) -> list[int]:
        return list(self.tokenizer.encode(prompt))

    def add_request(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int],
        params: SamplingParams,
    ) -> None:
        """Validates and queues one request. ValueError names the bad parameter."""
        if request_id in self._requests:
            raise ValueError(f"request_id {request_id!r} is already in use")
        num_prompt_tokens = len(prompt_token_ids)
        if num_prompt_tokens == 0:
            raise ValueError("the prompt must not be empty")
        if num_prompt_tokens >= self.max_model_len:
            raise ValueError(
                f"the prompt has {num_prompt_tokens} tokens; max_model_len is "
                f"{self.max_model_len}, so at most {self.max_model_len - 1} prompt tokens fit"
            )
        max_tokens = params.max_tokens
        if max_tokens is None:
            max_tokens = self.max_model_len - num_prompt_tokens
        self.core.add_request(request_id, prompt_token_ids, params.to_core(max_tokens))
        self._requests[request_id] = _RequestState(
            request_id=request_id,
            prompt=prompt,
            prompt_token_ids=prompt_token_ids,
            params=params,
            detokenizer=IncrementalDetokenizer(
                self.tokenizer, prompt_token_ids, skip_special_tokens=params.skip_special_tokens
            ),
            output_token_ids=[],
        )

    def abort_request(self, request_id: str) -> bool:
        self._requests.pop(request_id, None)
        return self.core.abort_request(request_id)

    def has_unfinished_requests(self) -> bool:
        return self.core.has_unfinished_requests()

    def step(self) -> list[RequestOutput]:
        """Runs one engine step; returns the requests that produced tokens or finished."""
        results = []
        for core_output in self.core.step():
            state = self._requests.get(core_output.request_id)
            if state is None:  # aborted between steps
                continue
            new_ids = list(core_output.new_token_ids)
            state.output_token_ids.extend(new_ids)
            state.detokenizer.append(new_ids)
            if core_output.finished:
                state.detokenizer.flush()  # emit a held-back partial character, if any
                state.finish_reason = _FINISH_REASONS[core_output.finish_reason]
                if core_output.stop_token_id >= 0:
                    state.stop_reason = core_output.stop_token_id
                del self._requests[core_output.request_id]
            results.append(state.snapshot())
        return results
