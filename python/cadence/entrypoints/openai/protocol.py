"""Request models of the OpenAI-compatible API (pydantic, strict).

Every model forbids unknown fields: a field cadence does not implement (``suffix``,
``tools``, ``response_format``, ...) is a 400 naming it, never silently ignored. Types are
strict (no "1" for 1, no 1.5 for an int, no 1 for true); ranges are checked where the values
are used (``SamplingParams``), so the messages match the offline API's. ``None`` for an
optional field means "the default" (request value, else the model's generation config,
else OpenAI's default).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cadence.entrypoints.openai.errors import OpenAIError, bad_request
from cadence.serving.request_building import BeamSearchOptions, check_logit_bias


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StreamOptions(StrictModel):
    include_usage: bool | None = None


class SamplingRequest(StrictModel):
    """Fields shared by completions and chat completions."""

    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None  # an end-user id for the caller's own tracking; not used here
    # vLLM's extras.
    # Prefix-cache isolation: only requests with the same salt share cached KV blocks.
    cache_salt: str | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    min_tokens: int | None = None
    stop_token_ids: list[int] | None = None
    include_stop_str_in_output: bool | None = None
    ignore_eos: bool | None = None
    skip_special_tokens: bool | None = None
    # vLLM's beam search: the n best hypotheses of a beam search of width n.
    use_beam_search: bool | None = False
    length_penalty: float | None = None

    @field_validator("logit_bias")
    @classmethod
    def _check_logit_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key in value or {}:
            if not (key.isascii() and key.isdigit()):
                raise ValueError(
                    f"logit_bias keys must be token ids (decimal integers), got {key!r}"
                )
        check_logit_bias((value or {}).values())  # raises InvalidParameter, past pydantic
        return value

    def sampling_fields(self) -> dict[str, Any]:
        """The fields that map one to one onto SamplingParams, where given."""
        names = (
            "temperature",
            "top_p",
            "n",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "top_k",
            "min_p",
            "repetition_penalty",
            "min_tokens",
            "stop_token_ids",
            "include_stop_str_in_output",
            "ignore_eos",
            "skip_special_tokens",
        )
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def beam_search_options(self) -> BeamSearchOptions:
        """The beam-search options of a ``use_beam_search`` request (width = n)."""
        return BeamSearchOptions(
            beam_width=self.n,
            temperature=self.temperature,
            length_penalty=self.length_penalty,
            ignore_eos=bool(self.ignore_eos),
            include_stop_str_in_output=bool(self.include_stop_str_in_output),
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(SamplingRequest):
    """POST /v1/completions."""

    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool | None = False
    logprobs: int | None = None
    best_of: int | None = None


class ChatCompletionRequest(SamplingRequest):
    """POST /v1/chat/completions."""

    messages: list[dict[str, Any]]
    max_completion_tokens: int | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = None
    # vLLM's chat extras.
    chat_template: str | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    add_generation_prompt: bool | None = True
    continue_final_message: bool | None = False


class TokenizeRequest(StrictModel):
    """POST /tokenize: ``prompt`` (completions style) or ``messages`` (chat style)."""

    model: str | None = None
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    add_special_tokens: bool | None = None
    chat_template: str | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    add_generation_prompt: bool | None = True
    continue_final_message: bool | None = False


class DetokenizeRequest(StrictModel):
    """POST /detokenize."""

    model: str | None = None
    tokens: list[int]


# How to describe a union-typed field whose value matched none of its types.
_UNION_FIELDS = {
    "prompt": "a string, a list of strings, a list of token ids or a list of lists of token ids",
    "stop": "a string or a list of strings",
}


def parse_request(model: type[StrictModel], body: dict[str, Any]) -> Any:
    """Validates a JSON object into ``model``; OpenAIError 400 naming the first bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise _to_openai_error(error) from None


def _to_openai_error(error: ValidationError) -> OpenAIError:
    first = error.errors(include_url=False)[0]
    loc = first["loc"]
    field = str(loc[0]) if loc else None
    if first["type"] == "extra_forbidden":
        return bad_request(
            f"{field!r} is not supported by this server (not an implemented field)", param=field
        )
    if first["type"] == "missing":
        return bad_request(f"{field} is required", param=field)
    if field in _UNION_FIELDS:
        return bad_request(f"{field} must be {_UNION_FIELDS[field]}", param=field)
    path = field or "body"
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = first["msg"]
    if first["type"] == "value_error":  # from a field validator: its own full message
        message = str(first.get("ctx", {}).get("error", message))
        return bad_request(message, param=field)
    return bad_request(f"{path}: {message}", param=field)
