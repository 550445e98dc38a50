"""``ServingContext``: what every frontend holds to serve requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cadence.engine.async_llm_engine import AsyncLLMEngine
from cadence.errors import InvalidParameterError
from cadence.logger import get_logger
from cadence.sampling_params import check_token_ids
from cadence.serving.errors import InvalidParameter, NotFound
from cadence.serving.model_info import ModelInfo
from cadence.serving.text import TextWorker

logger = get_logger(__name__)


@dataclass
class ServingContext:
    """Attributes:
    engine: the async engine (its command queue is the only way to the engine thread).
    model: the immutable model facts.
    text: tokenizer and chat renderer on worker threads.
    chat_template: the server's template (``--chat-template``); None = the tokenizer's.
    max_log_len: prompt characters / token ids logged per request; 0 = no prompt.
    """

    engine: AsyncLLMEngine
    model: ModelInfo
    text: TextWorker
    chat_template: str | None = None
    max_log_len: int = 0

    def check_model(self, model: str | None) -> str:
        """The model name to report; NotFound for a model this server does not serve."""
        if model is None:
            return self.model.model_name
        if model not in self.model.served_model_names:
            raise NotFound(
                "model",
                f"The model `{model}` does not exist. This server serves: "
                f"{', '.join(self.model.served_model_names)}",
                code="model_not_found",
            )
        return model

    def check_token_ids(self, token_ids: Sequence[int], param: str) -> None:
        try:
            check_token_ids(param, token_ids, self.model.vocab_size)
        except InvalidParameterError as error:
            raise InvalidParameter(param, str(error)) from None

    def log_request(self, request_id: str, prompt: str | None, token_ids: list[int]) -> None:
        if self.max_log_len > 0:
            shown = repr(prompt[: self.max_log_len]) if prompt is not None else "None"
            logger.info(
                "request %s: %d prompt tokens, prompt=%s, prompt_token_ids=%s",
                request_id,
                len(token_ids),
                shown,
                token_ids[: self.max_log_len],
            )
        else:
            logger.info("request %s: %d prompt tokens", request_id, len(token_ids))
