# The shape of a vLLM launch script with the usual engine arguments (one GPU's worth: tensor
# parallelism 1, a memory fraction, eager mode, the generate task); only the import is changed.
import os

from cadence import LLM, SamplingParams  # was: from vllm import LLM, SamplingParams


def main():
    llm = LLM(
        model=os.environ["MODEL"],
        task="generate",
        tensor_parallel_size=1,
        gpu_memory_utilization=0.9,
        trust_remote_code=True,
        enforce_eager=True,
        tokenizer_mode="auto",
        swap_space=4,
        disable_log_stats=True,
        enable_prefix_caching=True,
        quantization=None,
        kv_cache_dtype="auto",
        max_model_len=1024,
        max_num_seqs=16,
        seed=0,
    )
    params = [
        SamplingParams(temperature=0.0, max_tokens=16),
        SamplingParams(temperature=0.8, top_p=0.95, top_k=50, seed=1, max_tokens=16),
        SamplingParams(n=2, temperature=1.0, seed=2, max_tokens=8),
    ]
    prompts = ["The capital of France is", "Once upon a time", "Hello, my name is"]
    outputs = llm.generate(prompts, params, use_tqdm=False, lora_request=None)
    for output in outputs:
        for completion in output.outputs:
            print(f"{output.prompt!r} -> {completion.text!r}")
    return outputs


if __name__ == "__main__":
    main()
