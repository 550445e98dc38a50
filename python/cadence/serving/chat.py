"""A chat request's conversation rendered into a prompt (on the text worker)."""

from __future__ import annotations

from typing import Any

from cadence.errors import InvalidParameterError
from cadence.serving.context import ServingContext
from cadence.serving.errors import InvalidParameter
from cadence.serving.request_building import PromptInput

# Keyword arguments of the template renderer that chat_template_kwargs must not override.
RESERVED_TEMPLATE_KWARGS = frozenset(
    {
        "chat_template",
        "add_generation_prompt",
        "continue_final_message",
        "tools",
        "tokenize",
        "return_dict",
        "sanitize_control_tokens",
        "conversation",
    }
)


async def render_messages(
    context: ServingContext,
    messages: list[dict[str, Any]],
    chat_template: str | None,
    chat_template_kwargs: dict[str, Any] | None,
    add_generation_prompt: bool,
    continue_final_message: bool,
) -> PromptInput:
    """Renders one conversation with the request's or the server's template. A template
    error names ``chat_template`` when the request sent the template, else ``messages``
    (the server's template failed on what the client sent)."""
    reserved = sorted(RESERVED_TEMPLATE_KWARGS.intersection(chat_template_kwargs or {}))
    if reserved:
        raise InvalidParameter(
            "chat_template_kwargs",
            f"chat_template_kwargs must not set {', '.join(reserved)} (use the request fields)",
        )
    try:
        rendered = await context.text.render_chat(
            messages,
            chat_template=chat_template or context.chat_template,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=continue_final_message,
            chat_template_kwargs=chat_template_kwargs,
        )
    except InvalidParameterError as error:
        param = error.param
        if param == "chat_template" and not chat_template:
            param = "messages"
        raise InvalidParameter(param, str(error)) from None
    if not rendered.prompt_token_ids:
        raise InvalidParameter("messages", "the rendered conversation is empty")
    return PromptInput(rendered.prompt, rendered.prompt_token_ids)
