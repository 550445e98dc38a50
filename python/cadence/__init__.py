"""cadence: an LLM inference engine with vLLM's Python API and a C++ heart."""

from cadence.llm import LLM
from cadence.outputs import CompletionOutput, RequestOutput
from cadence.sampling_params import SamplingParams

__version__ = "0.1.0"
__all__ = ["LLM", "SamplingParams", "RequestOutput", "CompletionOutput", "__version__"]
