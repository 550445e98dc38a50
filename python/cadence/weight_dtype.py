"""The dtype the engine keeps its weights in: ``LLM(dtype=...)`` / ``cadence serve --dtype``.

Compute is always fp32 on CPU; "bfloat16" / "float16" store the weight matrices and the token
embedding in 2 bytes per value (converted to fp32 as the kernels read them) and round the small
vectors (norms, biases) to that dtype too, so the model computes exactly what HF computes with
``model.to(dtype).float()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cadence.model_source import ModelSource

# vLLM's names (and torch's) for the dtypes cadence stores.
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


def checkpoint_dtype(source: ModelSource) -> str:
    """The dtype an HF checkpoint declares in config.json ("dtype", formerly "torch_dtype"),
    when it is one cadence stores; "float32" otherwise, and for GGUF files (whose quantized
    tensors are dequantized to fp32 at load)."""
    if source.is_gguf:
        return "float32"
    try:
        with open(Path(source.path) / "config.json", encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return "float32"
    declared = config.get("dtype") or config.get("torch_dtype")
    return _ALIASES.get(str(declared), "float32")


def resolve_weight_dtype(dtype: Any, source: ModelSource) -> str:
    """ "float32", "bfloat16" or "float16" for ``dtype``; "auto" = the checkpoint's dtype.
    Raises ValueError naming the supported values."""
    name = _dtype_name(dtype)
    if name == "auto":
        return checkpoint_dtype(source)
    if name not in _ALIASES:
        raise ValueError(
            f"dtype {dtype!r} is not supported; supported: {', '.join(SUPPORTED_DTYPES)}"
        )
    return _ALIASES[name]
