"""``use_beam_search`` on the OpenAI endpoints (vLLM's extra): the n choices are the engine's
n best beam-search hypotheses, equal to the offline ``LLM.beam_search``."""

from __future__ import annotations

import pytest

from cadence.sampling_params import BeamSearchParams

PROMPT = "The capital of France is"


def test_completions_beam_search_equals_offline(server, default_llm_fp32_kv):
    (offline,) = default_llm_fp32_kv.beam_search(
        PROMPT, BeamSearchParams(beam_width=3, max_tokens=10, length_penalty=0.5)
    )
    client = server.openai()
    extra = {"use_beam_search": True, "length_penalty": 0.5}
    response = client.completions.create(
        model=server.model, prompt=PROMPT, n=3, max_tokens=10, extra_body=extra
    )
    assert [c.text for c in response.choices] == [s.text for s in offline.sequences]
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert response.usage.completion_tokens == sum(len(s.tokens) for s in offline.sequences)

    texts = {}
    for chunk in client.completions.create(
        model=server.model, prompt=PROMPT, n=3, max_tokens=10, stream=True, extra_body=extra
    ):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert [texts[i] for i in range(3)] == [s.text for s in offline.sequences]


def test_chat_beam_search_equals_offline(server, default_llm_fp32_kv):
    messages = [{"role": "user", "content": "Name a color."}]
    chat = default_llm_fp32_kv.render_chat(messages)[0]
    (offline,) = default_llm_fp32_kv.beam_search(
        {"prompt_token_ids": chat.prompt_token_ids}, BeamSearchParams(beam_width=2, max_tokens=12)
    )
    response = server.openai().chat.completions.create(
        model=server.model,
        messages=messages,
        n=2,
        max_tokens=12,
        extra_body={"use_beam_search": True},
    )
    assert [c.message.content for c in response.choices] == [s.text for s in offline.sequences]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"length_penalty": 1.0}, "length_penalty"),  # without use_beam_search
        ({"use_beam_search": True, "top_p": 0.5}, "top_p"),
        ({"use_beam_search": True, "stop": ["\n"]}, "stop"),
        ({"use_beam_search": True, "logprobs": 2}, "logprobs"),
        ({"use_beam_search": True, "n": 0}, "n"),
        ({"use_beam_search": True, "length_penalty": "big"}, "length_penalty"),
    ],
)
def test_bad_beam_search_requests_are_400(server, body, param):
    with server.http() as http:
        response = http.post("/v1/completions", json={"prompt": PROMPT, "max_tokens": 4, **body})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        assert http.get("/health").status_code == 200
