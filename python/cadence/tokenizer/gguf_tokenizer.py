"""Build a Hugging Face fast tokenizer from the metadata of a GGUF file, without torch.

A GGUF carries no ``tokenizer.json``; llama.cpp stores the vocabulary, merges, token types and
special ids as metadata. transformers can convert that (``from_pretrained(..., gguf_file=...)``),
but its GGUF path imports torch and takes seconds. This module parses the metadata itself and
builds the same ``tokenizers.Tokenizer`` that transformers' conversion builds, so that token ids,
decoded text and chat templates agree with transformers (the tests prove it on the default model).

Supported ``tokenizer.ggml.model`` values:

- ``gpt2``: byte-level BPE. The pre-tokenizer split regex is chosen by ``tokenizer.ggml.pre``
  (see ``_PRE_TOKENIZER_SPLITS``); names not listed there (``smollm``, ``gpt-2``, ...) use the
  GPT-2 regex built into ``ByteLevel``, as transformers does.
- ``llama``: SentencePiece-style BPE with byte fallback, built in ``gguf_sentencepiece`` with
  transformers' per-architecture rules (generic, ``phi3``, ``gemma``/``gemma2``/``gemma3``).
  Deliberate differences from transformers: ``tokenizer.ggml.add_space_prefix = false`` is
  honoured (no ``\u2581`` prepended, as llama.cpp does) where transformers ignores the key; and a
  default special token of transformers' tokenizer class that the vocabulary lacks (say
  ``<mask>`` for Gemma) is left out, where transformers appends it past the model's vocabulary.

Anything else raises ``ValueError`` naming the type.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from typing import TYPE_CHECKING, Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

from cadence.tokenizer.gguf_sentencepiece import build_sentencepiece, split_merges

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["bytes_to_unicode", "load_gguf_tokenizer"]

# llama.cpp token types (tokenizer.ggml.token_type).
_TOKEN_TYPE_CONTROL = 3
_TOKEN_TYPE_USER_DEFINED = 4

# GGUF metadata value types -> struct format of one element. 8 (string) and 9 (array) are
# variable-length and handled by the reader.
_SCALAR_FORMATS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_TYPE_STRING = 8
_TYPE_ARRAY = 9
_SUPPORTED_GGUF_VERSIONS = (2, 3)

_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN35_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"
    r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_CONTRACTIONS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
_TEKKEN_SPLIT = (
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GPT4O_SPLIT = (
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTIONS}?"
    rf"|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_CONTRACTIONS}?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# tokenizer.ggml.pre -> split regex applied before the byte-level mapping. Unlisted names keep
# ByteLevel's built-in GPT-2 regex. This is the table transformers uses, so ids agree with it.
# Note: llama.cpp (and SmolLM2's own tokenizer.json) additionally isolate every \p{N} character
# for `smollm`; transformers does not, which only matters for non-ASCII numerals after a space
# (" \u00b2"). We follow transformers, the reference the numerics tests compare against.
_PRE_TOKENIZER_SPLITS: dict[str, str] = {
    **dict.fromkeys(
        (
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
            "jina-v5-nano",
            "dbrx",
            "smaug-bpe",
        ),
        _LLAMA3_SPLIT,
    ),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"), _QWEN2_SPLIT),
    "qwen35": _QWEN35_SPLIT,
    "tekken": _TEKKEN_SPLIT,
    **dict.fromkeys(("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"), _GPT4O_SPLIT),
}


def load_gguf_tokenizer(path: str) -> PreTrainedTokenizerFast:
    """Return the tokenizer described by the GGUF file at ``path``.

    Equivalent to ``AutoTokenizer.from_pretrained(dir, gguf_file=name)`` for the supported
    tokenizer types (same ids, decode, special tokens and chat template) but reads only the
    metadata, never imports torch, and takes a fraction of a second.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not GGUF v2/v3, lacks tokenizer metadata, or states a tokenizer
            type (``tokenizer.ggml.model``) other than ``gpt2`` or ``llama``.
    """
    metadata = _read_metadata(path)
    model_type = metadata.get("tokenizer.ggml.model")
    if "tokenizer.ggml.tokens" not in metadata:
        raise ValueError(f"{path}: no tokenizer.ggml.tokens in the GGUF metadata")
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    token_types: list[int] = metadata.get("tokenizer.ggml.token_type") or []

    wrapper_kwargs: dict[str, Any] = {}
    if model_type == "gpt2":
        backend = _build_byte_level(metadata, path)
        add_bos_default = False
    elif model_type == "llama":
        built = build_sentencepiece(metadata, path)
        backend = built.backend
        wrapper_kwargs.update(built.wrapper_kwargs)
        # llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise.
        add_bos_default = True
    else:
        raise ValueError(
            f"{path}: unsupported GGUF tokenizer type tokenizer.ggml.model={model_type!r}; "
            "supported: 'gpt2', 'llama'"
        )

    _add_gguf_added_tokens(backend, tokens, token_types, byte_level=model_type == "gpt2")

    def special(key: str) -> str | None:
        token_id = metadata.get(f"tokenizer.ggml.{key}")
        return tokens[token_id] if token_id is not None and 0 <= token_id < len(tokens) else None

    kwargs: dict[str, Any] = {
        **wrapper_kwargs,
        "bos_token": special("bos_token_id"),
        "eos_token": special("eos_token_id"),
        "unk_token": special("unknown_token_id"),
        "pad_token": special("padding_token_id"),
        "add_bos_token": bool(metadata.get("tokenizer.ggml.add_bos_token", add_bos_default)),
    }
    if "tokenizer.ggml.add_eos_token" in metadata:
        kwargs["add_eos_token"] = bool(metadata["tokenizer.ggml.add_eos_token"])
    if "tokenizer.chat_template" in metadata:
        kwargs["chat_template"] = metadata["tokenizer.chat_template"]
    # The parsed metadata (vocabulary, merges) is not needed past this point.
    metadata.clear()
    tokens, token_types = [], []
    # Imported only now: building the backend holds the vocabulary and merges three times over
    # (Python lists, dict and tuples, Rust's copies) for a moment, and LLM() runs this on a thread
    # while the weights load, so building it first keeps that moment away from the peak of
    # start-up (transformers' import adds ~40 MiB that stays).
    from transformers import PreTrainedTokenizerFast

    # The wrapper deep-copies `tokenizer_object` (a JSON round trip, ~35% of the load time) so
    # that it never aliases a caller's object. We built this one and hand it over, so let the
    # copy return the object itself (where the object accepts attributes; else it just copies).
    with contextlib.suppress(AttributeError):
        backend.__deepcopy__ = lambda memo: backend  # type: ignore[attr-defined]
    try:
        return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)
    finally:
        if hasattr(backend, "__dict__"):
            vars(backend).pop("__deepcopy__", None)


def _build_byte_level(metadata: dict[str, Any], path: str) -> Tokenizer:
    """Byte-level BPE: vocab spelled in the GPT-2 byte alphabet, merges from the file."""
    spelling = bytes_to_unicode()
    alphabet = frozenset(spelling.values())
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    if alphabet.issuperset("".join(tokens)):  # the usual case, and 10x faster than the loop
        vocab = {token: index for index, token in enumerate(tokens)}
    else:
        vocab = {}
        for index, token in enumerate(tokens):
            if not alphabet.issuperset(token):
                # A token written in plain text rather than the byte alphabet: respell its bytes.
                token = "".join(spelling[byte] for byte in token.encode("utf-8"))
            vocab[token] = index
    if "tokenizer.ggml.merges" not in metadata:
        raise ValueError(f"{path}: byte-level (gpt2) tokenizer without tokenizer.ggml.merges")
    merges = split_merges(metadata["tokenizer.ggml.merges"])
    backend = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=merges,
            dropout=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
        )
    )
    split = _PRE_TOKENIZER_SPLITS.get(metadata.get("tokenizer.ggml.pre", ""))
    if split is None:
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    backend.decoder = decoders.ByteLevel()
    return backend


def _add_gguf_added_tokens(
    backend: Tokenizer, tokens: list[str], token_types: list[int], byte_level: bool
) -> None:
    """Register CONTROL tokens as special added tokens and USER_DEFINED ones as plain added
    tokens, so both are matched whole in input text instead of being split by BPE.

    For a byte-level vocabulary a CONTROL token spelled outside the byte
    alphabet is a llama.cpp mislabel and is skipped, and a USER_DEFINED token is only added if it
    is spelled as in the vocabulary (both as transformers does)."""
    alphabet = frozenset(bytes_to_unicode().values()) if byte_level else None
    control = [
        AddedToken(token, normalized=False, special=True)
        for token, token_type in zip(tokens, token_types, strict=False)
        if token_type == _TOKEN_TYPE_CONTROL and (alphabet is None or alphabet.issuperset(token))
    ]
    if control:
        backend.add_special_tokens(control)
    user_defined = [
        token
        for token, token_type in zip(tokens, token_types, strict=False)
        if token_type == _TOKEN_TYPE_USER_DEFINED
    ]
    if user_defined:
        # token_to_id looks in the model's vocabulary and the added tokens, like get_vocab, but
        # without copying a (for Gemma, 256k-entry) vocabulary into a dict.
        backend.add_tokens(
            [
                AddedToken(token, normalized=False, special=False)
                for token in user_defined
                if backend.token_to_id(token) is not None
            ]
        )


def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 byte alphabet: byte value -> printable character standing for it.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, ...) are
    mapped, in byte order, to consecutive code points from U+0100 upwards."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    mapping = {byte: chr(byte) for byte in printable}
    next_code_point = 0x100
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(next_code_point)
            next_code_point += 1
    return mapping


def _read_metadata(path: str) -> dict[str, Any]:
    """All key/value metadata of a GGUF v2/v3 file (tensor data is never touched).

    Arrays of scalars become lists (via one struct call); arrays of strings become ``list[str]``.
    """
    with open(path, "rb") as file:
        num_bytes = os.fstat(file.fileno()).st_size
        if num_bytes < 24:  # the fixed header alone is 24 bytes (and mmap refuses empty files)
            raise ValueError(f"{path}: not a GGUF file (only {num_bytes} bytes)")
        blob = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return _parse_metadata(blob, path)
    except struct.error as error:
        raise ValueError(f"{path}: truncated or corrupt GGUF metadata ({error})") from error
    finally:
        blob.close()


def _parse_metadata(blob: mmap.mmap, path: str) -> dict[str, Any]:
    """Header layout: magic "GGUF", u32 version, u64 tensor count, u64 key/value count, then the
    key/value pairs (string key, u32 value type, value)."""
    if blob[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file (bad magic {blob[:4]!r})")
    version, _num_tensors, num_kv = struct.unpack_from("<IQQ", blob, 4)
    if version not in _SUPPORTED_GGUF_VERSIONS:
        raise ValueError(f"{path}: GGUF version {version} is not supported (need 2 or 3)")
    pos = 24
    metadata: dict[str, Any] = {}
    for _ in range(num_kv):
        key, pos = _read_string(blob, pos)
        (value_type,) = struct.unpack_from("<I", blob, pos)
        metadata[key], pos = _read_value(blob, pos + 4, value_type, path, key)
    return metadata


def _read_string(blob: mmap.mmap, pos: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<Q", blob, pos)
    end = pos + 8 + length
    return blob[pos + 8 : end].decode("utf-8"), end


def _read_value(blob: mmap.mmap, pos: int, value_type: int, path: str, key: str) -> tuple[Any, int]:
    """One metadata value starting at ``pos``; returns it and the offset just past it."""
    if value_type in _SCALAR_FORMATS:
        fmt = "<" + _SCALAR_FORMATS[value_type]
        return struct.unpack_from(fmt, blob, pos)[0], pos + struct.calcsize(fmt)
    if value_type == _TYPE_STRING:
        return _read_string(blob, pos)
    if value_type != _TYPE_ARRAY:
        raise ValueError(f"{path}: metadata {key!r} has unknown GGUF value type {value_type}")
    element_type, count = struct.unpack_from("<IQ", blob, pos)
    pos += 12
    if element_type in _SCALAR_FORMATS:
        fmt = f"<{count}{_SCALAR_FORMATS[element_type]}"
        return list(struct.unpack_from(fmt, blob, pos)), pos + struct.calcsize(fmt)
    if element_type == _TYPE_STRING:
        # The hot loop for 50k-token vocabularies: keep it free of attribute lookups.
        unpack_length = struct.Struct("<Q").unpack_from
        values: list[str] = []
        append = values.append
        for _ in range(count):
            (length,) = unpack_length(blob, pos)
            pos += 8
            append(blob[pos : pos + length].decode("utf-8"))
            pos += length
        return values, pos
    items = []
    for _ in range(count):  # arrays of arrays: rare, never on the tokenizer path
        item, pos = _read_value(blob, pos, element_type, path, key)
        items.append(item)
    return items, pos
