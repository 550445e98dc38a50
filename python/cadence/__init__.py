"""cadence: an LLM inference engine with vLLM's Python API and a C++ heart."""

import os

# cadence uses transformers only for configs, tokenizers and chat templates, never torch:
# silence its "PyTorch was not found" advisory (set the variable to "" to see it again).
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from cadence.llm import LLM  # noqa: E402
from cadence.outputs import CompletionOutput, RequestOutput  # noqa: E402
from cadence.sampling_params import SamplingParams  # noqa: E402

__version__ = "0.1.0"
__all__ = ["LLM", "SamplingParams", "RequestOutput", "CompletionOutput", "__version__"]
