# The shape of vLLM's examples/offline_inference/basic/chat.py; only the import is changed.
import os

from cadence import LLM, SamplingParams  # was: from vllm import LLM, SamplingParams


def print_outputs(outputs):
    for output in outputs:
        print(f"Prompt: {output.prompt!r}")
        print(f"Generated text: {output.outputs[0].text!r}")
    print("-" * 80)


def main():
    llm = LLM(model=os.environ["MODEL"], max_model_len=2048, enforce_eager=True)
    sampling_params = SamplingParams(max_tokens=32, temperature=0.2, top_p=0.9)
    conversation = [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hello! How can I assist you today?"},
        {"role": "user", "content": "Write an essay about the importance of higher education."},
    ]
    outputs = llm.chat(conversation, sampling_params, use_tqdm=False)
    print_outputs(outputs)

    # A batch of conversations in one call.
    conversations = [conversation for _ in range(3)]
    batch = llm.chat(conversations, sampling_params, use_tqdm=True)
    print_outputs(batch)
    return outputs + batch


if __name__ == "__main__":
    main()
