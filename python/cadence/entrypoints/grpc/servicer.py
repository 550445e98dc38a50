"""cadence.v1.InferenceService on top of the async engine.

The servicer is a thin translation: validation, defaults, chat rendering, streaming deltas
and context-length errors are the HTTP server's (``entrypoints/openai``), reached through
the same ``ServingContext``; their OpenAI-shaped errors become gRPC status codes here.
"""

from __future__ import annotations

import functools
import hmac
import inspect
from collections.abc import AsyncIterator
from typing import Any

import grpc

import cadence
from cadence.engine.async_llm_engine import (
    EngineDeadError,
    EngineDrainingError,
    EngineOverloadedError,
    RequestAbortedError,
)
from cadence.engine.llm_engine import check_cache_salt
from cadence.entrypoints.grpc import convert
from cadence.entrypoints.openai.errors import OpenAIError, bad_request, from_engine_error
from cadence.entrypoints.openai.serving_chat import render_messages
from cadence.entrypoints.openai.serving_common import (
    ChoiceProgress,
    PromptInput,
    ServingContext,
    follow_streams,
    make_sampling_params,
    new_id,
    resolve_max_tokens,
    submit_prompts,
)
from cadence.logger import get_logger
from cadence.outputs import RequestOutput
from cadence.sampling_params import BeamSearchParams
from cadence.v1 import inference_pb2, inference_pb2_grpc

logger = get_logger(__name__)

_STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
_ENGINE_ERRORS = (
    EngineOverloadedError,
    EngineDrainingError,
    EngineDeadError,
    RequestAbortedError,
)


def status_of(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The gRPC status for an error raised while serving a call."""
    if isinstance(error, _ENGINE_ERRORS):
        error = from_engine_error(error)
    if isinstance(error, OpenAIError):
        return _STATUS_CODES.get(error.status_code, grpc.StatusCode.INTERNAL), error.message
    if isinstance(error, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    logger.exception("internal error in a gRPC call", exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error: {error!r}"


def _rpc(method):
    """Checks the API key, then runs the (unary or server-streaming) method with every
    error turned into a status."""

    async def fail(self: InferenceServicer, context: grpc.aio.ServicerContext, error: Exception):
        code, message = status_of(error)
        await context.abort(code, message)

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self, request, context):
            await self._authorize(context)
            try:
                async for response in method(self, request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # noqa: BLE001 - every error becomes a status
                await fail(self, context, error)

        return stream_wrapper

    @functools.wraps(method)
    async def unary_wrapper(self, request, context):
        await self._authorize(context)
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            await fail(self, context, error)

    return unary_wrapper


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    """Serves one model. ``api_key``: calls need ``authorization: Bearer <key>`` metadata."""

    def __init__(self, context: ServingContext, api_key: str | None = None) -> None:
        self.ctx = context
        self._expected_authorization = f"Bearer {api_key}".encode() if api_key else None

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        if self._expected_authorization is None:
            return
        metadata = dict(context.invocation_metadata() or ())
        given = str(metadata.get("authorization", "")).encode()
        if not hmac.compare_digest(given, self._expected_authorization):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong API key: send metadata 'authorization: Bearer <key>'",
            )

    # ------------------------------------------------------------------ prompts

    def _prompt_of(self, request: Any) -> PromptInput:
        kind = request.WhichOneof("prompt")
        if kind == "text":
            if not request.text:
                raise bad_request("text must not be empty", param="text")
            token_ids = list(self.ctx.llm.get_tokenizer().encode(request.text))
            return PromptInput(request.text, token_ids)
        if kind == "token_ids":
            token_ids = list(request.token_ids.ids)
            if not token_ids:
                raise bad_request("token_ids must not be empty", param="token_ids")
            self.ctx.check_token_ids(token_ids, "token_ids")
            return PromptInput(None, token_ids)
        raise bad_request("give the prompt as text or token_ids", param="prompt")

    def _chat_prompt(self, request: inference_pb2.ChatRequest) -> PromptInput:
        if not request.messages:
            raise bad_request("messages must not be empty", param="messages")
        messages = []
        for message in request.messages:
            entry: dict[str, Any] = {"role": message.role, "content": message.content}
            if message.HasField("name"):
                entry["name"] = message.name
            messages.append(entry)
        return render_messages(
            self.ctx,
            messages,
            request.chat_template if request.HasField("chat_template") else None,
            convert.struct_to_dict(request.chat_template_kwargs),
            request.add_generation_prompt if request.HasField("add_generation_prompt") else True,
            request.continue_final_message,
        )

    # ------------------------------------------------------------------ generation

    @_rpc
    async def Generate(self, request, context) -> AsyncIterator[inference_pb2.GenerateResponse]:
        self.ctx.check_model(request.model or None)
        prompt = self._prompt_of(request)
        salt = _cache_salt(request)
        async for response in self._generate(
            prompt, request.sampling, request.stream, "prompt", salt
        ):
            yield response

    @_rpc
    async def Chat(self, request, context) -> AsyncIterator[inference_pb2.GenerateResponse]:
        self.ctx.check_model(request.model or None)
        prompt = self._chat_prompt(request)
        salt = _cache_salt(request)
        async for response in self._generate(
            prompt, request.sampling, request.stream, "messages", salt
        ):
            yield response

    async def _generate(
        self, prompt: PromptInput, sampling: Any, stream: bool, where: str, cache_salt: str | None
    ) -> AsyncIterator[inference_pb2.GenerateResponse]:
        fields = convert.sampling_fields(sampling)
        fields["max_tokens"] = resolve_max_tokens(
            self.ctx, fields.get("max_tokens"), len(prompt.token_ids), None, where
        )
        params = make_sampling_params(self.ctx, fields, convert.SAMPLING_FIELDS, {})
        request_id = new_id("grpc")
        streams, wakeup = await submit_prompts(
            self.ctx,
            request_id,
            [prompt],
            [params],
            (*convert.SAMPLING_FIELDS, "cache_salt"),
            {},
            cache_salt,
        )
        progress: dict[int, ChoiceProgress] = {}
        is_first = True
        final: RequestOutput | None = None
        async for _, output in follow_streams(streams, wakeup):
            final = output
            if not stream:
                continue
            response = inference_pb2.GenerateResponse(request_id=request_id)
            for completion in output.outputs:
                choice = progress.setdefault(completion.index, ChoiceProgress(completion.index))
                if choice.is_finished:
                    continue
                text, start, end = choice.advance(completion)
                if text or end > start or choice.is_finished:
                    response.choices.append(
                        convert.choice_delta(completion, text, start, end, params.logprobs)
                    )
            if is_first:
                self._add_prompt_logprobs(response, output, params.prompt_logprobs)
                is_first = False
            if output.finished:
                response.usage.CopyFrom(_usage(output))
            if response.choices or output.finished or response.prompt_logprobs:
                yield response
        if not stream and final is not None:
            response = inference_pb2.GenerateResponse(request_id=request_id)
            for completion in final.outputs:
                response.choices.append(
                    convert.choice_delta(
                        completion, completion.text, 0, len(completion.token_ids), params.logprobs
                    )
                )
            self._add_prompt_logprobs(response, final, params.prompt_logprobs)
            response.usage.CopyFrom(_usage(final))
            yield response

    @staticmethod
    def _add_prompt_logprobs(
        response: inference_pb2.GenerateResponse, output: RequestOutput, num_top: int | None
    ) -> None:
        if output.prompt_logprobs is None or num_top is None:
            return
        for token_id, position in zip(
            output.prompt_token_ids[1:], output.prompt_logprobs[1:], strict=True
        ):
            response.prompt_logprobs.append(convert.position_logprobs(token_id, position, num_top))

    @_rpc
    async def BeamSearch(self, request, context) -> inference_pb2.BeamSearchResponse:
        self.ctx.check_model(request.model or None)
        prompt = self._prompt_of(request)
        try:
            params = BeamSearchParams(
                beam_width=request.beam_width,
                max_tokens=request.max_tokens,
                ignore_eos=request.ignore_eos,
                temperature=request.temperature,
                length_penalty=(
                    request.length_penalty if request.HasField("length_penalty") else 1.0
                ),
                include_stop_str_in_output=request.include_stop_str_in_output,
            )
        except ValueError as error:
            raise bad_request(str(error)) from None
        resolve_max_tokens(self.ctx, params.max_tokens, len(prompt.token_ids), None, "prompt")
        request_id = new_id("grpc-beam")
        self.ctx.log_request(request_id, prompt.text, prompt.token_ids)
        stream = await self.ctx.engine.add_request(
            request_id, prompt.text, prompt.token_ids, params, cache_salt=_cache_salt(request)
        )
        try:
            async for output in stream:
                if output.finished:
                    return convert.beam_search_response(output)
        finally:
            stream.abort()
        raise RequestAbortedError("the beam search ended without a result")

    # ------------------------------------------------------------------ tokenizer, info

    @_rpc
    async def Tokenize(self, request, context) -> inference_pb2.TokenizeResponse:
        self.ctx.check_model(request.model or None)
        kind = request.WhichOneof("input")
        if kind == "text":
            add_special = (
                request.add_special_tokens if request.HasField("add_special_tokens") else True
            )
            tokens = list(
                self.ctx.llm.get_tokenizer().encode(request.text, add_special_tokens=add_special)
            )
        elif kind == "messages":
            chat = inference_pb2.ChatRequest(
                messages=request.messages.messages,
                add_generation_prompt=(
                    request.add_generation_prompt
                    if request.HasField("add_generation_prompt")
                    else True
                ),
            )
            tokens = self._chat_prompt(chat).token_ids
        else:
            raise bad_request("give text or messages", param="input")
        return inference_pb2.TokenizeResponse(
            token_ids=tokens, count=len(tokens), max_model_len=self.ctx.max_model_len
        )

    @_rpc
    async def Detokenize(self, request, context) -> inference_pb2.DetokenizeResponse:
        self.ctx.check_model(request.model or None)
        token_ids = list(request.token_ids)
        self.ctx.check_token_ids(token_ids, "token_ids")
        text = self.ctx.llm.get_tokenizer().decode(
            token_ids, skip_special_tokens=request.skip_special_tokens
        )
        return inference_pb2.DetokenizeResponse(text=text)

    @_rpc
    async def GetModelInfo(self, request, context) -> inference_pb2.GetModelInfoResponse:
        core = self.ctx.llm.llm_engine.core
        return inference_pb2.GetModelInfoResponse(
            name=self.ctx.model_name,
            max_model_len=self.ctx.max_model_len,
            vocab_size=self.ctx.vocab_size,
            eos_token_ids=list(core.model_config.eos_token_ids),
            default_sampling=convert.to_sampling_message(self.ctx.default_fields),
            max_beam_width=core.max_beam_width,
            server_version=cadence.__version__,
        )


def _usage(output: RequestOutput) -> inference_pb2.Usage:
    num_generated = sum(len(completion.token_ids) for completion in output.outputs)
    return convert.usage(len(output.prompt_token_ids), num_generated, output.num_cached_tokens)


def _cache_salt(request: Any) -> str | None:
    """The request's cache_salt (None when unset); one check_cache_salt refuses is
    INVALID_ARGUMENT naming it."""
    if not request.HasField("cache_salt"):
        return None
    try:
        return check_cache_salt(request.cache_salt)
    except ValueError as error:
        raise bad_request(str(error), param="cache_salt") from None
