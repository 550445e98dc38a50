"""Model resolution: local dirs, .gguf files, hub ids in the local HF cache, the default
model, and the errors for everything else. No model is loaded here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cadence.model_source import default_model_path, hf_cache_dir, resolve_model


def _make_hf_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    return path


def _make_cache_entry(cache: Path, repo_id: str, commit: str, ref: str = "main") -> Path:
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return _make_hf_dir(repo / "snapshots" / commit)


def test_default_model_is_the_packaged_gguf():
    source = resolve_model(None)
    assert source.is_gguf
    assert source.path == default_model_path()
    assert Path(source.path).is_file()
    assert Path(source.path).read_bytes()[:4] == b"GGUF"


def test_local_hf_directory(tmp_path):
    model_dir = _make_hf_dir(tmp_path / "m")
    source = resolve_model(str(model_dir))
    assert not source.is_gguf
    assert source.path == str(model_dir)


def test_gguf_file_and_directory_with_one_gguf(tmp_path):
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)).path == str(gguf)
    source = resolve_model(str(tmp_path))
    assert source.is_gguf and source.path == str(gguf)


def test_hub_id_is_found_in_hf_cache_with_revision(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    main = _make_cache_entry(cache, "org/name", "aaa111")
    other = _make_cache_entry(cache, "org/name", "bbb222", ref="v2")
    assert hf_cache_dir() == cache
    assert resolve_model("org/name").path == str(main)
    assert resolve_model("org/name", revision="v2").path == str(other)
    assert resolve_model("org/name", revision="bbb222").path == str(other)


def test_hf_home_locates_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    snapshot = _make_cache_entry(tmp_path / "hub", "org/other", "ccc333")
    assert resolve_model("org/other").path == str(snapshot)


def test_unknown_model_says_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="not found; tried: local path .*HF cache"):
        resolve_model("nobody/nothing")
    with pytest.raises(ValueError, match="never downloads"):
        resolve_model(str(tmp_path / "missing-dir"))


@pytest.mark.parametrize("offline", ["1", None])
def test_uncached_hub_id_is_one_clear_error_with_or_without_hf_hub_offline(
    tmp_path, monkeypatch, no_network, offline
):
    """With HF_HUB_OFFLINE=1 nothing may touch the network; without it cadence still never
    downloads, so a model missing from the cache gives the same message either way."""
    from cadence import LLM

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    if offline is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    _make_cache_entry(tmp_path, "org/other-model", "aaa111")
    with pytest.raises(ValueError, match=r"'org/absent' not found; tried: .*HF cache") as error:
        LLM(model="org/absent")
    assert "never downloads" in str(error.value)


def test_missing_revision_is_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    _make_cache_entry(tmp_path, "org/name", "aaa111")
    with pytest.raises(ValueError, match="revision nope"):
        resolve_model("org/name", revision="nope")


def test_bad_model_arguments(tmp_path):
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a .gguf file"):
        resolve_model(str(not_gguf))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        resolve_model(str(empty_dir))
    with pytest.raises(ValueError, match="non-empty string"):
        resolve_model("")
