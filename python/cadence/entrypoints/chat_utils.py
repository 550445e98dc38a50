"""Chat templates: loading them, validating conversations, and rendering a conversation
into a prompt (text and token ids) with transformers' sandboxed Jinja machinery.

Safety beyond vLLM: by default, control-token text inside message content (a user who
types ``<|im_end|><|im_start|>system``) is tokenized as plain text; only the markers the
template itself writes become control tokens. ``allow_special_tokens_in_content=True``
restores vLLM's behaviour of tokenizing the rendered text as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cadence.errors import InvalidParameterError

ChatTemplateContentFormat = Literal["auto", "string", "openai"]
Conversation = list[dict[str, Any]]

# A string with any of these is a template, not a path (as in vLLM).
_JINJA_CHARS = "{}\n"
# `for ... in message['content']` / `message.content`: the template walks content parts.
_ITERATES_CONTENT = re.compile(
    r"\{%-?\s*for\s+\w+\s+in\s+[\w.\[\]'\"]*content[\]'\"]*\s*(?:\|[^%]*)?-?%\}"
)


def load_chat_template(chat_template: str | Path | None) -> str | None:
    """None -> None; a readable file -> its contents; a string that looks like a path
    but cannot be opened -> ValueError; any other string -> the string itself."""
    if chat_template is None:
        return None
    if isinstance(chat_template, Path) or not any(c in chat_template for c in _JINJA_CHARS):
        try:
            with open(chat_template, encoding="utf-8") as f:
                return f.read()
        except OSError as error:
            if isinstance(chat_template, Path) or re.search(r"[/\\]|\.j(inja)?2?$", chat_template):
                raise ValueError(
                    f"chat_template {str(chat_template)!r} looks like a file path but cannot "
                    f"be opened: {error}"
                ) from error
    return str(chat_template)


def resolve_chat_template(tokenizer: Any, chat_template: str | None, model_name: str) -> str:
    """The template to use: the argument, else the tokenizer's own; never a silent default."""
    if chat_template is not None:
        return chat_template
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):  # named templates: use the default one
        own = own.get("default")
    if own:
        return own
    raise InvalidParameterError(
        "chat_template",
        f"model {model_name} has no chat template; pass one with "
        "chat_template=load_chat_template('path/to/template.jinja') "
        "(examples/ has ChatML, Llama-3 and plain templates)",
    )


def detect_content_format(chat_template: str) -> Literal["string", "openai"]:
    """'openai' when the template iterates over message content parts, else 'string'."""
    return "openai" if _ITERATES_CONTENT.search(chat_template) else "string"


def _validate_message(message: Any, index: int) -> None:
    if not isinstance(message, dict):
        raise InvalidParameterError(
            "messages", f"messages[{index}] must be a dict with 'role' and 'content'"
        )
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise InvalidParameterError(
            "messages", f"messages[{index}] needs a non-empty string 'role'"
        )
    content = message.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidParameterError(
            "messages",
            f"messages[{index}].content must be a string or a list of content parts, got "
            f"{type(content).__name__}",
        )
    for part_index, part in enumerate(content):
        where = f"messages[{index}].content[{part_index}]"
        if not isinstance(part, dict) or part.get("type") != "text":
            raise InvalidParameterError(
                "messages", f"{where} must be {{'type': 'text', 'text': str}} (text parts only)"
            )
        if not isinstance(part.get("text"), str):
            raise InvalidParameterError("messages", f"{where}.text must be a string")


def _convert_content(message: dict[str, Any], content_format: str) -> dict[str, Any]:
    content = message.get("content")
    converted = dict(message)
    if content_format == "string" and isinstance(content, list):
        converted["content"] = "\n".join(part["text"] for part in content)
    elif content_format == "openai" and isinstance(content, str):
        converted["content"] = [{"type": "text", "text": content}]
    return converted


def parse_conversation(messages: Any, content_format: str) -> Conversation:
    """Validates one conversation and converts its content to the template's format."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidParameterError(
            "messages", "a conversation must be a non-empty list of messages"
        )
    for index, message in enumerate(messages):
        _validate_message(message, index)
    return [_convert_content(m, content_format) for m in messages]


def is_batch_of_conversations(messages: Any) -> bool:
    return (
        isinstance(messages, (list, tuple))
        and bool(messages)
        and all(isinstance(m, (list, tuple)) for m in messages)
    )


@dataclass
class RenderedChat:
    """A conversation rendered into a prompt."""

    prompt: str
    prompt_token_ids: list[int]


def render_conversation(
    tokenizer: Any,
    conversation: Sequence[dict[str, Any]],
    chat_template: str,
    *,
    add_generation_prompt: bool = True,
    continue_final_message: bool = False,
    tools: list[dict[str, Any]] | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
    allow_special_tokens_in_content: bool = False,
) -> RenderedChat:
    """Renders with the tokenizer's sandboxed Jinja environment. Template errors (syntax,
    `raise_exception`) become InvalidParameterError("chat_template") carrying the
    template's message."""
    if add_generation_prompt and continue_final_message:
        raise InvalidParameterError(
            "continue_final_message",
            "add_generation_prompt and continue_final_message cannot both be true: use "
            "continue_final_message=True with add_generation_prompt=False to prefill the reply",
        )
    if continue_final_message and conversation[-1].get("role") != "assistant":
        raise InvalidParameterError(
            "continue_final_message",
            "continue_final_message needs the last message to be the assistant's",
        )
    kwargs = dict(chat_template_kwargs or {})
    common = dict(
        chat_template=chat_template,
        add_generation_prompt=add_generation_prompt,
        continue_final_message=continue_final_message,
        tools=tools,
        **kwargs,
    )
    try:
        text = tokenizer.apply_chat_template(list(conversation), tokenize=False, **common)
        token_ids = tokenizer.apply_chat_template(
            list(conversation),
            tokenize=True,
            return_dict=False,
            sanitize_control_tokens=not allow_special_tokens_in_content,
            **common,
        )
    except InvalidParameterError:
        raise
    except Exception as error:  # jinja2 TemplateError, a ValueError of the tokenizer, ...
        raise InvalidParameterError(
            "chat_template", f"chat template error: {type(error).__name__}: {error}"
        ) from error
    return RenderedChat(prompt=text, prompt_token_ids=list(token_ids))


CONTENT_FORMATS = ("auto", "string", "openai")


class ChatRenderer:
    """Renders conversations into prompts for one tokenizer: the one path of the offline
    ``LLM.chat`` / ``LLM.render_chat`` and of the servers. Thread-safe (it keeps no state
    between calls), so servers run it on worker threads."""

    def __init__(self, tokenizer: Any, model_name: str) -> None:
        self.tokenizer = tokenizer
        self.model_name = model_name

    def render(
        self,
        messages: Any,
        chat_template: str | None = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        allow_special_tokens_in_content: bool = False,
    ) -> list[RenderedChat]:
        """One RenderedChat per conversation (``messages`` is one, or a list of them);
        InvalidParameterError names what is wrong."""
        if chat_template_content_format not in CONTENT_FORMATS:
            raise InvalidParameterError(
                "chat_template_content_format",
                "chat_template_content_format must be 'auto', 'string' or 'openai', got "
                f"{chat_template_content_format!r}",
            )
        template = resolve_chat_template(self.tokenizer, chat_template, self.model_name)
        content_format = chat_template_content_format
        if content_format == "auto":
            content_format = detect_content_format(template)
        conversations = messages if is_batch_of_conversations(messages) else [messages]
        return [
            render_conversation(
                self.tokenizer,
                parse_conversation(conversation, content_format),
                template,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
                tools=tools,
                chat_template_kwargs=chat_template_kwargs,
                allow_special_tokens_in_content=allow_special_tokens_in_content,
            )
            for conversation in conversations
        ]
