"""Stop strings: the matcher (no model) and the engine's use of it (default model)."""

from __future__ import annotations

import pytest

from cadence import LLM, SamplingParams
from cadence.stop_strings import StopStringMatcher


def _feed(matcher: StopStringMatcher, deltas: list[str]):
    """Feeds deltas as the engine does; returns (match or None, shown text after each step)."""
    text, shown = "", []
    for delta in deltas:
        text += delta
        match = matcher.find(text, len(delta))
        if match is not None:
            return match, shown, text
        shown.append(text[: len(text) - matcher.num_held_back_chars(text)])
    return None, shown, text


def test_stop_inside_one_delta() -> None:
    match, _, text = _feed(StopStringMatcher(["END"]), ["Hello", " ENDing"])
    assert match is not None and match.stop == "END"
    assert text[: match.text_length] == "Hello "


def test_stop_spanning_several_deltas() -> None:
    match, shown, text = _feed(StopStringMatcher(["<|stop|>"]), ["ab<", "|st", "op", "|>zz"])
    assert match is not None and text[: match.text_length] == "ab"
    # Nothing of the stop string was ever shown.
    assert shown == ["ab", "ab", "ab"]


def test_stop_starting_mid_token() -> None:
    match, shown, text = _feed(StopStringMatcher(["lo w"]), ["hel", "lo", " wor"])
    assert match is not None and text[: match.text_length] == "hel"
    assert all("l" not in s[3:] for s in shown)


def test_include_stop_str_in_output() -> None:
    match, shown, text = _feed(StopStringMatcher(["END"], True), ["a E", "N", "D b"])
    assert match is not None and text[: match.text_length] == "a END"
    assert shown == ["a E", "a EN"]  # no hold-back needed: a completed stop is shown anyway


def test_earliest_match_wins_then_longer() -> None:
    matcher = StopStringMatcher(["cd", "b", "bc"])
    match = matcher.find("abcd", 4)
    assert match is not None and match.start == 1 and match.stop == "bc"


def test_old_text_is_not_searched() -> None:
    """Only stops that end in the new characters count (the rest were checked before or
    deliberately skipped during min_tokens)."""
    matcher = StopStringMatcher(["xy"])
    assert matcher.find("xy123", 3) is None
    assert matcher.find("12x", 1) is None
    assert matcher.find("12xy", 1) is not None
    assert matcher.find("12xy", 0) is None


def test_hold_back_is_the_longest_stop_prefix() -> None:
    matcher = StopStringMatcher(["abc", "xyz1"])
    assert matcher.num_held_back_chars("hello") == 0
    assert matcher.num_held_back_chars("hello a") == 1
    assert matcher.num_held_back_chars("hello ab") == 2
    assert matcher.num_held_back_chars("hello abc") == 0  # complete: find() handles it
    assert matcher.num_held_back_chars("hello xyz") == 3
    assert matcher.num_held_back_chars("") == 0
    assert matcher.num_held_back_chars("xy") == 2


def test_prefix_that_does_not_complete_is_released() -> None:
    match, shown, _ = _feed(StopStringMatcher(["END"]), ["ab E", "N", "x"])
    assert match is None
    assert shown == ["ab ", "ab ", "ab ENx"]


def test_shown_text_never_exceeds_the_final_cut() -> None:
    """Property: for many split points, every shown snapshot is a prefix of the final text."""
    full = "one two <stop> three"
    for cut in range(1, len(full)):
        for cut2 in range(cut, len(full)):
            deltas = [full[:cut], full[cut:cut2], full[cut2:]]
            match, shown, text = _feed(StopStringMatcher(["<stop>", "two <x"]), deltas)
            assert match is not None
            final = text[: match.text_length]
            assert final == "one two "
            assert all(final.startswith(s) for s in shown)


# --------------------------------------------------------------------------- with the engine


def _greedy_text(llm: LLM, prompt: str, max_tokens: int = 24) -> str:
    params = SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True)
    return llm.generate(prompt, params, use_tqdm=False)[0].outputs[0].text


PROMPT = "The capital of France is"


def _pick_stop(text: str) -> str:
    """A stop string from the middle of ``text`` that occurs there once."""
    for start in range(4, len(text) - 4):
        stop = text[start : start + 3]
        if stop.strip() and text.count(stop) == 1:
            return stop
    pytest.skip(f"no unique 3-char stop in {text!r}")


@pytest.mark.parametrize("include", [False, True])
def test_engine_cuts_text_at_stop_string(default_llm: LLM, include: bool) -> None:
    full = _greedy_text(default_llm, PROMPT)
    stop = _pick_stop(full)
    params = SamplingParams(
        temperature=0,
        max_tokens=24,
        ignore_eos=True,
        stop=[stop],
        include_stop_str_in_output=include,
    )
    output = default_llm.generate(PROMPT, params, use_tqdm=False)[0]
    completion = output.outputs[0]
    cut = full.index(stop) + (len(stop) if include else 0)
    assert completion.text == full[:cut]
    assert completion.finish_reason == "stop"
    assert completion.stop_reason == stop
    assert output.finished
    # Generation stopped in the step that completed the stop: fewer tokens than max_tokens.
    assert len(completion.token_ids) < 24
    assert not default_llm.llm_engine.has_unfinished_requests()


def test_engine_streamed_snapshots_never_leak_a_stop_prefix(default_llm: LLM) -> None:
    full = _greedy_text(default_llm, PROMPT)
    stop = full[len(full) // 2 : len(full) // 2 + 5]
    if full.count(stop) != 1:
        pytest.skip("stop string not unique")
    engine = default_llm.llm_engine
    engine.add_request(
        "stream-stop",
        PROMPT,
        engine.tokenize(PROMPT),
        SamplingParams(temperature=0, max_tokens=24, ignore_eos=True, stop=stop),
    )
    snapshots = []
    while engine.has_unfinished_requests():
        snapshots.extend(o.outputs[0].text for o in engine.step() if o.request_id == "stream-stop")
    final = snapshots[-1]
    assert final == full[: full.index(stop)]
    assert all(final.startswith(s) for s in snapshots)


def test_engine_stop_strings_wait_for_min_tokens(default_llm: LLM) -> None:
    full = _greedy_text(default_llm, PROMPT)
    first_char = full.strip()[0]
    params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True, stop=first_char)
    early = default_llm.generate(PROMPT, params, use_tqdm=False)[0].outputs[0]
    assert early.finish_reason == "stop" and len(early.token_ids) <= 2
    params = SamplingParams(
        temperature=0, max_tokens=24, ignore_eos=True, stop=first_char, min_tokens=24
    )
    late = default_llm.generate(PROMPT, params, use_tqdm=False)[0].outputs[0]
    assert late.finish_reason == "length" and len(late.token_ids) == 24
    assert late.text == full


def test_stop_string_ends_one_of_n_sequences_and_frees_its_blocks(default_llm: LLM) -> None:
    """Each sequence of an n > 1 request stops on its own stop string match (the core
    aborts just that sequence); the others go on and every block comes back."""
    core = default_llm.llm_engine.core
    params = SamplingParams(n=4, temperature=1.0, seed=11, stop=["e"], max_tokens=40)
    output = default_llm.generate(PROMPT, params, use_tqdm=False)[0]
    assert output.finished and len(output.outputs) == 4
    stopped = [c for c in output.outputs if c.finish_reason == "stop"]
    assert stopped, "no sequence produced an 'e' in 40 tokens"
    for completion in stopped:
        assert completion.stop_reason == "e"
        assert "e" not in completion.text
    assert not default_llm.llm_engine.has_unfinished_requests()
    core.check_invariants()
    assert core.stats().num_free_blocks == core.stats().num_total_blocks


def test_stop_string_in_the_very_first_token(default_llm: LLM) -> None:
    full = _greedy_text(default_llm, PROMPT)
    stop = full[:3]  # " Pa": completed by the first generated token
    params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True, stop=[stop])
    completion = default_llm.generate(PROMPT, params, use_tqdm=False)[0].outputs[0]
    assert completion.text == ""
    assert completion.finish_reason == "stop" and completion.stop_reason == stop
    assert len(completion.token_ids) == 1
