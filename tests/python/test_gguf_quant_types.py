"""GGUF tensor types against the reference dequantization of the `gguf` package.

Every readable type is written with `gguf.GGUFWriter` as raw blocks of random bytes (with the
fp16 scale fields made finite) and read back with `_core.read_gguf_tensor`; the real tensors of
the default model (Q4_1, Q8_0, F32) are compared the same way. The comparison is exact: both
sides compute the same float32 products and sums in the same order, and the core is compiled
without FMA contraction, so any difference is a layout bug, not rounding.

Unsupported types and truncated files must fail with a message naming the tensor and the
type, at `read_gguf_tensor` (RuntimeError) and at `LLM(...)` (ValueError).
"""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as QType

from cadence import LLM, _core

# Byte offsets of the fp16 fields (scales, mins) inside one block of each quantized type.
FP16_FIELDS: dict[QType, tuple[int, ...]] = {
    QType.Q4_0: (0,),
    QType.Q4_1: (0, 2),
    QType.Q5_0: (0,),
    QType.Q5_1: (0, 2),
    QType.Q8_0: (0,),
    QType.Q4_K: (0, 2),
    QType.Q5_K: (0, 2),
    QType.Q6_K: (208,),
}
READABLE_TYPES = [QType.F32, QType.F16, QType.BF16, *FP16_FIELDS]
NEW_TYPES = [QType.Q5_0, QType.Q5_1, QType.Q4_K, QType.Q5_K, QType.Q6_K]


def random_blocks(qtype: QType, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Raw bytes of a tensor of `shape` (rows, row length) in `qtype`, as gguf's writer takes
    them: uint8 [rows, bytes per row]. Random bytes, except that every float field is finite
    (random fp16 bit patterns with the all-ones exponent cleared, subnormals included)."""
    block_elements, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    rows, row_length = shape
    if qtype in (QType.F32, QType.BF16):
        values = rng.standard_normal(shape).astype(np.float32) * 10.0
        if qtype == QType.F32:
            return values.view(np.uint8)
        return (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    num_blocks = rows * row_length // block_elements
    data = rng.integers(0, 256, size=(num_blocks, block_bytes), dtype=np.uint8)
    fields = range(0, block_bytes, 2) if qtype == QType.F16 else FP16_FIELDS[qtype]
    for offset in fields:
        half = data[:, offset : offset + 2].copy().view(np.uint16)
        is_special = (half & 0x7C00) == 0x7C00  # inf or nan
        half[is_special] &= 0xBFFF  # clear the top exponent bit: a large finite value
        data[:, offset : offset + 2] = half.view(np.uint8)
    return data.reshape(rows, -1)


def write_gguf(path, tensors: dict[str, tuple[QType, np.ndarray]], arch: str = "qwen2") -> None:
    writer = gguf.GGUFWriter(str(path), arch)
    for name, (qtype, raw) in tensors.items():
        writer.add_tensor(name, raw, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# Row lengths: one block, several blocks, and an odd number of blocks; rows: 1 and odd.
@pytest.mark.parametrize("qtype", READABLE_TYPES, ids=lambda t: t.name)
def test_synthetic_tensors_match_gguf_reference(tmp_path, qtype: QType) -> None:
    rng = np.random.default_rng(int(qtype))
    block_elements = gguf.GGML_QUANT_SIZES[qtype][0]
    shapes = {
        "one_block": (1, max(block_elements, 32)),
        "several_rows": (7, 3 * max(block_elements, 32)),
        "wide": (3, 5 * 256),
    }
    raws = {name: random_blocks(qtype, shape, rng) for name, shape in shapes.items()}
    path = tmp_path / f"{qtype.name}.gguf"
    write_gguf(path, {name: (qtype, raw) for name, raw in raws.items()})
    for name, shape in shapes.items():
        ours = _core.read_gguf_tensor(str(path), name)
        expected = gguf.quants.dequantize(raws[name], qtype)
        assert ours.dtype == np.float32
        assert ours.shape == shape, name
        assert np.all(np.isfinite(expected))
        np.testing.assert_array_equal(ours, expected.reshape(shape), err_msg=f"{qtype.name} {name}")


def test_default_model_tensors_match_gguf_reference(default_model_path: str) -> None:
    reader = gguf.GGUFReader(default_model_path)
    seen_types = set()
    for tensor in reader.tensors:
        ours = _core.read_gguf_tensor(default_model_path, tensor.name)
        expected = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        shape = tuple(int(d) for d in reversed(tensor.shape))
        assert ours.shape == shape, tensor.name
        np.testing.assert_array_equal(ours, expected.reshape(shape), err_msg=tensor.name)
        seen_types.add(tensor.tensor_type)
    assert seen_types == {QType.Q4_1, QType.Q8_0, QType.F32}


def test_reader_errors_name_the_tensor(tmp_path, default_model_path: str) -> None:
    with pytest.raises(RuntimeError, match="'no.such.tensor' not found"):
        _core.read_gguf_tensor(default_model_path, "no.such.tensor")
    with pytest.raises(RuntimeError, match="cannot open"):
        _core.read_gguf_tensor(str(tmp_path / "missing.gguf"), "x")


@pytest.mark.parametrize(
    ("qtype", "expected"),
    [
        (QType.Q2_K, r"Q2_K \(GGML type id 10\)"),
        (QType.Q3_K, r"Q3_K \(GGML type id 11\)"),
        (QType.IQ4_XS, r"IQ4_XS \(GGML type id 23\)"),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_unsupported_type_is_named(tmp_path, qtype: QType, expected: str) -> None:
    rng = np.random.default_rng(0)
    block_bytes = gguf.GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, size=(2, block_bytes), dtype=np.uint8)
    path = tmp_path / "unsupported.gguf"
    write_gguf(path, {"blk.0.ffn_up.weight": (qtype, raw)})
    with pytest.raises(RuntimeError, match=expected) as info:
        _core.read_gguf_tensor(str(path), "blk.0.ffn_up.weight")
    message = str(info.value)
    assert "'blk.0.ffn_up.weight'" in message and str(path) in message
    assert "Q4_K, Q5_K, Q6_K" in message  # lists what is readable


def test_unknown_type_id_is_named(tmp_path) -> None:
    path = tmp_path / "unknown.gguf"
    raw = np.zeros((1, 18), dtype=np.uint8)
    write_gguf(path, {"blk.0.ffn_up.weight": (QType.Q4_0, raw)})
    data = bytearray(path.read_bytes())
    # Tensor info: name, n_dims (u32), dims (u64 each), type (u32), offset (u64).
    name_end = data.index(b"blk.0.ffn_up.weight") + len("blk.0.ffn_up.weight")
    type_at = name_end + 4 + 2 * 8
    assert int.from_bytes(data[type_at : type_at + 4], "little") == QType.Q4_0
    data[type_at : type_at + 4] = (99).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="'blk.0.ffn_up.weight'.*unknown GGML type id 99"):
        _core.read_gguf_tensor(str(path), "blk.0.ffn_up.weight")


def test_truncated_file_is_an_error(tmp_path) -> None:
    rng = np.random.default_rng(1)
    raw = random_blocks(QType.Q6_K, (4, 512), rng)
    path = tmp_path / "truncated.gguf"
    write_gguf(path, {"blk.0.ffn_down.weight": (QType.Q6_K, raw)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(RuntimeError, match="'blk.0.ffn_down.weight'.*past the end of the file"):
        _core.read_gguf_tensor(str(path), "blk.0.ffn_down.weight")
    path.write_bytes(data[:40])  # cut inside the header
    with pytest.raises(RuntimeError, match="corrupt GGUF file .*truncated.gguf"):
        _core.read_gguf_tensor(str(path), "blk.0.ffn_down.weight")


# --------------------------------------------------------------------------- through LLM(...)

HIDDEN = 256  # one K-quant super-block per row


def write_tiny_llama(
    path, ffn_up: tuple[QType, np.ndarray], merges: tuple[str, ...] = ("a b",)
) -> None:
    """A 1-layer llama GGUF with a minimal byte-level tokenizer and one weight: enough metadata
    for LLM(...) to get as far as reading the weights."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(HIDDEN)
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_context_length(64)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([chr(ord("a") + i) for i in range(26)] + ["ab"])
    writer.add_token_merges(list(merges))
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_tensor("blk.0.ffn_up.weight", ffn_up[1], raw_dtype=ffn_up[0])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_llm_names_unsupported_tensor_type(tmp_path) -> None:
    raw = np.zeros((HIDDEN, gguf.GGML_QUANT_SIZES[QType.Q2_K][1]), dtype=np.uint8)
    path = tmp_path / "q2k.gguf"
    write_tiny_llama(path, (QType.Q2_K, raw))
    with pytest.raises(ValueError, match=r"'blk.0.ffn_up.weight'.*Q2_K \(GGML type id 10\)"):
        LLM(model=str(path))


def test_llm_rejects_truncated_file(tmp_path) -> None:
    raw = random_blocks(QType.Q4_K, (HIDDEN, HIDDEN), np.random.default_rng(2))
    path = tmp_path / "cut.gguf"
    write_tiny_llama(path, (QType.Q4_K, raw))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1])
    with pytest.raises(ValueError, match=r"'blk.0.ffn_up.weight'.*past the end of the file"):
        LLM(model=str(path))


def test_tokenizer_with_a_merge_of_unknown_tokens_is_a_value_error(tmp_path) -> None:
    """The tokenizers library panics (a BaseException) on such a merge list; loading must
    still end in a ValueError naming the file."""
    from cadence.model_source import ModelSource
    from cadence.tokenizer_loader import load_tokenizer

    raw = random_blocks(QType.Q8_0, (HIDDEN, HIDDEN), np.random.default_rng(3))
    path = tmp_path / "bad_merges.gguf"
    write_tiny_llama(path, (QType.Q8_0, raw), merges=("a zz",))
    with pytest.raises(ValueError, match="cannot load the tokenizer of .*bad_merges.gguf"):
        load_tokenizer(ModelSource("bad", str(path), True))
