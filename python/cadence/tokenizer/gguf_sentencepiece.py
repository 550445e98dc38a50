"""The ``tokenizers`` pipeline for a SentencePiece-style GGUF vocabulary (``tokenizer.ggml.model =
"llama"``), with the per-architecture rules transformers applies to the same file.

All variants are BPE with ``<0xNN>`` byte fallback over a vocabulary that spells a space as
``\u2581``; merges come from ``tokenizer.ggml.merges`` when the file has them. They differ in how
text becomes ``\u2581``-pieces and in where merges come from otherwise:

- generic (Llama, Mistral, ...): a ``Metaspace`` pre-tokenizer prepends ``\u2581`` to the text;
  merges are recovered from ``tokenizer.ggml.scores``.
- ``phi3``: a normalizer prepends ``\u2581`` and replaces spaces, with no pre-tokenizer. The text
  between two added tokens is one normalized piece, so each such piece gets its own ``\u2581``
  (llama.cpp also prefixes the text after every special token); ``"  hi"`` becomes
  ``\u2581\u2581\u2581hi`` where Metaspace gives ``\u2581\u2581hi``. Merges as generic.
- ``gemma``, ``gemma2``, ``gemma3``: no prefix at all (``tokenizer.ggml.add_space_prefix`` is
  ignored, as transformers does; llama.cpp's converter writes ``false`` for Gemma anyway).
  llama.cpp stores Gemma's whitespace-run tokens with real spaces (``"  "``) where the pipeline
  looks up ``"\u2581\u2581"``, so those are respelled; merges are recovered from the order of the
  tokens in the file, because Gemma's scores do not follow its merge order.

Like the generic path, Phi-3 honours ``tokenizer.ggml.add_space_prefix = false`` (no ``\u2581``
prepended, as llama.cpp does) where transformers ignores the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

__all__ = ["SentencePieceBuild", "build_sentencepiece", "split_merges"]

_GEMMA_ARCHITECTURES = frozenset({"gemma", "gemma2", "gemma3"})
_PHI3_ARCHITECTURE = "phi3"
_SPACE = "\u2581"

# The special tokens that transformers' tokenizer class for each variant declares by default
# (LlamaTokenizer: unk/bos/eos; GemmaTokenizer: pad/eos/bos/unk/mask). Its GGUF conversion marks
# them special whenever the vocabulary holds them, whatever their GGUF token type and whether a
# special id names them. (Not mirrored on the generic path, which predates this module.)
_PHI3_IMPLIED_SPECIAL = ("<unk>", "<s>", "</s>")
_GEMMA_IMPLIED_SPECIAL = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
_GEMMA_UNK = "<unk>"
_GEMMA_MASK = "<mask>"


@dataclass(frozen=True)
class SentencePieceBuild:
    """A built pipeline and extra keyword arguments for the ``PreTrainedTokenizerFast`` that
    wraps it. The file's CONTROL and USER_DEFINED tokens are still to be added to ``backend``."""

    backend: Tokenizer
    wrapper_kwargs: Mapping[str, Any] = field(default_factory=dict)


def build_sentencepiece(metadata: dict[str, Any], path: str) -> SentencePieceBuild:
    """The pipeline for the ``llama``-type vocabulary in ``metadata``, by ``general.architecture``.

    Raises ``ValueError`` (naming ``path``) when the file has neither merges nor usable scores
    for an architecture that needs them."""
    architecture = metadata.get("general.architecture")
    if architecture in _GEMMA_ARCHITECTURES:
        return _build_gemma(metadata)
    if architecture == _PHI3_ARCHITECTURE:
        return _build_phi3(metadata, path)
    return SentencePieceBuild(_build_generic(metadata, path))


def _build_generic(metadata: dict[str, Any], path: str) -> Tokenizer:
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(_bpe(vocab, _merges_from_file_or_scores(metadata, vocab, path)))
    add_prefix_space = _add_space_prefix(metadata)
    backend.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=_SPACE, prepend_scheme="first" if add_prefix_space else "never", split=False
    )
    backend.decoder = _decoder(strip_prefix_space=add_prefix_space)
    return backend


def _build_phi3(metadata: dict[str, Any], path: str) -> SentencePieceBuild:
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(_bpe(vocab, _merges_from_file_or_scores(metadata, vocab, path)))
    add_prefix_space = _add_space_prefix(metadata)
    replace_spaces = normalizers.Replace(pattern=" ", content=_SPACE)
    backend.normalizer = (
        normalizers.Sequence([normalizers.Prepend(prepend=_SPACE), replace_spaces])
        if add_prefix_space
        else replace_spaces
    )
    backend.decoder = _decoder(strip_prefix_space=add_prefix_space)
    _add_implied_special(backend, _PHI3_IMPLIED_SPECIAL, vocab)
    return SentencePieceBuild(backend)


def _build_gemma(metadata: dict[str, Any]) -> SentencePieceBuild:
    # A token made only of whitespace that contains a real space is a whitespace run that
    # llama.cpp wrote with spaces; the pipeline (spaces normalized to U+2581) looks it up as
    # U+2581 repeated, one per character. Respelling can collide with an existing token; the
    # later index then wins, as in transformers.
    tokens = [
        _SPACE * len(token) if " " in token and not token.strip() else token
        for token in metadata["tokenizer.ggml.tokens"]
    ]
    vocab = {token: index for index, token in enumerate(tokens)}
    if "tokenizer.ggml.merges" in metadata:
        merges = split_merges(metadata["tokenizer.ggml.merges"])
    else:  # earlier in the file = merged first
        merges = merges_from_scores(vocab, {token: -index for index, token in enumerate(tokens)})
    unk_token = _GEMMA_UNK if _GEMMA_UNK in vocab else None
    backend = Tokenizer(_bpe(vocab, merges, unk_token=unk_token))
    backend.normalizer = normalizers.Replace(pattern=" ", content=_SPACE)
    # Splits at spaces, of which the normalizer left none; kept so the pipeline is transformers'.
    backend.pre_tokenizer = pre_tokenizers.Split(
        pattern=" ", behavior="merged_with_previous", invert=False
    )
    backend.decoder = _decoder(strip_prefix_space=False)
    wrapper_kwargs: dict[str, Any] = {"padding_side": "left"}  # GemmaTokenizer's
    if _GEMMA_MASK in vocab:
        wrapper_kwargs["mask_token"] = _GEMMA_MASK
    _add_implied_special(backend, _GEMMA_IMPLIED_SPECIAL, vocab)
    return SentencePieceBuild(backend, wrapper_kwargs)


def _bpe(
    vocab: dict[str, int], merges: list[tuple[str, str]], unk_token: str | None = None
) -> models.BPE:
    return models.BPE(
        vocab=vocab,
        merges=merges,
        unk_token=unk_token,
        fuse_unk=True,
        byte_fallback=True,
        dropout=None,
    )


def _decoder(strip_prefix_space: bool) -> decoders.Decoder:
    """``\u2581`` back to spaces, ``<0xNN>`` runs back to characters; drops the one space the
    encoder prepended when it prepends one."""
    steps = [decoders.Replace(_SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if strip_prefix_space:
        steps.append(decoders.Strip(content=" ", left=1))
    return decoders.Sequence(steps)


def _add_space_prefix(metadata: dict[str, Any]) -> bool:
    return bool(metadata.get("tokenizer.ggml.add_space_prefix", True))


def _add_implied_special(
    backend: Tokenizer, candidates: tuple[str, ...], vocab: dict[str, int]
) -> None:
    """Mark the candidates the vocabulary holds as special added tokens. transformers would
    append a missing one as a new token past the model's vocabulary (an id the model cannot
    embed); we leave it out."""
    present = [token for token in candidates if token in vocab]
    if present:
        backend.add_special_tokens(
            [AddedToken(token, normalized=False, special=True) for token in present]
        )


def _merges_from_file_or_scores(
    metadata: dict[str, Any], vocab: dict[str, int], path: str
) -> list[tuple[str, str]]:
    if "tokenizer.ggml.merges" in metadata:
        return split_merges(metadata["tokenizer.ggml.merges"])
    if "tokenizer.ggml.scores" not in metadata:
        raise ValueError(f"{path}: 'llama' tokenizer with neither merges nor scores")
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    scores = metadata["tokenizer.ggml.scores"]
    if len(scores) != len(tokens):
        raise ValueError(f"{path}: {len(scores)} token scores for {len(tokens)} tokens")
    return merges_from_scores(vocab, dict(zip(tokens, scores, strict=True)))


def merges_from_scores(vocab: dict[str, int], scores: dict[str, float]) -> list[tuple[str, str]]:
    """Recover BPE merges from a SentencePiece vocabulary: every split of a token into two
    vocabulary tokens is a merge, ranked by the merged token's score (highest first), ties by
    the lengths of the parts (longer left, then longer right, first) and then by vocab order."""
    candidates: list[tuple[str, str, float]] = []
    for piece, score in scores.items():
        local = [
            (piece[:cut], piece[cut:], score)
            for cut in range(1, len(piece))
            if piece[:cut] in vocab and piece[cut:] in vocab
        ]
        if len(local) > 1:  # most pieces have at most one split; skip the sort call then
            local.sort(key=lambda merge: (vocab[merge[0]], vocab[merge[1]]))
        candidates.extend(local)
    # A stable sort, descending: equal keys keep the order built above.
    candidates.sort(key=lambda merge: (merge[2], len(merge[0]), len(merge[1])), reverse=True)
    return [(left, right) for left, right, _ in candidates]


def split_merges(merges: list[str]) -> list[tuple[str, str]]:
    """``["a b", ...]`` -> ``[("a", "b"), ...]`` (the GGUF spelling of merges, any vocab type)."""
    pairs = []
    for merge in merges:
        left, _, right = merge.partition(" ")
        pairs.append((left, right))
    return pairs
