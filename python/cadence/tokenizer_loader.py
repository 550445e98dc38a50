"""Loads the tokenizer for a model source: HF directories through AutoTokenizer, GGUF
files from their own metadata (no torch, no transformers GGUF conversion)."""

from __future__ import annotations

from cadence.model_source import ModelSource


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
