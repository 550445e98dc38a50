"""Sampling options for one request, with vLLM's names, defaults and meanings.

Validation happens at construction and names the offending field and its allowed range
(``ValueError``); unknown keyword arguments raise ``TypeError``. Checks that need the model
(token ids against the vocabulary, logprob counts against the engine's ``max_logprobs``) run
in ``verify`` when the request is added.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cadence import _core

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1
_LOGIT_BIAS_LIMIT = 100.0  # vLLM clamps biases to [-100, 100]


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return float(value)


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _check_range(name: str, value: object, low: float, high: float, interval: str) -> None:
    """``interval`` is the human-readable range, e.g. "[-2, 2]"; its brackets decide openness."""
    number = _check_number(name, value)
    low_ok = number >= low if interval.startswith("[") else number > low
    high_ok = number <= high if interval.endswith("]") else number < high
    if not (low_ok and high_ok):
        raise ValueError(f"{name} must be in {interval}, got {value}")


def _check_token_ids(name: str, values: object) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a list of token ids (ints), got {values!r}")
    result = []
    for token_id in values:
        if _check_int(name, token_id) < 0 or token_id > _INT32_MAX:
            raise ValueError(f"{name} must hold token ids in [0, 2**31), got {token_id}")
        result.append(token_id)
    return result


def _check_count(name: str, value: object) -> int | None:
    """A logprob count: None (off) or an int >= 0."""
    if value is None:
        return None
    if _check_int(name, value) < 0 or value > _INT32_MAX:
        raise ValueError(f"{name} must be None or an integer >= 0, got {value}")
    return value


@dataclass
class SamplingParams:
    """How to pick tokens for one request (see vLLM's ``SamplingParams``).

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
            tokens and of the sampled one. At most the engine's ``max_logprobs`` (20).
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

    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    logprobs: int | None = None
    prompt_logprobs: int | None = None
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
        if _check_int("n", self.n) < 1 or self.n > _INT32_MAX:
            raise ValueError(f"n must be an integer >= 1, got {self.n}")
        for name in ("presence_penalty", "frequency_penalty"):
            _check_range(name, getattr(self, name), -2.0, 2.0, "[-2, 2]")
        if _check_number("repetition_penalty", self.repetition_penalty) <= 0.0 or math.isinf(
            self.repetition_penalty
        ):
            raise ValueError(
                f"repetition_penalty must be in (0, inf) (1 = off), got {self.repetition_penalty}"
            )
        _check_range("temperature", self.temperature, 0.0, 2.0, "[0, 2]")
        _check_range("top_p", self.top_p, 0.0, 1.0, "(0, 1]")
        if _check_int("top_k", self.top_k) < -1 or self.top_k > _INT32_MAX:
            raise ValueError(f"top_k must be -1, 0 (disabled) or >= 1, got {self.top_k}")
        _check_range("min_p", self.min_p, 0.0, 1.0, "[0, 1]")
        if self.seed is not None:
            seed = _check_int("seed", self.seed)
            if not _INT64_MIN <= seed <= _INT64_MAX:
                raise ValueError(f"seed must be in [-2**63, 2**63 - 1], got {seed}")
        self._check_lengths()
        self._check_stops()
        for name in (
            "ignore_eos",
            "detokenize",
            "skip_special_tokens",
            "spaces_between_special_tokens",
            "include_stop_str_in_output",
        ):
            _check_bool(name, getattr(self, name))
        self.logprobs = _check_count("logprobs", self.logprobs)
        self.prompt_logprobs = _check_count("prompt_logprobs", self.prompt_logprobs)
        self._check_token_constraints()
        if self.n > 1 and self.is_greedy:
            raise ValueError(
                f"n must be 1 when using greedy sampling (temperature 0), got n={self.n}"
            )

    def _check_lengths(self) -> None:
        if self.max_tokens is not None:
            max_tokens = _check_int("max_tokens", self.max_tokens)
            if not 1 <= max_tokens <= _INT32_MAX:
                raise ValueError(f"max_tokens must be >= 1 (or None), got {max_tokens}")
        min_tokens = _check_int("min_tokens", self.min_tokens)
        if min_tokens < 0 or min_tokens > _INT32_MAX:
            raise ValueError(f"min_tokens must be >= 0, got {min_tokens}")
        if self.max_tokens is not None and min_tokens > self.max_tokens:
            raise ValueError(
                f"min_tokens must be <= max_tokens={self.max_tokens}, got {min_tokens}"
            )
        if self.truncate_prompt_tokens is not None:
            value = _check_int("truncate_prompt_tokens", self.truncate_prompt_tokens)
            if value < 1:
                raise ValueError(f"truncate_prompt_tokens must be None or >= 1, got {value}")

    def _check_stops(self) -> None:
        stop = self.stop
        if stop is None:
            stops: list[str] = []
        elif isinstance(stop, str):
            stops = [stop]
        elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
            stops = list(stop)
        else:
            raise ValueError(f"stop must be a string or a list of strings, got {stop!r}")
        if any(s == "" for s in stops):
            raise ValueError("stop must not contain an empty string")
        if stops and self.detokenize is False:
            raise ValueError("stop strings need detokenize=True (they are matched on the text)")
        self._stop_strings = stops
        self.stop_token_ids = _check_token_ids("stop_token_ids", self.stop_token_ids or [])

    def _check_token_constraints(self) -> None:
        if self.logit_bias is not None:
            if not isinstance(self.logit_bias, dict):
                raise ValueError(
                    f"logit_bias must be a dict of token id -> bias, got {self.logit_bias!r}"
                )
            biases: dict[int, float] = {}
            for key, bias in self.logit_bias.items():
                token_id = int(key) if isinstance(key, str) and key.strip().isdigit() else key
                _check_token_ids("logit_bias", [token_id])
                value = _check_number("logit_bias", bias)
                biases[token_id] = max(-_LOGIT_BIAS_LIMIT, min(_LOGIT_BIAS_LIMIT, value))
            self.logit_bias = biases
        if self.allowed_token_ids is not None:
            self.allowed_token_ids = _check_token_ids("allowed_token_ids", self.allowed_token_ids)
            if not self.allowed_token_ids:
                raise ValueError("allowed_token_ids must be None or a non-empty list")
        if self.bad_words is not None:
            words = self.bad_words
            if isinstance(words, str) or not isinstance(words, Sequence):
                raise ValueError(f"bad_words must be a list of strings, got {words!r}")
            if not all(isinstance(word, str) for word in words):
                raise ValueError(f"bad_words must be a list of strings, got {words!r}")
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
        max_logprobs. Raises ValueError naming the field."""
        for name in ("logprobs", "prompt_logprobs"):
            value = getattr(self, name)
            if value is not None and value > max_logprobs:
                raise ValueError(
                    f"{name} must be <= max_logprobs={max_logprobs} (set by LLM(max_logprobs=...)),"
                    f" got {value}"
                )
        checks: list[tuple[str, list[int]]] = [
            ("stop_token_ids", self.stop_token_ids or []),
            ("allowed_token_ids", self.allowed_token_ids or []),
            ("logit_bias", list(self.logit_bias or {})),
        ]
        for name, ids in checks:
            for token_id in ids:
                if token_id >= vocab_size:
                    raise ValueError(
                        f"{name} holds token id {token_id}, out of range [0, {vocab_size})"
                    )

    def to_core(
        self, max_tokens: int, bad_words_token_ids: list[list[int]] | None = None
    ) -> _core.SamplingParams:
        """The C++ engine's view, with max_tokens resolved against the prompt and bad words
        already tokenized (see ``tokenize_bad_words``)."""
        seed = None if self.seed is None else self.seed & (2**64 - 1)
        fields: dict[str, Any] = dict(
            n=int(self.n),
            presence_penalty=float(self.presence_penalty),
            frequency_penalty=float(self.frequency_penalty),
            repetition_penalty=float(self.repetition_penalty),
            temperature=float(self.temperature),
            top_p=float(self.top_p),
            top_k=int(self.top_k),
            min_p=float(self.min_p),
            seed=seed,
            max_tokens=int(max_tokens),
            min_tokens=int(min(self.min_tokens, max_tokens)),
            ignore_eos=bool(self.ignore_eos),
            stop_token_ids=list(self.stop_token_ids or []),
            logit_bias=sorted((self.logit_bias or {}).items()),
            allowed_token_ids=list(self.allowed_token_ids or []),
            bad_words_token_ids=bad_words_token_ids or [],
            logprobs=-1 if self.logprobs is None else int(self.logprobs),
            prompt_logprobs=-1 if self.prompt_logprobs is None else int(self.prompt_logprobs),
        )
        return _core.SamplingParams(**fields)


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

    The search runs in the engine: each step every live beam proposes its best
    max(2, 1 + number of EOS ids) * beam_width tokens, the best of all those candidates
    are walked best first, EOS candidates join the finished hypotheses (the beam_width best
    are kept) and the others become the next beams. It stops at max_tokens, or as soon as
    no live beam can beat the worst kept finished hypothesis (log-probabilities only fall,
    so this never changes the result).
    """

    beam_width: int
    max_tokens: int
    ignore_eos: bool = False
    temperature: float = 0.0
    length_penalty: float = 1.0
    include_stop_str_in_output: bool = False

    def __post_init__(self) -> None:
        if _check_int("beam_width", self.beam_width) < 1:
            raise ValueError(f"beam_width must be >= 1, got {self.beam_width}")
        if _check_int("max_tokens", self.max_tokens) < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        _check_bool("ignore_eos", self.ignore_eos)
        _check_range("temperature", self.temperature, 0.0, 2.0, "[0, 2]")
        if not math.isfinite(_check_number("length_penalty", self.length_penalty)):
            raise ValueError(f"length_penalty must be a finite number, got {self.length_penalty}")
        _check_bool("include_stop_str_in_output", self.include_stop_str_in_output)

    def to_core(self) -> _core.BeamSearchParams:
        return _core.BeamSearchParams(
            beam_width=int(self.beam_width),
            max_tokens=int(self.max_tokens),
            ignore_eos=bool(self.ignore_eos),
            temperature=float(self.temperature),
            length_penalty=float(self.length_penalty),
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
