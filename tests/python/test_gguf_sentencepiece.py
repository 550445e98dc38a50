"""Gemma and Phi-3 SentencePiece vocabularies from GGUF, against transformers' conversion.

No real Gemma or Phi-3 GGUF is available offline, so each test writes a small one with gguf's
writer, laid out like llama.cpp writes the real ones: control, unknown, byte (``<0xNN>``) and
user-defined tokens, whitespace pieces, BPE pieces trained on a small corpus, special ids, the
add_bos/add_eos flags and a chat template. transformers needs only the metadata (no tensors).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_gguf_tokenizer import load_gguf_tokenizer, reference_tokenizer

# llama.cpp token types.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6
BYTE_TOKENS = [f"<0x{byte:02X}>" for byte in range(256)]

TRAINING_TEXT = [
    "Hello world, this is a small corpus for a tiny tokenizer.",
    "The quick brown fox jumps over the lazy dog. It's 2024, isn't it?",
    "def main():\n    return 42\n\n\nclass A:\n\tpass\n",
    "Numbers 12345 and 678; CamelCaseWords and snake_case_words.",
    "中文分词测试 中文 测试",
] * 20

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}"
    "{% else %}{{ eos_token }}{% endif %}"
)

CORPUS = [
    "Hello world, this is a test.",
    " Hello  world",
    "  two leading spaces",
    "    four, and trailing   ",
    "a  b   c    d\t\te\n\n\nf \n g\r\n",
    "def main():\n    return 42\n",
    "\tclass A:\n\t\tpass",
    "中文分词测试，日本語のテキスト、한국어 문장",
    "emoji 😀👍🏽 family 👩\u200d👩\u200d👧\u200d👦",
    "literal \u2581 lower one eighth block \u2581\u2581x",
    "",
    " ",
    "  ",
    "\n",
    "\n\n",
]
GEMMA_CORPUS = CORPUS + [
    "<bos>text<eos> <pad><unk> <mask>",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "x<start_of_turn> y <end_of_turn>z",
]
PHI3_CORPUS = CORPUS + [
    "<s>text</s> <unk>",
    "<|user|>\nHi there<|end|>\n<|assistant|>\n",
    "x<|user|> y <|end|>z<|endoftext|>",
    "<|system|>",
]

CONVERSATION = [
    {"role": "user", "content": "Hi there 👋"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2+2?"},
]


def trained_pieces(add_prefix_space: bool) -> tuple[list[str], list[str]]:
    """BPE pieces (best merge first) and their merges, learned from TRAINING_TEXT with U+2581
    for spaces. Pieces made only of U+2581 are dropped but one: Gemma keeps whitespace runs as
    user-defined tokens instead."""
    from tokenizers import SentencePieceBPETokenizer

    trainer = SentencePieceBPETokenizer(add_prefix_space=add_prefix_space)
    trainer.train_from_iterator(TRAINING_TEXT, vocab_size=400, min_frequency=2)
    model = json.loads(trainer.to_str())["model"]
    pieces = [piece for piece, _ in sorted(model["vocab"].items(), key=lambda item: item[1])]
    pieces = [piece for piece in pieces if piece == "\u2581" or piece.strip("\u2581")]
    if "\u2581" not in pieces:
        pieces.insert(0, "\u2581")
    return pieces, [" ".join(merge) for merge in model["merges"]]


def gemma_fields(**overrides: object) -> dict[str, object]:
    """Gemma's layout: <pad> <eos> <bos> <unk> <mask>, turn markers and whitespace runs (written
    with real spaces, as llama.cpp does) as user-defined tokens, bytes, then the pieces. The
    scores deliberately disagree with the merge order: Gemma's merges follow token order."""
    pieces, _ = trained_pieces(add_prefix_space=False)
    head = [
        ("<pad>", CONTROL),
        ("<eos>", CONTROL),
        ("<bos>", CONTROL),
        ("<unk>", UNKNOWN),
        ("<mask>", CONTROL),
        ("[@BOS@]", CONTROL),
        ("<start_of_turn>", USER_DEFINED),
        ("<end_of_turn>", USER_DEFINED),
        ("  ", USER_DEFINED),
        ("   ", USER_DEFINED),
        ("    ", USER_DEFINED),
        ("\n\n", USER_DEFINED),
        ("\t\t", USER_DEFINED),
    ]
    pieces = [piece for piece in pieces if piece not in dict(head)]  # no duplicate tokens
    tokens = [token for token, _ in head] + BYTE_TOKENS + pieces
    fields: dict[str, object] = {
        "architecture": "gemma2",
        "tokens": tokens,
        "types": [kind for _, kind in head] + [BYTE] * 256 + [NORMAL] * len(pieces),
        "scores": [0.0] * (len(head) + 256) + [float(i % 7) for i in range(len(pieces))],
        "bos": 2,
        "eos": 1,
        "unk": 3,
        "pad": 0,
        "add_space_prefix": False,
        "chat_template": GEMMA_TEMPLATE,
    }
    return {**fields, **overrides}


def phi3_fields(**overrides: object) -> dict[str, object]:
    """Phi-3's layout: Llama 2's <unk> <s> </s>, bytes and pieces (scores = -rank), then the
    chat tokens appended at the end; <|endoftext|> is EOS and padding."""
    pieces, merges = trained_pieces(add_prefix_space=True)
    tail = [
        ("<|endoftext|>", CONTROL),
        ("<|assistant|>", USER_DEFINED),
        ("<|placeholder1|>", CONTROL),
        ("<|system|>", USER_DEFINED),
        ("<|end|>", USER_DEFINED),
        ("<|user|>", USER_DEFINED),
    ]
    tokens = ["<unk>", "<s>", "</s>", *BYTE_TOKENS, *pieces, *(token for token, _ in tail)]
    endoftext = tokens.index("<|endoftext|>")
    fields: dict[str, object] = {
        "architecture": "phi3",
        "tokens": tokens,
        "types": [UNKNOWN, CONTROL, CONTROL]
        + [BYTE] * 256
        + [NORMAL] * len(pieces)
        + [kind for _, kind in tail],
        "scores": [0.0] * 259 + [-float(rank) for rank in range(len(pieces))] + [0.0] * len(tail),
        "merges": merges,
        "bos": 1,
        "eos": endoftext,
        "unk": 0,
        "pad": endoftext,
        "add_space_prefix": True,
        "add_bos": False,
        "chat_template": PHI3_TEMPLATE,
    }
    return {**fields, **overrides}


def write_gguf(path: Path, fields: dict[str, object]) -> str:
    """A metadata-only GGUF; a field set to None is left out of the file."""
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), fields["architecture"])
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_tokenizer_model(fields.get("model", "llama"))
    writer.add_tokenizer_pre("default")
    writer.add_token_list(fields["tokens"])
    writer.add_token_types(fields["types"])
    setters = {
        "scores": writer.add_token_scores,
        "merges": writer.add_token_merges,
        "bos": writer.add_bos_token_id,
        "eos": writer.add_eos_token_id,
        "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id,
        "add_bos": writer.add_add_bos_token,
        "add_eos": writer.add_add_eos_token,
        "add_space_prefix": writer.add_add_space_prefix,
        "chat_template": writer.add_chat_template,
    }
    for key, setter in setters.items():
        if fields.get(key) is not None:
            setter(fields[key])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


def reference_for(path: str, architecture: str):
    """transformers' tokenizer for the file. AutoTokenizer cannot build a config for a `gemma`
    (v1) GGUF, so that one goes straight to GemmaTokenizer, the class AutoTokenizer maps it to."""
    if architecture != "gemma":
        return reference_tokenizer(path)
    pytest.importorskip("torch")
    from transformers import GemmaTokenizer

    return GemmaTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))


def assert_equivalent(ours, reference, corpus: list[str]) -> None:
    assert json.loads(ours.backend_tokenizer.to_str()) == json.loads(
        reference.backend_tokenizer.to_str()
    )
    for text in corpus:
        for add_special_tokens in (True, False):
            expected = reference(text, add_special_tokens=add_special_tokens)["input_ids"]
            got = ours(text, add_special_tokens=add_special_tokens)["input_ids"]
            assert got == expected, (text, add_special_tokens)
        for skip_special_tokens in (True, False):
            expected_text = reference.decode(expected, skip_special_tokens=skip_special_tokens)
            got_text = ours.decode(expected, skip_special_tokens=skip_special_tokens)
            assert got_text == expected_text, (text, skip_special_tokens)
    for name in ("bos", "eos", "unk", "pad", "mask"):
        assert getattr(ours, f"{name}_token") == getattr(reference, f"{name}_token"), name
        assert getattr(ours, f"{name}_token_id") == getattr(reference, f"{name}_token_id"), name
    assert (ours.add_bos_token, ours.add_eos_token) == (
        reference.add_bos_token,
        reference.add_eos_token,
    )
    assert ours.all_special_tokens == reference.all_special_tokens
    assert ours.all_special_ids == reference.all_special_ids
    assert ours.get_vocab() == reference.get_vocab()
    assert ours.get_added_vocab() == reference.get_added_vocab()
    assert len(ours) == len(reference)
    assert ours.padding_side == reference.padding_side
    assert ours.chat_template == reference.chat_template
    for add_generation_prompt in (True, False):
        for tokenize in (True, False):
            kwargs = {"add_generation_prompt": add_generation_prompt, "tokenize": tokenize}
            expected = reference.apply_chat_template(CONVERSATION, **kwargs)
            assert ours.apply_chat_template(CONVERSATION, **kwargs) == expected


def retyped(fields: dict[str, object], types: dict[str, int]) -> dict[str, object]:
    """``fields`` with the GGUF token type of the named tokens changed."""
    tokens: list[str] = fields["tokens"]
    new_types = list(fields["types"])
    for token, token_type in types.items():
        new_types[tokens.index(token)] = token_type
    return {**fields, "types": new_types}


GEMMA_CASES = {
    "gemma2": gemma_fields,
    "gemma3": lambda: gemma_fields(architecture="gemma3"),
    "gemma": lambda: gemma_fields(architecture="gemma"),
    "gemma2-add_bos-add_eos": lambda: gemma_fields(add_bos=True, add_eos=True),
    "gemma2-no-bos-no-pad": lambda: gemma_fields(add_bos=False, pad=None),
    "gemma2-no-scores": lambda: gemma_fields(scores=None),
    "gemma2-file-merges": lambda: gemma_fields(merges=trained_pieces(add_prefix_space=False)[1]),
    # <unk> and <mask> are special in transformers whatever their type and whether an id names them.
    "gemma2-no-unk-id-mask-normal": lambda: retyped(gemma_fields(unk=None), {"<mask>": NORMAL}),
}
PHI3_CASES = {
    "phi3": phi3_fields,
    "phi3-scores-only": lambda: phi3_fields(merges=None),
    "phi3-add_bos-add_eos": lambda: phi3_fields(add_bos=True, add_eos=True),
    "phi3-no-add_bos-key": lambda: phi3_fields(add_bos=None),
    "phi3-eos-s-normal": lambda: retyped(phi3_fields(), {"</s>": NORMAL, "<s>": NORMAL}),
}


@pytest.mark.slow
@pytest.mark.parametrize("make_fields", GEMMA_CASES.values(), ids=GEMMA_CASES.keys())
def test_gemma_matches_reference(tmp_path, make_fields):
    fields = make_fields()
    path = write_gguf(tmp_path / "gemma.gguf", fields)
    assert_equivalent(
        load_gguf_tokenizer(path), reference_for(path, fields["architecture"]), GEMMA_CORPUS
    )


@pytest.mark.slow
@pytest.mark.parametrize("make_fields", PHI3_CASES.values(), ids=PHI3_CASES.keys())
def test_phi3_matches_reference(tmp_path, make_fields):
    path = write_gguf(tmp_path / "phi3.gguf", make_fields())
    assert_equivalent(load_gguf_tokenizer(path), reference_for(path, "phi3"), PHI3_CORPUS)


# --- properties of our loader alone (no transformers reference needed) ----------------------


def test_gemma_tokenizer_properties(tmp_path):
    fields = gemma_fields()
    tokenizer = load_gguf_tokenizer(write_gguf(tmp_path / "gemma.gguf", fields))
    tokens: list[str] = fields["tokens"]
    # No prefix space, BOS added, spaces are U+2581; a whitespace run is the respelled token.
    assert tokenizer("Hello")["input_ids"][0] == 2
    assert not tokenizer.tokenize("Hello")[0].startswith("\u2581")
    assert "\u2581\u2581\u2581" in tokenizer.tokenize("a   b")
    assert tokenizer.convert_tokens_to_ids("\u2581\u2581") == tokens.index("  ")
    # Turn markers stay whole, are not special, and survive skip_special_tokens.
    ids = tokenizer("<start_of_turn>user\nHi<end_of_turn>", add_special_tokens=False)["input_ids"]
    assert ids[0] == tokens.index("<start_of_turn>") and ids[-1] == tokens.index("<end_of_turn>")
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<start_of_turn>user\nHi<end_of_turn>"
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        "<bos>",
        "<eos>",
        "<pad>",
    )
    assert (tokenizer.unk_token, tokenizer.mask_token) == ("<unk>", "<mask>")
    assert tokenizer.padding_side == "left"
    for text in ("  two leading spaces", "emoji 😀 and 中文", "a\t\tb\n\nc"):
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_gemma_merges_follow_token_order_not_scores(tmp_path):
    reordered = gemma_fields(scores=[float(i) for i in range(len(gemma_fields()["tokens"]))])
    a = load_gguf_tokenizer(write_gguf(tmp_path / "a.gguf", gemma_fields()))
    b = load_gguf_tokenizer(write_gguf(tmp_path / "b.gguf", reordered))
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    assert len(a("Hello world, this is a test.")["input_ids"]) < len("Hello world, this is a test.")


def test_gemma_without_mask_token_adds_none(tmp_path):
    """transformers would append <mask> (and <unk>, <pad>) past the vocabulary; we do not."""
    fields = gemma_fields(unk=None, pad=None)
    renamed = {"<pad>": "<unused0>", "<unk>": "<unused1>", "<mask>": "<unused2>"}
    fields["tokens"] = [renamed.get(token, token) for token in fields["tokens"]]
    tokenizer = load_gguf_tokenizer(write_gguf(tmp_path / "gemma.gguf", fields))
    assert len(tokenizer) == len(fields["tokens"])
    assert tokenizer.mask_token is None and tokenizer.unk_token is None
    assert tokenizer.pad_token is None
    assert json.loads(tokenizer.backend_tokenizer.to_str())["model"]["unk_token"] is None
    assert tokenizer.decode(tokenizer("x 😀")["input_ids"], skip_special_tokens=True) == "x 😀"


def test_phi3_tokenizer_properties(tmp_path):
    fields = phi3_fields()
    tokenizer = load_gguf_tokenizer(write_gguf(tmp_path / "phi3.gguf", fields))
    tokens: list[str] = fields["tokens"]
    # The normalizer prefixes U+2581 to the text, spaces included, and after every added token.
    assert "".join(tokenizer.tokenize("  x")) == "\u2581\u2581\u2581x"
    assert tokenizer.tokenize("<|user|>Hello")[1].startswith("\u2581")
    assert tokenizer("Hello")["input_ids"][0] != 1  # add_bos_token is false in the file
    ids = tokenizer("<|user|>\nHi<|end|>")["input_ids"]
    assert ids[0] == tokens.index("<|user|>") and ids[-1] == tokens.index("<|end|>")
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.padding_side == "right"
    for text in ("Hello world", " leading", "emoji 😀 and 中文"):
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_phi3_add_space_prefix_false_is_honoured(tmp_path):
    tokenizer = load_gguf_tokenizer(
        write_gguf(tmp_path / "phi3.gguf", phi3_fields(add_space_prefix=False))
    )
    assert not tokenizer.tokenize("Hello")[0].startswith("\u2581")
    assert tokenizer.tokenize(" Hello")[0].startswith("\u2581")
    ids = tokenizer(" Hello world")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == " Hello world"


@pytest.mark.parametrize("model", ["t5", "gemma4", "bert"])
@pytest.mark.parametrize("architecture", ["gemma2", "phi3"])
def test_unsupported_tokenizer_type_is_named(tmp_path, model, architecture):
    fields = {**gemma_fields(), "architecture": architecture, "model": model}
    path = write_gguf(tmp_path / "other.gguf", fields)
    with pytest.raises(ValueError, match=f"unsupported GGUF tokenizer type.*'{model}'"):
        load_gguf_tokenizer(path)
