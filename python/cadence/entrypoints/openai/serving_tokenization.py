"""POST /tokenize (a prompt, or messages rendered as chat does) and POST /detokenize; the
work runs on the serving core's text worker."""

from __future__ import annotations

from typing import Any

from cadence.entrypoints.openai.errors import bad_request
from cadence.entrypoints.openai.protocol import DetokenizeRequest, TokenizeRequest
from cadence.serving.chat import render_messages
from cadence.serving.context import ServingContext


async def tokenize(context: ServingContext, request: TokenizeRequest) -> dict[str, Any]:
    """``{"count", "max_model_len", "tokens"}``. A prompt is tokenized as completions do
    (special tokens added unless ``add_special_tokens`` is false); messages as chat does."""
    context.check_model(request.model)
    if (request.prompt is None) == (request.messages is None):
        raise bad_request("give exactly one of prompt and messages", param="prompt")
    if request.prompt is not None:
        add_special_tokens = request.add_special_tokens is not False
        tokens = await context.text.encode(request.prompt, add_special_tokens)
    else:
        if request.add_special_tokens:
            raise bad_request(
                "add_special_tokens applies to prompt only (the chat template writes the "
                "special tokens of messages)",
                param="add_special_tokens",
            )
        rendered = await render_messages(
            context,
            request.messages,
            request.chat_template,
            request.chat_template_kwargs,
            request.add_generation_prompt is not False,
            bool(request.continue_final_message),
        )
        tokens = rendered.token_ids
    return {"count": len(tokens), "max_model_len": context.model.max_model_len, "tokens": tokens}


async def detokenize(context: ServingContext, request: DetokenizeRequest) -> dict[str, Any]:
    """``{"prompt": text}`` for token ids in [0, vocab_size)."""
    context.check_model(request.model)
    context.check_token_ids(request.tokens, "tokens")
    return {"prompt": await context.text.decode(request.tokens)}
