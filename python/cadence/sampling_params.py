"""Sampling options for one request, with vLLM's names, defaults and meanings.

Validation happens at construction and names the offending field and its allowed range;
every error is an ``InvalidParameterError`` (a ``ValueError``) whose ``param`` is the field.
Unknown keyword arguments raise ``TypeError``. Checks that need the model (token ids against
the vocabulary, logprob counts against the engine's ``max_logprobs``) run in ``verify`` when
the request is added.

The ranges and defaults of the fields the C++ engine shares are not written here: they come
from the C++ spec tables (``_core.sampling_param_specs()``, ``_core.beam_search_param_specs()``),
which ``SamplingParams::validate`` checks against too. Python adds the type checks, None
handling and the fields only Python has (stop strings, bad words, seed's int64 range,
truncate_prompt_tokens).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cadence import _core
from cadence.errors import InvalidParameterError

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1  # token ids are int32 in the engine

_SPECS: dict[str, Any] = _core.sampling_param_specs()
_BEAM_SPECS: dict[str, Any] = _core.beam_search_param_specs()
# Spec'd names that to_core resolves itself rather than copying the field.
_RESOLVED_IN_TO_CORE = ("max_tokens", "min_tokens", "logit_bias")
_CORE_TYPES = {"int": int, "float": float, "bool": bool}


def _default(specs: dict[str, Any], name: str) -> Any:
    """The C++ default of a field, with the engine's "off" value (-1) spelled None."""
    spec = specs[name]
    return None if spec.off is not None and spec.default == spec.off else spec.default


def check_token_ids(param: str, token_ids: Iterable[int], vocab_size: int) -> None:
    """Raises ``InvalidParameterError(param)`` unless every id is in [0, vocab_size): the
    one check (and message) for token ids against a model's vocabulary. The ids must
    already be ints."""
    for token_id in token_ids:
        if not 0 <= token_id < vocab_size:
            raise InvalidParameterError(
                param, f"{param} holds token id {token_id}, out of range [0, {vocab_size})"
            )


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterError(name, f"{name} must be a number, got {value!r}")
    if math.isnan(value):
        raise InvalidParameterError(name, f"{name} must not be NaN")
    return float(value)


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(name, f"{name} must be an integer, got {value!r}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(name, f"{name} must be True or False, got {value!r}")
    return value


def _check_spec(spec: Any, value: Any, *, optional: bool = False) -> Any:
    """``value`` checked against its C++ spec (type first, then the spec's range); None
    passes when ``optional``. Returns the value."""
    name = spec.name
    if value is None and optional:
        return None
    if spec.kind == "bool":
        return _check_bool(name, value)
    number = _check_int(name, value) if spec.kind == "int" else _check_number(name, value)
    try:
        inside = spec.contains(float(number))
    except OverflowError:  # an int beyond any double: outside every range
        inside = False
    if not inside:
        none = "None or " if optional else ""
        raise InvalidParameterError(name, f"{name} must be {none}{spec.allowed()}, got {value}")
    return value


def _check_token_id_list(name: str, values: object) -> list[int]:
    """A list of ints that can be token ids (the vocabulary is checked in ``verify``)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidParameterError(
            name, f"{name} must be a list of token ids (ints), got {values!r}"
        )
    result = []
    for token_id in values:
        if _check_int(name, token_id) < 0 or token_id > _INT32_MAX:
            raise InvalidParameterError(
                name, f"{name} must hold token ids in [0, 2**31), got {token_id}"
            )
        result.append(token_id)
    return result


@dataclass
class SamplingParams:
    """How to pick tokens for one request (see vLLM's ``SamplingParams``).

    The ranges stated below are ``_core.sampling_param_specs()``'s (a test checks them).

    Attributes:
        n: sequences to generate from the prompt, >= 1; n > 1 needs temperature > 0.
        presence_penalty: in [-2, 2]; 0 = off. Subtracted once from the logit of every token
            already in the output (OpenAI semantics).
        frequency_penalty: in [-2, 2]; 0 = off. Subtracted per occurrence in the output.
        repetition_penalty: > 0; 1 = off. Divides positive (multiplies negative) logits of
            tokens in the prompt or the output (HF semantics).
        temperature: in [0, 2]; 0 means greedy decoding.
        top_p: in (0, 1]; 1 keeps every token.
        top_k: 0 or -1 keeps every token, else >= 1.
        min_p: in [0, 1]; keep tokens with probability >= min_p * the best one's; 0 = off.
        seed: an integer in [-2**63, 2**63) for a private, reproducible RNG stream (the same
            output whatever else is in the batch); None draws one from the engine's RNG
            (seeded by ``LLM(seed=...)``).
        stop: a string or list of strings that end generation when they appear in the output
            text; the text is cut before the match (see ``include_stop_str_in_output``).
            Not looked for until more than ``min_tokens`` tokens are generated.
        stop_token_ids: extra token ids that end generation (kept in the output).
        ignore_eos: keep generating past the model's EOS token(s).
        max_tokens: new tokens to generate per sequence, >= 1; None = up to max_model_len.
        min_tokens: >= 0 and <= max_tokens; EOS, stop_token_ids and stop strings cannot end
            generation before this many tokens.
        logprobs: None = off; k >= 0 returns, per generated token, the logprobs of the top k
            tokens and of the sampled one. At most the engine's ``max_logprobs``.
            Logprobs are the model's distribution: the log-softmax of the raw logits, before
            penalties, bias, bad words, allowed tokens and temperature.
        prompt_logprobs: like ``logprobs``, for each prompt token (the first has none).
        detokenize: False leaves the output text "" (token ids are still returned); stop
            strings then cannot be used.
        skip_special_tokens: leave special tokens out of the output text.
        spaces_between_special_tokens: put spaces between special tokens in the text. As in
            vLLM, only slow (Python) tokenizers honour it; cadence's fast tokenizers ignore it.
        include_stop_str_in_output: keep the matched stop string at the end of the text.
        truncate_prompt_tokens: None = off; k >= 1 keeps only the last k prompt tokens.
        logit_bias: token id -> bias added to its logit; biases are clamped to [-100, 100].
        allowed_token_ids: None = every token; else a non-empty list, the only tokens sampled.
        bad_words: words never generated (each tokenized with and without a leading space).
    """

    n: int = _default(_SPECS, "n")
    presence_penalty: float = _default(_SPECS, "presence_penalty")
    frequency_penalty: float = _default(_SPECS, "frequency_penalty")
    repetition_penalty: float = _default(_SPECS, "repetition_penalty")
    temperature: float = _default(_SPECS, "temperature")
    top_p: float = _default(_SPECS, "top_p")
    top_k: int = _default(_SPECS, "top_k")
    min_p: float = _default(_SPECS, "min_p")
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = _default(_SPECS, "ignore_eos")
    max_tokens: int | None = _default(_SPECS, "max_tokens")
    min_tokens: int = _default(_SPECS, "min_tokens")
    logprobs: int | None = _default(_SPECS, "logprobs")
    prompt_logprobs: int | None = _default(_SPECS, "prompt_logprobs")
    detokenize: bool = True
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    truncate_prompt_tokens: int | None = None
    logit_bias: dict[int, float] | None = None
    allowed_token_ids: list[int] | None = None
    bad_words: list[str] | None = None
    # Normalized views filled by __post_init__ (not constructor arguments).
    _stop_strings: list[str] = field(init=False, repr=False, compare=False, default_factory=list)

    def __post_init__(self) -> None:
        # The fields the engine shares, in the C++ table's ranges. max_tokens (None = up
        # to max_model_len), logprobs and prompt_logprobs (None = off) may be None.
        for name in (
            "n",
            "presence_penalty",
            "frequency_penalty",
            "repetition_penalty",
            "temperature",
            "top_p",
            "top_k",
            "min_p",
            "min_tokens",
            "ignore_eos",
        ):
            _check_spec(_SPECS[name], getattr(self, name))
        for name in ("max_tokens", "logprobs", "prompt_logprobs"):
            _check_spec(_SPECS[name], getattr(self, name), optional=True)
        if self.seed is not None:
            seed = _check_int("seed", self.seed)
            if not _INT64_MIN <= seed <= _INT64_MAX:
                raise InvalidParameterError(
                    "seed", f"seed must be in [-2**63, 2**63 - 1], got {seed}"
                )
        self._check_lengths()
        self._check_stops()
        for name in (
            "detokenize",
            "skip_special_tokens",
            "spaces_between_special_tokens",
            "include_stop_str_in_output",
        ):
            _check_bool(name, getattr(self, name))
        self._check_token_constraints()
        if self.n > 1 and self.is_greedy:
            raise InvalidParameterError(
                "n", f"n must be 1 when using greedy sampling (temperature 0), got n={self.n}"
            )

    def _check_lengths(self) -> None:
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise InvalidParameterError(
                "min_tokens",
                f"min_tokens must be <= max_tokens={self.max_tokens}, got {self.min_tokens}",
            )
        if self.truncate_prompt_tokens is not None:
            value = _check_int("truncate_prompt_tokens", self.truncate_prompt_tokens)
            if value < 1:
                raise InvalidParameterError(
                    "truncate_prompt_tokens",
                    f"truncate_prompt_tokens must be None or >= 1, got {value}",
                )

    def _check_stops(self) -> None:
        stop = self.stop
        if stop is None:
            stops: list[str] = []
        elif isinstance(stop, str):
            stops = [stop]
        elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
            stops = list(stop)
        else:
            raise InvalidParameterError(
                "stop", f"stop must be a string or a list of strings, got {stop!r}"
            )
        if any(s == "" for s in stops):
            raise InvalidParameterError("stop", "stop must not contain an empty string")
        if stops and self.detokenize is False:
            raise InvalidParameterError(
                "detokenize", "stop strings need detokenize=True (they are matched on the text)"
            )
        self._stop_strings = stops
        self.stop_token_ids = _check_token_id_list("stop_token_ids", self.stop_token_ids or [])

    def _check_token_constraints(self) -> None:
        if self.logit_bias is not None:
            if not isinstance(self.logit_bias, dict):
                raise InvalidParameterError(
                    "logit_bias",
                    f"logit_bias must be a dict of token id -> bias, got {self.logit_bias!r}",
                )
            bias_range = _SPECS["logit_bias"]  # biases are clamped to it, as vLLM does
            biases: dict[int, float] = {}
            for key, bias in self.logit_bias.items():
                token_id = int(key) if isinstance(key, str) and key.strip().isdigit() else key
                _check_token_id_list("logit_bias", [token_id])
                value = _check_number("logit_bias", bias)
                biases[token_id] = max(bias_range.low, min(bias_range.high, value))
            self.logit_bias = biases
        if self.allowed_token_ids is not None:
            self.allowed_token_ids = _check_token_id_list(
                "allowed_token_ids", self.allowed_token_ids
            )
            if not self.allowed_token_ids:
                raise InvalidParameterError(
                    "allowed_token_ids", "allowed_token_ids must be None or a non-empty list"
                )
        if self.bad_words is not None:
            words = self.bad_words
            if (
                isinstance(words, str)
                or not isinstance(words, Sequence)
                or not all(isinstance(word, str) for word in words)
            ):
                raise InvalidParameterError(
                    "bad_words", f"bad_words must be a list of strings, got {words!r}"
                )
            self.bad_words = list(words)

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def stop_strings(self) -> list[str]:
        """``stop`` as a list (empty when off)."""
        return list(self._stop_strings)

    def verify(self, vocab_size: int, max_logprobs: int) -> None:
        """Checks that need the model: token ids < vocab_size and logprob counts <=
        max_logprobs. Raises InvalidParameterError naming the field."""
        for name in ("logprobs", "prompt_logprobs"):
            value = getattr(self, name)
            if value is not None and value > max_logprobs:
                raise InvalidParameterError(
                    name,
                    f"{name} must be <= max_logprobs={max_logprobs} (set by LLM(max_logprobs=...)),"
                    f" got {value}",
                )
        check_token_ids("stop_token_ids", self.stop_token_ids or [], vocab_size)
        check_token_ids("allowed_token_ids", self.allowed_token_ids or [], vocab_size)
        check_token_ids("logit_bias", self.logit_bias or {}, vocab_size)

    def to_core(
        self, max_tokens: int, bad_words_token_ids: list[list[int]] | None = None
    ) -> _core.SamplingParams:
        """The C++ engine's view, with max_tokens resolved against the prompt and bad words
        already tokenized (see ``tokenize_bad_words``). Every spec'd field is copied (None
        becomes the engine's off value)."""
        fields: dict[str, Any] = {
            name: _to_core_value(spec, getattr(self, name))
            for name, spec in _SPECS.items()
            if name not in _RESOLVED_IN_TO_CORE
        }
        fields.update(
            seed=None if self.seed is None else self.seed & (2**64 - 1),
            max_tokens=int(max_tokens),
            min_tokens=int(min(self.min_tokens, max_tokens)),
            stop_token_ids=list(self.stop_token_ids or []),
            logit_bias=sorted((self.logit_bias or {}).items()),
            allowed_token_ids=list(self.allowed_token_ids or []),
            bad_words_token_ids=bad_words_token_ids or [],
        )
        return _core.SamplingParams(**fields)


def _to_core_value(spec: Any, value: Any) -> Any:
    return spec.off if value is None else _CORE_TYPES[spec.kind](value)


@dataclass
class BeamSearchParams:
    """Options of ``LLM.beam_search`` (vLLM's ``BeamSearchParams``).

    Attributes:
        beam_width: hypotheses kept each step and returned, >= 1; the engine bounds it by
            ``max_num_seqs`` (each beam is one running sequence).
        max_tokens: new tokens per hypothesis, >= 1.
        ignore_eos: EOS is then an ordinary token and every hypothesis has max_tokens tokens.
        temperature: in [0, 2]; 0 scores with the model's log-probabilities, t > 0 with
            log-softmax(logits / t).
        length_penalty: a finite number; hypotheses are ranked by
            cum_logprob / generated_length ** length_penalty. The length counts generated
            tokens only (EOS included); vLLM also counts the prompt.
        include_stop_str_in_output: append the EOS token's text to a hypothesis that ended
            with it (its token id is always in ``tokens``).

    The ranges and defaults are the C++ table's (``_core.beam_search_param_specs()``).

    The search runs in the engine: each step every live beam proposes its best
    max(2, 1 + number of EOS ids) * beam_width tokens, the best of all those candidates
    are walked best first, EOS candidates join the finished hypotheses (the beam_width best
    are kept) and the others become the next beams. It stops at max_tokens, or as soon as
    no live beam can beat the worst kept finished hypothesis (log-probabilities only fall,
    so this never changes the result).
    """

    beam_width: int
    max_tokens: int
    ignore_eos: bool = _default(_BEAM_SPECS, "ignore_eos")
    temperature: float = _default(_BEAM_SPECS, "temperature")
    length_penalty: float = _default(_BEAM_SPECS, "length_penalty")
    include_stop_str_in_output: bool = False

    def __post_init__(self) -> None:
        for name, spec in _BEAM_SPECS.items():
            _check_spec(spec, getattr(self, name))
        _check_bool("include_stop_str_in_output", self.include_stop_str_in_output)

    def to_core(self) -> _core.BeamSearchParams:
        return _core.BeamSearchParams(
            **{
                name: _to_core_value(spec, getattr(self, name))
                for name, spec in _BEAM_SPECS.items()
            }
        )


def tokenize_bad_words(tokenizer: Any, bad_words: Sequence[str]) -> list[list[int]]:
    """Token-id sequences to ban for ``bad_words``, as vLLM builds them: each word (leading
    whitespace stripped) tokenized on its own and with one leading space, since BPE
    tokenizers give a word different ids at the start of the text and after a space. The
    spaced variant is kept only when it tokenizes to as many ids with a different first id
    (otherwise it is the same word behind a separate space token, already covered)."""
    sequences: list[list[int]] = []
    for word in bad_words:
        bare = list(tokenizer.encode(word.lstrip(), add_special_tokens=False))
        if not bare:
            continue
        if bare not in sequences:
            sequences.append(bare)
        spaced = list(tokenizer.encode(" " + word.lstrip(), add_special_tokens=False))
        if len(spaced) == len(bare) and spaced[0] != bare[0] and spaced not in sequences:
            sequences.append(spaced)
    return sequences
