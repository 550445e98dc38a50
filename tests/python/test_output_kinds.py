"""RequestOutputKind: DELTA outputs add up to exactly the CUMULATIVE ones (text, tokens,
logprobs, finish fields, prompt logprobs), each holds only what its step produced, and
FINAL_ONLY reports once; a long generation's deltas stay O(1) in size."""

from __future__ import annotations

import pytest

from cadence import SamplingParams
from cadence.outputs import RequestOutput, RequestOutputKind
from cadence.serving.streams import FinalOutput

PROMPT = "The capital of France is"

CASES = {
    "greedy": SamplingParams(temperature=0, max_tokens=24),
    "stop string": SamplingParams(temperature=0, max_tokens=40, stop=[" the", "\n\n"]),
    "stop string kept": SamplingParams(
        temperature=0, max_tokens=40, stop=[" the"], include_stop_str_in_output=True
    ),
    "n=3 sampled, logprobs": SamplingParams(
        n=3, temperature=1.0, seed=7, max_tokens=16, logprobs=2
    ),
    "prompt logprobs": SamplingParams(temperature=0, max_tokens=6, prompt_logprobs=1),
    "min_tokens and stop": SamplingParams(
        temperature=0.8, seed=3, max_tokens=30, min_tokens=10, stop=["e"]
    ),
}


def run(llm, params: SamplingParams, kind: RequestOutputKind) -> list[RequestOutput]:
    engine = llm.llm_engine
    request_id = f"kinds-{kind.name}-{engine.next_request_id()}"
    engine.add_request(request_id, PROMPT, engine.tokenize(PROMPT), params, None, kind)
    outputs = []
    while engine.has_unfinished_requests():
        outputs.extend(o for o in engine.step() if o.request_id == request_id)
    return outputs


def _as_tuple(output: RequestOutput):
    return (
        output.prompt_token_ids,
        output.prompt_logprobs,
        [
            (
                c.index,
                c.text,
                c.token_ids,
                c.cumulative_logprob,
                c.logprobs,
                c.finish_reason,
                c.stop_reason,
            )
            for c in output.outputs
        ],
        output.finished,
    )


@pytest.mark.parametrize("case", CASES)
def test_deltas_add_up_to_the_cumulative_output(default_llm, case):
    params = CASES[case]
    cumulative = run(default_llm, params, RequestOutputKind.CUMULATIVE)
    deltas = run(default_llm, params, RequestOutputKind.DELTA)
    (final_only,) = run(default_llm, params, RequestOutputKind.FINAL_ONLY)
    assert deltas[-1].finished and not any(d.finished for d in deltas[:-1])

    final = FinalOutput()
    for delta in deltas:
        final.add(delta)
    assert _as_tuple(final.output()) == _as_tuple(cumulative[-1]) == _as_tuple(final_only)

    added = deltas[0]
    for delta in deltas[1:]:
        added.add(delta)  # what a stream does for a consumer that fell behind
    assert _as_tuple(added) == _as_tuple(cumulative[-1])


def test_each_delta_holds_only_its_step(default_llm):
    params = CASES["n=3 sampled, logprobs"]
    deltas = run(default_llm, params, RequestOutputKind.DELTA)
    for delta in deltas:
        for completion in delta.outputs:
            assert len(completion.token_ids) == 1  # one decode step: one new token
            assert len(completion.logprobs) == 1
    # Only the first delta carries the prompt logprobs.
    deltas = run(default_llm, CASES["prompt logprobs"], RequestOutputKind.DELTA)
    assert deltas[0].prompt_logprobs is not None
    assert all(delta.prompt_logprobs is None for delta in deltas[1:])


def test_a_long_generation_streams_constant_size_deltas(long_context_llm):
    """8,192 tokens: every delta is one token and at most a few characters, so the work per
    step cannot grow with the output length; the deltas add up to the final output."""
    params = SamplingParams(temperature=0, max_tokens=8192, ignore_eos=True, stop=["zzzz"])
    deltas = run(long_context_llm, params, RequestOutputKind.DELTA)
    (final_only,) = run(long_context_llm, params, RequestOutputKind.FINAL_ONLY)
    assert len(final_only.outputs[0].token_ids) == 8192
    longest_token = max(len(long_context_llm.llm_engine.decode_token(t)) for t in range(49152))
    for delta in deltas:
        (completion,) = delta.outputs
        assert len(completion.token_ids) == 1
        # New text, plus at most the held-back start of the stop string ("zzz").
        assert len(completion.text) <= longest_token + 3
    final = FinalOutput()
    for delta in deltas:
        final.add(delta)
    assert _as_tuple(final.output()) == _as_tuple(final_only)


@pytest.fixture(scope="module")
def long_context_llm(tmp_path_factory, gguf_tokenizer):
    """A one-layer random Llama with room for 8,192 generated tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from cadence import LLM

    config = LlamaConfig(
        vocab_size=49152,  # the default model's tokenizer
        hidden_size=16,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=8448,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    config.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("long_context")
    LlamaForCausalLM(config).save_pretrained(str(path), safe_serialization=True)
    gguf_tokenizer.save_pretrained(str(path))
    return LLM(str(path), max_model_len=8448, max_num_seqs=1)
