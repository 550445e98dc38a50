"""How the engine keeps its weights: ``LLM(dtype=..., quantization=...)`` / ``cadence serve
--dtype --quantization``.

Compute is always fp32 on CPU; "bfloat16" / "float16" store the weight matrices and the token
embedding in 2 bytes per value (converted to fp32 as the kernels read them) and round the small
vectors (norms, biases) to that dtype too, so the model computes exactly what HF computes with
``model.to(dtype).float()``. "auto" on a GGUF file keeps every tensor as the file stores it
(the core's "native"): quantized blocks stay integer codes that the int8 GEMM reads directly,
on activations quantized per row to int8. ``dtype="float32"`` / ``"bfloat16"`` dequantize them
at load instead. ``quantization="int8"`` quantizes an HF checkpoint's float matrices at load
(per group of 32 columns) for the same int8 GEMM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cadence import _core
from cadence.model_source import ModelSource

# vLLM's names (and torch's) for the dtypes cadence stores -> the C++ enum's names
# (EngineConfig.weight_dtype; a test checks each is one).
_ALIASES = {
    "float32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "float16": "float16",
    "half": "float16",
}
SUPPORTED_DTYPES = ("auto", *_ALIASES)


def _dtype_name(dtype: Any) -> str:
    """The name of a dtype given as a string or a torch.dtype (torch is never imported)."""
    if isinstance(dtype, str):
        return dtype
    text = str(dtype)
    if type(dtype).__name__ == "dtype" and text.startswith("torch."):
        return text.removeprefix("torch.")
    raise ValueError(
        f"dtype must be a string or a torch.dtype, got {dtype!r}; "
        f"supported: {', '.join(SUPPORTED_DTYPES)}"
    )


# The weight_dtype of a GGUF file under dtype="auto": each tensor as stored.
NATIVE = str(_core.WeightDtype.native)

# quantization= values (vLLM's names where vLLM has one): None, "int8" (weight-only int8 at load,
# HF checkpoints), "gguf" (vLLM's name for a GGUF file's own quantization; GGUF files only).
SUPPORTED_QUANTIZATIONS = (None, "int8", "gguf")


def checkpoint_dtype(source: ModelSource) -> str:
    """The dtype an HF checkpoint declares in config.json ("dtype", formerly "torch_dtype"),
    when it is one cadence stores, "float32" otherwise; "native" for GGUF files (their
    quantized tensors stay quantized)."""
    if source.is_gguf:
        return NATIVE
    try:
        with open(Path(source.path) / "config.json", encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return "float32"
    declared = config.get("dtype") or config.get("torch_dtype")
    return _ALIASES.get(str(declared), "float32")


def resolve_weight_dtype(dtype: Any, source: ModelSource) -> str:
    """ "float32", "bfloat16" or "float16" for ``dtype``; "auto" = the checkpoint's dtype
    ("native" for GGUF). Raises ValueError naming the supported values."""
    name = _dtype_name(dtype)
    if name == "auto":
        return checkpoint_dtype(source)
    if name not in _ALIASES:
        raise ValueError(
            f"dtype {dtype!r} is not supported; supported: {', '.join(SUPPORTED_DTYPES)}"
        )
    return _ALIASES[name]


def resolve_quantization(quantization: str | None, source: ModelSource) -> str:
    """The core's EngineConfig.quantization ("" or "int8") for ``quantization``. With "int8"
    the dtype still applies to what stays float (matrices whose rows are not a multiple of 32
    long, and the rounding of norms and biases). Raises ValueError naming the parameter and the
    supported values."""
    if quantization not in SUPPORTED_QUANTIZATIONS:
        raise ValueError(
            f"quantization {quantization!r} is not supported; supported: None, 'int8' "
            "(HF checkpoints, weight-only int8 at load), 'gguf' (GGUF files)"
        )
    if quantization == "gguf":
        if not source.is_gguf:
            raise ValueError("quantization='gguf' needs a .gguf model file")
        return ""
    if quantization == "int8":
        if source.is_gguf:
            raise ValueError(
                "quantization='int8' applies to HF checkpoints; a GGUF file keeps its own "
                "quantization (dtype='auto') or is dequantized (dtype='float32' / 'bfloat16')"
            )
        return "int8"
    return ""
