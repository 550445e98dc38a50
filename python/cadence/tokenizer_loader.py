"""Loads the tokenizer for a model source: HF directories through AutoTokenizer, GGUF
files from their own metadata (no torch, no transformers GGUF conversion); and
``encode_text``, the one way cadence turns a prompt into token ids."""

from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer

from cadence.model_source import ModelSource


def encode_text(tokenizer: Any, text: str, add_special_tokens: bool = True) -> list[int]:
    """``tokenizer.encode(text, add_special_tokens=...)``'s ids. For a fast tokenizer it
    calls the Rust tokenizer's batch encoder directly, as transformers' own ``encode``
    does underneath: the same ids in about half the time, and the GIL is released while it
    runs (the single-text ``Tokenizer.encode`` holds it), so a huge prompt tokenized on a
    worker thread does not stall the event loop."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if isinstance(backend, Tokenizer) and not getattr(tokenizer, "split_special_tokens", False):
        (encoding,) = backend.encode_batch([text], add_special_tokens=add_special_tokens)
        return encoding.ids
    return list(tokenizer.encode(text, add_special_tokens=add_special_tokens))


def load_tokenizer(source: ModelSource, tokenizer: str | None = None):
    """Returns a transformers PreTrainedTokenizerFast. ValueError when it cannot load."""
    path = tokenizer or source.path
    if path.endswith(".gguf"):
        from cadence.tokenizer.gguf_tokenizer import load_gguf_tokenizer

        try:
            return load_gguf_tokenizer(path)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # also the tokenizers library's Rust panics
            raise ValueError(f"cannot load the tokenizer of {path}: {error}") from error
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # many types, and the tokenizers library's Rust panics
        raise ValueError(f"cannot load a tokenizer from {path}: {error}") from error
