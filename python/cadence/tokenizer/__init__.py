"""Tokenizers for cadence models."""

from cadence.tokenizer.gguf_tokenizer import load_gguf_tokenizer

__all__ = ["load_gguf_tokenizer"]
