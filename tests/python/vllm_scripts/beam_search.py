# The shape of vLLM's beam-search usage (LLM.beam_search with BeamSearchParams); only the
# imports are changed.
import os

from cadence import LLM  # was: from vllm import LLM
from cadence.sampling_params import BeamSearchParams  # was: from vllm.sampling_params import ...


def main():
    llm = LLM(model=os.environ["MODEL"], seed=0, max_model_len=1024)
    params = BeamSearchParams(beam_width=3, max_tokens=16)
    outputs = llm.beam_search(
        [{"prompt": "The capital of France is"}, {"prompt": "Hello, my name is"}], params
    )
    for output in outputs:
        for sequence in output.sequences:
            print(f"{sequence.cum_logprob:8.3f} {sequence.text!r}")
    return outputs


if __name__ == "__main__":
    main()
