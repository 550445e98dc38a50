"""Translation between cadence.v1 protobuf messages and cadence's Python objects."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict

from cadence.beam_search import BeamSearchOutput
from cadence.outputs import CompletionOutput, Logprob, PositionLogprobs, top_entries
from cadence.serving.request_building import check_logit_bias
from cadence.v1 import inference_pb2, sampling_pb2

FINISH_REASONS = {
    None: inference_pb2.FINISH_REASON_UNSPECIFIED,
    "stop": inference_pb2.FINISH_REASON_STOP,
    "length": inference_pb2.FINISH_REASON_LENGTH,
    "abort": inference_pb2.FINISH_REASON_ABORT,
}

# SamplingParams proto fields that are `optional` scalars: sent only when set.
_OPTIONAL_FIELDS = (
    "n",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "seed",
    "max_tokens",
    "logprobs",
    "prompt_logprobs",
    "skip_special_tokens",
    "truncate_prompt_tokens",
)
_LIST_FIELDS = ("stop", "stop_token_ids", "allowed_token_ids", "bad_words")
_BOOL_FIELDS = ("include_stop_str_in_output", "ignore_eos")

# The proto's field names (for errors that name a field).
SAMPLING_FIELDS = tuple(field.name for field in sampling_pb2.SamplingParams.DESCRIPTOR.fields)


def sampling_fields(message: sampling_pb2.SamplingParams) -> dict[str, Any]:
    """The fields the client set, as cadence ``SamplingParams`` keyword arguments (names are
    the same); unset ones are left out so the server's defaults apply."""
    fields: dict[str, Any] = {}
    for name in _OPTIONAL_FIELDS:
        if message.HasField(name):
            fields[name] = getattr(message, name)
    for name in _LIST_FIELDS:
        values = list(getattr(message, name))
        if values:
            fields[name] = values
    for name in _BOOL_FIELDS:
        if getattr(message, name):
            fields[name] = True
    if message.min_tokens:
        fields["min_tokens"] = message.min_tokens
    if message.logit_bias:
        check_logit_bias(message.logit_bias.values())  # refused, not clamped, as over HTTP
        fields["logit_bias"] = dict(message.logit_bias)
    return fields


def to_sampling_message(fields: dict[str, Any]) -> sampling_pb2.SamplingParams:
    """The subset of ``fields`` that SamplingParams (proto) carries (for GetModelInfo)."""
    known = {name: value for name, value in fields.items() if name in SAMPLING_FIELDS}
    return sampling_pb2.SamplingParams(**known)


def struct_to_dict(struct: Any) -> dict[str, Any] | None:
    return MessageToDict(struct) if struct.fields else None


def token_logprob(token_id: int, logprob: Logprob) -> inference_pb2.TokenLogprob:
    return inference_pb2.TokenLogprob(
        token_id=token_id,
        logprob=logprob.logprob,
        rank=logprob.rank or 0,
        text=logprob.decoded_token or "",
    )


def position_logprobs(
    token_id: int, position: PositionLogprobs, num_top: int
) -> inference_pb2.PositionLogprobs:
    """The chosen token and the ``num_top`` best of one position."""
    return inference_pb2.PositionLogprobs(
        token=token_logprob(token_id, position[token_id]),
        top=[token_logprob(t, lp) for t, lp in top_entries(position, num_top)],
    )


def choice_delta(completion: CompletionOutput, num_top: int | None) -> inference_pb2.Choice:
    """A choice from a delta (or a whole output): its text and tokens; finish fields once
    it finished."""
    choice = inference_pb2.Choice(
        index=completion.index,
        text=completion.text,
        token_ids=completion.token_ids,
        finish_reason=FINISH_REASONS[completion.finish_reason],
    )
    if completion.logprobs is not None and num_top is not None:
        choice.logprobs.extend(
            position_logprobs(token_id, position, num_top)
            for token_id, position in zip(completion.token_ids, completion.logprobs, strict=True)
        )
    if completion.cumulative_logprob is not None:
        choice.cumulative_logprob = completion.cumulative_logprob
    if completion.finish_reason is not None:
        if isinstance(completion.stop_reason, str):
            choice.stop_string = completion.stop_reason
        elif isinstance(completion.stop_reason, int):
            choice.stop_token_id = completion.stop_reason
    return choice


def beam_search_response(output: BeamSearchOutput) -> inference_pb2.BeamSearchResponse:
    sequences = [
        inference_pb2.BeamSequence(
            text=sequence.text,
            token_ids=sequence.tokens,
            cum_logprob=sequence.cum_logprob,
            score=sequence.score,
            logprobs=[
                position[token].logprob
                for token, position in zip(sequence.tokens, sequence.logprobs, strict=True)
            ],
            finish_reason=FINISH_REASONS[sequence.finish_reason],
        )
        for sequence in output.sequences
    ]
    num_generated = sum(len(sequence.tokens) for sequence in output.sequences)
    return inference_pb2.BeamSearchResponse(
        sequences=sequences,
        usage=usage(len(output.prompt_token_ids), num_generated, output.num_cached_tokens),
    )


def usage(num_prompt: int, num_generated: int, num_cached: int) -> inference_pb2.Usage:
    return inference_pb2.Usage(
        prompt_tokens=num_prompt,
        completion_tokens=num_generated,
        total_tokens=num_prompt + num_generated,
        cached_tokens=num_cached,
    )
