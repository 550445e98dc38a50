"""How the KV cache stores keys and values: ``LLM(kv_cache_dtype=...)`` / ``cadence serve
--kv-cache-dtype`` (vLLM's option name).

"bfloat16" and "float16" take 2 bytes per value instead of 4, so the same
``kv_cache_memory_bytes`` holds twice the tokens and long-context decode reads half the bytes.
Keys and values are rounded to nearest even when they are written and widened to fp32
(exactly) when attention reads them; attention computes in fp32. "auto" is "bfloat16" on CPUs
with AVX-512 BF16 and "float32" elsewhere; the engine reports what it chose
(``LLM.llm_engine.core.kv_cache_dtype``).
"""

from __future__ import annotations

from typing import Any

from cadence import _core
from cadence.errors import InvalidParameterError

# The C++ enum's names (EngineConfig.kv_cache_dtype), in its order.
SUPPORTED_KV_CACHE_DTYPES = tuple(_core.KvCacheDtype.__members__)


def check_kv_cache_dtype(value: Any) -> str:
    """``value`` if it is one of SUPPORTED_KV_CACHE_DTYPES; InvalidParameterError naming the
    parameter and the allowed values otherwise."""
    if not isinstance(value, str) or value not in SUPPORTED_KV_CACHE_DTYPES:
        raise InvalidParameterError(
            "kv_cache_dtype",
            f"kv_cache_dtype must be one of {', '.join(SUPPORTED_KV_CACHE_DTYPES)}, got {value!r}",
        )
    return value
