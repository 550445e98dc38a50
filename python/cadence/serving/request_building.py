"""Requests from neutral inputs: prompts, the client's sampling fields and options, into
the engine's ``SamplingParams`` / ``BeamSearchParams``, with the checks every frontend
makes (context length, beam-search combinations).

``fields`` are SamplingParams keyword arguments as the client set them (unset ones left
out, so the model's defaults apply). ``aliases`` map an engine parameter name to the
request field that carried it ("logprobs" -> "top_logprobs" in chat), so errors name the
client's field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cadence import _core
from cadence.errors import InvalidParameterError
from cadence.sampling_params import BeamSearchParams, SamplingParams
from cadence.serving.context import ServingContext
from cadence.serving.errors import InvalidParameter

# The range of a logit bias (OpenAI's [-100, 100]), from the C++ spec table.
LOGIT_BIAS_SPEC = _core.sampling_param_specs()["logit_bias"]


def check_logit_bias(biases: Iterable[float]) -> None:
    """OpenAI's rule, for every frontend: a bias outside its range is refused (the offline
    API clamps it)."""
    for bias in biases:
        if not (math.isfinite(bias) and LOGIT_BIAS_SPEC.contains(bias)):
            raise InvalidParameter(
                "logit_bias",
                f"logit_bias values must be in {LOGIT_BIAS_SPEC.allowed()}, got {bias}",
            )


@dataclass
class PromptInput:
    text: str | None
    token_ids: list[int]


def check_context_length(
    context: ServingContext, num_prompt_tokens: int, max_tokens: int | None, where: str
) -> None:
    """OpenAI's context_length_exceeded error, with the numbers. ``where`` is the field
    holding the prompt ("prompt", "messages"). ``max_tokens=None``: up to the limit."""
    limit = context.model.max_model_len
    if max_tokens is None or max_tokens < 1:  # a bad max_tokens is SamplingParams' to report
        if num_prompt_tokens >= limit:
            raise InvalidParameter(
                where,
                f"This model's maximum context length is {limit} tokens. However, your "
                f"{where} resulted in {num_prompt_tokens} tokens, which leaves no room for "
                f"the completion. Please reduce the length of the {where}.",
                code="context_length_exceeded",
            )
        return
    total = num_prompt_tokens + max_tokens
    if total > limit:
        raise InvalidParameter(
            where,
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{total} tokens ({num_prompt_tokens} in the {where}, {max_tokens} in the "
            f"completion). Please reduce the length of the {where} or completion.",
            code="context_length_exceeded",
        )


def resolve_max_tokens(
    context: ServingContext,
    requested: int | None,
    num_prompt_tokens: int,
    fallback: int | None,
    where: str,
) -> int | None:
    """max_tokens: the request's value (checked against the context), else the generation
    config's, else ``fallback`` (the protocol's default); defaults are capped to the room
    left."""
    check_context_length(context, num_prompt_tokens, requested, where)
    if requested is not None:
        return requested
    default = context.model.default_fields.get("max_tokens", fallback)
    if default is None:
        return None
    return max(1, min(default, context.model.max_model_len - num_prompt_tokens))


def make_sampling_params(
    context: ServingContext,
    fields: Mapping[str, Any],
    request_fields: frozenset[str] | tuple[str, ...],
    aliases: Mapping[str, str],
) -> SamplingParams:
    """SamplingParams from the generation-config defaults overlaid with ``fields``, checked
    against the model. An error names the request's field (None when the parameter at
    fault is not one of ``request_fields``)."""
    merged = {**context.model.default_fields, **fields}
    try:
        params = SamplingParams(**merged)
        params.verify(context.model.vocab_size, context.model.max_logprobs)
    except InvalidParameterError as error:
        raise InvalidParameter(
            request_param(error.param, request_fields, aliases), str(error)
        ) from None
    return params


def request_param(
    param: str | None, request_fields: frozenset[str] | tuple[str, ...], aliases: Mapping[str, str]
) -> str | None:
    """The request field an engine parameter came from, or None."""
    if param is None:
        return None
    name = aliases.get(param, param)
    return name if name in request_fields else None


# Sampling options beam search has no use for: set together with beam search they are an
# error naming the option, never silently ignored.
NOT_WITH_BEAM_SEARCH = (
    "top_p",
    "top_k",
    "min_p",
    "stop",
    "stop_token_ids",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logit_bias",
    "min_tokens",
    "logprobs",
    "top_logprobs",
    "echo",
    "best_of",
)


@dataclass(frozen=True)
class BeamSearchOptions:
    """A request's beam-search options, as the client set them (None = unset)."""

    beam_width: int | None = None
    temperature: float | None = None
    length_penalty: float | None = None
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False


def check_beam_search_exclusions(options_set: Mapping[str, Any]) -> None:
    """``options_set``: the request's option values by name; any of NOT_WITH_BEAM_SEARCH
    that is set (not None / False) is an error naming it."""
    for name in NOT_WITH_BEAM_SEARCH:
        value = options_set.get(name)
        if value is not None and value is not False:
            raise InvalidParameter(name, f"{name} cannot be combined with use_beam_search")


def make_beam_search_params(
    context: ServingContext,
    options: BeamSearchOptions,
    max_tokens: int | None,
    num_prompt_tokens: int,
    beam_width_param: str = "n",
) -> BeamSearchParams:
    """BeamSearchParams; ``max_tokens`` is the resolved value (None = up to the context
    limit). ``beam_width_param`` is the request field holding the width."""
    if max_tokens is None:
        max_tokens = context.model.max_model_len - num_prompt_tokens
    try:
        return BeamSearchParams(
            beam_width=options.beam_width if options.beam_width is not None else 1,
            max_tokens=max_tokens,
            ignore_eos=options.ignore_eos,
            temperature=options.temperature if options.temperature is not None else 0.0,
            length_penalty=options.length_penalty if options.length_penalty is not None else 1.0,
            include_stop_str_in_output=options.include_stop_str_in_output,
        )
    except InvalidParameterError as error:
        if error.param == "beam_width":
            message = str(error)
            if beam_width_param != "beam_width":
                message = message.replace("beam_width", f"{beam_width_param} (the beam width)")
            raise InvalidParameter(beam_width_param, message) from None
        raise InvalidParameter(error.param, str(error)) from None
